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
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{BirthDate, Sssid, SubjectName, parse_subject_email};
use crate::error::Error;
use crate::service::links::LinkView;
use crate::service::subjects::{JourneyDate, SubjectFields, SubjectListParams, SubjectView};
use crate::store::{AuditRecord, Page};
use crate::web::error::WebError;
use crate::web::layout::{Field, Flash, Section, csrf_field, flash, page};
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

/// Where a subject stands, as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Pending,
    Invited,
    Consented,
    Enrolled,
    Withdrawn,
}

impl Standing {
    pub fn of(subject: &SubjectView) -> Self {
        if subject.date_withdrawn.is_some() {
            Standing::Withdrawn
        } else if subject.date_enrolled.is_some() {
            Standing::Enrolled
        } else if subject.date_consented.is_some() {
            Standing::Consented
        } else if subject.date_invited.is_some() {
            Standing::Invited
        } else {
            Standing::Pending
        }
    }

    fn label(self) -> &'static str {
        match self {
            Standing::Pending => "Pending",
            Standing::Invited => "Invited",
            Standing::Consented => "Consented",
            Standing::Enrolled => "Enrolled",
            Standing::Withdrawn => "Withdrawn",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Standing::Pending => "status status-pending",
            Standing::Invited => "status status-invited",
            Standing::Consented => "status status-consented",
            Standing::Enrolled => "status status-enrolled",
            Standing::Withdrawn => "status status-withdrawn",
        }
    }
}

pub fn standing_badge(subject: &SubjectView) -> Markup {
    let standing = Standing::of(subject);
    html! { span class=(standing.class()) { (standing.label()) } }
}

/// A QR code can be made for consented subjects who have not withdrawn
/// (enrolled ones too: a new phone needs a new link).
pub fn can_invite(subject: &SubjectView) -> bool {
    subject.date_consented.is_some() && subject.date_withdrawn.is_none()
}

