//! The subject form fields (name, birth date, email) shared by the
//! new-subject page and the edit form of a subject.

use maud::{Markup, html};
use serde::Deserialize;

use crate::domain::{BirthDate, Sssid, SubjectName, parse_subject_email};
use crate::error::Error;
use crate::web::layout::Field;
use crate::web::messages::sentence;

// ------------------------------------------------------------ new subject

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

#[derive(Debug, Default)]
pub(super) struct FormErrors {
    pub(super) sssid: Option<String>,
    pub(super) name: Option<String>,
    pub(super) bday: Option<String>,
    pub(super) email: Option<String>,
}

impl FormErrors {
    /// Checked here too so each message lands next to its field; the
    /// service checks again and stays the authority.
    pub(super) fn check(form: &SubjectForm, with_sssid: bool) -> Self {
        let problem = |r: Result<(), Error>| r.err().map(|e| sentence(&e));
        Self {
            sssid: with_sssid
                .then(|| problem(Sssid::parse(&form.sssid).map(drop)))
                .flatten(),
            name: problem(SubjectName::parse(&form.name).map(drop)),
            bday: problem(BirthDate::parse(&form.bday).map(drop)),
            email: problem(parse_subject_email(&form.email).map(drop)),
        }
    }

    pub(super) fn any(&self) -> bool {
        self.sssid.is_some() || self.name.is_some() || self.bday.is_some() || self.email.is_some()
    }
}

pub(super) fn person_fields(form: &SubjectForm, errors: &FormErrors, prefix: &str) -> Markup {
    html! {
        (Field::new("name", "Name", "text")
            .value(&form.name)
            .error(errors.name.as_deref())
            .render(prefix))
        (Field::new("bday", "Birth date", "date")
            .value(&form.bday)
            .error(errors.bday.as_deref())
            .render(prefix))
        (Field::new("email", "Email (optional)", "email")
            .value(&form.email)
            .error(errors.email.as_deref())
            .optional()
            .render(prefix))
    }
}
