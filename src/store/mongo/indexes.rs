//! Index creation that survives a changed definition. `createIndexes` is
//! idempotent only for an identical index: when a newer version changes an
//! index's keys or options, the server refuses with IndexOptionsConflict
//! (85) or IndexKeySpecsConflict (86), which would stop every instance from
//! starting. Instead the old index is brought to the new definition: a
//! changed TTL in place (`collMod`), anything else by dropping and
//! recreating it.

use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{Error, ErrorKind};
use mongodb::{Collection, IndexModel};

use super::collect_indexes;

const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
const INDEX_NOT_FOUND: i32 = 27;

pub(crate) trait EnsureIndex {
    /// Creates `model`, replacing an index of the same name or keys that
    /// was defined differently.
    async fn ensure_index(&self, model: IndexModel) -> Result<(), Error>;
}

impl EnsureIndex for Collection<Document> {
    async fn ensure_index(&self, model: IndexModel) -> Result<(), Error> {
        // Round 0 may change a TTL in place; if the index still differs in
        // other ways, round 1 drops it.
        for round in 0..2 {
            match self.create_index(model.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if !is_index_conflict(&e) => return Err(e),
                Err(e) => tracing::warn!(
                    collection = self.name(),
                    index = index_name(&model),
                    error = %e,
                    "an index is defined differently than this version needs; updating it"
                ),
            }
            for old in collect_indexes(self).await? {
                match change_for(&old, &model, round == 0) {
                    Change::None => {}
                    Change::Ttl(seconds) => self.change_ttl(index_name(&old), seconds).await?,
                    Change::Rebuild => self.drop_old_index(index_name(&old)).await?,
                }
            }
        }
        self.create_index(model).await.map(|_| ())
    }
}

trait IndexRepair {
    async fn change_ttl(&self, name: &str, seconds: i64) -> Result<(), Error>;
    async fn drop_old_index(&self, name: &str) -> Result<(), Error>;
}

impl IndexRepair for Collection<Document> {
    async fn change_ttl(&self, name: &str, seconds: i64) -> Result<(), Error> {
        let db = self.client().database(&self.namespace().db);
        db.run_command(doc! {
            "collMod": self.name(),
            "index": { "name": name, "expireAfterSeconds": seconds },
        })
        .await
        .map(|_| ())
    }

    async fn drop_old_index(&self, name: &str) -> Result<(), Error> {
        tracing::warn!(
            collection = self.name(),
            index = name,
            "dropping the old index to recreate it"
        );
        match self.drop_index(name).await {
            // Another instance starting at the same time dropped it first.
            Err(e) if command_code(&e) == Some(INDEX_NOT_FOUND) => Ok(()),
            other => other,
        }
    }
}

/// What to do with the existing index `old` so that `new` can be created.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// It does not stand in the way.
    None,
    /// Same name and keys, a different TTL: `collMod` it to this many
    /// seconds.
    Ttl(i64),
    Rebuild,
}

fn change_for(old: &IndexModel, new: &IndexModel, ttl_in_place: bool) -> Change {
    let old_name = index_name(old);
    let same_name = !old_name.is_empty() && old_name == index_name(new);
    let same_keys = keys_match(&old.keys, &new.keys);
    // `_id_` is never ours to drop.
    if old_name == "_id_" || !(same_name || same_keys) {
        return Change::None;
    }
    let ttl = |m: &IndexModel| m.options.as_ref().and_then(|o| o.expire_after);
    match (ttl(old), ttl(new)) {
        (Some(_), Some(seconds)) if ttl_in_place && same_name && same_keys => {
            Change::Ttl(i64::try_from(seconds.as_secs()).unwrap_or(i64::MAX))
        }
        _ => Change::Rebuild,
    }
}

fn index_name(model: &IndexModel) -> &str {
    model
        .options
        .as_ref()
        .and_then(|o| o.name.as_deref())
        .unwrap_or("")
}

/// Key patterns are equal when they name the same fields in the same order
/// with the same directions or types; servers echo `1` as 32-bit, 64-bit or
/// double.
fn keys_match(a: &Document, b: &Document) -> bool {
    let number = |v: &Bson| match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (number(va), number(vb)) {
                    (Some(x), Some(y)) => x == y,
                    _ => va == vb,
                }
        })
}

fn is_index_conflict(err: &Error) -> bool {
    matches!(
        command_code(err),
        Some(INDEX_OPTIONS_CONFLICT | INDEX_KEY_SPECS_CONFLICT)
    )
}

fn command_code(err: &Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mongodb::options::IndexOptions;

    use super::*;

    fn index(keys: Document, name: &str, ttl: Option<u64>, unique: bool) -> IndexModel {
        let mut options = IndexOptions::default();
        options.name = Some(name.to_owned());
        options.expire_after = ttl.map(Duration::from_secs);
        options.unique = unique.then_some(true);
        IndexModel::builder().keys(keys).options(options).build()
    }

    #[test]
    fn a_changed_ttl_is_changed_in_place_once_then_rebuilt() {
        let old = index(
            doc! { "expires": 1_i32 },
            "expire_sessions",
            Some(60),
            false,
        );
        let new = index(
            doc! { "expires": 1.0 },
            "expire_sessions",
            Some(86400),
            false,
        );
        assert_eq!(change_for(&old, &new, true), Change::Ttl(86400));
        assert_eq!(change_for(&old, &new, false), Change::Rebuild);
    }

    #[test]
    fn changed_keys_or_options_are_rebuilt_and_other_indexes_left_alone() {
        let new = index(doc! { "admin": 1 }, "admins", None, false);
        let other_keys = index(doc! { "admin": -1 }, "admins", None, false);
        assert_eq!(change_for(&other_keys, &new, true), Change::Rebuild);
        let other_name = index(doc! { "admin": 1_i64 }, "admin_1", None, true);
        assert_eq!(change_for(&other_name, &new, true), Change::Rebuild);
        let unrelated = index(doc! { "username": 1 }, "username_unique", None, true);
        assert_eq!(change_for(&unrelated, &new, true), Change::None);
        let id = index(doc! { "_id": 1 }, "_id_", None, false);
        let on_id = index(doc! { "_id": 1 }, "by_id", None, false);
        assert_eq!(change_for(&id, &on_id, true), Change::None);
    }

    #[test]
    fn key_patterns_compare_by_value_and_order() {
        assert!(keys_match(
            &doc! { "a": 1_i32, "b": -1_i64 },
            &doc! { "a": 1.0, "b": -1 }
        ));
        assert!(!keys_match(
            &doc! { "a": 1, "b": 1 },
            &doc! { "b": 1, "a": 1 }
        ));
        assert!(!keys_match(&doc! { "a": 1 }, &doc! { "a": "text" }));
        assert!(keys_match(&doc! { "a": "text" }, &doc! { "a": "text" }));
    }
}
