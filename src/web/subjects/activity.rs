//! The activity card of a subject: audit entries as sentences.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::export::activity_download;
use super::{day, moment};
use crate::store::AuditRecord;

/// One change named in an audit text (SPEC sections 6 and 13).
pub(super) enum Change<'a> {
    /// `consented: 2026-11-28T12:00:00Z` and the other journey dates.
    Dated(&'a str, DateTime<Utc>),
    /// `name: "Ada Lovelace" -> "Ada King"` and the other fields,
    /// JSON-quoted (older entries name the new value only): the new value,
    /// `None` once the subject's personal data was erased.
    Field(&'a str, Option<String>),
}

/// What an erased personal value reads as in an audit text.
const ERASED: &str = "[erased]";

/// A JSON-quoted value or `[erased]` at the start of `text`: the value
/// (`None` if erased) and the rest after it.
fn field_value(text: &str) -> Option<(Option<String>, &str)> {
    if let Some(rest) = text.strip_prefix(ERASED) {
        return Some((None, rest));
    }
    if !text.starts_with('"') {
        return None;
    }
    let mut strings = serde_json::Deserializer::from_str(text).into_iter::<String>();
    let value = strings.next()?.ok()?;
    Some((Some(value), &text[strings.byte_offset()..]))
}

/// The changes of an audit text such as
/// `name: "Ada; King"; consented: 2026-11-28T12:00:00Z`, or `None` if it is
/// not one. Values are read as JSON strings, so a `; ` inside one does not
/// split it.
pub(super) fn changes(action: &str) -> Option<Vec<Change<'_>>> {
    let mut found = Vec::new();
    let mut rest = action;
    loop {
        let (key, value) = rest.split_once(": ")?;
        if let Some((first, after)) = field_value(value) {
            let (new, after) = match after.strip_prefix(" -> ") {
                Some(second) => field_value(second)?,
                None => (first, after),
            };
            rest = after;
            found.push(Change::Field(key, new));
        } else {
            let end = value.find("; ").unwrap_or(value.len());
            let at = DateTime::parse_from_rfc3339(&value[..end]).ok()?;
            found.push(Change::Dated(key, at.with_timezone(&Utc)));
            rest = &value[end..];
        }
        if rest.is_empty() {
            return Some(found);
        }
        rest = rest.strip_prefix("; ")?;
    }
}

pub(super) fn change_sentence(change: &Change<'_>) -> Option<Markup> {
    Some(match change {
        Change::Dated(word, at) => {
            let what = match *word {
                "invited" => "Invitation recorded",
                "consented" => "Consent recorded",
                "enrolled" => "Enrolment recorded",
                "withdrawn" => "Withdrawal recorded",
                _ => return None,
            };
            html! { (what) ", dated " (day(*at)) }
        }
        Change::Field(field, None) => match *field {
            "name" => html! { "Name changed (erased)" },
            "bday" => html! { "Birth date changed (erased)" },
            "email" => html! { "Email address changed (erased)" },
            _ => return None,
        },
        Change::Field(field, Some(value)) => match (*field, value.is_empty()) {
            ("name", _) => html! { "Name changed to “" (value) "”" },
            ("bday", _) => html! { "Birth date changed to " (value) },
            ("email", true) => html! { "Email address removed" },
            ("email", false) => html! { "Email address changed to “" (value) "”" },
            _ => return None,
        },
    })
}

/// What an audit entry says happened, as people say it. The API keeps the
/// action texts of SPEC section 6 for clients; unknown texts are shown as
/// they are.
pub(super) fn activity_sentence(action: &str) -> Markup {
    if let Some(link) = action.strip_prefix("[Link] ") {
        if link == "create" {
            return html! { "Link created" };
        }
        if link == "create JWT" {
            return html! { "QR code shown" };
        }
        if let Some(to) = link.strip_prefix("link to ") {
            return html! { "App linked (" (to) ")" };
        }
        if let Some([Change::Dated("withdrawn", at)]) = changes(link).as_deref() {
            return html! { "Link withdrawn, dated " (day(*at)) };
        }
        return html! { (action) };
    }
    if let Some(sentence) = correction_sentence(action) {
        return sentence;
    }
    if let Some(reason) = action
        .strip_prefix("erased personal data (")
        .and_then(|r| r.strip_suffix(')'))
    {
        return html! { "Personal data erased (" (reason) ")" };
    }
    match action {
        "create" => return html! { "Subject created" },
        "update" => return html! { "Subject updated" },
        _ => {}
    }
    let sentences: Option<Vec<Markup>> =
        changes(action).and_then(|found| found.iter().map(change_sentence).collect());
    match sentences {
        Some(sentences) => html! {
            @for (i, sentence) in sentences.iter().enumerate() {
                @if i > 0 { ". " }
                (sentence)
            }
        },
        None => html! { (action) },
    }
}

/// `corrected date_consented: <old> -> <new> (<reason>)` as a sentence.
fn correction_sentence(action: &str) -> Option<Markup> {
    let rest = action.strip_prefix("corrected ")?;
    let (field, rest) = rest.split_once(": ")?;
    let (old, rest) = rest.split_once(" -> ")?;
    let (new, reason) = rest.split_once(" (")?;
    let reason = reason.strip_suffix(')')?;
    let what = match field {
        "date_invited" => "Invitation date",
        "date_consented" => "Consent date",
        "date_enrolled" => "Enrolment date",
        "date_withdrawn" => "Withdrawal date",
        _ => return None,
    };
    let date = |text: &str| -> Option<Markup> {
        if text == "none" {
            return Some(html! { "none" });
        }
        let at = DateTime::parse_from_rfc3339(text).ok()?;
        Some(day(at.with_timezone(&Utc)))
    };
    let (old, new) = (date(old)?, date(new)?);
    Some(html! { (what) " corrected from " (old) " to " (new) " (" (reason) ")" })
}

pub(super) fn activity_card(sssid: &str, activity: &[AuditRecord]) -> Markup {
    html! {
        section.card aria-labelledby="activity-heading" {
            div.toolbar {
                h2 #activity-heading { "Activity" }
                (activity_download(sssid))
            }
            div.table-wrap {
                table #activity {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What happened" } } }
                    tbody {
                        // Newest first: what just happened is on top.
                        @for entry in activity.iter().rev() {
                            tr {
                                td data-label="When" { (moment(entry.datetime)) }
                                td data-label="What happened" {
                                    (activity_sentence(&entry.action))
                                    // No actor: the mobile app or the system did it.
                                    @if let Some(actor) = &entry.actor { " — by " (actor) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
