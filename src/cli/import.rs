//! `idm import --from mongodb://...`: reads the old service's collection and
//! imports it into the configured store, printing counts.

use std::process::ExitCode;

use super::{EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_FAILED};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::service::import;
use crate::store;
use crate::store::mongo::legacy;

pub async fn run(config: &Config, from: &str, db: &str, collection: &str, force: bool) -> ExitCode {
    if !(from.starts_with("mongodb://") || from.starts_with("mongodb+srv://")) {
        eprintln!("error: --from must be a mongodb:// or mongodb+srv:// URL");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let location = match config.store_location() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let now = SystemClock.now();
    let data = match legacy::read(from, db, collection, now).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot read the old data: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    println!(
        "read {db}.{collection}: {} users, {} subjects, {} links, {} audits, {} unreadable",
        data.users.len(),
        data.subjects.len(),
        data.links.len(),
        data.audits.len(),
        data.skipped.len()
    );
    let store = match store::open(&location, &config.database_timeouts()).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = import::run(&*store, data, now, force).await;
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(Error::Conflict(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("error: {}", e.public_message());
            eprintln!("detail: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
