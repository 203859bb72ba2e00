//! Adapts the store's [`SessionRecordStore`] contract to tower-sessions'
//! `SessionStore`, so one implementation per database serves the browser
//! sessions of every instance.
//!
//! Two choices live here rather than in each backend: the database only
//! sees a SHA-256 hash of the session id (a copy of the database holds no
//! usable cookies), and expiry is measured with the service clock, so the
//! idle timeout is `now + idle` at every save and tests can cross it with a
//! manual clock.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use sha2::{Digest, Sha256};
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::clock::Clock;
use crate::store::{SessionRecord, Store, StoreError};

/// Attempts at finding an unused random id before giving up; with 128-bit
/// ids a single collision is already astronomically unlikely.
const CREATE_ATTEMPTS: usize = 3;

#[derive(Clone)]
pub struct DbSessionStore {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    idle: Duration,
}

impl fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSessionStore")
            .field("backend", &self.store.backend())
            .field("idle", &self.idle)
            .finish()
    }
}

impl DbSessionStore {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, idle: Duration) -> Self {
        Self { store, clock, idle }
    }

    fn record(&self, record: &Record) -> session_store::Result<SessionRecord> {
        Ok(SessionRecord {
            id: stored_id(&record.id),
            data: serde_json::to_string(&record.data)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?,
            expires: self.clock.now() + self.idle,
        })
    }
}

/// What the database keeps instead of the cookie value.
pub fn stored_id(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(err: StoreError) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        for _ in 0..CREATE_ATTEMPTS {
            match self.store.create_session(&self.record(record)?).await {
                Err(StoreError::Duplicate(_)) => record.id = Id::default(),
                other => return other.map_err(backend),
            }
        }
        Err(session_store::Error::Backend(
            "could not find an unused session id".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store
            .save_session(&self.record(record)?)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = self.clock.now();
        let Some(stored) = self
            .store
            .load_session(&stored_id(id), now)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&stored.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        // tower-sessions recomputes the expiry at the next save; this is
        // only the remaining lifetime on the wall clock.
        let remaining = (stored.expires - now).num_seconds();
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: OffsetDateTime::now_utc()
                + tower_sessions::cookie::time::Duration::seconds(remaining),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store
            .delete_session(&stored_id(id))
            .await
            .map_err(backend)
    }
}
