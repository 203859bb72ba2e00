//! Subjects imported in bulk from CSV: the columns of the export (`sssid`,
//! `name`, `bday` required; `email` and the `date_*` columns optional, in
//! any order), each row checked by the rules of `POST /subject`, a dry run
//! that lists every row's problem without writing, and the import proper,
//! which writes all rows or none (`all`) or the valid ones (`valid`), each
//! subject through the subject service with its normal `create` audit.

use std::collections::HashMap;

use serde::Serialize;

use super::{CsvService, SUBJECT_COLUMNS, restore};
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::audits::AuditTarget;
use crate::service::subjects::{NewSubject, SubjectFields};

/// What to do with a file that has bad rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Import nothing unless every row is valid.
    #[default]
    All,
    /// Import the valid rows, leave the others.
    Valid,
}

impl ImportMode {
    /// `all` or `valid`, any letter case; blank is `all`.
    pub fn parse(text: Option<&str>) -> Result<Self> {
        match text
            .map(str::trim)
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "all" => Ok(ImportMode::All),
            "valid" => Ok(ImportMode::Valid),
            other => Err(Error::BadRequest(format!(
                "mode must be all or valid, got {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::All => "all",
            ImportMode::Valid => "valid",
        }
    }
}

/// One row's problem. `row` counts as a spreadsheet does: the header is
/// row 1, the first subject row 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportRowError {
    pub row: u64,
    pub message: String,
}

/// What an import (or its dry run) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Subject rows in the file (blank rows are not counted).
    pub rows: u64,
    /// Rows without a problem.
    pub valid: u64,
    /// Subjects written; 0 in a dry run, and with `mode=all` when any row
    /// has a problem.
    pub imported: u64,
    /// Every row's problem, in file order.
    pub errors: Vec<ImportRowError>,
}

/// One subject row of the file as read: the cells by column (the
/// neutralising `'` taken off), and its problem if it has one.
#[derive(Debug, Clone)]
pub struct CheckedRow {
    pub row: u64,
    pub fields: SubjectFields,
    pub problem: Option<String>,
    subject: Option<NewSubject>,
}

/// A whole file, checked.
#[derive(Debug, Clone, Default)]
pub struct ImportCheck {
    pub rows: Vec<CheckedRow>,
}

impl ImportCheck {
    fn report(&self) -> ImportReport {
        let errors: Vec<ImportRowError> = self
            .rows
            .iter()
            .filter_map(|r| {
                r.problem.as_ref().map(|message| ImportRowError {
                    row: r.row,
                    message: message.clone(),
                })
            })
            .collect();
        ImportReport {
            rows: self.rows.len() as u64,
            valid: (self.rows.len() - errors.len()) as u64,
            imported: 0,
            errors,
        }
    }
}

/// The columns named by the header row, by position.
fn columns(header: &csv::StringRecord) -> Result<Vec<&'static str>> {
    let mut found = Vec::new();
    for name in header.iter() {
        let name = restore(name.trim()).to_ascii_lowercase();
        let column = SUBJECT_COLUMNS
            .iter()
            .find(|c| **c == name)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown column {name:?}; the columns are {}",
                    SUBJECT_COLUMNS.join(", ")
                ))
            })?;
        if found.contains(column) {
            return Err(Error::BadRequest(format!("column {name:?} appears twice")));
        }
        found.push(*column);
    }
    let missing: Vec<&str> = ["sssid", "name", "bday"]
        .into_iter()
        .filter(|c| !found.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(Error::BadRequest(format!(
            "the header row must name the columns sssid, name and bday; missing: {}",
            missing.join(", ")
        )));
    }
    Ok(found)
}

/// A row's cells as the fields of a new subject; an empty cell is a value
/// not given.
fn fields_of(columns: &[&str], record: &csv::StringRecord) -> SubjectFields {
    let mut fields = SubjectFields::default();
    for (column, cell) in columns.iter().zip(record.iter()) {
        let value = restore(cell);
        let given = (!value.is_empty()).then(|| value.to_owned());
        match *column {
            "sssid" => fields.sssid = given,
            "name" => fields.name = given,
            "bday" => fields.bday = given,
            "email" => fields.email = given.map(Some),
            "date_invited" => fields.date_invited = given,
            "date_consented" => fields.date_consented = given,
            "date_enrolled" => fields.date_enrolled = given,
            _ => fields.date_withdrawn = given,
        }
    }
    fields
}