pub fn day(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d")) } }
}

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
                    @if can_invite(subject) { (qr_button(visitor, subject, true)) }
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
        let problem = |r: Result<(), Error>| r.err().map(|e| e.to_string());
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
            Err(Error::Conflict(msg)) => {
                status = StatusCode::CONFLICT;
                errors.sssid = Some(msg);
            }
            Err(Error::BadRequest(msg)) => errors.name = Some(msg),
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

    fn question(self, subject: &SubjectView) -> Markup {
        let who = html! { strong { (subject.name) } " (" (subject.sssid) ")" };
        match self {
            Step::Invited => html! {
                "Record that " (who) " was invited to the study now?"
            },
            Step::Consented => html! {
                "Record that " (who) " gave consent now? Consent is recorded once and cannot be changed afterwards."
            },
            Step::Withdrawn => html! {
                "Record that " (who) " withdrew from the study now? This is recorded once, cannot be undone, and no new QR codes can be made for them."
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

fn journey(visitor: &Visitor, subject: &SubjectView) -> Markup {
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
                @if can_invite(subject) { (qr_button(visitor, subject, false)) }
            }
            dl.journey {
                div.journey-step { dt { "Status" } dd { (standing_badge(subject)) } }
                (row("Invited", subject.date_invited,
                    (subject.date_consented.is_none() && !withdrawn).then(|| step_action(subject, Step::Invited))))
                (row("Consented", subject.date_consented,
                    (!withdrawn).then(|| step_action(subject, Step::Consented))))
                (row("Enrolled", subject.date_enrolled,
                    can_invite(subject).then(|| html! { span.muted { "when the app scans a QR code" } })))
                (row("Withdrawn", subject.date_withdrawn, Some(step_action(subject, Step::Withdrawn))))
            }
            div #confirm-area {}
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
                        thead { tr { th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Link id" } } }
                        tbody {
                            @for link in links.iter().rev() {
                                tr {
                                    td data-label="Created" { (moment(link.created)) }
                                    td data-label="State" { (link_state(link, now)) }
                                    td data-label="Link id" { code.small-text { (link.id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn activity_card(activity: &[AuditRecord]) -> Markup {
    html! {
        section.card aria-labelledby="activity-heading" {
            h2 #activity-heading { "Activity" }
            div.table-wrap {
                table #activity {
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Actor" } th scope="col" { "Action" } } }
                    tbody {
                        // Newest first: what just happened is on top.
                        @for entry in activity.iter().rev() {
                            tr {
                                td data-label="Date" { (moment(entry.datetime)) }
                                td data-label="Actor" {
                                    @match &entry.actor {
                                        Some(actor) => (actor),
                                        None => span.muted { "app or system" },
                                    }
                                }
                                td data-label="Action" { (entry.action) }
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
) -> Markup {
    html! {
        div #subject-panel {
            (subject_heading(&details.subject))
            (flash(message))
            (journey(visitor, &details.subject))
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

/// The panel (htmx) or the whole page, with `status`. `form` is what the
/// edit form shows: the stored values, or what was typed with its errors.
async fn respond(
    state: &AppState,
    visitor: &Visitor,
    sssid: &str,
    status: StatusCode,
    message: Option<Flash>,
    typed: Option<(&SubjectForm, &FormErrors)>,
) -> Result<Response, WebError> {
    let details = details(state, visitor, sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let stored = form_of(&details.subject);
    let none = FormErrors::default();
    let (form, errors) = typed.unwrap_or((&stored, &none));
    let now = state.services.deps.clock.now();
    let content = panel(visitor, &details, message.as_ref(), form, errors, now);
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
            respond(
                state,
                visitor,
                sssid,
                StatusCode::OK,
                Some(Flash::ok(done)),
                None,
            )
            .await
        }
        Err(
            error @ (Error::BadRequest(_)
            | Error::Conflict(_)
            | Error::PreconditionFailed(_)
            | Error::Gone(_)),
        ) => {
            respond(
                state,
                visitor,
                sssid,
                error.status(),
                Some(Flash::error(error.to_string())),
                None,
            )
            .await
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
    respond(&state, &visitor, &sssid, StatusCode::OK, message, None).await
}

pub async fn update(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(form): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let errors = FormErrors::check(&form, false);
    if errors.any() {
        return respond(
            &state,
            &visitor,
            &sssid,
            StatusCode::BAD_REQUEST,
            None,
            Some((&form, &errors)),
        )
        .await;
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
}

fn parse_step(word: &str) -> Result<Step, Error> {
    Step::parse(word).ok_or_else(|| {
        Error::BadRequest("step must be one of invited, consented, withdrawn".into())
    })
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
    let action = format!("{}/record", subject_url(&sssid));
    let back = subject_url(&sssid);
    // On its own page (no htmx) there is no panel to swap: plain form.
    let panel_target = visitor.htmx.then_some("#subject-panel");
    let swap = visitor.htmx.then_some("outerHTML");
    let form = html! {
        form.inline-form method="post" action=(action)
            hx-post=[visitor.htmx.then_some(&action)] hx-target=[panel_target] hx-swap=[swap] {
            (csrf_field(&visitor.csrf))
            input type="hidden" name="step" value=(step.word());
            button.small.danger[step == Step::Withdrawn] type="submit" { (step.button()) }
        }
    };
    let question = html! {
        div.confirm-box role="alertdialog" aria-labelledby="confirm-question" {
            p #confirm-question { (step.question(&subject)) }
            div.actions {
                (form)
                a.button.small.secondary href=(back) hx-get=[visitor.htmx.then_some(&back)] hx-target=[panel_target] hx-swap=[swap] { "Cancel" }
            }
        }
    };
    if visitor.htmx {
        return Ok(question.into_response());
    }
    Ok(subject_page(
        &visitor,
        &subject,
        html! { (subject_heading(&subject)) (question) },
    )
    .into_response())
}

pub async fn record_step(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Path(sssid): Path<String>,
    Form(input): Form<StepInput>,
) -> Result<Response, WebError> {
    let step = parse_step(&input.step).map_err(|e| visitor.fail(e))?;
    let result = state
        .services
        .subjects
        .record_step(&visitor.ctx, &sssid, step.date())
        .await
        .map(|_| step.done().to_owned());
    outcome(&state, &visitor, &sssid, result).await
}
