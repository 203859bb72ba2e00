//! `idm audit verify`: the audit chain's verdict for operators and
//! scripts; `idm subjects erase`: a withdrawn subject's personal data.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_FAILED};
use crate::app::build_state;
use crate::clock::{OsRandom, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::service::Context;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain. Prints `{"ok":true,"entries":N}`
    /// and exits 0, or names the first broken entry and exits 1.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum SubjectsCommand {
    /// Erase a withdrawn subject's name, email and birth date, also inside
    /// its audit entries; the sssid, journey dates and trail remain.
    Erase {
        sssid: String,
        /// Why (kept in the audit trail; name no personal data).
        #[arg(long)]
        reason: String,
    },
}

pub async fn audit(config: Config, command: AuditCommand) -> ExitCode {
    let state = match build_state(config, Arc::new(SystemClock), Arc::new(OsRandom)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        AuditCommand::Verify => match state.services.audits.verify(&Context::system()).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                if report.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_FAILED)
                }
            }
            Err(e) => {
                eprintln!("error: cannot verify the audit trail: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
    }
}

pub async fn subjects(config: Config, command: SubjectsCommand) -> ExitCode {
    let state = match build_state(config, Arc::new(SystemClock), Arc::new(OsRandom)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        SubjectsCommand::Erase { sssid, reason } => {
            let erased = state
                .services
                .subjects
                .erase(&Context::system(), &sssid, &reason)
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
    }
}
