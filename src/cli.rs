//! The `idm` command line: `serve` (default), user management, `subjects
//! import` and `subjects erase`, `check`, `backup`, `import`, `secret` and
//! `audit verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{Application, build_state};
use crate::clock::{OsRandom, SystemClock};
use crate::config::{Config, StoreLocation};
use crate::error::Error;
use crate::store::sqlite::SqliteStore;

mod audit;
mod import;
mod subjects;
mod users;

pub use users::UserCommand;

#[derive(Debug, Parser)]
#[command(
    name = "idm",
    version,
    about = "C3-PRO IDM: identity and study-participant manager"
)]
pub struct Cli {
    /// TOML configuration file (also IDM_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve {
        /// Listen address (overrides IDM_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Listen port (overrides IDM_PORT).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Study subjects: import them from CSV, erase a withdrawn subject's
    /// personal data.
    #[command(subcommand)]
    Subjects(subjects::SubjectCommand),
    /// Validate configuration, database and mail, then exit.
    Check,
    /// Import users, subjects, links and audits from the old service's
    /// MongoDB collection into the configured store. Safe to re-run.
    Import {
        /// The old service's MongoDB, e.g. mongodb://host:27017.
        #[arg(long, value_name = "URL")]
        from: String,
        /// Database of the old service.
        #[arg(long, default_value = "default")]
        db: String,
        /// Collection of the old service.
        #[arg(long, default_value = "c3pro_idm")]
        collection: String,
        /// Overwrite records that differ from the stored ones.
        #[arg(long)]
        force: bool,
    },
    /// Write a consistent copy of the SQLite database while the service runs.
    Backup {
        /// The new file to write (must not exist).
        destination: PathBuf,
    },
    /// Print a new random secret (32 random bytes as 64 hex characters) for
    /// token_secret or link_secret.
    Secret,
    /// Check the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Exit codes: 0 success, 1 the operation failed, 2 bad input, 3 bad
/// configuration or unreachable database.
const EXIT_FAILED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_CONFIG: u8 = 3;

pub async fn run(cli: Cli) -> ExitCode {
    // Needs no configuration: it is how one fixes a refused secret.
    if let Some(Command::Secret) = cli.command {
        println!("{}", crate::config::random_secret());
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve {
        bind: None,
        port: None,
    });
    let serving = matches!(command, Command::Serve { .. });
    crate::telemetry::init(
        config.log_format,
        if serving { &config.log_level } else { "warn" },
    );
    match command {
        Command::Serve { bind, port } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            if let Some(port) = port {
                config.port = port;
            }
            serve(config).await
        }
        Command::Check => check(config).await,
        Command::Import {
            from,
            db,
            collection,
            force,
        } => import::run(&config, &from, &db, &collection, force).await,
        Command::Backup { destination } => backup(config, destination).await,
        Command::Audit(cmd) => audit::audit(config, cmd).await,
        Command::Secret => unreachable!("handled before the configuration is read"),
        Command::Subjects(cmd) => {
            let state = match build_state(config, Arc::new(SystemClock), Arc::new(OsRandom)).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            subjects::run(&state, cmd).await
        }
        Command::User(cmd) => {
            let state = match build_state(config, Arc::new(SystemClock), Arc::new(OsRandom)).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match users::user_command(&state, cmd).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {}", e.public_message());
                    if let Error::Internal(_) | Error::Unavailable(_) = e {
                        eprintln!("detail: {e}");
                    }
                    ExitCode::from(match e {
                        Error::BadRequest(_) | Error::Invalid(_) => EXIT_BAD_INPUT,
                        _ => EXIT_FAILED,
                    })
                }
            }
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn check(config: Config) -> ExitCode {
    println!("configuration: ok");
    let state = match build_state(config, Arc::new(SystemClock), Arc::new(OsRandom)).await {
        Ok(s) => s,
        Err(e) => {
            println!("startup: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let db = state.services.health.database().await;
    let mail = state.services.health.mail().await;
    println!("database ({}): {db}", state.services.deps.store.backend());
    println!("mail: {mail}");
    if db == "ok" && mail == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

async fn backup(config: Config, destination: PathBuf) -> ExitCode {
    let path = match config.store_location() {
        Ok(StoreLocation::Sqlite(path)) => path,
        Ok(StoreLocation::Mongo { .. }) => {
            eprintln!(
                "error: idm backup copies the SQLite store; back up MongoDB with mongodump (see DEPLOY.md)"
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !path.exists() {
        eprintln!("error: there is no database at {}", path.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    let store = match SqliteStore::open(&path).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match store.backup_to(&destination).await {
        Ok(()) => {
            println!("backed up {} to {}", path.display(), destination.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: backup failed: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
