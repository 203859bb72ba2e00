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
use crate::private_files;

mod accounts;
mod audits;
mod cached;
mod checkpoint;
mod links;
mod pool;
mod reset_tokens;
mod sessions;
pub mod subject_list;
mod subjects;
mod throttle;
mod users;

/// Versioned schema; append only, never edit a released migration.
fn migrations() -> Migrations<'static> {
    Migrations::new(migration_steps())
}

pub(crate) fn migration_steps() -> Vec<M<'static>> {
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
        M::up(include_str!("migrations/008_accounts.sql")),
        M::up(include_str!("migrations/009_subject_list_at_scale.sql")),
        M::up_with_hook(
            include_str!("migrations/010_audit_chain.sql"),
            audits::chain_existing_entries,
        ),
        M::up(include_str!("migrations/011_audits_by_time.sql")),
    ]
}

/// Applied to every new connection. In WAL mode `synchronous=NORMAL`
/// writes each commit to the WAL before it is acknowledged, so a crash of
/// the process loses nothing (tests/integration/perf.rs kills it to check), and syncs
/// only at checkpoints. `FULL` would add an fsync to every commit: about
/// 1.3 ms on the benchmark machine's disk, with one writer at a time that
/// caps writes below 800 commits per second (BENCHMARKS.md). The price: a
/// power loss or kernel crash may lose the last commits before the next
/// checkpoint, never the database's consistency.
///
/// `wal_autocheckpoint = 10000` (40 MB of pages, SQLite's default is 1,000):
/// a backstop only; checkpoint.rs copies commits into the database file
/// off the commit path.
///
/// `secure_delete = ON`: SQLite overwrites deleted and replaced content
/// with zeros instead of leaving it in free space, so a subject's erased
/// personal data is gone from the database file once it is checkpointed
/// (`erase` below truncates the WAL too).
const CONNECTION_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
     PRAGMA foreign_keys = ON;
     PRAGMA secure_delete = ON;
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
        create_private_database(path)?;
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
    /// keeps running (`VACUUM INTO` reads one snapshot). `dest` must not
    /// exist. It is created first, empty and mode 0600 (a backup is as
    /// private as the database), and `VACUUM INTO` fills the empty file.
    pub async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        match private_files::create_new(dest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Other(anyhow::anyhow!(
                    "{} already exists; choose a new file",
                    dest.display()
                )));
            }
            Err(e) => {
                return Err(StoreError::Other(
                    anyhow::Error::new(e).context(format!("cannot create {}", dest.display())),
                ));
            }
        }
        let target = dest.to_string_lossy().into_owned();
        let copied = self
            .read(move |c| c.execute("VACUUM INTO ?1", [target]).map(|_| ()))
            .await;
        if copied.is_err() {
            // Leave no empty or half-written file that looks like a backup.
            let _ = std::fs::remove_file(dest);
        }
        copied
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

/// Creates the database file (and its folder) readable by the service user
/// only: it holds password hashes and personal data of study participants.
/// SQLite gives the `-wal` and `-shm` files the mode of the database file.
/// An existing file keeps its mode, with a warning if others may read it.
fn create_private_database(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_files::create_dir_all(dir)
            .with_context(|| format!("cannot create data folder {}", dir.display()))?;
    }
    match private_files::create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if private_files::readable_by_others(path) {
                tracing::warn!(
                    path = %path.display(),
                    "the database can be read by other users; `chmod 600` it (and its -wal/-shm files)"
                );
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
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
    async fn the_data_folder_its_files_and_backups_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = SqliteStore::open(&data.join("idm.sqlite3")).await.unwrap();
        assert_eq!(mode(&data), 0o700);
        // Whatever this process's umask: the database is created 0600 and
        // SQLite gives its -wal and -shm files the same mode.
        let mut files: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["idm.sqlite3", "idm.sqlite3-shm", "idm.sqlite3-wal"]);
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        let copy = dir.path().join("copy.sqlite3");
        store.backup_to(&copy).await.unwrap();
        assert_eq!(mode(&copy), 0o600);
        assert!(std::fs::metadata(&copy).unwrap().len() > 0, "filled");
        assert!(store.backup_to(&copy).await.is_err(), "never overwrites");
        let unwritable = dir.path().join("no/such/folder/copy.sqlite3");
        assert!(store.backup_to(&unwritable).await.is_err());
    }
}
