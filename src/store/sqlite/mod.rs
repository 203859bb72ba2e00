//! The embedded store: one SQLite file in WAL mode. Writes go through a
//! single connection (SQLite has one writer at a time anyway, and queueing in
//! the pool is cheaper than busy-waiting), reads through a small pool.

use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{self, Connection, ErrorCode};
use rusqlite_migration::{M, Migrations};

use self::checkpoint::Checkpointer;
use self::pool::{Pool, PoolError};
use super::{Store, StoreError, StoreResult};

mod audits;
mod cached;
mod checkpoint;
mod links;
mod pool;
mod reset_tokens;
mod sessions;
mod subjects;
mod throttle;
mod users;

/// Versioned schema; append only, never edit a released migration.
fn migrations() -> Migrations<'static> {
    Migrations::new(migration_steps())
}

fn migration_steps() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("migrations/001_users_audits_throttle.sql")),
        M::up(include_str!("migrations/002_subjects_links.sql")),
        M::up(include_str!("migrations/003_reset_tokens.sql")),
        M::up(include_str!("migrations/004_sessions.sql")),
        M::up(include_str!("migrations/005_audit_client_ip.sql")),
        M::up(include_str!("migrations/006_subject_name_index.sql")),
        M::up_with_hook(
            include_str!("migrations/007_subject_name_sort.sql"),
            subjects::backfill_name_sort_keys,
        ),
    ]
}

/// Applied to every new connection. In WAL mode `synchronous=NORMAL`
/// writes each commit to the WAL before it is acknowledged, so a crash of
/// the process loses nothing (tests/perf.rs kills it to check), and syncs
/// only at checkpoints. `FULL` would add an fsync to every commit: about
/// 1.3 ms on the benchmark machine's disk, with one writer at a time that
/// caps writes below 800 commits per second (BENCHMARKS.md). The price: a
/// power loss or kernel crash may lose the last commits before the next
/// checkpoint, never the database's consistency.
///
/// `wal_autocheckpoint = 10000` (40 MB of pages, SQLite's default is 1,000):
/// a backstop only; checkpoint.rs copies commits into the database file
/// off the commit path.
const CONNECTION_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
     PRAGMA foreign_keys = ON;
     PRAGMA synchronous = NORMAL;
     PRAGMA temp_store = MEMORY;
     PRAGMA wal_autocheckpoint = 10000;";

const READER_CONNECTIONS: usize = 4;

pub struct SqliteStore {
    writer: Pool,
    readers: Pool,
    checkpointer: Checkpointer,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let path_owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut conn = Connection::open(&path_owned)
                .with_context(|| format!("cannot open {}", path_owned.display()))?;
            conn.execute_batch(CONNECTION_PRAGMAS)?;
            // WAL lets readers proceed while a write commits; it is a property
            // of the file, so setting it once is enough.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            anyhow::ensure!(
                mode.eq_ignore_ascii_case("wal"),
                "cannot enable WAL mode (got {mode})"
            );
            migrations()
                .to_latest(&mut conn)
                .context("cannot migrate the database schema")?;
            Ok(())
        })
        .await??;
        Ok(Self {
            writer: pool::build(path, 1, CONNECTION_PRAGMAS)?,
            readers: pool::build(path, READER_CONNECTIONS, CONNECTION_PRAGMAS)?,
            checkpointer: Checkpointer::start(path, CONNECTION_PRAGMAS)?,
        })
    }

    /// Writes a consistent copy of the database to `dest` while the service
    /// keeps running (`VACUUM INTO` reads one snapshot). `dest` must not exist.
    pub async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "{} already exists; choose a new file",
                dest.display()
            )));
        }
        let dest = dest.to_string_lossy().into_owned();
        self.read(move |c| c.execute("VACUUM INTO ?1", [dest]).map(|_| ()))
            .await
    }

    /// Runs `f` on a reader connection off the async threads.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.readers.get().await.map_err(unavailable)?;
        conn.interact(move |c| f(c))
            .await
            .map_err(|e| StoreError::Other(anyhow::anyhow!("sqlite task failed: {e}")))?
            .map_err(classify)
    }

    /// Runs `f`, a lookup of one row by its primary or unique key, on a
    /// reader connection right here on the async thread. Such a lookup
    /// takes a few microseconds (a handful of cached index pages; WAL
    /// readers never wait for the writer), less than the two thread
    /// switches of a hop to a blocking thread and back, which made up most
    /// of the cost of a staff read (BENCHMARKS.md). Anything that can
    /// touch many rows uses [`Self::read`].
    async fn read_by_key<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R>,
    {
        let conn = self.readers.get().await.map_err(unavailable)?;
        let guard = conn.lock().map_err(|_| {
            StoreError::Unavailable("sqlite: a reader connection was poisoned".into())
        })?;
        f(&guard).map_err(classify)
    }

    /// Runs `f` on the writer connection off the async threads. `f` opens a
    /// transaction itself when it needs more than one statement.
    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.writer.get().await.map_err(unavailable)?;
        let result = conn
            .interact(f)
            .await
            .map_err(|e| StoreError::Other(anyhow::anyhow!("sqlite task failed: {e}")))?;
        self.checkpointer.committed();
        result
    }
}

