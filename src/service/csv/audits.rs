//! Audit trails as CSV: one subject's (with its links'), or the whole
//! study's within a time range, read from the store a page at a time.

use std::borrow::Cow;

use chrono::{DateTime, Days, TimeZone, Utc};
use futures_util::stream;

use super::{CsvChunks, CsvService, ExportAudit, Rows, audited_export, csv_rows};
use crate::domain::{Timestamp, format_timestamp};
use crate::error::{Error, Result};
use crate::service::audits::AuditTarget;
use crate::service::subjects::{require_study_access, subject_target};
use crate::service::{Actor, Context};
use crate::store::{AuditCursor, AuditRange, AuditRecord};

/// The columns of an audit export. `subject`, `link` and `user` say what
/// an entry is about; `request_id` and `client_ip` tie it to the request
/// behind it.
pub const AUDIT_COLUMNS: [&str; 10] = [
    "datetime",
    "actor",
    "action",
    "subject",
    "link",
    "user",
    "request_id",
    "client_ip",
    "seq",
    "hash",
];

/// Entries read from the store at once.
const PAGE: u64 = 500;

fn text(value: &Option<String>) -> Cow<'_, str> {
    Cow::Borrowed(value.as_deref().unwrap_or(""))
}

/// One entry's cells, in the order of [`AUDIT_COLUMNS`]; `seq` and `hash`
/// are its place in the tamper-evident chain, so a reader of the file sees
/// gaps and can match rows against `GET /audit/verify`.
fn audit_cells(e: &AuditRecord) -> [Cow<'_, str>; 10] {
    let (seq, hash) = match &e.chain {
        Some(link) => (
            Cow::Owned(link.seq.to_string()),
            Cow::Borrowed(link.hash.as_str()),
        ),
        None => (Cow::Borrowed(""), Cow::Borrowed("")),
    };
    [
        Cow::Owned(format_timestamp(e.datetime)),
        text(&e.actor),
        Cow::Borrowed(e.action.as_str()),
        text(&e.subject),
        text(&e.link),
        text(&e.user),
        text(&e.request_id),
        text(&e.client_ip),
        seq,
        hash,
    ]
}

/// The time range of a study-wide export: from `from` (inclusive) to `to`
/// (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditExportRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl AuditExportRange {
    /// `from` and `to` as a query string holds them: an RFC 3339 timestamp
    /// or a date. A date `to` includes that whole day (it is read as the
    /// next midnight UTC); blank means the start, or the end, of the trail.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        fn given(text: Option<&str>) -> Option<&str> {
            text.map(str::trim).filter(|t| !t.is_empty())
        }
        let from = match given(from) {
            None => DateTime::<Utc>::MIN_UTC,
            Some(raw) => Timestamp::parse("from", raw)?.instant(),
        };
        let to = match given(to) {
            None => DateTime::<Utc>::MAX_UTC,
            Some(raw) => {
                let at = Timestamp::parse("to", raw)?.instant();
                if raw.len() == 10 {
                    at.checked_add_days(Days::new(1)).unwrap_or(at)
                } else {
                    at
                }
            }
        };
        if to < from {
            return Err(Error::invalid("to", "to must not be before from"));
        }
        // The stores keep times from 1970 on: the bounds are clamped to
        // what they can compare.
        let earliest = Utc.timestamp_opt(0, 0).single().unwrap_or(from);
        let latest = Utc
            .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
            .single()
            .unwrap_or(to);
        Ok(Self {
            from: from.max(earliest),
            to: to.min(latest),
        })
    }

    /// The range in words, for the export's own audit entry.
    fn describe(&self) -> String {
        let bound = |at: DateTime<Utc>, open: &str| {
            if at.timestamp() == 0 || at.format("%Y").to_string() == "9999" {
                open.to_owned()
            } else {
                format_timestamp(at)
            }
        };
        format!(
            "from {} to {}",
            bound(self.from, "the start"),
            bound(self.to, "now")
        )
    }
}

