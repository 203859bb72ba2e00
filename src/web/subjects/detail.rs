//! `/subjects/<sssid>`: the subject page (heading, journey, edit form,
//! links, activity) and its edit form; the panel is what htmx swaps.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::activity::activity_card;
use super::form::{SubjectForm, person_fields};
use super::records::{CorrectionForm, is_admin, records_card};
use super::revoke::revoke_link_button;
use super::steps::{Step, step_action};
use super::{birth_date, born, display_name, moment, qr_button, standing_badge, subject_url};
use crate::app::AppState;
use crate::error::Error;
use crate::service::links::LinkView;
use crate::service::subjects::{SubjectFields, SubjectView};
use crate::store::AuditRecord;
use crate::web::error::WebError;
use crate::web::layout::{Flash, Section, csrf_field, flash, page};
use crate::web::messages::{FieldMessages, sentence};
use crate::web::session::{SignedIn, Visitor, Writer};

// ------------------------------------------------------------ one subject

/// What the subject page shows besides the subject.
pub(super) struct Details {
    pub(super) subject: SubjectView,
    pub(super) links: Vec<LinkView>,
    pub(super) activity: Vec<AuditRecord>,
}

pub(super) async fn details(
    state: &AppState,
    visitor: &Visitor,
    sssid: &str,
) -> Result<Details, Error> {
    let services = &state.services;
    let subject = services.subjects.get(&visitor.ctx, sssid).await?;
    let links = services.links.for_subject(&visitor.ctx, sssid).await?;
    let activity = services.subjects.audits(&visitor.ctx, sssid).await?;
    Ok(Details {
        subject,
        links,
        activity,
    })
}

/// The study journey; `pending` is a step confirmation to show open (it
/// came back with an error).
pub(super) fn journey(
    visitor: &Visitor,
    subject: &SubjectView,
    pending: Option<&Markup>,
) -> Markup {
    let withdrawn = subject.date_withdrawn.is_some();
    // Monitors see the journey without its buttons.
    let writable = visitor.can_write();
    let row = |label: &str, at: Option<DateTime<Utc>>, action: Option<Markup>| {
        let action = action.filter(|_| writable);
        html! {
            div.journey-step {
                dt { (label) }
                dd {
                    @if let Some(at) = at { (moment(at)) }
                    @else if let Some(action) = action { (action) }
                    @else { span.muted { "—" } }
                }
            }
        }
    };
    html! {
        section.card aria-labelledby="journey-heading" {
            div.toolbar {
                h2 #journey-heading { "Study journey" }
                @if writable && subject.journey().can_invite() { (qr_button(visitor, subject, false)) }
            }
            dl.journey {
                div.journey-step { dt { "Status" } dd { (standing_badge(subject)) } }
                (row("Invited", subject.date_invited,
                    (subject.date_consented.is_none() && !withdrawn).then(|| step_action(subject, Step::Invited))))
                (row("Consented", subject.date_consented,
                    (!withdrawn).then(|| step_action(subject, Step::Consented))))
                (row("Enrolled", subject.date_enrolled,
                    subject.journey().can_invite().then(|| html! { span.muted { "when the app scans a QR code" } })))
                (row("Withdrawn", subject.date_withdrawn, Some(step_action(subject, Step::Withdrawn))))
            }
            div #confirm-area {
                @if let Some(pending) = pending { (pending) }
            }
        }
    }
}

pub(super) fn edit_form(
    visitor: &Visitor,
    subject: &SubjectView,
    form: &SubjectForm,
    errors: &FieldMessages,
) -> Markup {
    let action = subject_url(&subject.sssid);
    if !visitor.can_write() {
        return read_only_details(subject);
    }
    html! {
        section.card aria-labelledby="edit-heading" {
            h2 #edit-heading { "Details" }
            @if subject.bday.is_none() {
                p { "SSSID " strong { (subject.sssid) } span.muted { " · created " (moment(subject.created)) } }
                p.muted { "The personal data of this subject was erased; there is nothing to edit." }
            } @else {
            form #edit-subject method="post" action=(action)
                hx-post=(action) hx-target="#subject-panel" hx-swap="outerHTML" novalidate {
                (csrf_field(&visitor.csrf))
                p { "SSSID " strong { (subject.sssid) } span.muted { " · created " (moment(subject.created)) } }
                div.form-row { (person_fields(form, errors, "edit-subject")) }
                button type="submit" { "Save changes" }
            }
            }
        }
    }
}

