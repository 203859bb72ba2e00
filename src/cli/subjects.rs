//! `idm subjects import FILE [--dry-run] [--mode all|valid]`: subjects
//! from a CSV file, checked and imported by the rules of
//! `POST /subject/import`; `idm subjects erase SSSID --reason`: a
//! withdrawn subject's personal data.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_FAILED};
use crate::app::AppState;
use crate::error::Error;
use crate::service::Context;
use crate::service::csv::ImportMode;

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Import subjects from a CSV file (the columns of the CSV export:
    /// sssid, name, bday, and optionally email and the date_* columns).
    /// Exits 0 when every row was valid, 1 when some row had a problem
    /// (each is listed), 2 when the file cannot be read.
    Import {
        file: PathBuf,
        /// Check every row and list the problems; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// `all`: import nothing if any row has a problem; `valid`: import
        /// the valid rows.
        #[arg(long, default_value = "all", value_parser = ["all", "valid"])]
        mode: String,
    },
    /// Erase a withdrawn subject's name, email and birth date, also inside
    /// its audit entries; the sssid, journey dates and trail remain.
    Erase {
        sssid: String,
        /// Why (kept in the audit trail; name no personal data).
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(state: &AppState, cmd: SubjectCommand) -> ExitCode {
    match cmd {
        SubjectCommand::Import {
            file,
            dry_run,
            mode,
        } => import(state, file, dry_run, mode).await,
        SubjectCommand::Erase { sssid, reason } => erase(state, &sssid, &reason).await,
    }
}

async fn erase(state: &AppState, sssid: &str, reason: &str) -> ExitCode {
    let erased = state
        .services
        .subjects
        .erase(&Context::system(), sssid, reason)
        .await;
    match erased {
        Ok(()) => {
            println!("erased the personal data of {sssid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.public_message());
            ExitCode::from(match e {
                Error::BadRequest(_) | Error::Invalid(_) => EXIT_BAD_INPUT,
                Error::Unavailable(_) => EXIT_CONFIG,
                _ => EXIT_FAILED,
            })
        }
    }
}

async fn import(state: &AppState, file: PathBuf, dry_run: bool, mode: String) -> ExitCode {
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mode = match ImportMode::parse(Some(&mode)) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let result = state
        .services
        .csv
        .import_subjects(&Context::system(), &bytes, mode, dry_run)
        .await;
    let report = match result {
        Ok(report) => report,
        Err(e @ (Error::BadRequest(_) | Error::Invalid(_))) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => {
            eprintln!("error: {}", e.public_message());
            eprintln!("detail: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    for problem in &report.errors {
        println!("row {}: {}", problem.row, problem.message);
    }
    let outcome = if dry_run {
        "dry run, nothing written".to_owned()
    } else {
        format!("{} imported", report.imported)
    };
    println!(
        "{} rows, {} valid, {} with problems; {outcome}",
        report.rows,
        report.valid,
        report.errors.len()
    );
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}
