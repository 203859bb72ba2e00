//! `/subjects`: the list of subjects, searched, filtered by status,
//! sorted and paged through the URL, and the start page's recent subjects.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::export::study_audit_card;
use super::{
    LIST_LOADING, PER_PAGE, RECENT_ON_HOME, born, day, display_name, moment, qr_button, record_url,
    standing_badge, subject_url,
};
use crate::app::AppState;
use crate::error::Error;
use crate::service::listing::{Paging, SortDirection, SubjectListQuery};
use crate::service::subjects::{SubjectList, SubjectView};
use crate::store::{SubjectColumn, SubjectStatus, Total};
use crate::web::error::WebError;
use crate::web::layout::{Section, page};
use crate::web::session::{SignedIn, Visitor};

// ------------------------------------------------------------ the list

/// Columns the list can be sorted by, with their labels.
pub(super) const SORTABLE: [(SubjectColumn, &str); 7] = [
    (SubjectColumn::Sssid, "SSSID"),
    (SubjectColumn::Name, "Name"),
    (SubjectColumn::Bday, "Birth date"),
    (SubjectColumn::DateInvited, "Invited"),
    (SubjectColumn::DateConsented, "Consented"),
    (SubjectColumn::DateEnrolled, "Enrolled"),
    (SubjectColumn::Changed, "Last update"),
];

/// The label of a sortable column.
fn column_label(column: SubjectColumn) -> &'static str {
    SORTABLE
        .iter()
        .find(|(col, _)| *col == column)
        .map_or("", |(_, label)| *label)
}

/// The status filter's choices (`None`: any).
pub(super) const STATUSES: [(Option<SubjectStatus>, &str); 6] = [
    (None, "Any status"),
    (Some(SubjectStatus::NotInvited), "Not yet invited"),
    (Some(SubjectStatus::Invited), "Invited"),
    (Some(SubjectStatus::Consented), "Consented"),
    (Some(SubjectStatus::Enrolled), "Enrolled"),
    (Some(SubjectStatus::Withdrawn), "Withdrawn"),
];

/// The list as the visitor sees it. Unknown values fall back to the
/// defaults (most recently changed first), so an edited URL shows a list
/// rather than an error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListView {
    #[serde(default)]
    pub(super) q: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) sort: String,
    #[serde(default)]
    pub(super) dir: String,
    #[serde(default)]
    pub(super) page: String,
}

impl ListView {
    pub(super) fn page(&self) -> u64 {
        self.page.trim().parse().unwrap_or(1).max(1)
    }

    pub(super) fn sort(&self) -> SubjectColumn {
        self.sort
            .parse()
            .ok()
            .filter(|col| SORTABLE.iter().any(|(sortable, _)| sortable == col))
            .unwrap_or(SubjectColumn::Changed)
    }

    pub(super) fn direction(&self) -> SortDirection {
        self.dir
            .parse()
            .unwrap_or_else(|_| self.sort().natural_direction())
    }

    pub(super) fn status(&self) -> Option<SubjectStatus> {
        self.status.parse().ok()
    }

