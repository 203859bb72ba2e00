//! The subject form fields (name, birth date, email) shared by the
//! new-subject page and the edit form of a subject.

use maud::{Markup, html};
use serde::Deserialize;

use crate::web::layout::{Field, form_problems};
use crate::web::messages::FieldMessages;

/// What was typed into a subject form, and what was wrong with it.
#[derive(Debug, Default, Deserialize)]
pub struct SubjectForm {
    #[serde(default)]
    pub(super) sssid: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) bday: String,
    #[serde(default)]
    pub(super) email: String,
}

/// The name, birth date and email fields, each with the service's message
/// about it; a message about a field the form lacks shows above them.
pub(super) fn person_fields(form: &SubjectForm, errors: &FieldMessages, prefix: &str) -> Markup {
    html! {
        (form_problems(&errors.others(&["sssid", "name", "bday", "email"])))
        (Field::new("name", "Name", "text")
            .value(&form.name)
            .error(errors.get("name"))
            .render(prefix))
        (Field::new("bday", "Birth date", "date")
            .value(&form.bday)
            .error(errors.get("bday"))
            .render(prefix))
        (Field::new("email", "Email (optional)", "email")
            .value(&form.email)
            .error(errors.get("email"))
            .optional()
            .render(prefix))
    }
}
