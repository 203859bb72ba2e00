//! Browser sessions, kept in the store so every instance sees them. The web
//! layer adapts this to tower-sessions' `SessionStore`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    /// The serialized session data (JSON).
    pub data: String,
    pub expires: DateTime<Utc>,
}

#[async_trait]
pub trait SessionRecordStore: Send + Sync {
    /// Inserts a new session; `Duplicate` if the id exists (the caller then
    /// picks another id).
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// Inserts or overwrites.
    async fn save_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session, unless it has expired at `now`.
    async fn load_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Housekeeping; returns how many were removed.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}
