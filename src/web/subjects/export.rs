//! The console's CSV downloads: the subject list as the screen shows it
//! (its search, status filter and order; every page of it), a subject's
//! activity, and the study's audit trail between two days. Plain links
//! and a GET form, so they work without JavaScript; the services audit
//! each export.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::list::ListView;
use super::subject_url;
use crate::app::AppState;
use crate::http::download::{csv_response, download_name};
use crate::service::csv::AuditExportRange;
use crate::web::error::WebError;
use crate::web::session::SignedIn;

/// `/subjects.csv`: what `/subjects` with the same query shows, all pages.
pub async fn export_list(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Query(view): Query<ListView>,
) -> Result<Response, WebError> {
    let chunks = state
        .services
        .csv
        .export_subjects(&visitor.ctx, view.query(), true)
        .await
        .map_err(|e| visitor.fail(e))?;
    Ok(csv_response(chunks, "subjects.csv"))
}

/// `/subjects/<sssid>/activity.csv`: the subject's audit trail.
pub async fn export_activity(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
) -> Result<Response, WebError> {
    let chunks = state
        .services
        .csv
        .export_subject_audits(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    Ok(csv_response(chunks, &download_name("audit-trail-", &sssid)))
}

/// The days of the study audit export, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct AuditDays {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `/audit.csv?from=<day>&to=<day>`: the study's audit trail from the
/// start of `from` to the end of `to`.
pub async fn export_study_audits(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Query(days): Query<AuditDays>,
) -> Result<Response, WebError> {
    let range =
        AuditExportRange::parse(Some(&days.from), Some(&days.to)).map_err(|e| visitor.fail(e))?;
    let chunks = state
        .services
        .csv
        .export_study_audits(&visitor.ctx, range)
        .await
        .map_err(|e| visitor.fail(e))?;
    Ok(csv_response(chunks, "audit-trail.csv"))
}

/// The link that downloads the subject's activity.
pub(super) fn activity_download(sssid: &str) -> Markup {
    let url = format!("{}/activity.csv", subject_url(sssid));
    html! {
        a.button.small.secondary href=(url) download {
            "Download CSV"
        }
    }
}

/// The card with the study audit trail's download form.
pub(super) fn study_audit_card() -> Markup {
    html! {
        section.card aria-labelledby="audit-export-heading" {
            h2 #audit-export-heading { "Study audit trail" }
            form.form-row method="get" action="/audit.csv" aria-describedby="audit-export-hint" {
                div.field {
                    label for="audit-from" { "From" }
                    input #audit-from type="date" name="from";
                }
                div.field {
                    label for="audit-to" { "To" }
                    input #audit-to type="date" name="to";
                }
                div.field.shrink { button.secondary type="submit" { "Download CSV" } }
            }
            p.muted.small-text #audit-export-hint { "Every entry of the days chosen, the first and last included; leave a day empty for the start or the end of the trail." }
        }
    }
}
