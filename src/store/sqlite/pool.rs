//! The connection pool. deadpool's own SQLite manager checks every
//! connection on checkout by running `SELECT $1` through a second hop to a
//! blocking thread; with our single-row queries that check cost as much as
//! the query itself and doubled the thread switches per store call
//! (BENCHMARKS.md). A connection only becomes unusable here when a closure
//! panicked while holding it, which poisons its mutex, so that is all
//! recycling checks.

use std::path::{Path, PathBuf};

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_sync::SyncWrapper;
use rusqlite::Connection;

pub(crate) type Pool = managed::Pool<Manager>;
pub(crate) type PoolError = managed::PoolError<rusqlite::Error>;

/// Prepared statements kept per connection (`cached.rs`).
const STATEMENT_CACHE: usize = 128;

pub(crate) struct Manager {
    path: PathBuf,
    /// Run on every new connection (connection-scoped pragmas).
    pragmas: &'static str,
}

impl managed::Manager for Manager {
    type Type = SyncWrapper<Connection>;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let path = self.path.clone();
        let pragmas = self.pragmas;
        SyncWrapper::new(Runtime::Tokio1, move || {
            let conn = Connection::open(path)?;
            conn.execute_batch(pragmas)?;
            // Subject lists prepare a few statements per shape of query
            // (each part's count, collect and walk); rusqlite's default of
            // 16 made a mix of searches parse statements again and again.
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(conn)
        })
        .await
    }

    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        if conn.is_mutex_poisoned() {
            return Err(RecycleError::message(
                "a task panicked while using this connection",
            ));
        }
        Ok(())
    }
}

pub(crate) fn build(path: &Path, size: usize, pragmas: &'static str) -> anyhow::Result<Pool> {
    let manager = Manager {
        path: path.to_path_buf(),
        pragmas,
    };
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .build()?)
}
