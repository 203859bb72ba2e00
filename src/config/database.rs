//! Where the data lives and how long the service waits for it: the store
//! location decided from `database_url` (with MongoDB's database taken from
//! the URL when it names one), and the time bounds of database calls.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mongodb::options::{ConnectionString, ReadPreference};

use super::Config;

/// The MongoDB database when neither the URL nor `database_name` names one.
pub const DEFAULT_MONGO_DATABASE: &str = "idm";

/// Where the data lives, decided from `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Mongo { url: String, database: String },
}

/// How long the service waits for its database. Every wait is bounded, so
/// a database that stops answering turns into `503` answers, never hung
/// requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseTimeouts {
    /// The longest one store call may take, any retries and the wait for a
    /// new MongoDB primary included (both stores).
    pub operation: Duration,
    /// How long `/readyz` and `/status` wait for the database.
    pub readiness: Duration,
    /// MongoDB: how long an operation waits for a usable primary; longer
    /// than an election, so a failover is ridden out instead of answered
    /// with errors. `serverSelectionTimeoutMS` in the URL wins.
    pub server_selection: Duration,
    /// MongoDB: how long the server waits for a majority to acknowledge a
    /// write (`wtimeout`). `wtimeoutMS` in the URL wins.
    pub write_concern: Duration,
}

impl Default for DatabaseTimeouts {
    fn default() -> Self {
        Config::default().database_timeouts()
    }
}

impl Config {
    pub fn database_timeouts(&self) -> DatabaseTimeouts {
        DatabaseTimeouts {
            operation: Duration::from_secs(self.database_timeout_secs),
            readiness: Duration::from_secs(self.readyz_timeout_secs),
            server_selection: Duration::from_secs(self.mongodb_server_selection_timeout_secs),
            write_concern: Duration::from_secs(self.mongodb_write_timeout_secs),
        }
    }

    /// Checks the database settings (part of [`Config::validate`]).
    pub(super) fn validate_database(&self) -> anyhow::Result<()> {
        self.store_location()?;
        for (name, value) in [
            ("database_timeout_secs", self.database_timeout_secs),
            ("readyz_timeout_secs", self.readyz_timeout_secs),
            (
                "mongodb_server_selection_timeout_secs",
                self.mongodb_server_selection_timeout_secs,
            ),
            (
                "mongodb_write_timeout_secs",
                self.mongodb_write_timeout_secs,
            ),
        ] {
            if value == 0 {
                bail!("{name} must be greater than 0");
            }
        }
        // Otherwise every call would be cut off before the driver could
        // find the new primary or hear the server's write-concern answer.
        for (name, value) in [
            (
                "mongodb_server_selection_timeout_secs",
                self.mongodb_server_selection_timeout_secs,
            ),
            (
                "mongodb_write_timeout_secs",
                self.mongodb_write_timeout_secs,
            ),
        ] {
            if value >= self.database_timeout_secs {
                bail!(
                    "{name} ({value}) must be less than database_timeout_secs ({})",
                    self.database_timeout_secs
                );
            }
        }
        Ok(())
    }

    pub fn store_location(&self) -> anyhow::Result<StoreLocation> {
        let url = self.database_url.trim();
        if url.is_empty() {
            return Ok(StoreLocation::Sqlite(self.data_dir.join("idm.sqlite3")));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!(
                    "database_url sqlite:// needs a file path, e.g. sqlite:///var/lib/idm/idm.sqlite3"
                );
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            return Ok(StoreLocation::Mongo {
                url: url.to_owned(),
                database: mongo_database(url, &self.database_name)?,
            });
        }
        bail!("database_url must be empty, sqlite://PATH, mongodb://... or mongodb+srv://...")
    }
}

/// The database a MongoDB URL and `database_name` together name: the
/// URL's (`mongodb://host/prod`, which MongoDB users expect and which is
/// also the default `authSource`), else `database_name`, else `idm`. Both
/// naming different databases is refused rather than guessed. Also refuses
/// a read preference other than primary (see `store::mongo`).
pub fn mongo_database(url: &str, configured: &str) -> anyhow::Result<String> {
    // Parsing never shows the URL (it may hold a password).
    let parsed = ConnectionString::parse(url).context("invalid MongoDB URL in database_url")?;
    check_read_preference(parsed.read_preference.as_ref())?;
    let configured = configured.trim();
    match parsed.default_database.filter(|name| !name.is_empty()) {
        Some(from_url) if !configured.is_empty() && configured != from_url => bail!(
            "database_url names the database {from_url:?} but database_name is {configured:?}; \
             remove one of them or make them agree"
        ),
        Some(from_url) => Ok(from_url),
        None if configured.is_empty() => Ok(DEFAULT_MONGO_DATABASE.to_owned()),
        None => Ok(configured.to_owned()),
    }
}

/// Every read goes to the primary: sessions, versions and the last-admin
/// check must see the writes just acknowledged, which a secondary may not
/// have yet. Any other `readPreference` in the URL is refused at start.
pub fn check_read_preference(preference: Option<&ReadPreference>) -> anyhow::Result<()> {
    let mode = match preference {
        None | Some(ReadPreference::Primary) => return Ok(()),
        Some(ReadPreference::Secondary { .. }) => "secondary",
        Some(ReadPreference::PrimaryPreferred { .. }) => "primaryPreferred",
        Some(ReadPreference::SecondaryPreferred { .. }) => "secondaryPreferred",
        Some(ReadPreference::Nearest { .. }) => "nearest",
        Some(_) => "(a mode other than primary)",
    };
    bail!(
        "database_url sets readPreference={mode}; the service must read from the primary \
         (it reads back what it has just written, e.g. sessions and versions): remove \
         readPreference from the URL or set it to primary"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_urls_database_is_used_and_conflicts_are_refused() {
        let db = |url: &str, configured: &str| mongo_database(url, configured);
        assert_eq!(db("mongodb://h/prod", "").unwrap(), "prod");
        assert_eq!(db("mongodb://h/prod?w=1", "prod").unwrap(), "prod");
        assert_eq!(db("mongodb://h/?directConnection=true", "x").unwrap(), "x");
        assert_eq!(db("mongodb://h", "").unwrap(), "idm");
        let err = db("mongodb://u:hunter2@h/prod", "idm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"prod\"") && err.contains("\"idm\""), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn reads_from_secondaries_are_refused() {
        let err = mongo_database("mongodb://h/?readPreference=secondaryPreferred", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("readPreference=secondaryPreferred"), "{err}");
        assert!(mongo_database("mongodb://h/?readPreference=primary", "").is_ok());
        assert!(mongo_database("mongodb://h/?readPreference=nearest", "").is_err());
    }

    #[test]
    fn timeouts_must_leave_room_for_a_failover() {
        Config::default().validate().unwrap();
        let config = Config {
            mongodb_server_selection_timeout_secs: 20,
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("mongodb_server_selection_timeout_secs"),
            "{err}"
        );
        let config = Config {
            readyz_timeout_secs: 0,
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
