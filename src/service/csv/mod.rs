//! Study data in and out as CSV: the subject list and the audit trails
//! exported, subjects imported in bulk. RFC 4180 (CRLF line ends, fields
//! quoted only when they must be), UTF-8 without a byte order mark, one
//! header row, dates as ISO 8601 (`bday` `YYYY-MM-DD`, timestamps RFC 3339
//! UTC). The `csv` crate does the quoting and reading; this module adds
//! what a spreadsheet needs on top.
//!
//! Exports are streamed: each page of the list (or of the trail) is read,
//! written as CSV and sent before the next is read, so memory does not grow
//! with the number of rows. Every export is itself audited (see
//! [`ExportAudit`]).

use std::borrow::Cow;
use std::pin::Pin;

use futures_util::{Stream, StreamExt, stream};

use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::subjects::SubjectService;
use crate::service::{Context, Deps};

pub mod audits;
pub mod import;
pub mod subjects;

pub use audits::{AUDIT_COLUMNS, AuditExportRange};
pub use import::{CheckedRow, ImportCheck, ImportMode, ImportReport, ImportRowError};
pub use subjects::SUBJECT_COLUMNS;

/// The largest file an import takes (32 MiB): 100,000 subjects with long
/// names and every date fit.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// An export's body: CSV text, a page at a time. An error ends the stream
/// (the download is cut short; the response status was already sent).
pub type CsvChunks = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// CSV exports and the bulk import, over the subject service (whose
/// rules, access checks and audit entries they share) and the store's
/// audit trail.
#[derive(Clone)]
pub struct CsvService {
    deps: Deps,
    subjects: SubjectService,
    audits: Auditor,
}

impl CsvService {
    pub fn new(deps: Deps, subjects: SubjectService, audits: Auditor) -> Self {
        Self {
            deps,
            subjects,
            audits,
        }
    }
}

/// What makes a spreadsheet read a cell as a formula (OWASP, "CSV
/// Injection"): `=`, `+`, `-`, `@`, and tab or carriage return, which some
/// spreadsheets skip before looking for one of the others.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The mark that makes a spreadsheet take a cell as text.
const TEXT_MARK: char = '\'';

/// Whether `cell` would lose its first character to [`restore`].
fn starts_marked(cell: &str) -> bool {
    let mut chars = cell.chars();
    chars.next() == Some(TEXT_MARK)
        && chars
            .next()
            .is_some_and(|c| c == TEXT_MARK || FORMULA_STARTS.contains(&c))
}

/// A cell as exported: one that a spreadsheet would run as a formula gets
/// a leading `'`, so it opens as the text it is. So does one that already
/// begins with `'` and a formula character (or a second `'`), so that
/// [`restore`] gives every value back exactly: `'=1` is written `''=1`,
/// while `'t Hooft` stays as it is.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) || starts_marked(cell) {
        Cow::Owned(format!("{TEXT_MARK}{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell as imported: the `'` that [`neutralise`] added is taken off
/// again. A cell that begins with `'` and anything else (`'t Hooft`) is
/// kept as it is.
pub fn restore(cell: &str) -> &str {
    if starts_marked(cell) {
        &cell[TEXT_MARK.len_utf8()..]
    } else {
        cell
    }
}

/// Rows as CSV text: each cell neutralised, CRLF after each row.
pub(crate) fn csv_rows<'a, R>(rows: impl IntoIterator<Item = R>) -> Result<Vec<u8>>
where
    R: IntoIterator<Item = Cow<'a, str>>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.into_iter().map(|cell| neutralise(&cell).into_owned()))
            .map_err(Error::internal)?;
    }
    writer
        .into_inner()
        .map_err(|e| Error::internal(anyhow::anyhow!("cannot finish the CSV text: {e}")))
}

