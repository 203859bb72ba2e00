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
//! - last-admin protection: demotions and deletions of admins take a short
//!   lease in the `locks` collection, so they run one at a time;
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
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Store, StoreError, StoreResult};

mod audits;
pub mod legacy;
mod links;
mod reset_tokens;
mod sessions;
mod subjects;
mod throttle;
mod users;

/// How long to wait for a reachable server before an operation fails; keeps
/// `/readyz` and API errors quick when the database is down. A
/// `serverSelectionTimeoutMS` in the URL wins.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Expired sessions, reset tokens and throttle windows are already ignored by
/// every read; the TTL monitor only removes them this long after expiry, so
/// that clock skew between the database and the instances never matters.
const TTL_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The MongoDB error code of a unique index violation.
const DUPLICATE_KEY: i32 = 11000;
/// The MongoDB error code for a collection that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

pub struct MongoStore {
    db: Database,
    audit_tail: audits::ChainTail,
}

impl MongoStore {
    /// Connects, checks that the server answers, brings documents of
    /// older versions up to date and creates the indexes (all idempotent,
    /// so every instance does it at start).
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(url)
            .await
            .context("invalid MongoDB URL")?;
        options
            .server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
        options.app_name.get_or_insert_with(|| "c3pro-idm".into());
        // An acknowledged write survives a crash and a failover (SPEC 9: no
        // data is lost). `w`/`journal` in the URL win.
        options.write_concern.get_or_insert_with(|| {
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build()
        });
        let hosts = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_options(options).context("cannot create the MongoDB client")?;
        let store = Self {
            db: client.database(database),
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
    fn locks(&self) -> Collection<Document> {
        self.db.collection("locks")
    }

    /// What older versions stored differently. Subjects sorted by name
    /// through a lower-cased `name_lower` with an index on
    /// `(name_lower, sssid)`; they now carry `name_sort` instead.
    async fn upgrade_documents(&self) -> StoreResult<()> {
        let subjects = self.subjects();
        let mut indexes = Vec::new();
        match subjects.list_indexes().await {
            Ok(mut cursor) => {
                while cursor.advance().await.map_err(classify)? {
                    indexes.push(cursor.deserialize_current().map_err(classify)?);
                }
            }
            // A new database: no collection, nothing to upgrade.
            Err(e) if is_missing_collection(&e) => {}
            Err(e) => return Err(classify(e)),
        }
        // Found by its fields: some wire-compatible servers name indexes
        // their own way.
        let old_name_order = |keys: &Document| keys.keys().eq(["name_lower", "sssid"]);
        for index in indexes.iter().filter(|i| old_name_order(&i.keys)) {
            if let Some(name) = index.options.as_ref().and_then(|o| o.name.as_deref()) {
                subjects.drop_index(name).await.map_err(classify)?;
            }
        }
        subjects::backfill_name_sort_keys(&subjects).await?;
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
            .create_index(unique(doc! { "username": 1 }, "username_unique"))
            .await
            .map_err(classify)?;
        users
            .create_index(
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
            .create_index(plain(doc! { "admin": 1 }, "admins"))
            .await
            .map_err(classify)?;
        let audits = self.audits();
        self.create_audit_chain_indexes(unique, plain).await?;
        audits
            .create_index(plain(
                doc! { "subject": 1, "datetime": 1, "seq": 1 },
                "by_subject",
            ))
            .await
            .map_err(classify)?;
        audits
            .create_index(plain(
                doc! { "user": 1, "datetime": 1, "seq": 1 },
                "by_user",
            ))
            .await
            .map_err(classify)?;
        self.throttle()
            .create_index(ttl("resets_at", "expire_windows"))
            .await
            .map_err(classify)?;
        let subjects = self.subjects();
        subjects
            .create_index(unique(doc! { "sssid": 1 }, "sssid_unique"))
            .await
            .map_err(classify)?;
        for column in subjects::SORTABLE_FIELDS {
            subjects
                .create_index(plain(
                    doc! { *column: 1, "sssid": 1 },
                    &format!("by_{column}"),
                ))
                .await
                .map_err(classify)?;
        }
        self.links()
            .create_index(plain(
                doc! { "sssid": 1, "created": 1, "seq": 1 },
                "by_subject",
            ))
            .await
            .map_err(classify)?;
        let reset_tokens = self.reset_tokens();
        reset_tokens
            .create_index(unique(doc! { "token_hash": 1 }, "token_hash_unique"))
            .await
            .map_err(classify)?;
        reset_tokens
            .create_index(ttl("expires", "expire_tokens"))
            .await
            .map_err(classify)?;
        self.sessions()
            .create_index(ttl("expires", "expire_sessions"))
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

/// Maps driver errors onto the store's error kinds: unique-index violations
/// become `Duplicate`, anything that says the server cannot be used right
/// now becomes `Unavailable`, the rest `Other`. Never panics.
pub(crate) fn classify(err: mongodb::error::Error) -> StoreError {
    match err.kind.as_ref() {
        // The server's message names the duplicated value; callers name
        // what was duplicated in words a client may see.
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY => {
            StoreError::Duplicate("record".into())
        }
        ErrorKind::Command(e) if e.code == DUPLICATE_KEY => StoreError::Duplicate("record".into()),
        ErrorKind::InsertMany(e)
            if e
                .write_errors
                .iter()
                .flatten()
                .any(|w| w.code == DUPLICATE_KEY) =>
        {
            StoreError::Duplicate("record".into())
        }
        ErrorKind::ServerSelection { .. } => {
            StoreError::Unavailable("mongodb: no reachable server (server selection timed out)".into())
        }
        ErrorKind::Io(e) => StoreError::Unavailable(format!("mongodb: network error: {e}")),
        ErrorKind::ConnectionPoolCleared { .. } => {
            StoreError::Unavailable("mongodb: connection to the server was lost".into())
        }
        ErrorKind::DnsResolve { message, .. } => {
            StoreError::Unavailable(format!("mongodb: cannot resolve the server name: {message}"))
        }
        ErrorKind::Authentication { .. } => StoreError::Unavailable(
            "mongodb: authentication failed; check the user, password and authSource in database_url"
                .into(),
        ),
        _ if err.contains_label("RetryableWriteError")
            || err.contains_label("TransientTransactionError") =>
        {
            StoreError::Unavailable(format!("mongodb: transient error: {err}"))
        }
        _ => StoreError::Other(anyhow::Error::new(err).context("mongodb")),
    }
}

fn is_missing_collection(err: &mongodb::error::Error) -> bool {
    matches!(err.kind.as_ref(), ErrorKind::Command(c) if c.code == NAMESPACE_NOT_FOUND)
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

/// Escapes user text so a `$regex` matches it literally.
pub(crate) fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_punctuation() || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
    fn lenient_readers_accept_int32_booleans_and_integers() {
        let d = doc! { "a": 1_i32, "b": false, "n": 7_i32, "m": 8_i64 };
        assert!(d.req_bool("a").unwrap());
        assert!(!d.req_bool("b").unwrap());
        assert_eq!(d.req_i64("n").unwrap(), 7);
        assert_eq!(d.req_i64("m").unwrap(), 8);
        assert!(d.req_bool("missing").is_err());
    }
}
