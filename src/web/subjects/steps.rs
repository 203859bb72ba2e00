//! Journey steps staff record by hand (invitation, consent,
//! withdrawal): the confirmation and the recording.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{FixedOffset, NaiveDate, Offset, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::detail::{Shown, outcome, respond, subject_heading, subject_page};
use super::{record_url, subject_url};
use crate::app::AppState;
use crate::error::Error;
use crate::service::subjects::{JourneyDate, StepDay, SubjectView};
use crate::web::error::WebError;
use crate::web::layout::csrf_field;
use crate::web::messages::sentence;
use crate::web::session::{Visitor, Writer};

/// The journey steps staff record by hand; enrolment comes from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Invited,
    Consented,
    Withdrawn,
}

impl Step {
    pub(super) fn parse(word: &str) -> Option<Self> {
        match word {
            "invited" => Some(Step::Invited),
            "consented" => Some(Step::Consented),
            "withdrawn" => Some(Step::Withdrawn),
            _ => None,
        }
    }

    pub(super) fn word(self) -> &'static str {
        match self {
            Step::Invited => "invited",
            Step::Consented => "consented",
            Step::Withdrawn => "withdrawn",
        }
    }

    pub(super) fn date(self) -> JourneyDate {
        match self {
            Step::Invited => JourneyDate::Invited,
            Step::Consented => JourneyDate::Consented,
            Step::Withdrawn => JourneyDate::Withdrawn,
        }
    }

    pub(super) fn button(self) -> &'static str {
        match self {
            Step::Invited => "Record invitation",
            Step::Consented => "Record consent",
            Step::Withdrawn => "Record withdrawal",
        }
    }

    pub(super) fn done(self) -> &'static str {
        match self {
            Step::Invited => "Invitation recorded.",
            Step::Consented => "Consent recorded.",
            Step::Withdrawn => "Withdrawal recorded.",
        }
    }

    /// The label of the day it happened on.
    pub(super) fn date_label(self) -> &'static str {
        match self {
            Step::Invited => "Invited on",
            Step::Consented => "Consent given on",
            Step::Withdrawn => "Withdrew on",
        }
    }

    /// Why a second recording changed nothing.
    pub(super) fn already(self) -> &'static str {
        match self {
            Step::Invited => "The invitation was already recorded; nothing was changed.",
            Step::Consented => "Consent was already recorded; nothing was changed.",
            Step::Withdrawn => "The withdrawal was already recorded; nothing was changed.",
        }
    }

    pub(super) fn question(self, subject: &SubjectView) -> Markup {
        let who = html! { strong { (subject.name) } " (" (subject.sssid) ")" };
        match self {
            Step::Invited => html! {
                "Record that " (who) " was invited to the study?"
            },
            Step::Consented => html! {
                "Record that " (who) " gave consent? Consent is recorded once and cannot be changed afterwards."
            },
            Step::Withdrawn => html! {
                p { "Record that " (who) " withdrew from the study? This is recorded once and cannot be undone." }
                (withdrawal_consequences())
            },
        }
    }
}

pub(super) fn step_action(subject: &SubjectView, step: Step) -> Markup {
    let url = record_url(&subject.sssid, step.word());
    html! {
        a.button.small.secondary.danger-outline[step == Step::Withdrawn] href=(url)
            hx-get=(url) hx-target="#confirm-area" hx-swap="innerHTML" { (step.button()) "…" }
    }
}

#[derive(Deserialize)]
pub struct StepInput {
    #[serde(default)]
    pub(super) step: String,
    /// The day it happened, `YYYY-MM-DD`; not sent means now.
    pub(super) date: Option<String>,
    /// The browser's offset from UTC in minutes (east positive), filled in
    /// by app.js; without script the day is taken as a UTC day.
    #[serde(default)]
    pub(super) utc_offset: String,
}

pub(super) fn parse_step(word: &str) -> Result<Step, Error> {
    Step::parse(word).ok_or_else(|| {
        Error::BadRequest("step must be one of invited, consented, withdrawn".into())
    })
}

/// The browser's time zone offset as sent, UTC if missing or impossible.
pub(super) fn browser_offset(minutes: &str) -> FixedOffset {
    const MOST_MINUTES: i32 = 14 * 60;
    minutes
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|m| m.abs() <= MOST_MINUTES)
        .and_then(|m| FixedOffset::east_opt(m * 60))
        .unwrap_or(Utc.fix())
}

/// The day typed into a step confirmation (`None`: not sent, so now), or
/// the sentence that says what is wrong with it. The service checks it
/// again and stays the authority.
/// The day typed into the confirmation, in the browser's time zone; the
/// service decides whether the step may be recorded on it.
fn typed_step_day(input: &StepInput, today: NaiveDate) -> Result<Option<StepDay>, String> {
    let Some(raw) = input.date.as_deref() else {
        return Ok(None);
    };
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("Enter the date like {}.", today.format("%Y-%m-%d")))?;
    Ok(Some(StepDay {
        date,
        utc_offset: browser_offset(&input.utc_offset),
    }))
}