/// The header row of `columns`.
fn header(columns: &[&'static str]) -> Result<Vec<u8>> {
    csv_rows([columns.iter().map(|c| Cow::Borrowed(*c))])
}

/// A piece of an export: CSV text and how many rows it holds.
pub(crate) type Rows = Result<(Vec<u8>, u64)>;

/// An export as it is sent: the header row of `columns`, then the pieces
/// `pages` yields, then (once the last was read, before the end of the
/// download is sent) the export's audit entry with the rows sent. A piece
/// that failed ends the export, audited as stopped early, as is one the
/// client leaves (`ExportAudit`'s drop).
pub(crate) fn audited_export(
    columns: &[&'static str],
    pages: impl Stream<Item = Rows> + Send + 'static,
    audit: ExportAudit,
) -> CsvChunks {
    let header = stream::once(std::future::ready(header(columns).map(|text| (text, 0))));
    let pieces = Box::pin(header.chain(pages));
    Box::pin(stream::unfold(
        (pieces, Some(audit)),
        |(mut pieces, mut audit)| async move {
            // `None` after a failed piece: the export has ended.
            let current = audit.as_mut()?;
            match pieces.next().await {
                Some(Ok((text, rows))) => {
                    current.rows += rows;
                    Some((Ok(text), (pieces, audit)))
                }
                // Dropping the audit records the export as stopped early.
                Some(Err(e)) => Some((Err(e), (pieces, None))),
                None => {
                    if let Some(audit) = audit.take() {
                        audit.finish().await;
                    }
                    None
                }
            }
        },
    ))
}

/// The audit entry of one export: who (the context), what (`what`, which
/// says the filter) and how many rows. It is written once the last row has
/// been read, before the end of the download is sent; an export that stops
/// early (the client went away, the store failed) is recorded too, with
/// the rows sent so far, when this is dropped.
pub(crate) struct ExportAudit {
    auditor: Auditor,
    ctx: Context,
    target: AuditTarget,
    what: String,
    rows: u64,
    recorded: bool,
}

impl ExportAudit {
    pub(crate) fn new(auditor: Auditor, ctx: &Context, target: AuditTarget, what: String) -> Self {
        Self {
            auditor,
            ctx: ctx.clone(),
            target,
            what,
            rows: 0,
            recorded: false,
        }
    }

    fn action(&self, complete: bool) -> String {
        let rows = self.rows;
        let plural = if rows == 1 { "" } else { "s" };
        let stopped = if complete { "" } else { ", stopped early" };
        format!("{}: {rows} row{plural}{stopped}", self.what)
    }

    /// Records the finished export.
    pub(crate) async fn finish(mut self) {
        self.recorded = true;
        let action = self.action(true);
        self.auditor
            .record(&self.ctx, self.target.clone(), action)
            .await;
    }
}

impl Drop for ExportAudit {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(what = %self.what, "an export stopped early and could not be audited");
            return;
        };
        let (auditor, ctx, target) = (self.auditor.clone(), self.ctx.clone(), self.target.clone());
        let action = self.action(false);
        runtime.spawn(async move { auditor.record(&ctx, target, action).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{OsRandom, SystemClock};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AuditRange, AuditStore};
    use std::sync::Arc;

    /// The study-level audit actions of `store`, once there are `count`
    /// of them: an export that stops early is audited by a task its drop
    /// spawns, so this waits (bounded) for that task's entry.
    async fn study_actions(store: &SqliteStore, count: usize) -> Vec<String> {
        let read = async {
            loop {
                let page = store
                    .audits_between(&AuditRange {
                        from: chrono::DateTime::UNIX_EPOCH,
                        to: chrono::Utc::now() + chrono::Duration::days(1),
                        after: None,
                        limit: 100,
                    })
                    .await
                    .unwrap();
                if page.entries.len() >= count {
                    return page.entries.into_iter().map(|e| e.action).collect();
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("the export's audit entry")
    }

    fn rows(texts: &[&str]) -> Vec<Rows> {
        texts
            .iter()
            .map(|t| Ok((t.as_bytes().to_vec(), 1)))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_is_audited_whole_after_a_failure_or_when_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("idm.sqlite3"))
                .await
                .unwrap(),
        );
        let auditor = Auditor::new(Deps {
            store: store.clone(),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        });
        let audit = |what: &str| {
            ExportAudit::new(
                auditor.clone(),
                &Context::system(),
                AuditTarget::default(),
                what.to_owned(),
            )
        };

        // Read to the end: the header, every piece, then the entry.
        let whole = audited_export(
            &["x"],
            stream::iter(rows(&["a\r\n", "b\r\n"])),
            audit("whole"),
        );
        let sent: Vec<Vec<u8>> = whole.map(|piece| piece.unwrap()).collect().await;
        assert_eq!(
            sent,
            [b"x\r\n".to_vec(), b"a\r\n".to_vec(), b"b\r\n".to_vec()]
        );
        assert_eq!(study_actions(&store, 1).await, ["whole: 2 rows"]);

        // A piece fails: the error is sent, then nothing more.
        let mut pieces = rows(&["a\r\n"]);
        pieces.push(Err(Error::Unavailable("the store went away".into())));
        pieces.extend(rows(&["never sent\r\n"]));
        let failing = audited_export(&["x"], stream::iter(pieces), audit("failing"));
        let sent: Vec<Result<Vec<u8>>> = failing.collect().await;
        assert_eq!(sent.len(), 3, "header, one row, the error");
        assert!(matches!(sent[2], Err(Error::Unavailable(_))));
        assert_eq!(
            study_actions(&store, 2).await[1],
            "failing: 1 row, stopped early"
        );

        // The client leaves after the header.
        let mut left = audited_export(&["x"], stream::iter(rows(&["a\r\n"])), audit("left"));
        assert_eq!(left.next().await.unwrap().unwrap(), b"x\r\n");
        drop(left);
        assert_eq!(
            study_actions(&store, 3).await[2],
            "left: 0 rows, stopped early"
        );
    }

    #[test]
    fn formulas_are_neutralised_and_restored_exactly() {
        for (value, exported) in [
            ("=1+1", "'=1+1"),
            ("+49 30 1234", "'+49 30 1234"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=1", "''=1"),
            ("''", "'''"),
            ("'t Hooft", "'t Hooft"),
            ("'", "'"),
            ("O'Brien", "O'Brien"),
            ("Ada", "Ada"),
            ("", ""),
            ("محمد", "محمد"),
        ] {
            assert_eq!(neutralise(value), exported, "{value:?}");
            assert_eq!(restore(exported), value, "{exported:?}");
        }
    }

    #[test]
    fn rows_are_rfc_4180() {
        let text = csv_rows([
            vec![
                Cow::Borrowed("a,b"),
                Cow::Borrowed("say \"hi\""),
                Cow::Borrowed("=x"),
            ],
            vec![Cow::Borrowed(""), Cow::Borrowed("Zoë"), Cow::Borrowed("-")],
        ])
        .unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",'=x\r\n,Zoë,'-\r\n"
        );
    }
}
