//! Storage behind small async traits, one per aggregate, with two
//! implementations: SQLite (embedded default) and MongoDB. The service layer
//! only sees `Arc<dyn Store>`; the conformance suite in `tests/` runs the
//! same checks against both.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::config::{DatabaseTimeouts, StoreLocation};

pub mod accounts;
pub mod bounded;
pub mod chain;
pub mod links;
pub mod mongo;
pub mod reset_tokens;
pub mod sessions;
pub mod sqlite;
pub mod subject_list;
pub mod subjects;

pub use accounts::{AccountChange, AccountRecord, AccountStore, AccountWriteOutcome, TotpRecord};
pub use links::{LinkRecord, LinkStore};
pub use reset_tokens::{ResetTokenRecord, ResetTokenStore};
pub use sessions::{SessionRecord, SessionRecordStore};
pub use subject_list::{DEFAULT_COUNT_LIMIT, SubjectPage, Total};
pub use subjects::{
    SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore, name_sort_key,
};

/// What can go wrong in any store, mapped by the service layer to API errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; names what was duplicated.
    #[error("duplicate {0}")]
    Duplicate(String),
    /// The database cannot be reached or is overloaded; worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of results plus the number of all matches, for pagination.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

// ---------------------------------------------------------------- users

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    /// Normalised email address; unique.
    pub username: String,
    /// PHC string: `$argon2id$...`, or `$2b$...` for accounts imported from
    /// the old service until their next login.
    pub password_hash: String,
    pub admin: bool,
    /// Part of every staff token; bumping it revokes all tokens and sessions
    /// of the user at once.
    pub token_version: i64,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Literal, case-insensitive substring of the username.
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// A change to a user, applied atomically with the last-admin rule.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub admin: Option<bool>,
    pub password_hash: Option<String>,
    /// Invalidate every token and session of the user.
    pub revoke_tokens: bool,
    pub changed: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserWriteOutcome {
    /// The user as it is after the write (or as it was, for a delete).
    Done(UserRecord),
    NotFound,
    /// Refused: it would leave the system without an admin.
    LastAdmin,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Duplicate("user")` if the username is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Inserts `user` (an admin) only if no admin exists yet, atomically:
    /// of many concurrent calls at most one returns `true`.
    async fn insert_first_admin(&self, user: &UserRecord) -> StoreResult<bool>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// Ordered by username.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>>;
    async fn admin_exists(&self) -> StoreResult<bool>;
    async fn update_user(
        &self,
        username: &str,
        update: &UserUpdate,
    ) -> StoreResult<UserWriteOutcome>;
    async fn delete_user(&self, username: &str) -> StoreResult<UserWriteOutcome>;
    async fn record_login(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
}

// ---------------------------------------------------------------- audits

/// One entry of the audit trail. Never holds a password, token or key.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub datetime: DateTime<Utc>,
    pub action: String,
    /// Username of the staff member, `None` for the mobile app or anonymous.
    pub actor: Option<String>,
    pub request_id: Option<String>,
    /// The client's address as the service resolved it (trusted proxies
    /// honoured), when a request was behind the entry.
    pub client_ip: Option<String>,
    /// The sssid, for subject and link entries.
    pub subject: Option<String>,
    /// The link id, for link entries.
    pub link: Option<String>,
    /// The username the entry is about, for staff-account entries.
    pub user: Option<String>,
    /// The entry's place in the tamper-evident chain (`chain.rs`): set on
    /// entries read from the store, ignored on entries to append.
    pub chain: Option<ChainLink>,
}

/// Where an entry sits in the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// 1, 2, 3, ... over the whole trail.
    pub seq: u64,
    /// Hex SHA-256 over the entry and the hash of the entry before it.
    pub hash: String,
}

/// Which entries of the whole trail to read, a page at a time: those with
/// `from <= datetime < to`, at most `limit` of them, after the page that
/// ended at `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub after: Option<AuditCursor>,
    pub limit: u64,
}

/// Where a page of [`AuditStore::audits_between`] ended, in the store's
/// own terms; only meaningful to the store that answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor(pub String);

