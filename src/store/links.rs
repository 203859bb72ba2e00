//! Links: QR-code invitations that a mobile app redeems at `/establish`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq)]
pub struct LinkRecord {
    /// The link id and JWT `jti`: at least 128 random bits, hex encoded.
    pub id: String,
    /// The subject's sssid.
    pub sssid: String,
    pub iss: String,
    pub aud: String,
    pub algorithm: String,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    /// When the JWT was first issued; with `exp` it makes re-issuing the
    /// same token deterministic, so the token itself is never stored.
    pub issued_at: Option<DateTime<Utc>>,
    pub exp: Option<DateTime<Utc>>,
    pub linked_on: Option<DateTime<Utc>>,
    pub linked_to: Option<String>,
    pub linked_system: Option<String>,
    pub withdrawn_on: Option<DateTime<Utc>>,
    /// Optimistic-concurrency counter, as for subjects.
    pub version: i64,
}

#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Fails with `Duplicate` if the id is taken.
    async fn insert_link(&self, link: &LinkRecord) -> StoreResult<()>;
    async fn link(&self, id: &str) -> StoreResult<Option<LinkRecord>>;
    /// Oldest first.
    async fn links_for_subject(&self, sssid: &str) -> StoreResult<Vec<LinkRecord>>;
    /// Writes `link` only if the stored version is still `expected_version`
    /// (see `SubjectStore::replace_subject`). This is what makes exactly one
    /// of many concurrent establishes win.
    async fn replace_link(&self, link: &LinkRecord, expected_version: i64) -> StoreResult<bool>;
}
