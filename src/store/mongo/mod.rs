//! The production store: MongoDB through the official driver, one collection
//! per aggregate.
//!
//! Every invariant holds across several `idm serve` instances without
//! multi-document transactions, so it works on a standalone server as well
//! as on a replica set:
//! - unique names, sssids and link ids: unique indexes (`_id` for sssids
//!   and link ids);
//! - one first admin: a sparse unique index on a marker field that only the
//!   first admin carries;
//! - one winning establish / subject update: conditional updates on a
//!   `version` field;
//! - last-admin protection: removing an admin bumps the revision of every
//!   other admin before its own conditional write, so two removals that
//!   each counted the other cannot both succeed (see `users`); a short
//!   lease in the `locks` collection makes them take turns;
//! - reset tokens: one document per user, replaced atomically.
//!
//! Optional fields are omitted rather than stored as null, and filters use
//! `$exists`, which behaves the same on every server. Documents holding
//! dates are written whole (insert or conditional replace), never with
//! `$set`: some wire-compatible servers store a `$set` date as text, which
//! breaks range queries.

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Store, StoreError, StoreResult};
use crate::config::DatabaseTimeouts;
use errors::is_missing_collection;
pub(crate) use errors::{classify, retry_idempotent};
use indexes::EnsureIndex as _;
pub use users::Stall;

mod accounts;
mod audits;
mod connect;
mod errors;
mod indexes;
pub mod legacy;
mod links;
mod reset_tokens;
mod sessions;
pub mod subject_list;
mod subjects;
mod throttle;
mod users;

/// Expired sessions, reset tokens and throttle windows are already ignored by
/// every read; the TTL monitor only removes them this long after expiry, so
/// that clock skew between the database and the instances never matters.
const TTL_GRACE: Duration = Duration::from_secs(24 * 3600);

pub struct MongoStore {
    db: Database,
    /// `maxTimeMS` of queries that scan (searches, counts): the server
    /// stops them when the service has stopped waiting (`Bounded`).
    scan_limit: Duration,
    /// Test hook, see [`MongoStore::stall_admin_removals`].
    admin_removal_stall: std::sync::Mutex<Option<users::Stall>>,
    audit_tail: audits::ChainTail,
}