/// A page of the whole trail; `next` is where the following page starts,
/// `None` once there is nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub next: Option<AuditCursor>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `entry` as the next link of the one chain, atomically even
    /// with several instances writing at once. Personal values marked with
    /// [`chain::personal`] are stored erasably.
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()>;
    /// Every entry (subject, link and account) in `range`, oldest first
    /// (entries of one instant in the order they were written), one page at
    /// a time, so a whole study's trail can be read without holding it.
    async fn audits_between(&self, range: &AuditRange) -> StoreResult<AuditPage>;
    /// Gives `verifier` the next entries of the chain after its
    /// [`chain::ChainVerifier::last_seq`], in order, at most `limit` of
    /// them, and tells it the trail's end (with the number of stored
    /// entries) when there are no more.
    async fn verify_audit_chain_part(
        &self,
        verifier: chain::ChainVerifier,
        limit: u64,
    ) -> StoreResult<chain::ChainVerifier>;
    /// Reads the whole chain in order with flat memory and reports `ok`
    /// or the first broken entry: a part of [`chain::VERIFY_PART`] entries
    /// per store call, so each call stays within the store's time bound
    /// however long the trail.
    async fn verify_audit_chain(&self) -> StoreResult<chain::ChainReport> {
        chain::verify_in_parts(self, chain::VERIFY_PART).await
    }
    /// Erases the personal values (and their salts) of every entry about
    /// the subject, keeping their commitments so the chain still
    /// verifies, and makes sure erased data leaves the database files
    /// where the store can (SQLite: zeroed free space, a merged search
    /// index, an emptied WAL). Returns how many entries held values.
    async fn erase_personal_values(&self, sssid: &str) -> StoreResult<u64>;
    /// Entries about a subject and its links, oldest first.
    async fn audits_for_subject(&self, sssid: &str) -> StoreResult<Vec<AuditRecord>>;
    /// Entries about a staff account, oldest first.
    async fn audits_for_user(&self, username: &str) -> StoreResult<Vec<AuditRecord>>;
}

// ---------------------------------------------------------------- throttling

/// A fixed-window counter of failures for one key (an account or an IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    pub count: u32,
    pub resets_at: DateTime<Utc>,
}

/// The answer of [`ThrottleStore::throttle_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleTake {
    /// One attempt was taken from the budget; `count` includes it. Hand the
    /// window to `throttle_give_back` to return the attempt.
    Taken(ThrottleWindow),
    /// The window's budget was used up; nothing changed.
    Refused(ThrottleWindow),
}

/// Shared throttling state, kept in the store so that several instances
/// behind a load balancer count together.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Takes one attempt from `key`'s budget of `limit` (at least 1) per
    /// window, in one atomic step: counts it in the open window if that has
    /// room, opens a new window of `window` length (count 1) if the last one
    /// ended before `now` or there is none, and otherwise refuses without
    /// counting. However many callers race, at most `limit` are taken per
    /// window.
    async fn throttle_take(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> StoreResult<ThrottleTake>;
    /// Returns one attempt taken in `taken` (the window `throttle_take`
    /// answered). Nothing happens if that window has since ended, been
    /// cleared or restarted, so an old attempt never frees room in a new
    /// window.
    async fn throttle_give_back(&self, key: &str, taken: &ThrottleWindow) -> StoreResult<()>;
    /// Counts one more event for `key`, opening a new window of `window`
    /// length if the last one ended before `now`.
    async fn throttle_hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> StoreResult<ThrottleWindow>;
    /// The current window of `key`, if one is open at `now`.
    async fn throttle_peek(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ThrottleWindow>>;
    async fn throttle_clear(&self, key: &str) -> StoreResult<()>;
    /// Removes every window whose key starts with `prefix`; returns how
    /// many.
    async fn throttle_clear_prefix(&self, prefix: &str) -> StoreResult<u64>;
    /// Housekeeping: removes windows that ended before `now`; returns how
    /// many.
    async fn purge_throttle_windows(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// The least string above every string that starts with `prefix`, so that
/// "starts with" is a range on an ordered key (UTF-8 byte order is code
/// point order). `None` when there is no such bound (an empty prefix).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

// ---------------------------------------------------------------- the store

/// Every aggregate's store. (Aggregates whose SQLite implementation is not
/// merged yet join this list when it is.)
#[async_trait]
pub trait Store:
    UserStore
    + AccountStore
    + AuditStore
    + ThrottleStore
    + SessionRecordStore
    + ResetTokenStore
    + SubjectStore
    + LinkStore
    + Send
    + Sync
    + 'static
{
    /// A cheap round trip that proves the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// "sqlite" or "mongodb", for logs and `/status`.
    fn backend(&self) -> &'static str;
}

/// Opens (and migrates) the store the configuration names, every call
/// bounded by `timeouts.operation`.
pub async fn open(
    location: &StoreLocation,
    timeouts: &DatabaseTimeouts,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match location {
        StoreLocation::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        StoreLocation::Mongo { url, database } => {
            Arc::new(mongo::MongoStore::open_with(url, database, timeouts).await?)
        }
    };
    Ok(Arc::new(bounded::Bounded::new(store, timeouts.operation)))
}