    pub(super) fn url_with(
        &self,
        sort: SubjectColumn,
        direction: SortDirection,
        page: u64,
    ) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let q = self.q.trim();
        if !q.is_empty() {
            pairs.push(("q", q));
        }
        if let Some(status) = self.status() {
            pairs.push(("status", status.as_str()));
        }
        pairs.push(("sort", sort.as_str()));
        pairs.push(("dir", direction.as_str()));
        let page = page.to_string();
        if page != "1" {
            pairs.push(("page", &page));
        }
        format!(
            "/subjects?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }

    /// The CSV download of this list: its search, filter and order, every
    /// page.
    pub(super) fn export_url(&self) -> String {
        let url = self.url_with(self.sort(), self.direction(), 1);
        url.replacen("/subjects?", "/subjects.csv?", 1)
    }

    pub(super) fn url(&self, page: u64) -> String {
        self.url_with(self.sort(), self.direction(), page)
    }

    /// What the list region is called: the order and page, so a screen
    /// reader says what changed when focus lands on it after a sort or a
    /// page change. `pages`: how many, when the total is exact.
    pub(super) fn region_label(&self, pages: Option<u64>) -> String {
        let column = column_label(self.sort());
        let direction = if self.direction().is_descending() {
            "descending"
        } else {
            "ascending"
        };
        let of = pages
            .map(|pages| format!(" of {pages}"))
            .unwrap_or_default();
        format!(
            "Subjects by {column}, {direction}, page {}{of}",
            self.page()
        )
    }

    pub(super) fn query(&self) -> SubjectListQuery {
        SubjectListQuery {
            search: Some(self.q.trim().to_owned()).filter(|q| !q.is_empty()),
            status: self.status(),
            order_by: self.sort(),
            direction: self.direction(),
            paging: Paging::page(self.page(), PER_PAGE),
        }
    }
}

/// The most recently changed subjects, for the start page.
pub async fn recent(state: &AppState, visitor: &Visitor) -> Result<SubjectList, Error> {
    let query = SubjectListQuery {
        order_by: SubjectColumn::Changed,
        direction: SortDirection::Descending,
        paging: Paging::new(0, RECENT_ON_HOME),
        ..SubjectListQuery::default()
    };
    state.services.subjects.list(&visitor.ctx, query).await
}

/// One row; `invited` adds the Invited column (the full list has it, the
/// start page's short list keeps to what fits beside it).
pub(super) fn subject_row(visitor: &Visitor, subject: &SubjectView, invited: bool) -> Markup {
    let url = subject_url(&subject.sssid);
    html! {
        tr {
            td data-label="Status" { (standing_badge(subject)) }
            td.sssid data-label="SSSID" { a href=(url) { (subject.sssid) } }
            td data-label="Name" {
                (display_name(subject))
                br;
                span.muted.small-text.nowrap { (born(subject)) }
            }
            @if invited {
                td.date data-label="Invited" {
                    @if let Some(at) = subject.date_invited { (day(at)) } @else { span.muted { "—" } }
                }
            }
            td.date data-label="Consented" {
                @if let Some(at) = subject.date_consented {
                    (day(at))
                } @else if subject.date_withdrawn.is_none() && visitor.can_write() {
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
                    @if visitor.can_write() && subject.journey().can_invite() { (qr_button(visitor, subject, true)) }
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
    let header = |col: SubjectColumn| match view {
        None => html! { th scope="col" { (column_label(col)) } },
        Some(view) => {
            let current = view.sort() == col;
            let direction = if current {
                view.direction().reversed()
            } else {
                col.natural_direction()
            };
            let url = view.url_with(col, direction, 1);
            let sorted = current.then(|| {
                if view.direction().is_descending() {
                    "descending"
                } else {
                    "ascending"
                }
            });
            html! {
                th scope="col" aria-sort=[sorted] {
                    a.sort href=(url) hx-get=(url) hx-target="#subjects-list" hx-swap="outerHTML"
                        hx-push-url="true" hx-indicator=(LIST_LOADING) {
                        (column_label(col))
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
                        (header(SubjectColumn::Sssid))
                        (header(SubjectColumn::Name))
                        @if view.is_some() { (header(SubjectColumn::DateInvited)) }
                        (header(SubjectColumn::DateConsented))
                        (header(SubjectColumn::DateEnrolled))
                        (header(SubjectColumn::Changed))
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

/// `n` with a thin space between thousands ("2 000"), as the pager
/// shows counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(digit);
    }
    out
}

/// What the pager says about the total: "31 subjects", or past the
/// count limit "more than 2 000 subjects".
fn total_text(total: Total) -> String {
    match total {
        Total::Exact(1) => "1 subject".into(),
        Total::Exact(n) => format!("{} subjects", thousands(n)),
        Total::AtLeast(n) => format!("More than {} subjects", thousands(n.saturating_sub(1))),
    }
}

pub(super) fn list_fragment(visitor: &Visitor, view: &ListView, subjects: &SubjectList) -> Markup {
    let page_no = view.page();
    // Past the count limit the last page is unknown; the total still says
    // whether one follows this page.
    let pages = match subjects.total {
        Total::Exact(total) => Some(total.div_ceil(PER_PAGE).max(1)),
        Total::AtLeast(_) => None,
    };
    let shown = view.query().paging.offset + subjects.items.len() as u64;
    let next = subjects.total.value() > shown && !subjects.items.is_empty();
    let links = [
        ("First", Some(1), "first"),
        ("Previous", Some(page_no.saturating_sub(1)), "prev"),
        ("Next", next.then_some(page_no + 1), "next"),
        ("Last", pages, "last"),
    ];
    let filtered = !view.q.trim().is_empty() || view.status().is_some();
    // A labelled region that can take focus: after a sort or page change
    // the link that was clicked is gone, and focus goes here (static/app.js)
    // instead of falling back to the page.
    html! {
        div #subjects-list role="region" aria-label=(view.region_label(pages)) tabindex="-1" {
            // The order is part of the search form, but lives here so that
            // it changes with the list when a column header is clicked.
            input type="hidden" form="subject-filter" name="sort" value=(view.sort().as_str());
            input type="hidden" form="subject-filter" name="dir" value=(view.direction().as_str());
            @if subjects.items.is_empty() {
                p.empty {
                    @if page_no > 1 && subjects.total.value() > 0 { "No subject on this page." }
                    @else if filtered { "No subject matches." } @else { "No subjects yet." }
                }
            } @else {
                (subjects_table(visitor, &subjects.items, Some(view)))
            }
            nav.pager aria-label="Pages" {
                span.muted {
                    (total_text(subjects.total)) " · page " (page_no)
                    @if let Some(pages) = pages { " of " (pages) }
                }
                span.actions {
                    @if subjects.total.value() > 0 {
                        a.button.small.secondary #subjects-download href=(view.export_url()) download
                            aria-label=(format!("Download CSV of the {} of this list", total_text(subjects.total).to_lowercase())) {
                            "Download CSV"
                        }
                    }
                    @for (label, target, rel) in links {
                        @if let Some(target) = target.filter(|t| *t >= 1 && *t != page_no && pages.is_none_or(|p| *t <= p)) {
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

pub(super) fn subjects_page(visitor: &Visitor, view: &ListView, subjects: &SubjectList) -> Markup {
    page(
        "Subjects",
        Some(&visitor.chrome(Section::Subjects)),
        false,
        html! {
            div.title-row {
                h1 { "Subjects" }
                @if visitor.can_write() {
                    div.actions {
                        a.button.secondary href=(super::IMPORT_PATH) { "Import CSV" }
                        a.button href="/subjects/new" { "New subject" }
                    }
                }
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
                                option value=(value.map_or("", SubjectStatus::as_str)) selected[view.status() == value] { (label) }
                            }
                        }
                        button.secondary type="submit" { "Search" }
                    }
                }
                (list_fragment(visitor, view, subjects))
            }
            (study_audit_card())
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
        .list(&visitor.ctx, view.query())
        .await
        .map_err(|e| visitor.fail(e))?;
    if visitor.htmx && visitor.htmx_target.as_deref() == Some("subjects-list") {
        return Ok(list_fragment(&visitor, &view, &subjects).into_response());
    }
    Ok(subjects_page(&visitor, &view, &subjects).into_response())
}
