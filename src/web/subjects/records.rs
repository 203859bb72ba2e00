//! The admin's part of the subject page: correcting a recorded journey
//! date with a reason, and erasing a withdrawn subject's personal data
//! after a confirmation. Everything goes through the subject service, so
//! the rules and the audit texts are those of the JSON API.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::detail::{Shown, outcome, respond};
use super::steps::confirmation_page;
use super::subject_url;
use crate::app::AppState;
use crate::error::Error;
use crate::service::subjects::{Correction, SubjectView};
use crate::web::error::WebError;
use crate::web::layout::{Field, csrf_field, form_problems};
use crate::web::messages::FieldMessages;
use crate::web::session::{SignedIn, Visitor};

/// The dates a correction can change, with the words the form shows.
const DATES: [(&str, &str); 4] = [
    ("date_invited", "Invitation date"),
    ("date_consented", "Consent date"),
    ("date_enrolled", "Enrolment date"),
    ("date_withdrawn", "Withdrawal date"),
];

/// What was typed into the correction form.
#[derive(Debug, Default, Deserialize)]
pub struct CorrectionForm {
    #[serde(default)]
    pub(super) field: String,
    /// `YYYY-MM-DD`; empty clears the date.
    #[serde(default)]
    pub(super) date: String,
    #[serde(default)]
    pub(super) reason: String,
}

/// Whether the visitor may correct and erase (the service decides again).
pub(super) fn is_admin(visitor: &Visitor) -> bool {
    visitor.user().is_some_and(|u| u.admin)
}

/// The "Corrections" card, for admins only.
pub(super) fn records_card(
    visitor: &Visitor,
    subject: &SubjectView,
    typed: Option<(&CorrectionForm, &FieldMessages)>,
    erasure: Option<&Markup>,
) -> Markup {
    let action = format!("{}/corrections", subject_url(&subject.sssid));
    let empty = (CorrectionForm::default(), FieldMessages::default());
    let (form, errors) = typed.unwrap_or((&empty.0, &empty.1));
    let field_error = errors.get("field");
    html! {
        section.card #records aria-labelledby="records-heading" {
            h2 #records-heading { "Corrections and erasure" }
            p.muted {
                "A date that was recorded wrongly can be corrected here (admins only). "
                "The old date, the new one and your reason stay in the activity log."
            }
            form #correct-date method="post" action=(action)
                hx-post=(action) hx-target="#subject-panel" hx-swap="outerHTML" novalidate {
                (csrf_field(&visitor.csrf))
                (form_problems(&errors.others(&["field", "value", "reason"])))
                div.form-row {
                    div.field.shrink {
                        label for="correct-date-field" { "Date to correct" }
                        select #correct-date-field name="field" required
                            aria-invalid=[field_error.map(|_| "true")]
                            aria-describedby=[field_error.map(|_| "correct-date-field-error")] {
                            @for (name, label) in DATES {
                                option value=(name) selected[form.field == name] { (label) }
                            }
                        }
                        @if let Some(error) = field_error {
                            p.error #correct-date-field-error { (error) }
                        }
                    }
                    (Field::new("date", "Correct date", "date")
                        .value(&form.date)
                        .error(errors.get("value"))
                        .hint("Leave empty to remove the date.")
                        .optional()
                        .render("correct-date"))
                }
                (Field::new("reason", "Reason", "text")
                    .value(&form.reason)
                    .error(errors.get("reason"))
                    .hint(REASON_HINT)
                    .render("correct-date"))
                button.secondary type="submit" { "Save correction" }
            }
            h3 { "Personal data" }
            @if subject.bday.is_none() {
                p { "The name, birth date and email address of this subject were erased." }
            } @else if subject.date_withdrawn.is_some() {
                p.muted {
                    "The subject has withdrawn, so their name, birth date and email address "
                    "can be erased (for example at their request)."
                }
                @let url = erasure_url(&subject.sssid);
                a.button.small.secondary.danger-outline href=(url)
                    hx-get=(url) hx-target="#erasure-confirm" hx-swap="innerHTML" { "Erase personal data…" }
            } @else {
                p.muted { "Personal data can be erased once the subject's withdrawal is recorded." }
            }
            div #erasure-confirm {
                @if let Some(erasure) = erasure { (erasure) }
            }
        }
    }
}

fn erasure_url(sssid: &str) -> String {
    format!("{}/erasure", subject_url(sssid))
}

