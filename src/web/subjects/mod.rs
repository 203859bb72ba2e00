//! The study screens: `/subjects` (search, sort, pages), `/subjects/new`
//! and `/subjects/<sssid>` (details, edit, journey steps, links, activity).
//! Every change goes through the subject and link services, so the rules
//! and audit entries are those of the JSON API. Forms work as plain posts
//! (redirect with a flash message) and as htmx requests (the
//! `#subject-panel` fragment is swapped in place).

mod activity;
mod detail;
mod export;
mod form;
mod import;
mod list;
mod new;
mod records;
mod revoke;
mod steps;

pub use detail::{show, update};
pub use export::{export_activity, export_list, export_study_audits};
pub use import::{IMPORT_PATH, import_form, import_upload};
pub use list::{ListView, list, recent, subjects_table};
pub use new::{create, new_form};
pub use records::{confirm_erasure, correct, erase};
pub use revoke::{confirm_revoke, revoke_link};
pub use steps::{confirm_step, record_step};

use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::Standing;
use crate::service::subjects::SubjectView;
use crate::web::layout::csrf_field;
use crate::web::session::Visitor;

const PER_PAGE: u64 = 25;

/// The element htmx marks while a list request is under way; the
/// stylesheet shows it only when the answer is slow.
const LIST_LOADING: &str = "#subjects-loading";

/// Subjects on the start page.
pub const RECENT_ON_HOME: u64 = 10;

/// Everything but unreserved characters is escaped in a path segment, so
/// any sssid (slashes, `?`, `#`, spaces) round-trips through the URL.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/subjects/<sssid>`. The sssids `new` and `import` are written `%6Eew`
/// and `%69mport`: the router sees the raw path, so they reach the subject
/// and not the new-subject or import form, and the path extractor decodes
/// them back.
pub fn subject_url(sssid: &str) -> String {
    match sssid {
        "new" => return "/subjects/%6Eew".to_owned(),
        "import" => return "/subjects/%69mport".to_owned(),
        _ => {}
    }
    format!("/subjects/{}", utf8_percent_encode(sssid, PATH_SEGMENT))
}

/// The badge of where a subject stands (the rule is the domain's
/// [`Journey::standing`](crate::domain::Journey::standing)).
pub fn standing_badge(subject: &SubjectView) -> Markup {
    let (label, class) = match subject.journey().standing() {
        Standing::Pending => ("Pending", "status status-pending"),
        Standing::Invited => ("Invited", "status status-invited"),
        Standing::Consented => ("Consented", "status status-consented"),
        Standing::Enrolled => ("Enrolled", "status status-enrolled"),
        Standing::Withdrawn => ("Withdrawn", "status status-withdrawn"),
    };
    html! { span class=(class) { (label) } }
}

/// The calendar day of `t`. The text is the UTC day; app.js shows the
/// day in the browser's time zone instead (`data-show="day"`).
pub fn day(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) data-show="day" { (t.format("%Y-%m-%d")) } }
}

/// Date and time of `t`, in UTC with the zone named; app.js shows them in
/// the browser's time zone instead, named too.
pub fn moment(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// `YYYY-MM-DD`, or nothing once the subject's personal data was erased.
fn birth_date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// What stands for the name and birth date of a subject whose personal
/// data was erased.
const ERASED: &str = "Personal data erased";

/// The subject's name, or that it was erased.
pub fn display_name(subject: &SubjectView) -> &str {
    if subject.bday.is_none() {
        ERASED
    } else {
        &subject.name
    }
}

/// `born 1980-12-31`, or that the personal data was erased.
fn born(subject: &SubjectView) -> String {
    match subject.bday {
        Some(d) => format!("born {}", d.format("%Y-%m-%d")),
        None => ERASED.to_lowercase(),
    }
}

fn record_url(sssid: &str, step: &str) -> String {
    format!("{}/record?step={step}", subject_url(sssid))
}

/// The button that opens the QR code overlay (htmx) or the printable
/// invitation (plain form).
pub fn qr_button(visitor: &Visitor, subject: &SubjectView, small: bool) -> Markup {
    let action = format!("{}/invitation", subject_url(&subject.sssid));
    html! {
        form.inline-form method="post" action=(action)
            hx-post=(action) hx-target="#qr-overlay" hx-swap="innerHTML" {
            (csrf_field(&visitor.csrf))
            button.secondary.small[small] type="submit"
                aria-label=(format!("Show the QR code for {}", subject.sssid)) { "QR code" }
        }
    }
}
