//! `/subjects/new`: the form that registers a subject.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::form::{SubjectForm, person_fields};
use super::subject_url;
use crate::app::AppState;
use crate::error::Error;
use crate::service::subjects::SubjectFields;
use crate::web::error::WebError;
use crate::web::layout::{Field, Flash, Section, csrf_field, page};
use crate::web::messages::FieldMessages;
use crate::web::session::{Visitor, Writer};

pub(super) fn new_subject_page(
    visitor: &Visitor,
    form: &SubjectForm,
    errors: &FieldMessages,
) -> Markup {
    page(
        "New subject",
        Some(&visitor.chrome(Section::Subjects)),
        true,
        html! {
            p.breadcrumb { a href="/subjects" { "Subjects" } " / New" }
            h1 { "New subject" }
            form.card #new-subject method="post" action="/subjects" novalidate {
                (csrf_field(&visitor.csrf))
                (Field::new("sssid", "SSSID", "text")
                    .value(&form.sssid)
                    .error(errors.get("sssid"))
                    .hint("The study subject id: up to 64 characters, case-sensitive, cannot be changed later.")
                    .autofocus(true)
                    .render("new-subject"))
                (person_fields(form, errors, "new-subject"))
                div.actions {
                    button type="submit" { "Create subject" }
                    a href="/subjects" { "Cancel" }
                }
            }
        },
    )
}

pub async fn new_form(Writer(visitor): Writer) -> Result<Response, WebError> {
    Ok(
        new_subject_page(&visitor, &SubjectForm::default(), &FieldMessages::default())
            .into_response(),
    )
}

pub async fn create(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Form(form): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let fields = SubjectFields {
        sssid: Some(form.sssid.clone()),
        name: Some(form.name.clone()),
        bday: Some(form.bday.clone()),
        email: Some(Some(form.email.clone())),
        ..SubjectFields::default()
    };
    let (status, errors) = match state.services.subjects.create(&visitor.ctx, fields).await {
        Ok(subject) => {
            visitor
                .set_flash(Flash::ok(format!("Created subject {}.", subject.sssid)))
                .await?;
            return Ok(Redirect::to(&subject_url(&subject.sssid)).into_response());
        }
        // A taken SSSID is about the SSSID field.
        Err(error @ (Error::Conflict(_) | Error::Invalid(_))) => {
            (error.status(), FieldMessages::of_or_at(&error, "sssid"))
        }
        Err(other) => return Err(visitor.fail(other)),
    };
    Ok((status, new_subject_page(&visitor, &form, &errors)).into_response())
}