/// What was typed into the erasure confirmation.
#[derive(Debug, Default, Deserialize)]
pub struct ErasureForm {
    #[serde(default)]
    reason: String,
}

/// The question before an erasure, saying what it does, with the reason
/// (`typed`, and what is wrong with it).
fn erasure_confirmation(
    visitor: &Visitor,
    subject: &SubjectView,
    typed: &str,
    error: Option<&str>,
) -> Markup {
    let action = erasure_url(&subject.sssid);
    let back = subject_url(&subject.sssid);
    // On its own page (no htmx) there is no panel to swap: plain form.
    let panel_target = visitor.htmx.then_some("#subject-panel");
    let swap = visitor.htmx.then_some("outerHTML");
    html! {
        div.confirm-box role="alertdialog" aria-labelledby="erasure-question" {
            p #erasure-question {
                "Erase the personal data of " strong { (subject.name) } " (" (subject.sssid) ")? "
                "This cannot be undone."
            }
            ul.consequences {
                li { "The name, birth date and email address are removed from the subject and from every entry of its activity log." }
                li { "The SSSID, the journey dates, the links and the activity log remain; the log still verifies." }
                li { "Backups made before now still hold the data until they expire." }
            }
            form method="post" action=(action)
                hx-post=[visitor.htmx.then_some(&action)] hx-target=[panel_target] hx-swap=[swap] novalidate {
                (csrf_field(&visitor.csrf))
                (Field::new("reason", "Reason", "text")
                    .value(typed)
                    .error(error)
                    .hint("For example: at the participant's request. Kept in the activity log; name no personal data.")
                    .render("erase"))
                div.actions {
                    button.small.danger type="submit" { "Erase personal data" }
                    a.button.small.secondary href=(back) hx-get=[visitor.htmx.then_some(&back)] hx-target=[panel_target] hx-swap=[swap] { "Cancel" }
                }
            }
        }
    }
}

/// Asks before erasing: a box for htmx, a page otherwise. Changes nothing.
pub async fn confirm_erasure(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
) -> Result<Response, WebError> {
    let subject = state
        .services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let confirmation = erasure_confirmation(&visitor, &subject, "", None);
    if visitor.htmx {
        return Ok(confirmation.into_response());
    }
    Ok(confirmation_page(&visitor, &subject, confirmation).into_response())
}

pub async fn erase(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(form): Form<ErasureForm>,
) -> Result<Response, WebError> {
    let result = state
        .services
        .subjects
        .erase(&visitor.ctx, &sssid, &form.reason)
        .await;
    match result {
        // The reason broke a rule: the confirmation again, with the error.
        Err(error @ Error::Invalid(_)) => {
            let errors = FieldMessages::of_or_at(&error, "reason");
            let subject = state
                .services
                .subjects
                .get(&visitor.ctx, &sssid)
                .await
                .map_err(|e| visitor.fail(e))?;
            let confirmation =
                erasure_confirmation(&visitor, &subject, &form.reason, errors.get("reason"));
            if !visitor.htmx {
                let page = confirmation_page(&visitor, &subject, confirmation);
                return Ok((StatusCode::BAD_REQUEST, page).into_response());
            }
            let shown = Shown {
                erasure: Some(confirmation),
                ..Shown::default()
            };
            respond(&state, &visitor, &sssid, StatusCode::BAD_REQUEST, shown).await
        }
        result => {
            let result = result.map(|()| "Personal data erased.".to_owned());
            outcome(&state, &visitor, &sssid, result).await
        }
    }
}

const REASON_HINT: &str = "Why the recorded date was wrong, in one line; it is kept in the activity log, so name no personal data.";

pub async fn correct(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(form): Form<CorrectionForm>,
) -> Result<Response, WebError> {
    let correction = Correction {
        field: form.field.clone(),
        value: Some(Some(form.date.clone())),
        reason: form.reason.clone(),
    };
    let result = state
        .services
        .subjects
        .correct(&visitor.ctx, &sssid, correction)
        .await;
    match result {
        // Each problem next to its field, what was typed kept.
        Err(error @ Error::Invalid(_)) => {
            let errors = FieldMessages::of_or_at(&error, "reason");
            let shown = Shown {
                correction: Some((&form, &errors)),
                ..Shown::default()
            };
            respond(&state, &visitor, &sssid, StatusCode::BAD_REQUEST, shown).await
        }
        result => {
            let result = result.map(|()| "Correction saved.".to_owned());
            outcome(&state, &visitor, &sssid, result).await
        }
    }
}
