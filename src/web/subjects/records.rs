//! The admin's part of the subject page: correcting a recorded journey
//! date with a reason. Everything goes through the subject service, so
//! the rules and the audit texts are those of the JSON API.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::detail::{Shown, outcome, respond};
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
) -> Markup {
    let action = format!("{}/corrections", subject_url(&subject.sssid));
    let empty = (CorrectionForm::default(), FieldMessages::default());
    let (form, errors) = typed.unwrap_or((&empty.0, &empty.1));
    let field_error = errors.get("field");
    html! {
        section.card #records aria-labelledby="records-heading" {
            h2 #records-heading { "Corrections" }
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