impl MongoStore {
    /// [`MongoStore::open_with`] the default time bounds.
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        Self::open_with(url, database, &DatabaseTimeouts::default()).await
    }

    /// Connects, checks that the server answers, brings documents of
    /// older versions up to date and creates the indexes (all idempotent,
    /// so every instance does it at start).
    pub async fn open_with(
        url: &str,
        database: &str,
        timeouts: &DatabaseTimeouts,
    ) -> anyhow::Result<Self> {
        let options = connect::client_options(url, timeouts).await?;
        let hosts = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_options(options).context("cannot create the MongoDB client")?;
        let store = Self {
            db: client.database(database),
            scan_limit: timeouts.operation,
            admin_removal_stall: std::sync::Mutex::new(None),
            audit_tail: audits::ChainTail::default(),
        };
        store
            .ping()
            .await
            .with_context(|| format!("cannot reach MongoDB at {hosts} (database {database})"))?;
        store
            .upgrade_documents()
            .await
            .context("cannot bring the MongoDB documents up to date")?;
        store
            .create_indexes()
            .await
            .context("cannot create the MongoDB indexes")?;
        // After the indexes: the unique `seq` keeps instances that chain
        // old entries and ones already appending new entries apart.
        store
            .chain_unchained_audits()
            .await
            .context("cannot chain the existing audit entries")?;
        Ok(store)
    }

    /// The database this store writes to (tests drop it afterwards).
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn users(&self) -> Collection<Document> {
        self.db.collection("users")
    }
    fn audits(&self) -> Collection<Document> {
        self.db.collection("audits")
    }
    fn throttle(&self) -> Collection<Document> {
        self.db.collection("throttle")
    }
    fn subjects(&self) -> Collection<Document> {
        self.db.collection("subjects")
    }
    fn links(&self) -> Collection<Document> {
        self.db.collection("links")
    }
    fn reset_tokens(&self) -> Collection<Document> {
        self.db.collection("reset_tokens")
    }
    fn sessions(&self) -> Collection<Document> {
        self.db.collection("sessions")
    }
    fn recovery_codes(&self) -> Collection<Document> {
        self.db.collection("recovery_codes")
    }
    fn locks(&self) -> Collection<Document> {
        self.db.collection("locks")
    }

    /// What older versions stored differently. Subjects sorted by name
    /// through a lower-cased `name_lower` with an index on
    /// `(name_lower, sssid)`; they now carry `name_sort` instead, and the
    /// fields the list queries search and filter by.
    async fn upgrade_documents(&self) -> StoreResult<()> {
        let subjects = self.subjects();
        let indexes = collect_indexes(&subjects).await.map_err(classify)?;
        // Found by its fields: some wire-compatible servers name indexes
        // their own way.
        let old_name_order = |keys: &Document| keys.keys().eq(["name_lower", "sssid"]);
        for index in indexes.iter().filter(|i| old_name_order(&i.keys)) {
            if let Some(name) = index.options.as_ref().and_then(|o| o.name.as_deref()) {
                subjects.drop_index(name).await.map_err(classify)?;
            }
        }
        subject_list::upgrade_documents(&subjects, subjects::subject_from_doc).await?;
        Ok(())
    }

    async fn create_indexes(&self) -> StoreResult<()> {
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        let ttl = |field: &str, name: &str| {
            IndexModel::builder()
                .keys(doc! { field: 1 })
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .expire_after(TTL_GRACE)
                        .build(),
                )
                .build()
        };
        let users = self.users();
        users
            .ensure_index(unique(doc! { "username": 1 }, "username_unique"))
            .await
            .map_err(classify)?;
        users
            .ensure_index(
                IndexModel::builder()
                    .keys(doc! { users::FIRST_ADMIN_FIELD: 1 })
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .sparse(true)
                            .name("first_admin_once".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await
            .map_err(classify)?;
        users
            .ensure_index(plain(doc! { "admin": 1 }, "admins"))
            .await
            .map_err(classify)?;
        let audits = self.audits();
        self.create_audit_chain_indexes(unique, plain).await?;
        audits
            .ensure_index(plain(
                doc! { "subject": 1, "datetime": 1, "seq": 1 },
                "by_subject",
            ))
            .await
            .map_err(classify)?;
        audits
            .ensure_index(plain(
                doc! { "user": 1, "datetime": 1, "seq": 1 },
                "by_user",
            ))
            .await
            .map_err(classify)?;
        audits
            .ensure_index(plain(doc! { "datetime": 1, "seq": 1 }, "by_time"))
            .await
            .map_err(classify)?;
        self.throttle()
            .ensure_index(ttl("resets_at", "expire_windows"))
            .await
            .map_err(classify)?;
        subject_list::create_indexes(&self.subjects()).await?;
        self.links()
            .ensure_index(plain(
                doc! { "sssid": 1, "created": 1, "seq": 1 },
                "by_subject",
            ))
            .await
            .map_err(classify)?;
        let reset_tokens = self.reset_tokens();
        reset_tokens
            .ensure_index(unique(doc! { "token_hash": 1 }, "token_hash_unique"))
            .await
            .map_err(classify)?;
        reset_tokens
            .ensure_index(ttl("expires", "expire_tokens"))
            .await
            .map_err(classify)?;
        self.sessions()
            .ensure_index(ttl("expires", "expire_sessions"))
            .await
            .map_err(classify)?;
        self.sessions()
            .create_index(plain(doc! { "user_id": 1 }, "by_user"))
            .await
            .map_err(classify)?;
        self.recovery_codes()
            .create_index(plain(doc! { "user_id": 1 }, "by_user"))
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn backend(&self) -> &'static str {
        "mongodb"
    }
}

/// Whether an error is a unique-index violation.
pub(crate) fn is_duplicate(err: &StoreError) -> bool {
    matches!(err, StoreError::Duplicate(_))
}

/// Inserts `doc`; a unique-index violation becomes `Duplicate(what)`, the
/// message the service layer turns into a conflict.
pub(crate) async fn insert_unique(
    collection: &Collection<Document>,
    doc: Document,
    what: &str,
) -> StoreResult<()> {
    match collection.insert_one(doc).await.map_err(classify) {
        Err(e) if is_duplicate(&e) => Err(StoreError::Duplicate(what.into())),
        other => other.map(|_| ()),
    }
}

// ------------------------------------------------------------ conversions

pub(crate) fn to_bson_time(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

/// A stored document that does not have the shape we wrote.
pub(crate) fn malformed(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("malformed stored document: {what}"))
}