/// Where the rows of a study-wide export stand.
struct StudyExport {
    service: CsvService,
    range: AuditExportRange,
    /// Account entries are for admins only (as `GET /user/<name>/audits`).
    with_accounts: bool,
    /// Where the next page starts; `None` before the first page.
    after: Option<AuditCursor>,
    more: bool,
}

impl StudyExport {
    /// The next page's entries as CSV rows, or `None` at the end.
    async fn step(&mut self) -> Option<Rows> {
        while self.more {
            let range = AuditRange {
                from: self.range.from,
                to: self.range.to,
                after: self.after.take(),
                limit: PAGE,
            };
            let page = match self.service.deps.store.audits_between(&range).await {
                Ok(page) => page,
                Err(e) => {
                    self.more = false;
                    return Some(Err(e.into()));
                }
            };
            self.more = page.next.is_some();
            self.after = page.next;
            let rows: Vec<&AuditRecord> = page
                .entries
                .iter()
                .filter(|e| self.with_accounts || e.user.is_none())
                .collect();
            if rows.is_empty() {
                continue;
            }
            let count = rows.len() as u64;
            return Some(csv_rows(rows.into_iter().map(audit_cells)).map(|text| (text, count)));
        }
        None
    }
}

impl CsvService {
    /// The audit trail of a subject and its links, oldest first, as CSV
    /// (the entries of `GET /subject/<sssid>/audits`). Audited in that
    /// same trail.
    pub async fn export_subject_audits(&self, ctx: &Context, sssid: &str) -> Result<CsvChunks> {
        let entries = self.subjects.audits(ctx, sssid).await?;
        let audit = ExportAudit::new(
            self.audits.clone(),
            ctx,
            subject_target(sssid),
            "export audit trail as CSV".to_owned(),
        );
        let pages: Vec<Rows> = entries
            .chunks(PAGE as usize)
            .map(|page| {
                csv_rows(page.iter().map(audit_cells)).map(|text| (text, page.len() as u64))
            })
            .collect();
        Ok(audited_export(&AUDIT_COLUMNS, stream::iter(pages), audit))
    }

    /// Every study entry of the audit trail in `range` (subjects, links,
    /// exports and imports; for admins also the staff-account entries),
    /// oldest first, as CSV.
    pub async fn export_study_audits(
        &self,
        ctx: &Context,
        range: AuditExportRange,
    ) -> Result<CsvChunks> {
        require_study_access(ctx)?;
        let with_accounts = match &ctx.actor {
            Actor::System => true,
            Actor::Staff(user) => user.admin,
            Actor::Anonymous => false,
        };
        let export = StudyExport {
            service: self.clone(),
            range,
            with_accounts,
            after: None,
            more: true,
        };
        let pages = stream::unfold(export, |mut export| async move {
            Some((export.step().await?, export))
        });
        let audit = ExportAudit::new(
            self.audits.clone(),
            ctx,
            AuditTarget::default(),
            format!("export study audit trail as CSV ({})", range.describe()),
        );
        Ok(audited_export(&AUDIT_COLUMNS, pages, audit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_to_includes_its_day_and_blank_means_open() {
        let range = AuditExportRange::parse(Some("2026-01-01"), Some("2026-01-31")).unwrap();
        assert_eq!(format_timestamp(range.from), "2026-01-01T00:00:00Z");
        assert_eq!(format_timestamp(range.to), "2026-02-01T00:00:00Z");
        let range = AuditExportRange::parse(None, Some("2026-01-31T12:00:00+01:00")).unwrap();
        assert_eq!(range.from.timestamp(), 0);
        assert_eq!(format_timestamp(range.to), "2026-01-31T11:00:00Z");
        assert_eq!(
            AuditExportRange::parse(None, None).unwrap().describe(),
            "from the start to now"
        );
        let err = AuditExportRange::parse(Some("2026-02-01"), Some("2026-01-01")).unwrap_err();
        assert_eq!(err.to_string(), "to must not be before from");
        let err = AuditExportRange::parse(Some("soon"), None).unwrap_err();
        assert!(err.to_string().starts_with("from must be"), "{err}");
    }
}