/// The question before recording a step, with the day it happened on:
/// today unless something else was typed (`typed`, shown with `error`).
/// app.js puts in the browser's today and time zone.
pub(super) fn step_confirmation(
    visitor: &Visitor,
    subject: &SubjectView,
    step: Step,
    today: NaiveDate,
    typed: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let action = format!("{}/record", subject_url(&subject.sssid));
    let back = subject_url(&subject.sssid);
    // On its own page (no htmx) there is no panel to swap: plain form.
    let panel_target = visitor.htmx.then_some("#subject-panel");
    let swap = visitor.htmx.then_some("outerHTML");
    let today = today.format("%Y-%m-%d").to_string();
    html! {
        div.confirm-box role="alertdialog" aria-labelledby="confirm-question" {
            div #confirm-question { (step.question(subject)) }
            form method="post" action=(action)
                hx-post=[visitor.htmx.then_some(&action)] hx-target=[panel_target] hx-swap=[swap] novalidate {
                (csrf_field(&visitor.csrf))
                input type="hidden" name="step" value=(step.word());
                input type="hidden" name="utc_offset" value="" data-utc-offset;
                div.field.shrink {
                    label for="step-date" { (step.date_label()) }
                    input #step-date type="date" name="date" required
                        value=(typed.unwrap_or(&today)) min="1900-01-01" max=(today)
                        data-today=(if typed.is_some() { "max" } else { "value max" })
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "step-date-error")];
                    @if let Some(error) = error {
                        p.error #step-date-error { (error) }
                    }
                }
                div.actions {
                    button.small.danger[step == Step::Withdrawn] type="submit" { (step.button()) }
                    a.button.small.secondary href=(back) hx-get=[visitor.htmx.then_some(&back)] hx-target=[panel_target] hx-swap=[swap] { "Cancel" }
                }
            }
        }
    }
}

/// What recording a withdrawal does to the subject's links, said before
/// it is recorded.
fn withdrawal_consequences() -> Markup {
    html! {
        ul.consequences {
            li { "QR codes that were not used yet stop working at once, also ones already shown or printed; no new QR codes can be made." }
            li { "Links the app already made stay in the subject's history." }
            li { "Nothing is deleted." }
        }
    }
}

/// The confirmation on a page of its own (no htmx).
pub(super) fn confirmation_page(
    visitor: &Visitor,
    subject: &SubjectView,
    confirmation: Markup,
) -> Markup {
    subject_page(
        visitor,
        subject,
        html! { (subject_heading(subject)) (confirmation) },
    )
}

/// Asks before recording a step: a box for htmx, a page otherwise.
/// Changes nothing.
pub async fn confirm_step(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path(sssid): Path<String>,
    Query(input): Query<StepInput>,
) -> Result<Response, WebError> {
    let step = parse_step(&input.step).map_err(|e| visitor.fail(e))?;
    let subject = state
        .services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    // The server's today; app.js puts in the browser's.
    let today = StepDay::today(state.services.deps.clock.now(), Utc.fix());
    let confirmation = step_confirmation(&visitor, &subject, step, today, None, None);
    if visitor.htmx {
        return Ok(confirmation.into_response());
    }
    Ok(confirmation_page(&visitor, &subject, confirmation).into_response())
}

pub async fn record_step(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path(sssid): Path<String>,
    Form(input): Form<StepInput>,
) -> Result<Response, WebError> {
    let step = parse_step(&input.step).map_err(|e| visitor.fail(e))?;
    let now = state.services.deps.clock.now();
    let today = StepDay::today(now, browser_offset(&input.utc_offset));
    let recorded = match typed_step_day(&input, today) {
        Err(problem) => Err(problem),
        Ok(day) => match state
            .services
            .subjects
            .record_step(&visitor.ctx, &sssid, step.date(), day)
            .await
        {
            // The day broke a rule: shown next to the date field.
            Err(error @ Error::Invalid(_)) => Err(sentence(&error)),
            other => Ok(other),
        },
    };
    let result = match recorded {
        Ok(result) => result,
        Err(problem) => {
            let subject = state
                .services
                .subjects
                .get(&visitor.ctx, &sssid)
                .await
                .map_err(|e| visitor.fail(e))?;
            let typed = input.date.as_deref();
            let confirmation =
                step_confirmation(&visitor, &subject, step, today, typed, Some(&problem));
            if !visitor.htmx {
                let page = confirmation_page(&visitor, &subject, confirmation);
                return Ok((StatusCode::BAD_REQUEST, page).into_response());
            }
            let shown = Shown {
                pending: Some(confirmation),
                ..Shown::default()
            };
            return respond(&state, &visitor, &sssid, StatusCode::BAD_REQUEST, shown).await;
        }
    };
    let result = result
        .map(|_| step.done().to_owned())
        .map_err(|error| match error {
            Error::Conflict(msg) if msg.starts_with("Subject has already been") => {
                Error::Conflict(step.already().into())
            }
            other => other,
        });
    outcome(&state, &visitor, &sssid, result).await
}
