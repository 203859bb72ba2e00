//! `idm audit verify`: the audit chain's verdict for operators and
//! scripts.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{EXIT_CONFIG, EXIT_FAILED};
use crate::app::build_state;
use crate::clock::{OsRandom, SystemClock};
use crate::config::Config;
use crate::service::Context;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain. Prints `{"ok":true,"entries":N}`
    /// and exits 0, or names the first broken entry and exits 1.
    Verify,
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
