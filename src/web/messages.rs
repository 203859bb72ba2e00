//! What people read on the console's forms. The services answer in the
//! API's words (`bday must be a date like 1980-12-31, got ""`), which
//! clients and the JSON error envelope keep; the pages say the same as a
//! sentence that tells the person what to do, next to the field it is
//! about.

use crate::error::Error;

/// The sentence for an error a service or a value type gave. Messages
/// that are not known here still read as a sentence (capital letter, full
/// stop); the tests below keep the known ones in step with their sources.
pub fn sentence(error: &Error) -> String {
    match error.field_errors() {
        [] => sentence_of(&error.to_string()),
        fields => fields
            .iter()
            .map(|f| sentence_of(&f.message))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn sentence_of(text: &str) -> String {
    known(text).unwrap_or_else(|| as_sentence(text))
}

/// What a form shows next to each of its fields: the sentences of a
/// service's field errors, by the field's API name, plus what the form
/// itself checks (such as a repeated password).
#[derive(Debug, Default, Clone)]
pub struct FieldMessages(Vec<(String, String)>);

impl FieldMessages {
    /// The field messages of `error`; `None` when the error is not about
    /// fields, so the caller shows it another way.
    pub fn of(error: &Error) -> Option<Self> {
        let fields = error.field_errors();
        (!fields.is_empty()).then(|| {
            Self(
                fields
                    .iter()
                    .map(|f| (f.field.clone(), sentence_of(&f.message)))
                    .collect(),
            )
        })
    }

    /// Every message of `error` next to a field: its field errors where
    /// they are, any other error next to `field`.
    pub fn of_or_at(error: &Error, field: &str) -> Self {
        Self::of(error).unwrap_or_else(|| {
            let mut messages = Self::default();
            messages.insert(field, sentence(error));
            messages
        })
    }

    /// The first message about `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn insert(&mut self, field: &str, sentence: impl Into<String>) {
        self.0.push((field.to_owned(), sentence.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Messages about fields the form does not show, so that none is lost:
    /// the form puts them above its fields.
    pub fn others(&self, shown: &[&str]) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| !shown.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

fn known(text: &str) -> Option<String> {
    let number_in = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    let sentence = match text {
        "sssid is required" => "Enter an SSSID.".to_owned(),
        "this SSSID is already taken" => "This SSSID is already taken. Choose another one.".into(),
        "name is required" => "Enter a name.".into(),
        "username is required" => "Enter an email address.".into(),
        "username must be an email address like name@example.org" => {
            "Enter an email address like name@example.org.".into()
        }
        "password must not be the same as the username" => {
            "Choose a password that is not the email address.".into()
        }
        "this password is too common; choose another one" => {
            "This password is too common. Choose another one.".into()
        }
        "no such user" => "This user no longer exists.".into(),
        "no such subject" => "This subject no longer exists.".into(),
        "this is the last admin; make another user admin first" => {
            "This is the last administrator. Make another user an administrator first.".into()
        }
        "the record was changed by someone else at the same time; try again" => {
            "Someone else changed this record at the same time. Please try again.".into()
        }
        "sssid must not start or end with blanks" => {
            "Remove the blanks at the start or end of the SSSID.".into()
        }
        _ if text.contains(" must not contain control characters") => format!(
            "Remove the control characters from the {}.",
            field_label(text.split(' ').next()?)
        ),
        _ if text.starts_with("sssid must be at most") => format!(
            "Use at most {} characters for the SSSID.",
            number_in("sssid must be at most ")?
        ),
        _ if text.starts_with("name must be at most") => format!(
            "Use at most {} characters for the name.",
            number_in("name must be at most ")?
        ),
        _ if text.starts_with("bday must be a date like") => {
            "Enter a birth date like 1980-12-31.".into()
        }
        _ if text.starts_with("bday must be between") => format!(
            "Enter a birth date between {}.",
            text.strip_prefix("bday must be between ")?
        ),
        _ if text.starts_with("the date must not be after today (") => format!(
            "Enter a date that is not in the future: today is {}.",
            text.strip_prefix("the date must not be after today (")?
                .strip_suffix(')')?
        ),
        _ if text.starts_with("the date must not be before ") => format!(
            "Enter a date from {} on.",
            text.strip_prefix("the date must not be before ")?
        ),
        _ if text.starts_with("email must be an email address") => {
            "Enter an email address like name@example.org, or leave the field empty.".into()
        }
        _ if text.starts_with("username must be at most") => format!(
            "Use at most {} characters for the email address.",
            number_in("username must be at most ")?
        ),
        _ if text.starts_with("a user named") && text.ends_with("already exists") => {
            "A user with this email address already exists.".into()
        }
        _ if text.starts_with("password must be at least") => format!(
            "Choose a password of at least {} characters.",
            number_in("password must be at least ")?
        ),
        _ if text.starts_with("password must be at most") => format!(
            "Choose a shorter password: at most {} bytes.",
            number_in("password must be at most ")?
        ),
        _ => return None,
    };
    Some(sentence)
}

/// How a field named in a service message is called on the forms.
fn field_label(field: &str) -> &str {
    match field {
        "sssid" => "SSSID",
        "bday" => "birth date",
        "username" => "email address",
        other => other,
    }
}

/// Any other message, with a capital letter and a full stop.
fn as_sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return "Something went wrong. Please try again.".into(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BirthDate, PasswordPolicy, Sssid, SubjectName, Username, parse_subject_email,
    };

    fn assert_known(error: Error, expected: &str) {
        let text = error.to_string();
        assert_eq!(
            known(&text).as_deref(),
            Some(expected),
            "the message {text:?} is not turned into its sentence"
        );
    }

    #[test]
    fn subject_field_errors_read_as_sentences() {
        assert_known(Sssid::parse("").unwrap_err(), "Enter an SSSID.");
        assert_known(
            Sssid::parse(&"x".repeat(65)).unwrap_err(),
            "Use at most 64 characters for the SSSID.",
        );
        assert_known(
            Sssid::parse(" S1").unwrap_err(),
            "Remove the blanks at the start or end of the SSSID.",
        );
        assert_known(
            Sssid::parse("S\n1").unwrap_err(),
            "Remove the control characters from the SSSID.",
        );
        assert_known(SubjectName::parse(" ").unwrap_err(), "Enter a name.");
        assert_known(
            SubjectName::parse(&"n".repeat(300)).unwrap_err(),
            "Use at most 256 characters for the name.",
        );
        assert_known(
            SubjectName::parse("a\u{7}b").unwrap_err(),
            "Remove the control characters from the name.",
        );
        assert_known(
            BirthDate::parse("").unwrap_err(),
            "Enter a birth date like 1980-12-31.",
        );
        assert_known(
            BirthDate::parse("1899-12-31").unwrap_err(),
            "Enter a birth date between 1900-01-01 and 2100-12-31.",
        );
        assert_known(
            parse_subject_email("not an address").unwrap_err(),
            "Enter an email address like name@example.org, or leave the field empty.",
        );
    }

    #[test]
    fn step_day_problems_read_as_sentences() {
        use crate::service::subjects::StepDayProblem;
        let today = chrono::NaiveDate::from_ymd_opt(2030, 5, 17).unwrap();
        let invalid = |problem: StepDayProblem| Error::invalid("date", problem.to_string());
        assert_known(
            invalid(StepDayProblem::InTheFuture { today }),
            "Enter a date that is not in the future: today is 2030-05-17.",
        );
        assert_known(
            invalid(StepDayProblem::TooEarly),
            "Enter a date from 1900-01-01 on.",
        );
    }

    #[test]
    fn account_field_errors_read_as_sentences() {
        assert_known(Username::parse("").unwrap_err(), "Enter an email address.");
        assert_known(
            Username::parse("nobody").unwrap_err(),
            "Enter an email address like name@example.org.",
        );
        assert_known(
            Username::parse(&format!("{}@example.org", "a".repeat(260))).unwrap_err(),
            "Use at most 254 characters for the email address.",
        );
        let policy = PasswordPolicy { min_chars: 8 };
        let user = Username::parse("ada@example.org").unwrap();
        let refused = |raw: &str| policy.check(raw.to_owned(), &user).unwrap_err();
        assert_known(
            refused("short"),
            "Choose a password of at least 8 characters.",
        );
        assert_known(
            refused("ADA@example.org"),
            "Choose a password that is not the email address.",
        );
        assert_known(
            refused("password123"),
            "This password is too common. Choose another one.",
        );
        assert_known(
            refused(&"x".repeat(2000)),
            "Choose a shorter password: at most 1024 bytes.",
        );
    }

    #[test]
    fn field_messages_keep_each_message_with_its_field() {
        let mut validation = crate::error::Validation::new();
        validation.check(SubjectName::parse(""));
        validation.check(BirthDate::parse("31.12.1980"));
        let error = validation.finish().unwrap_err();
        let messages = FieldMessages::of(&error).unwrap();
        assert_eq!(messages.get("name"), Some("Enter a name."));
        assert_eq!(
            messages.get("bday"),
            Some("Enter a birth date like 1980-12-31.")
        );
        assert_eq!(messages.get("email"), None);
        assert_eq!(
            messages.others(&["name"]),
            ["Enter a birth date like 1980-12-31."]
        );
        assert!(FieldMessages::of(&Error::Conflict("taken".into())).is_none());
        let at = FieldMessages::of_or_at(&Error::Conflict("taken".into()), "sssid");
        assert_eq!(at.get("sssid"), Some("Taken."));
    }

    #[test]
    fn other_messages_still_read_as_sentences() {
        assert_eq!(
            sentence(&Error::BadRequest("nothing to change".into())),
            "Nothing to change."
        );
        assert_eq!(
            sentence(&Error::Conflict("Already done.".into())),
            "Already done."
        );
        assert_eq!(
            sentence(&Error::Conflict(
                "a user named a@example.org already exists".into()
            )),
            "A user with this email address already exists."
        );
    }
}