/// Creates the data folder readable by the service user only: it holds
/// personal data of study participants.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create data folder {}", dir.display()))
}

fn unavailable(e: PoolError) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

/// Maps SQLite errors onto the store's error kinds.
pub(crate) fn classify(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, msg) = &err {
        match code.code {
            ErrorCode::ConstraintViolation
                if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return StoreError::Duplicate(msg.clone().unwrap_or_else(|| "key".into()));
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable("sqlite: database is busy".into());
            }
            _ => {}
        }
    }
    StoreError::Other(err.into())
}

/// Fixed-width RFC 3339 UTC, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

pub(crate) fn parse_opt_ts(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

/// Escapes `%`, `_` and `\` so user text is matched literally by
/// `LIKE ... ESCAPE '\'`.
pub(crate) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    /// Subjects written before migration 007 get their name's sort key,
    /// so the name order covers them too.
    #[tokio::test]
    async fn migration_007_gives_existing_names_their_sort_key() {
        use crate::store::{SubjectColumn, SubjectQuery, SubjectStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            let mut before = migration_steps();
            before.truncate(6);
            Migrations::new(before).to_latest(&mut conn).unwrap();
            for (sssid, name) in [
                ("S1", "Zoë"),
                ("S2", "Émilie"),
                ("S3", "Åsa"),
                ("S4", "bob"),
            ] {
                conn.execute(
                    "INSERT INTO subjects (sssid, name, name_folded, bday, created, changed, version)
                     VALUES (?1, ?2, lower(?2), '1980-01-01', '2026-01-01T00:00:00.000000Z',
                             '2026-01-01T00:00:00.000000Z', 1)",
                    [sssid, name],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let page = store
            .list_subjects(&SubjectQuery {
                search: None,
                status: None,
                order_by: SubjectColumn::Name,
                descending: false,
                offset: 0,
                limit: 10,
            })
            .await
            .unwrap();
        let names: Vec<_> = page.items.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Åsa", "bob", "Émilie", "Zoë"]);
    }

    #[tokio::test]
    async fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        SqliteStore::open(&path).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 999")
            .unwrap();
        let err = SqliteStore::open(&path).await.err().expect("refused");
        assert!(format!("{err:#}").contains("migrate"), "{err:#}");
    }

    /// Commits reach the database file without a checkpoint in the commit
    /// path: well below the writer's backstop, the file still grows.
    #[tokio::test]
    async fn commits_are_checkpointed_in_the_background() {
        use crate::store::{SubjectRecord, SubjectStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        let store = SqliteStore::open(&path).await.unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let now = Utc::now();
        for i in 0..200 {
            let subject = SubjectRecord::new(
                format!("S{i:04}"),
                format!("Checkpoint Test {i}"),
                chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                None,
                now,
            );
            store.insert_subject(&subject).await.unwrap();
        }
        for _ in 0..100 {
            if size() > before {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the database file stayed at {before} bytes for 2 s after 200 commits");
    }

    #[tokio::test]
    async fn the_data_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        SqliteStore::open(&data.join("idm.sqlite3")).await.unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