/// The subject's details for a monitor: read, not edited.
fn read_only_details(subject: &SubjectView) -> Markup {
    html! {
        section.card aria-labelledby="edit-heading" {
            h2 #edit-heading { "Details" }
            dl.details {
                div { dt { "SSSID" } dd { (subject.sssid) } }
                div { dt { "Name" } dd { (subject.name) } }
                div { dt { "Date of birth" } dd { (birth_date(subject.bday)) } }
                div { dt { "Email" } dd { (subject.email.as_deref().unwrap_or("—")) } }
                div { dt { "Created" } dd { (moment(subject.created)) } }
            }
        }
    }
}

pub(super) fn link_state(link: &LinkView, now: DateTime<Utc>) -> Markup {
    html! {
        @if let Some(at) = link.withdrawn_on {
            "Withdrawn " (moment(at))
        } @else if let Some(at) = link.linked_on {
            "Linked " (moment(at))
            @if let Some(to) = &link.linked_to { " to " code { (to) } }
        } @else if let Some(exp) = link.exp {
            @if exp <= now { "Expired " (moment(exp)) } @else { "Waiting for the app until " (moment(exp)) }
        } @else {
            "Created, no QR code shown yet"
        }
    }
}

pub(super) fn links_card(links: &[LinkView], now: DateTime<Utc>, writable: bool) -> Markup {
    html! {
        section.card aria-labelledby="links-heading" {
            h2 #links-heading { "Invitation links" }
            @if links.is_empty() {
                p.muted { "No links yet. A link is made when the QR code is shown." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Link id" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for link in links.iter().rev() {
                                tr {
                                    td data-label="Created" { (moment(link.created)) }
                                    td data-label="State" { (link_state(link, now)) }
                                    td data-label="Link id" { code.small-text { (link.id) } }
                                    td { @if writable { (revoke_link_button(link)) } }
                                }
                            }
                        }
                    }
                }
                div #link-confirm-area {}
            }
        }
    }
}

pub(super) fn panel(
    visitor: &Visitor,
    details: &Details,
    message: Option<&Flash>,
    (form, errors): (&SubjectForm, &FieldMessages),
    now: DateTime<Utc>,
    pending: Option<&Markup>,
    records: Option<&Markup>,
) -> Markup {
    html! {
        div #subject-panel {
            (subject_heading(&details.subject))
            (flash(message))
            (journey(visitor, &details.subject, pending))
            (edit_form(visitor, &details.subject, form, errors))
            (links_card(&details.links, now, visitor.can_write()))
            @if let Some(records) = records { (records) }
            (activity_card(&details.subject.sssid, &details.activity))
        }
    }
}

pub(super) fn form_of(subject: &SubjectView) -> SubjectForm {
    SubjectForm {
        sssid: subject.sssid.clone(),
        name: subject.name.clone(),
        bday: birth_date(subject.bday),
        email: subject.email.clone().unwrap_or_default(),
    }
}

/// Name and standing; inside the swapped panel, so they change with it.
pub(super) fn subject_heading(subject: &SubjectView) -> Markup {
    html! {
        div.title-row.subject-title {
            h1 { (display_name(subject)) }
            (standing_badge(subject))
        }
        p.muted { "SSSID " (subject.sssid) " · " (born(subject)) }
    }
}

pub(super) fn subject_page(visitor: &Visitor, subject: &SubjectView, content: Markup) -> Markup {
    page(
        &format!("Subject {}", subject.sssid),
        Some(&visitor.chrome(Section::Subjects)),
        false,
        html! {
            p.breadcrumb { a href="/subjects" { "Subjects" } " / " (subject.sssid) }
            (content)
            div #qr-overlay {}
        },
    )
}