impl CsvService {
    /// Reads and checks a whole file without writing: every row's problem
    /// (a field that breaks a rule, a missing field, an sssid that an
    /// earlier row of the file or a stored subject has). A file that
    /// cannot be read as a whole (not UTF-8, a bad header row) is refused.
    pub async fn check_subjects(&self, ctx: &Context, file: &[u8]) -> Result<ImportCheck> {
        // Checking is the first step of an import: for those who may write.
        ctx.require_write()?;
        let text = std::str::from_utf8(file).map_err(|e| {
            Error::BadRequest(format!(
                "the file must be UTF-8 text (byte {} is not)",
                e.valid_up_to() + 1
            ))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| Error::BadRequest(format!("cannot read the header row: {e}")))?
            .clone();
        if header.iter().all(|c| c.trim().is_empty()) {
            return Err(Error::BadRequest(
                "the file is empty; its first row must name the columns".into(),
            ));
        }
        let columns = columns(&header)?;
        let mut check = ImportCheck::default();
        // The row that first had each sssid.
        let mut first_row: HashMap<String, u64> = HashMap::new();
        for (index, record) in reader.records().enumerate() {
            let row = index as u64 + 2;
            let record = record
                .map_err(|e| Error::BadRequest(format!("cannot read row {row} as CSV: {e}")))?;
            if record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let fields = fields_of(&columns, &record);
            let checked = if record.len() != columns.len() {
                Err(format!(
                    "the row has {} cells, the header row {}",
                    record.len(),
                    columns.len()
                ))
            } else {
                self.check_row(&fields, row, &mut first_row).await?
            };
            let (subject, problem) = match checked {
                Ok(subject) => (Some(subject), None),
                Err(problem) => (None, Some(problem)),
            };
            check.rows.push(CheckedRow {
                row,
                fields,
                problem,
                subject,
            });
        }
        Ok(check)
    }

    /// One row: the subject it creates, or its problem. Fails only when
    /// the store does.
    async fn check_row(
        &self,
        fields: &SubjectFields,
        row: u64,
        first_row: &mut HashMap<String, u64>,
    ) -> Result<std::result::Result<NewSubject, String>> {
        let subject = match self.subjects.check_new(fields) {
            Ok(subject) => subject,
            Err(Error::Invalid(errors)) => {
                let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                return Ok(Err(messages.join("; ")));
            }
            Err(other) => return Err(other),
        };
        let sssid = subject.sssid().to_owned();
        if self.deps.store.subject(&sssid).await?.is_some() {
            return Ok(Err(format!(
                "sssid {sssid:?} is already taken by a stored subject"
            )));
        }
        if let Some(earlier) = first_row.get(&sssid) {
            return Ok(Err(format!(
                "sssid {sssid:?} is already in row {earlier} of the file"
            )));
        }
        first_row.insert(sssid, row);
        Ok(Ok(subject))
    }

    /// Checks `file` and, unless `dry_run`, writes its subjects as `mode`
    /// says. A row whose sssid is taken between the check and the write
    /// (someone else created it meanwhile) is reported and not written.
    pub async fn import_subjects(
        &self,
        ctx: &Context,
        file: &[u8],
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportReport> {
        let check = self.check_subjects(ctx, file).await?;
        self.import_checked(ctx, check, mode, dry_run).await
    }

    /// As [`CsvService::import_subjects`], for a file already checked.
    pub async fn import_checked(
        &self,
        ctx: &Context,
        check: ImportCheck,
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportReport> {
        let mut report = check.report();
        if dry_run {
            return Ok(report);
        }
        if mode == ImportMode::All && !report.errors.is_empty() {
            self.audit_import(ctx, mode, &report, false).await;
            return Ok(report);
        }
        for row in check.rows {
            let Some(subject) = row.subject else {
                continue;
            };
            match self.subjects.insert_new(ctx, subject).await {
                Ok(_) => report.imported += 1,
                Err(Error::Conflict(message)) => {
                    report.valid -= 1;
                    report.errors.push(ImportRowError {
                        row: row.row,
                        message,
                    });
                }
                Err(other) => {
                    self.audit_import(ctx, mode, &report, true).await;
                    return Err(other);
                }
            }
        }
        report.errors.sort_by_key(|e| e.row);
        self.audit_import(ctx, mode, &report, false).await;
        Ok(report)
    }

    async fn audit_import(
        &self,
        ctx: &Context,
        mode: ImportMode,
        report: &ImportReport,
        stopped: bool,
    ) {
        let action = format!(
            "import subjects from CSV (mode {}): {} rows, {} valid, {} imported{}",
            mode.as_str(),
            report.rows,
            report.valid,
            report.imported,
            if stopped { ", stopped by an error" } else { "" }
        );
        self.audits
            .record(ctx, AuditTarget::default(), action)
            .await;
    }
}
