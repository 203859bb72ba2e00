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

use futures_util::Stream;

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
pub(crate) fn header(columns: &[&'static str]) -> Result<Vec<u8>> {
    csv_rows([columns.iter().map(|c| Cow::Borrowed(*c))])
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
    pub(crate) rows: u64,
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