/// What the subject panel shows besides the stored subject.
#[derive(Default)]
pub(super) struct Shown<'a> {
    pub(super) message: Option<Flash>,
    /// The edit form as typed, with its errors (else the stored values).
    pub(super) typed: Option<(&'a SubjectForm, &'a FieldMessages)>,
    /// A step confirmation to show open.
    pub(super) pending: Option<Markup>,
    /// The correction form as typed, with its errors (admins).
    pub(super) correction: Option<(&'a CorrectionForm, &'a FieldMessages)>,
    /// An erasure confirmation to show open (admins).
    pub(super) erasure: Option<Markup>,
}

/// The panel (htmx) or the whole page, with `status`.
pub(super) async fn respond(
    state: &AppState,
    visitor: &Visitor,
    sssid: &str,
    status: StatusCode,
    shown: Shown<'_>,
) -> Result<Response, WebError> {
    let Shown {
        message,
        typed,
        pending,
        correction,
        erasure,
    } = shown;
    let details = details(state, visitor, sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let stored = form_of(&details.subject);
    let none = FieldMessages::default();
    let (form, errors) = typed.unwrap_or((&stored, &none));
    let now = state.services.deps.clock.now();
    let records = is_admin(visitor)
        .then(|| records_card(visitor, &details.subject, correction, erasure.as_ref()));
    let content = panel(
        visitor,
        &details,
        message.as_ref(),
        (form, errors),
        now,
        pending.as_ref(),
        records.as_ref(),
    );
    Ok(if visitor.htmx {
        (status, content).into_response()
    } else {
        (status, subject_page(visitor, &details.subject, content)).into_response()
    })
}

/// After a change: htmx gets the panel with the outcome; a plain post
/// succeeds with a redirect (so reloading does not repeat it) and fails
/// with the page and its 4xx status.
pub(super) async fn outcome(
    state: &AppState,
    visitor: &Visitor,
    sssid: &str,
    result: Result<String, Error>,
) -> Result<Response, WebError> {
    match result {
        Ok(done) if !visitor.htmx => {
            visitor.set_flash(Flash::ok(done)).await?;
            Ok(Redirect::to(&subject_url(sssid)).into_response())
        }
        Ok(done) => {
            let shown = Shown {
                message: Some(Flash::ok(done)),
                ..Shown::default()
            };
            respond(state, visitor, sssid, StatusCode::OK, shown).await
        }
        Err(
            error @ (Error::BadRequest(_)
            | Error::Invalid(_)
            | Error::Conflict(_)
            | Error::PreconditionFailed(_)
            | Error::Gone(_)),
        ) => {
            let shown = Shown {
                message: Some(Flash::error(sentence(&error))),
                ..Shown::default()
            };
            respond(state, visitor, sssid, error.status(), shown).await
        }
        Err(other) => Err(visitor.fail(other)),
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
) -> Result<Response, WebError> {
    let message = if visitor.htmx {
        None
    } else {
        visitor.take_flash().await?
    };
    let shown = Shown {
        message,
        ..Shown::default()
    };
    respond(&state, &visitor, &sssid, StatusCode::OK, shown).await
}

pub async fn update(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path(sssid): Path<String>,
    Form(form): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let fields = SubjectFields {
        name: Some(form.name.clone()),
        bday: Some(form.bday.clone()),
        email: Some(Some(form.email.clone())),
        ..SubjectFields::default()
    };
    let result = state
        .services
        .subjects
        .update(&visitor.ctx, &sssid, fields)
        .await;
    match result {
        // Each problem next to its field, what was typed kept.
        Err(error @ Error::Invalid(_)) => {
            let errors = FieldMessages::of_or_at(&error, "name");
            let shown = Shown {
                typed: Some((&form, &errors)),
                ..Shown::default()
            };
            respond(&state, &visitor, &sssid, StatusCode::BAD_REQUEST, shown).await
        }
        result => {
            let result = result.map(|()| "Changes saved.".to_owned());
            outcome(&state, &visitor, &sssid, result).await
        }
    }
}
