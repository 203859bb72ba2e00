//! CSV answers: the choice between JSON and CSV (`format=csv` or
//! `Accept: text/csv`), the streamed CSV response, and `GET /audit`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::Staff;
use crate::app::AppState;
use crate::error::{Error, Result};
pub use crate::http::download::{csv_response, download_name};
use crate::service::csv::AuditExportRange;

/// Whether the client asked for CSV: `format=csv` (or `json`), else an
/// `Accept` header that names `text/csv` and not JSON.
pub fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) if f.eq_ignore_ascii_case("csv") => Ok(true),
        Some(f) if f.eq_ignore_ascii_case("json") => Ok(false),
        Some(f) => Err(Error::BadRequest(format!(
            "format must be json or csv, got {f:?}"
        ))),
        None => {
            let accept = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|range| {
                    range
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .collect::<Vec<_>>();
            Ok(accept.iter().any(|m| m == "text/csv")
                && !accept.iter().any(|m| m == "application/json"))
        }
    }
}

/// Empty values mean the open end.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StudyAuditQuery {
    /// `csv`; the whole study's trail is only offered as CSV.
    #[param(value_type = Option<String>, pattern = "^\\s*([Cc][Ss][Vv])?\\s*$")]
    format: Option<String>,
    /// The first instant: an RFC 3339 timestamp or a date (midnight UTC).
    #[param(example = "2026-01-01")]
    from: Option<String>,
    /// The end: an RFC 3339 timestamp (exclusive) or a date (that whole
    /// day included).
    #[param(example = "2026-01-31")]
    to: Option<String>,
}

#[utoipa::path(
    get, path = "/audit", tag = "subjects", operation_id = "exportStudyAudits", summary = "The whole study's audit trail as CSV",
    security(("staff_token" = [])),
    params(StudyAuditQuery),
    responses(
        (status = 200, description = "Columns datetime, actor, action, subject, link, user, request_id, client_ip; oldest first. Staff-account entries only for admins.",
            content_type = "text/csv", body = String),
        (status = 400, description = "A bad date, or `to` before `from`", body = ErrorEnvelope),
        (status = 406, description = "Not asked for CSV", body = ErrorEnvelope),
    )
)]
pub async fn study_audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    headers: HeaderMap,
    query: std::result::Result<Query<StudyAuditQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    if !wants_csv(q.format.as_deref(), &headers)? {
        return Err(Error::NotAcceptable(
            "the study's audit trail is offered as CSV: add format=csv".into(),
        ));
    }
    let range = AuditExportRange::parse(q.from.as_deref(), q.to.as_deref())?;
    let chunks = state.services.csv.export_study_audits(&ctx, range).await?;
    Ok(csv_response(chunks, "audit-trail.csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn format_wins_over_accept() {
        let none = HeaderMap::new();
        assert!(!wants_csv(None, &none).unwrap());
        assert!(wants_csv(Some("CSV"), &none).unwrap());
        assert!(!wants_csv(Some("json"), &accept("text/csv")).unwrap());
        assert!(wants_csv(None, &accept("text/csv;q=0.9, */*;q=0.1")).unwrap());
        assert!(!wants_csv(None, &accept("application/json, text/csv")).unwrap());
        assert!(!wants_csv(None, &accept("*/*")).unwrap());
        assert_eq!(
            wants_csv(Some("xml"), &none).unwrap_err().to_string(),
            "format must be json or csv, got \"xml\""
        );
    }
}
