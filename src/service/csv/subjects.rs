//! The subject list as CSV: the filter, search and order of `GET /subject`,
//! read from the subject service a page at a time.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use futures_util::stream;

use super::{CsvChunks, CsvService, ExportAudit, Rows, audited_export, csv_rows};
use crate::domain::format_timestamp;
use crate::error::Result;
use crate::service::Context;
use crate::service::audits::AuditTarget;
use crate::service::listing::{MAX_PER_PAGE, Paging, SubjectListQuery};

/// The page after `read`, if `read` came back full: twice as large (up to
/// [`crate::service::listing::MAX_EXPORT_PAGE`]), so the first rows leave
/// at once and a long list is read in few, large pages.
fn page_after(read: Paging, rows: usize) -> Option<Paging> {
    (rows as u64 == read.perpage)
        .then(|| Paging::for_export(read.offset + read.perpage, read.perpage * 2))
}
use crate::service::subjects::SubjectView;

/// The columns of the export, which the import reads back: every field a
/// client may set. (`created` and `changed` belong to the server; a
/// subject imported from the file is created anew.)
pub const SUBJECT_COLUMNS: [&str; 8] = [
    "sssid",
    "name",
    "bday",
    "email",
    "date_invited",
    "date_consented",
    "date_enrolled",
    "date_withdrawn",
];

fn timestamp(at: Option<DateTime<Utc>>) -> Cow<'static, str> {
    at.map_or(Cow::Borrowed(""), |at| Cow::Owned(format_timestamp(at)))
}

/// One subject's cells, in the order of [`SUBJECT_COLUMNS`].
fn subject_cells(s: &SubjectView) -> [Cow<'_, str>; 8] {
    [
        Cow::Borrowed(s.sssid.as_str()),
        Cow::Borrowed(s.name.as_str()),
        // Empty once the subject's personal data was erased.
        s.bday.map_or(Cow::Borrowed(""), |bday| {
            Cow::Owned(bday.format("%Y-%m-%d").to_string())
        }),
        Cow::Borrowed(s.email.as_deref().unwrap_or("")),
        timestamp(s.date_invited),
        timestamp(s.date_consented),
        timestamp(s.date_enrolled),
        timestamp(s.date_withdrawn),
    ]
}

/// What an export of the list holds, in words for its audit entry.
fn describe(query: &SubjectListQuery, whole_list: bool) -> String {
    let mut parts = Vec::new();
    if let Some(search) = &query.search {
        parts.push(format!(
            "search {}",
            serde_json::Value::from(search.as_str())
        ));
    }
    if let Some(status) = query.status {
        parts.push(format!("status {}", status.as_str()));
    }
    parts.push(format!(
        "by {} {}",
        query.order_by.as_str(),
        query.direction.as_str()
    ));
    if !whole_list {
        parts.push(format!(
            "offset {}, perpage {}",
            query.paging.offset, query.paging.perpage
        ));
    }
    format!("export subjects as CSV ({})", parts.join(", "))
}

/// Where the rows of an export stand.
struct Export {
    service: CsvService,
    ctx: Context,
    query: SubjectListQuery,
    /// The page read but not sent yet.
    pending: Option<Vec<SubjectView>>,
    /// The next page to read, if there is one.
    next: Option<Paging>,
}

impl Export {
    /// The next page as CSV rows, or `None` at the end.
    async fn step(&mut self) -> Option<Rows> {
        loop {
            if let Some(items) = self.pending.take() {
                let text = csv_rows(items.iter().map(subject_cells));
                return Some(text.map(|text| (text, items.len() as u64)));
            }
            let paging = self.next.take()?;
            if let Err(e) = self.read(paging).await {
                return Some(Err(e));
            }
        }
    }

    /// Reads the page `paging` names into `pending`.
    async fn read(&mut self, paging: Paging) -> Result<()> {
        let query = SubjectListQuery {
            paging,
            ..self.query.clone()
        };
        let page = self.service.subjects.list(&self.ctx, query).await?.items;
        self.next = page_after(paging, page.len());
        self.pending = Some(page);
        Ok(())
    }
}

impl CsvService {
    /// The subjects `query` selects, in its order, as CSV: with
    /// `whole_list` every page of the list (the query's paging is
    /// ignored), else the one page the query names. A query the list
    /// refuses (a bad parameter, no access) fails here, before anything is
    /// sent.
    pub async fn export_subjects(
        &self,
        ctx: &Context,
        query: SubjectListQuery,
        whole_list: bool,
    ) -> Result<CsvChunks> {
        let what = describe(&query, whole_list);
        let first = if whole_list {
            Paging::new(0, MAX_PER_PAGE)
        } else {
            query.paging
        };
        let page = self
            .subjects
            .list(
                ctx,
                SubjectListQuery {
                    paging: first,
                    ..query.clone()
                },
            )
            .await?
            .items;
        let next = page_after(first, page.len()).filter(|_| whole_list);
        let export = Export {
            service: self.clone(),
            ctx: ctx.clone(),
            query,
            pending: Some(page),
            next,
        };
        let pages = stream::unfold(export, |mut export| async move {
            Some((export.step().await?, export))
        });
        let audit = ExportAudit::new(self.audits.clone(), ctx, AuditTarget::default(), what);
        Ok(audited_export(&SUBJECT_COLUMNS, pages, audit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::listing::{MAX_EXPORT_PAGE, SortDirection};
    use crate::store::{SubjectColumn, SubjectStatus};

    #[test]
    fn the_audit_text_names_the_filter() {
        let query = SubjectListQuery {
            search: Some("Ö \"x\"".into()),
            status: Some(SubjectStatus::Enrolled),
            order_by: SubjectColumn::Name,
            direction: SortDirection::Descending,
            paging: Paging::new(50, 25),
        };
        assert_eq!(
            describe(&query, true),
            "export subjects as CSV (search \"Ö \\\"x\\\"\", status enrolled, by name desc)"
        );
        assert_eq!(
            describe(&SubjectListQuery::default(), false),
            "export subjects as CSV (by sssid asc, offset 0, perpage 50)"
        );
    }

    #[test]
    fn an_export_reads_growing_pages_without_gaps_until_a_short_one() {
        let mut read = Paging::new(0, MAX_PER_PAGE);
        let mut sizes = vec![read.perpage];
        while let Some(next) = page_after(read, read.perpage as usize) {
            assert_eq!(
                next.offset,
                read.offset + read.perpage,
                "no gap, no overlap"
            );
            read = next;
            sizes.push(read.perpage);
            if sizes.len() == 8 {
                break;
            }
        }
        assert_eq!(
            sizes,
            [
                500,
                1_000,
                2_000,
                4_000,
                8_000,
                MAX_EXPORT_PAGE,
                MAX_EXPORT_PAGE,
                MAX_EXPORT_PAGE
            ]
        );
        assert_eq!(page_after(read, 9_999), None, "a short page is the last");
        assert_eq!(page_after(Paging::new(0, 500), 0), None);
    }
}
