//! The study screens: `/subjects` (search, sort, pages), `/subjects/new`
//! and `/subjects/<sssid>` (details, edit, journey steps, links, activity).
//! Every change goes through the subject and link services, so the rules
//! and audit entries are those of the JSON API. Forms work as plain posts
//! (redirect with a flash message) and as htmx requests (the
//! `#subject-panel` fragment is swapped in place).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{BirthDate, Sssid, Standing, SubjectName, parse_subject_email};
use crate::error::Error;
use crate::service::links::LinkView;
use crate::service::subjects::{
    JourneyDate, StepDay, StepDayProblem, SubjectFields, SubjectListParams, SubjectView,
};
use crate::store::{AuditRecord, Page};
use crate::web::error::WebError;
use crate::web::layout::{Field, Flash, Section, csrf_field, flash, page};
use crate::web::messages::sentence;
use crate::web::session::{SignedIn, Visitor};

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

/// `/subjects/<sssid>`. The sssid `new` is written `%6Eew`: the router sees
/// the raw path, so it reaches the subject and not the new-subject form,
/// and the path extractor decodes it back to `new`.
pub fn subject_url(sssid: &str) -> String {
    if sssid == "new" {
        return "/subjects/%6Eew".to_owned();
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

fn birth_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

// ------------------------------------------------------------ the list

/// Columns the list can be sorted by, with their query word.
const SORTABLE: [(&str, &str); 7] = [
    ("sssid", "SSSID"),
    ("name", "Name"),
    ("bday", "Birth date"),
    ("date_invited", "Invited"),
    ("date_consented", "Consented"),
    ("date_enrolled", "Enrolled"),
    ("changed", "Last update"),
];

const STATUSES: [(&str, &str); 6] = [
    ("", "Any status"),
    ("not-invited", "Not yet invited"),
    ("invited", "Invited"),
    ("consented", "Consented"),
    ("enrolled", "Enrolled"),
    ("withdrawn", "Withdrawn"),
];

/// The list as the visitor sees it. Unknown values fall back to the
/// defaults (most recently changed first), so an edited URL shows a list
/// rather than an error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListView {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    page: String,
}

impl ListView {
    fn page(&self) -> u64 {
        self.page.trim().parse().unwrap_or(1).max(1)
    }

    fn sort(&self) -> &'static str {
        SORTABLE
            .iter()
            .map(|(col, _)| *col)
            .find(|col| *col == self.sort)
            .unwrap_or("changed")
    }

    fn descending(&self) -> bool {
        match self.dir.as_str() {
            "asc" => false,
            "desc" => true,
            // Dates read best newest first, names and ids A to Z.
            _ => matches!(
                self.sort(),
                "changed" | "date_invited" | "date_consented" | "date_enrolled"
            ),
        }
    }

    fn status(&self) -> &'static str {
        STATUSES
            .iter()
            .map(|(s, _)| *s)
            .find(|s| *s == self.status)
            .unwrap_or("")
    }

    fn url_with(&self, sort: &str, descending: bool, page: u64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.trim().is_empty() {
            pairs.push(("q", self.q.trim().to_owned()));
        }
        if !self.status().is_empty() {
            pairs.push(("status", self.status().to_owned()));
        }
        pairs.push(("sort", sort.to_owned()));
        pairs.push(("dir", if descending { "desc" } else { "asc" }.to_owned()));
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        format!(
            "/subjects?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }

    fn url(&self, page: u64) -> String {
        self.url_with(self.sort(), self.descending(), page)
    }

    /// What the list region is called: the order and page, so a screen
    /// reader says what changed when focus lands on it after a sort or a
    /// page change.
    fn region_label(&self, pages: u64) -> String {
        let column = SORTABLE
            .iter()
            .find(|(col, _)| *col == self.sort())
            .map_or("Last update", |(_, label)| *label);
        let direction = if self.descending() {
            "descending"
        } else {
            "ascending"
        };
        format!(
            "Subjects by {column}, {direction}, page {} of {pages}",
            self.page()
        )
    }

    fn params(&self) -> SubjectListParams {
        SubjectListParams {
            offset: Some(((self.page() - 1) * PER_PAGE).to_string()),
            perpage: Some(PER_PAGE.to_string()),
            ordercol: Some(self.sort().to_owned()),
            orderdir: Some(if self.descending() { "desc" } else { "asc" }.to_owned()),
            search: Some(self.q.trim().to_owned()),
            status: Some(self.status().to_owned()),
        }
    }
}

/// The most recently changed subjects, for the start page.
pub async fn recent(state: &AppState, visitor: &Visitor) -> Result<Page<SubjectView>, Error> {
    let params = SubjectListParams {
        perpage: Some(RECENT_ON_HOME.to_string()),
        ordercol: Some("changed".into()),
        orderdir: Some("desc".into()),
        ..SubjectListParams::default()
    };
    state.services.subjects.list(&visitor.ctx, params).await
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

/// One row; `invited` adds the Invited column (the full list has it, the
/// start page's short list keeps to what fits beside it).
fn subject_row(visitor: &Visitor, subject: &SubjectView, invited: bool) -> Markup {
    let url = subject_url(&subject.sssid);
    html! {
        tr {
            td data-label="Status" { (standing_badge(subject)) }
            td.sssid data-label="SSSID" { a href=(url) { (subject.sssid) } }
            td data-label="Name" {
                (subject.name)
                br;
                span.muted.small-text.nowrap { "born " (birth_date(subject.bday)) }
            }
            @if invited {
                td.date data-label="Invited" {
                    @if let Some(at) = subject.date_invited { (day(at)) } @else { span.muted { "—" } }
                }
            }
            td.date data-label="Consented" {
                @if let Some(at) = subject.date_consented {
                    (day(at))
                } @else if subject.date_withdrawn.is_none() {
                    a.button.small.secondary href=(record_url(&subject.sssid, "consented"))
                        aria-label=(format!("Record consent of {}", subject.sssid)) { "Record consent…" }
                } @else {
                    span.muted { "—" }
                }
            }
            td.date data-label="Enrolled" {
                @if let Some(at) = subject.date_enrolled { (day(at)) } @else { span.muted { "—" } }
            }
            td.date data-label="Last update" { (moment(subject.changed)) }
            td.actions-cell {
                div.actions {
                    @if subject.journey().can_invite() { (qr_button(visitor, subject, true)) }
                    a.button.small.secondary href=(url)
                        aria-label=(format!("Details of {}", subject.sssid)) { "Details" }
                }
            }
        }
    }
}

/// A subjects table; with `view`, the full list: the column headers sort
/// it, and it has an Invited column.
pub fn subjects_table(
    visitor: &Visitor,
    subjects: &[SubjectView],
    view: Option<&ListView>,
) -> Markup {
    let header = |col: &str, label: &str| match view {
        None => html! { th scope="col" { (label) } },
        Some(view) => {
            let current = view.sort() == col;
            let descending = if current {
                !view.descending()
            } else {
                ListView {
                    sort: col.to_owned(),
                    dir: String::new(),
                    ..view.clone()
                }
                .descending()
            };
            let url = view.url_with(col, descending, 1);
            let sorted = current.then(|| {
                if view.descending() {
                    "descending"
                } else {
                    "ascending"
                }
            });
            html! {
                th scope="col" aria-sort=[sorted] {
                    a.sort href=(url) hx-get=(url) hx-target="#subjects-list" hx-swap="outerHTML"
                        hx-push-url="true" hx-indicator=(LIST_LOADING) {
                        (label)
                        @if let Some(sorted) = sorted {
                            span aria-hidden="true" { @if sorted == "descending" { " ↓" } @else { " ↑" } }
                        }
                    }
                }
            }
        }
    };
    html! {
        div.table-wrap {
            table.subjects {
                caption.visually-hidden { "Study subjects" }
                thead {
                    tr {
                        th scope="col" { "Status" }
                        (header("sssid", "SSSID"))
                        (header("name", "Name"))
                        @if view.is_some() { (header("date_invited", "Invited")) }
                        (header("date_consented", "Consented"))
                        (header("date_enrolled", "Enrolled"))
                        (header("changed", "Last update"))
                        th scope="col" { span.visually-hidden { "Actions" } }
                    }
                }
                tbody {
                    @for subject in subjects { (subject_row(visitor, subject, view.is_some())) }
                }
            }
        }
    }
}

fn list_fragment(visitor: &Visitor, view: &ListView, subjects: &Page<SubjectView>) -> Markup {
    let page_no = view.page();
    let pages = subjects.total.div_ceil(PER_PAGE).max(1);
    let filtered = !view.q.trim().is_empty() || !view.status().is_empty();
    // A labelled region that can take focus: after a sort or page change
    // the link that was clicked is gone, and focus goes here (static/app.js)
    // instead of falling back to the page.
    html! {
        div #subjects-list role="region" aria-label=(view.region_label(pages)) tabindex="-1" {
            // The order is part of the search form, but lives here so that
            // it changes with the list when a column header is clicked.
            input type="hidden" form="subject-filter" name="sort" value=(view.sort());
            input type="hidden" form="subject-filter" name="dir" value=(if view.descending() { "desc" } else { "asc" });
            @if subjects.items.is_empty() {
                p.empty {
                    @if filtered { "No subject matches." } @else { "No subjects yet." }
                }
            } @else {
                (subjects_table(visitor, &subjects.items, Some(view)))
            }
            nav.pager aria-label="Pages" {
                span.muted { (subjects.total) " subject" @if subjects.total != 1 { "s" } " · page " (page_no) " of " (pages) }
                span.actions {
                    @for (label, target, rel) in [("First", 1, "first"), ("Previous", page_no.saturating_sub(1), "prev"), ("Next", page_no + 1, "next"), ("Last", pages, "last")] {
                        @if target >= 1 && target <= pages && target != page_no {
                            a.button.small.secondary href=(view.url(target)) hx-get=(view.url(target))
                                hx-target="#subjects-list" hx-swap="outerHTML" hx-push-url="true"
                                hx-indicator=(LIST_LOADING) rel=(rel) { (label) }
                        }
                    }
                }
            }
        }
    }
}

fn subjects_page(visitor: &Visitor, view: &ListView, subjects: &Page<SubjectView>) -> Markup {
    page(
        "Subjects",
        Some(&visitor.chrome(Section::Subjects)),
        false,
        html! {
            div.title-row {
                h1 { "Subjects" }
                a.button href="/subjects/new" { "New subject" }
            }
            section.card aria-labelledby="list-heading" {
                div.toolbar {
                    h2 #list-heading { "All subjects" }
                    span #subjects-loading .htmx-indicator role="status" { "Loading…" }
                    // Typing replaces the URL (one history entry per list,
                    // not per keystroke) and a newer request replaces one in
                    // flight; the status filter is a new list, so Back
                    // returns to the previous one. Enter and the button
                    // submit the form, which htmx sends like typing; the
                    // box has no `search` trigger, since Enter fires both
                    // `search` and `submit` and the second request would
                    // abort the first (clearing the box fires `input`).
                    form #subject-filter .subject-search method="get" action="/subjects" role="search"
                        hx-get="/subjects" hx-target="#subjects-list" hx-swap="outerHTML"
                        hx-replace-url="true" hx-sync="this:replace" hx-indicator=(LIST_LOADING) {
                        label.visually-hidden for="subject-search" { "Search subjects" }
                        input #subject-search type="search" name="q" value=(view.q)
                            placeholder="SSSID, name or birth date"
                            hx-get="/subjects" hx-include="closest form" hx-trigger="input changed delay:300ms"
                            hx-target="#subjects-list" hx-swap="outerHTML" hx-replace-url="true"
                            hx-sync="closest form:replace" hx-indicator=(LIST_LOADING);
                        label.visually-hidden for="subject-status" { "Status" }
                        select #subject-status name="status"
                            hx-get="/subjects" hx-include="closest form" hx-trigger="change"
                            hx-target="#subjects-list" hx-swap="outerHTML" hx-push-url="true"
                            hx-sync="closest form:replace" hx-indicator=(LIST_LOADING) {
                            @for (value, label) in STATUSES {
                                option value=(value) selected[view.status() == value] { (label) }
                            }
                        }
                        button.secondary type="submit" { "Search" }
                    }
                }
                (list_fragment(visitor, view, subjects))
            }
            div #qr-overlay {}
        },
    )
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Query(view): Query<ListView>,
) -> Result<Response, WebError> {
    let subjects = state
        .services
        .subjects
        .list(&visitor.ctx, view.params())
        .await
        .map_err(|e| visitor.fail(e))?;
    if visitor.htmx && visitor.htmx_target.as_deref() == Some("subjects-list") {
        return Ok(list_fragment(&visitor, &view, &subjects).into_response());
    }
    Ok(subjects_page(&visitor, &view, &subjects).into_response())
}

// ------------------------------------------------------------ new subject

/// What was typed into a subject form, and what was wrong with it.
#[derive(Debug, Default, Deserialize)]
pub struct SubjectForm {
    #[serde(default)]
    sssid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    bday: String,
    #[serde(default)]
    email: String,
}

#[derive(Debug, Default)]
struct FormErrors {
    sssid: Option<String>,
    name: Option<String>,
    bday: Option<String>,
    email: Option<String>,
}

impl FormErrors {
    /// Checked here too so each message lands next to its field; the
    /// service checks again and stays the authority.
    fn check(form: &SubjectForm, with_sssid: bool) -> Self {
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

    fn any(&self) -> bool {
        self.sssid.is_some() || self.name.is_some() || self.bday.is_some() || self.email.is_some()
    }
}

fn person_fields(form: &SubjectForm, errors: &FormErrors, prefix: &str) -> Markup {
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

fn new_subject_page(visitor: &Visitor, form: &SubjectForm, errors: &FormErrors) -> Markup {
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
                    .error(errors.sssid.as_deref())
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

pub async fn new_form(SignedIn(visitor): SignedIn) -> Result<Response, WebError> {
    Ok(new_subject_page(&visitor, &SubjectForm::default(), &FormErrors::default()).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Form(form): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let mut errors = FormErrors::check(&form, true);
    let mut status = StatusCode::BAD_REQUEST;
    if !errors.any() {
        let fields = SubjectFields {
            sssid: Some(form.sssid.clone()),
            name: Some(form.name.clone()),
            bday: Some(form.bday.clone()),
            email: Some(Some(form.email.clone())),
            ..SubjectFields::default()
        };
        match state.services.subjects.create(&visitor.ctx, fields).await {
            Ok(subject) => {
                visitor
                    .set_flash(Flash::ok(format!("Created subject {}.", subject.sssid)))
                    .await?;
                return Ok(Redirect::to(&subject_url(&subject.sssid)).into_response());
            }
            Err(error @ Error::Conflict(_)) => {
                status = StatusCode::CONFLICT;
                errors.sssid = Some(sentence(&error));
            }
            Err(error @ Error::BadRequest(_)) => errors.name = Some(sentence(&error)),
            Err(other) => return Err(visitor.fail(other)),
        }
    }
    Ok((status, new_subject_page(&visitor, &form, &errors)).into_response())
}

// ------------------------------------------------------------ one subject

/// What the subject page shows besides the subject.
struct Details {
    subject: SubjectView,
    links: Vec<LinkView>,
    activity: Vec<AuditRecord>,
}

async fn details(state: &AppState, visitor: &Visitor, sssid: &str) -> Result<Details, Error> {
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

/// The journey steps staff record by hand; enrolment comes from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Invited,
    Consented,
    Withdrawn,
}

impl Step {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "invited" => Some(Step::Invited),
            "consented" => Some(Step::Consented),
            "withdrawn" => Some(Step::Withdrawn),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Step::Invited => "invited",
            Step::Consented => "consented",
            Step::Withdrawn => "withdrawn",
        }
    }

    fn date(self) -> JourneyDate {
        match self {
            Step::Invited => JourneyDate::Invited,
            Step::Consented => JourneyDate::Consented,
            Step::Withdrawn => JourneyDate::Withdrawn,
        }
    }

    fn button(self) -> &'static str {
        match self {
            Step::Invited => "Record invitation",
            Step::Consented => "Record consent",
            Step::Withdrawn => "Record withdrawal",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Step::Invited => "Invitation recorded.",
            Step::Consented => "Consent recorded.",
            Step::Withdrawn => "Withdrawal recorded.",
        }
    }

    /// The label of the day it happened on.
    fn date_label(self) -> &'static str {
        match self {
            Step::Invited => "Invited on",
            Step::Consented => "Consent given on",
            Step::Withdrawn => "Withdrew on",
        }
    }

    /// Why a second recording changed nothing.
    fn already(self) -> &'static str {
        match self {
            Step::Invited => "The invitation was already recorded; nothing was changed.",
            Step::Consented => "Consent was already recorded; nothing was changed.",
            Step::Withdrawn => "The withdrawal was already recorded; nothing was changed.",
        }
    }

    fn question(self, subject: &SubjectView) -> Markup {
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

fn step_action(subject: &SubjectView, step: Step) -> Markup {
    let url = record_url(&subject.sssid, step.word());
    html! {
        a.button.small.secondary.danger-outline[step == Step::Withdrawn] href=(url)
            hx-get=(url) hx-target="#confirm-area" hx-swap="innerHTML" { (step.button()) "…" }
    }
}

/// The study journey; `pending` is a step confirmation to show open (it
/// came back with an error).
fn journey(visitor: &Visitor, subject: &SubjectView, pending: Option<&Markup>) -> Markup {
    let withdrawn = subject.date_withdrawn.is_some();
    let row = |label: &str, at: Option<DateTime<Utc>>, action: Option<Markup>| {
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
                @if subject.journey().can_invite() { (qr_button(visitor, subject, false)) }
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

fn edit_form(
    visitor: &Visitor,
    subject: &SubjectView,
    form: &SubjectForm,
    errors: &FormErrors,
) -> Markup {
    let action = subject_url(&subject.sssid);
    html! {
        section.card aria-labelledby="edit-heading" {
            h2 #edit-heading { "Details" }
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

fn link_state(link: &LinkView, now: DateTime<Utc>) -> Markup {
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

fn links_card(links: &[LinkView], now: DateTime<Utc>) -> Markup {
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
                                    td { (revoke_link_button(link)) }
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

fn revoke_url(link: &LinkView) -> String {
    format!("{}/links/{}/revoke", subject_url(&link.sub), link.id)
}

/// "Revoke this link" for a link that was never used: asks first (in the
/// links card with htmx, on a page of its own without).
fn revoke_link_button(link: &LinkView) -> Markup {
    if link.linked_on.is_some() || link.withdrawn_on.is_some() {
        return html! {};
    }
    let url = revoke_url(link);
    html! {
        a.button.small.secondary.danger-outline href=(url)
            hx-get=(url) hx-target="#link-confirm-area" hx-swap="innerHTML" { "Revoke this link…" }
    }
}

/// The question before revoking one link, with the POST form that does it.
fn revoke_confirmation(visitor: &Visitor, link: &LinkView) -> Markup {
    let action = revoke_url(link);
    let back = subject_url(&link.sub);
    let panel_target = visitor.htmx.then_some("#subject-panel");
    let swap = visitor.htmx.then_some("outerHTML");
    html! {
        div.confirm-box role="alertdialog" aria-labelledby="revoke-question" {
            p #revoke-question {
                "Revoke the link " code.small-text { (link.id) } "? Its QR code stops working, also where it was already shown or printed. "
                "The subject is not withdrawn and other links stay as they are; a new QR code can be shown."
            }
            form method="post" action=(action)
                hx-post=[visitor.htmx.then_some(&action)] hx-target=[panel_target] hx-swap=[swap] {
                (csrf_field(&visitor.csrf))
                div.actions {
                    button.small.danger type="submit" { "Revoke this link" }
                    a.button.small.secondary href=(back) hx-get=[visitor.htmx.then_some(&back)] hx-target=[panel_target] hx-swap=[swap] { "Cancel" }
                }
            }
        }
    }
}

/// Asks before revoking a link: a box for htmx, a page otherwise. Changes
/// nothing.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path((sssid, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let services = &state.services;
    let subject = services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let link = services
        .links
        .get(&visitor.ctx, &id)
        .await
        .ok()
        .filter(|link| link.sub == sssid)
        .ok_or_else(|| visitor.fail(Error::NotFound("no such link".into())))?;
    let confirmation = revoke_confirmation(&visitor, &link);
    if visitor.htmx {
        return Ok(confirmation.into_response());
    }
    Ok(confirmation_page(&visitor, &subject, confirmation).into_response())
}

pub async fn revoke_link(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path((sssid, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let result = state
        .services
        .links
        .revoke(&visitor.ctx, &sssid, &id)
        .await
        .map(|()| "Link revoked: its QR code no longer works.".to_owned());
    outcome(&state, &visitor, &sssid, result).await
}

/// One change named in an audit text (SPEC section 6).
enum Change<'a> {
    /// `consented: 2026-11-28T12:00:00Z` and the other journey dates.
    Dated(&'a str, DateTime<Utc>),
    /// `name: "Ada King"` and the other fields, JSON-quoted.
    Field(&'a str, String),
}

/// The changes of an audit text such as
/// `name: "Ada; King"; consented: 2026-11-28T12:00:00Z`, or `None` if it is
/// not one. Values are read as JSON strings, so a `; ` inside one does not
/// split it.
fn changes(action: &str) -> Option<Vec<Change<'_>>> {
    let mut found = Vec::new();
    let mut rest = action;
    loop {
        let (key, value) = rest.split_once(": ")?;
        if value.starts_with('"') {
            let mut strings = serde_json::Deserializer::from_str(value).into_iter::<String>();
            let text = strings.next()?.ok()?;
            rest = &value[strings.byte_offset()..];
            found.push(Change::Field(key, text));
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

fn change_sentence(change: &Change<'_>) -> Option<Markup> {
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
        Change::Field(field, value) => match (*field, value.is_empty()) {
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
fn activity_sentence(action: &str) -> Markup {
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

fn activity_card(activity: &[AuditRecord]) -> Markup {
    html! {
        section.card aria-labelledby="activity-heading" {
            h2 #activity-heading { "Activity" }
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

fn panel(
    visitor: &Visitor,
    details: &Details,
    message: Option<&Flash>,
    form: &SubjectForm,
    errors: &FormErrors,
    now: DateTime<Utc>,
    pending: Option<&Markup>,
) -> Markup {
    html! {
        div #subject-panel {
            (subject_heading(&details.subject))
            (flash(message))
            (journey(visitor, &details.subject, pending))
            (edit_form(visitor, &details.subject, form, errors))
            (links_card(&details.links, now))
            (activity_card(&details.activity))
        }
    }
}

fn form_of(subject: &SubjectView) -> SubjectForm {
    SubjectForm {
        sssid: subject.sssid.clone(),
        name: subject.name.clone(),
        bday: birth_date(subject.bday),
        email: subject.email.clone().unwrap_or_default(),
    }
}

/// Name and standing; inside the swapped panel, so they change with it.
fn subject_heading(subject: &SubjectView) -> Markup {
    html! {
        div.title-row.subject-title {
            h1 { (subject.name) }
            (standing_badge(subject))
        }
        p.muted { "SSSID " (subject.sssid) " · born " (birth_date(subject.bday)) }
    }
}

fn subject_page(visitor: &Visitor, subject: &SubjectView, content: Markup) -> Markup {
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
struct Shown<'a> {
    message: Option<Flash>,
    /// The edit form as typed, with its errors (else the stored values).
    typed: Option<(&'a SubjectForm, &'a FormErrors)>,
    /// A step confirmation to show open.
    pending: Option<Markup>,
}

/// The panel (htmx) or the whole page, with `status`.
async fn respond(
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
    } = shown;
    let details = details(state, visitor, sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let stored = form_of(&details.subject);
    let none = FormErrors::default();
    let (form, errors) = typed.unwrap_or((&stored, &none));
    let now = state.services.deps.clock.now();
    let content = panel(
        visitor,
        &details,
        message.as_ref(),
        form,
        errors,
        now,
        pending.as_ref(),
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
async fn outcome(
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
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(form): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let errors = FormErrors::check(&form, false);
    if errors.any() {
        let shown = Shown {
            typed: Some((&form, &errors)),
            ..Shown::default()
        };
        return respond(&state, &visitor, &sssid, StatusCode::BAD_REQUEST, shown).await;
    }
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
        .await
        .map(|()| "Changes saved.".to_owned());
    outcome(&state, &visitor, &sssid, result).await
}

#[derive(Deserialize)]
pub struct StepInput {
    #[serde(default)]
    step: String,
    /// The day it happened, `YYYY-MM-DD`; not sent means now.
    date: Option<String>,
    /// The browser's offset from UTC in minutes (east positive), filled in
    /// by app.js; without script the day is taken as a UTC day.
    #[serde(default)]
    utc_offset: String,
}

fn parse_step(word: &str) -> Result<Step, Error> {
    Step::parse(word).ok_or_else(|| {
        Error::BadRequest("step must be one of invited, consented, withdrawn".into())
    })
}

/// The browser's time zone offset as sent, UTC if missing or impossible.
fn browser_offset(minutes: &str) -> FixedOffset {
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
fn typed_step_day(input: &StepInput, now: DateTime<Utc>) -> Result<Option<StepDay>, String> {
    let utc_offset = browser_offset(&input.utc_offset);
    let Some(raw) = input.date.as_deref() else {
        return Ok(None);
    };
    let today = StepDay::today(now, utc_offset);
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("Enter the date like {}.", today.format("%Y-%m-%d")))?;
    let day = StepDay { date, utc_offset };
    day.instant(now).map_err(|problem| match problem {
        StepDayProblem::InTheFuture { today } => format!(
            "Enter a date that is not in the future: today is {}.",
            today.format("%Y-%m-%d")
        ),
        StepDayProblem::TooEarly => format!("Enter a date from {}-01-01 on.", StepDay::FIRST_YEAR),
    })?;
    Ok(Some(day))
}

/// The question before recording a step, with the day it happened on:
/// today unless something else was typed (`typed`, shown with `error`).
/// app.js puts in the browser's today and time zone.
fn step_confirmation(
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

/// The confirmation on a page of its own (no htmx).
fn confirmation_page(visitor: &Visitor, subject: &SubjectView, confirmation: Markup) -> Markup {
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
    SignedIn(visitor): SignedIn,
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
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(input): Form<StepInput>,
) -> Result<Response, WebError> {
    let step = parse_step(&input.step).map_err(|e| visitor.fail(e))?;
    let now = state.services.deps.clock.now();
    let day = match typed_step_day(&input, now) {
        Ok(day) => day,
        Err(problem) => {
            let subject = state
                .services
                .subjects
                .get(&visitor.ctx, &sssid)
                .await
                .map_err(|e| visitor.fail(e))?;
            let today = StepDay::today(now, browser_offset(&input.utc_offset));
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
    let result = state
        .services
        .subjects
        .record_step(&visitor.ctx, &sssid, step.date(), day)
        .await
        .map(|_| step.done().to_owned())
        .map_err(|error| match error {
            Error::Conflict(msg) if msg.starts_with("Subject has already been") => {
                Error::Conflict(step.already().into())
            }
            other => other,
        });
    outcome(&state, &visitor, &sssid, result).await
}