/// Lenient readers: some wire-compatible servers return booleans and 64-bit
/// integers as 32-bit integers, so accept every numeric form.
pub(crate) trait DocExt {
    fn req_str(&self, key: &str) -> StoreResult<String>;
    fn opt_str(&self, key: &str) -> Option<String>;
    fn req_time(&self, key: &str) -> StoreResult<DateTime<Utc>>;
    fn opt_time(&self, key: &str) -> Option<DateTime<Utc>>;
    fn req_i64(&self, key: &str) -> StoreResult<i64>;
    fn req_bool(&self, key: &str) -> StoreResult<bool>;
    fn req_date(&self, key: &str) -> StoreResult<NaiveDate>;
}

impl DocExt for Document {
    fn req_str(&self, key: &str) -> StoreResult<String> {
        self.opt_str(key)
            .ok_or_else(|| malformed(format!("{key} is missing or not a string")))
    }

    fn opt_str(&self, key: &str) -> Option<String> {
        match self.get(key) {
            Some(Bson::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn req_time(&self, key: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(key)
            .ok_or_else(|| malformed(format!("{key} is missing or not a date")))
    }

    fn opt_time(&self, key: &str) -> Option<DateTime<Utc>> {
        match self.get(key) {
            Some(Bson::DateTime(t)) => Utc.timestamp_millis_opt(t.timestamp_millis()).single(),
            _ => None,
        }
    }

    fn req_i64(&self, key: &str) -> StoreResult<i64> {
        match self.get(key) {
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Double(n)) if n.fract() == 0.0 => Ok(*n as i64),
            _ => Err(malformed(format!("{key} is missing or not an integer"))),
        }
    }

    fn req_bool(&self, key: &str) -> StoreResult<bool> {
        match self.get(key) {
            Some(Bson::Boolean(b)) => Ok(*b),
            Some(Bson::Int32(n)) => Ok(*n != 0),
            Some(Bson::Int64(n)) => Ok(*n != 0),
            _ => Err(malformed(format!("{key} is missing or not a boolean"))),
        }
    }

    fn req_date(&self, key: &str) -> StoreResult<NaiveDate> {
        let text = self.req_str(key)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map_err(|e| malformed(format!("{key} is not a YYYY-MM-DD date: {e}")))
    }
}

/// Sets `key` to `value` when present; optional fields are never stored as
/// null (see the module documentation).
pub(crate) fn put_opt(doc: &mut Document, key: &str, value: Option<impl Into<Bson>>) {
    if let Some(v) = value {
        doc.insert(key, v.into());
    }
}

/// Escapes user text so a `$regex` matches it literally. Control
/// characters are written as `\xHH`: the server refuses a pattern holding
/// a NUL byte (and would answer a search for one with an error).
pub(crate) fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
            continue;
        }
        if c.is_ascii_punctuation() || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The indexes of a collection; none for a collection that does not exist.
pub(crate) async fn collect_indexes(
    collection: &Collection<Document>,
) -> Result<Vec<IndexModel>, mongodb::error::Error> {
    let mut cursor = match collection.list_indexes().await {
        Ok(cursor) => cursor,
        Err(e) if is_missing_collection(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut indexes = Vec::new();
    while cursor.advance().await? {
        indexes.push(cursor.deserialize_current()?);
    }
    Ok(indexes)
}

/// Collects a cursor of documents.
pub(crate) async fn collect(mut cursor: mongodb::Cursor<Document>) -> StoreResult<Vec<Document>> {
    let mut out = Vec::new();
    while cursor.advance().await.map_err(classify)? {
        out.push(cursor.deserialize_current().map_err(classify)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_literal_escapes_every_metacharacter() {
        assert_eq!(regex_literal("a.b*c"), "a\\.b\\*c");
        assert_eq!(regex_literal("(x)|[y]^$"), "\\(x\\)\\|\\[y\\]\\^\\$");
        assert_eq!(regex_literal("Müller"), "Müller");
    }

    #[test]
    fn regex_literal_never_holds_a_nul_byte() {
        assert_eq!(regex_literal("a\0b\n"), "a\\x00b\\x0a");
    }

    #[test]
    fn lenient_readers_accept_int32_booleans_and_integers() {
        let d = doc! { "a": 1_i32, "b": false, "n": 7_i32, "m": 8_i64 };
        assert!(d.req_bool("a").unwrap());
        assert!(!d.req_bool("b").unwrap());
        assert_eq!(d.req_i64("n").unwrap(), 7);
        assert_eq!(d.req_i64("m").unwrap(), 8);
        assert!(d.req_bool("missing").is_err());
    }
}
