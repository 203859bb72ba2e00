//! Staff accounts. Each document carries a private revision counter (`rev`)
//! so that read-modify-write updates are conditional and never lose a
//! concurrent change.
//!
//! The last-admin rule without transactions: removing an admin (demotion or
//! deletion) reads the admin at revision r, then bumps the revision of
//! every *other* admin (at least one must exist, else it is the last), then
//! writes only if the admin is still at r. Two removals that each counted
//! the other cannot both finish: whichever bumped second changed the
//! revision the other's final write is conditional on. So the final write
//! itself is the fence; nothing depends on timing or clocks. The `admins`
//! lease only makes removals take turns, so that they do not keep
//! overtaking each other; a holder that stalls past it cannot break the
//! rule, only retry.

use std::future::{Future, IntoFuture as _};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};

use super::{
    DocExt, MongoStore, classify, insert_unique, is_duplicate, put_opt, retry_idempotent,
    to_bson_time,
};
use crate::clock::{OsRandom, random_hex};
use crate::store::accounts::AccountStore;
use crate::store::{
    Page, StoreError, StoreResult, UserQuery, UserRecord, UserStore, UserUpdate, UserWriteOutcome,
};

/// Only the first admin created through `insert_first_admin` has this field;
/// a sparse unique index on it lets exactly one such insert succeed.
pub(super) const FIRST_ADMIN_FIELD: &str = "first_admin";

/// How long a holder may keep the admins lease before others may take it
/// (a crashed instance must not block admin changes for longer; a stalled
/// one is fenced, see the module documentation).
const LEASE: chrono::Duration = chrono::Duration::seconds(15);
/// How long to wait for the lease before giving up with `Unavailable`.
const LEASE_WAIT: StdDuration = StdDuration::from_secs(10);
const LEASE_ID: &str = "admins";

/// Optimistic retries before reporting contention as `Unavailable`.
const MAX_RETRIES: usize = 50;

pub(super) fn user_doc(user: &UserRecord) -> Document {
    let mut d = doc! {
        "_id": &user.id,
        "username": &user.username,
        "password_hash": &user.password_hash,
        "admin": user.admin,
        "token_version": user.token_version,
        "created": to_bson_time(user.created),
        "changed": to_bson_time(user.changed),
        "rev": 0_i64,
    };
    put_opt(&mut d, "last_login", user.last_login.map(to_bson_time));
    d
}

pub(super) fn user_from_doc(d: &Document) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: d.req_str("_id")?,
        username: d.req_str("username")?,
        password_hash: d.req_str("password_hash")?,
        admin: d.req_bool("admin")?,
        token_version: d.req_i64("token_version")?,
        created: d.req_time("created")?,
        changed: d.req_time("changed")?,
        last_login: d.opt_time("last_login"),
    })
}

fn lease_doc(until: DateTime<Utc>, holder: &str) -> Document {
    doc! { "_id": LEASE_ID, "until": to_bson_time(until), "holder": holder }
}

pub(super) fn revision(d: &Document) -> i64 {
    d.req_i64("rev").unwrap_or(0)
}

/// What a test awaits inside an admin removal, after the other admins were
/// counted and before the final write, to reproduce an instance that
/// stalls there (see [`MongoStore::stall_admin_removals`]).
pub type Stall = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

impl MongoStore {
    pub(super) async fn user_doc_by_username(
        &self,
        username: &str,
    ) -> StoreResult<Option<Document>> {
        self.users()
            .find_one(doc! { "username": username })
            .await
            .map_err(classify)
    }

    /// Bumps the revision of every admin but `id` and returns how many
    /// there are: the fence of an admin removal (module documentation).
    /// Invited and disabled admins do not count: they cannot sign in.
    pub(super) async fn fence_other_admins(&self, id: &str) -> StoreResult<u64> {
        // Bumping twice after an interrupted first try does no harm.
        let users = self.users();
        let touched = retry_idempotent(|| {
            users
                .update_many(
                    doc! {
                        "admin": true,
                        "_id": { "$ne": id },
                        "state": { "$nin": ["invited", "disabled"] },
                    },
                    doc! { "$inc": { "rev": 1_i64 } },
                )
                .into_future()
        })
        .await?;
        if touched.matched_count > 0 {
            let stall = self.admin_removal_stall.lock().ok().and_then(|s| s.clone());
            if let Some(stall) = stall {
                stall().await;
            }
        }
        Ok(touched.matched_count)
    }

    /// For tests: `stall` is awaited by every admin removal between
    /// counting the other admins and its final write.
    #[doc(hidden)]
    pub fn stall_admin_removals(&self, stall: Stall) {
        if let Ok(mut slot) = self.admin_removal_stall.lock() {
            *slot = Some(stall);
        }
    }

    /// Writes `new` over the document if it is still at revision `rev`.
    pub(super) async fn replace_if_unchanged(
        &self,
        mut new: Document,
        rev: i64,
    ) -> StoreResult<bool> {
        let id = new.get("_id").cloned().unwrap_or(Bson::Null);
        new.insert("rev", rev + 1);
        let result = self
            .users()
            .replace_one(doc! { "_id": id, "rev": rev }, new)
            .await
            .map_err(classify)?;
        Ok(result.matched_count == 1)
    }

    /// Takes the admins lease and returns its holder token. The lease
    /// lives in the database, so it serialises admin removals across all
    /// instances; it expires on its own if its holder dies.
    pub(super) async fn acquire_admins_lease(&self) -> StoreResult<String> {
        let holder = random_hex(&OsRandom, 16);
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut pause = StdDuration::from_millis(5);
        loop {
            // The lease is compared with this instance's wall clock; it is
            // long enough to absorb normal skew between instances.
            let now = Utc::now();
            let taken = self
                .locks()
                .replace_one(
                    doc! { "_id": LEASE_ID, "until": { "$lte": to_bson_time(now) } },
                    lease_doc(now + LEASE, &holder),
                )
                .await
                .map_err(classify)?;
            if taken.matched_count == 1 {
                return Ok(holder);
            }
            // The lease document is created on first use.
            match self
                .locks()
                .insert_one(lease_doc(DateTime::UNIX_EPOCH, ""))
                .await
                .map_err(classify)
            {
                Ok(_) => continue,
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(
                    "mongodb: admin changes are busy (lease not released); try again".into(),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(StdDuration::from_millis(100));
        }
    }

    pub(super) async fn release_admins_lease(&self, holder: &str) {
        let released = self
            .locks()
            .replace_one(
                doc! { "_id": LEASE_ID, "holder": holder },
                lease_doc(DateTime::UNIX_EPOCH, ""),
            )
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release the admins lease; it expires on its own");
        }
    }

    /// One attempt of `update_user`.
    async fn try_update_user(
        &self,
        username: &str,
        update: &UserUpdate,
        holding_lease: bool,
    ) -> StoreResult<Attempt> {
        let Some(mut d) = self.user_doc_by_username(username).await? else {
            return Ok(Attempt::Finished(UserWriteOutcome::NotFound));
        };
        let rev = revision(&d);
        let mut user = user_from_doc(&d)?;
        if update.admin == Some(false) && user.admin {
            if !holding_lease {
                return Ok(Attempt::NeedsLease);
            }
            if self.fence_other_admins(&user.id).await? == 0 {
                return Ok(Attempt::Finished(UserWriteOutcome::LastAdmin));
            }
        }
        if let Some(admin) = update.admin {
            user.admin = admin;
        }
        if let Some(hash) = &update.password_hash {
            user.password_hash = hash.clone();
        }
        if update.revoke_tokens {
            user.token_version += 1;
        }
        user.changed = update.changed;
        d.insert("admin", user.admin);
        // The stored role follows the admin flag (a monitor stays one).
        match (user.admin, d.get_str("role")) {
            (true, _) => d.insert("role", "admin"),
            (false, Ok("admin")) => d.insert("role", "staff"),
            _ => None,
        };
        d.insert("password_hash", &user.password_hash);
        d.insert("token_version", user.token_version);
        d.insert("changed", to_bson_time(user.changed));
        Ok(if self.replace_if_unchanged(d, rev).await? {
            Attempt::Finished(UserWriteOutcome::Done(user))
        } else {
            Attempt::Overtaken
        })
    }

    /// One attempt of `delete_user`.
    async fn try_delete_user(&self, username: &str, holding_lease: bool) -> StoreResult<Attempt> {
        let Some(d) = self.user_doc_by_username(username).await? else {
            return Ok(Attempt::Finished(UserWriteOutcome::NotFound));
        };
        let user = user_from_doc(&d)?;
        if user.admin {
            if !holding_lease {
                return Ok(Attempt::NeedsLease);
            }
            if self.fence_other_admins(&user.id).await? == 0 {
                return Ok(Attempt::Finished(UserWriteOutcome::LastAdmin));
            }
        }
        let deleted = self
            .users()
            .delete_one(doc! { "_id": &user.id, "rev": revision(&d) })
            .await
            .map_err(classify)?;
        Ok(if deleted.deleted_count == 1 {
            Attempt::Finished(UserWriteOutcome::Done(user))
        } else {
            Attempt::Overtaken
        })
    }

    async fn try_write(
        &self,
        username: &str,
        write: UserWrite<'_>,
        holding_lease: bool,
    ) -> StoreResult<Attempt> {
        match write {
            UserWrite::Update(update) => {
                self.try_update_user(username, update, holding_lease).await
            }
            UserWrite::Delete => self.try_delete_user(username, holding_lease).await,
        }
    }

    /// Retries `write` until it is not overtaken by a concurrent write,
    /// taking the admins lease once an attempt finds it removes admin rights.
    async fn retry_user_write(
        &self,
        username: &str,
        write: UserWrite<'_>,
    ) -> StoreResult<UserWriteOutcome> {
        let mut with_lease = false;
        for _ in 0..MAX_RETRIES {
            let result = if with_lease {
                let holder = self.acquire_admins_lease().await?;
                let result = self.try_write(username, write, true).await;
                self.release_admins_lease(&holder).await;
                result?
            } else {
                self.try_write(username, write, false).await?
            };
            match result {
                Attempt::Finished(outcome) => return Ok(outcome),
                Attempt::NeedsLease => with_lease = true,
                Attempt::Overtaken => {}
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: too many concurrent changes to one user; try again".into(),
        ))
    }
}

#[derive(Clone, Copy)]
enum UserWrite<'a> {
    Update(&'a UserUpdate),
    Delete,
}

/// What one optimistic attempt at changing a user came to.
enum Attempt {
    Finished(UserWriteOutcome),
    /// A concurrent write changed the user first; read again.
    Overtaken,
    /// The change removes admin rights, which needs the admins lease.
    NeedsLease,
}

#[async_trait]
impl UserStore for MongoStore {
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        insert_unique(&self.users(), user_doc(user), "user").await
    }

    async fn insert_first_admin(&self, user: &UserRecord) -> StoreResult<bool> {
        if self.admin_exists().await? {
            return Ok(false);
        }
        let mut d = user_doc(user);
        d.insert(FIRST_ADMIN_FIELD, true);
        match self.users().insert_one(d).await.map_err(classify) {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => {
                // Either another first admin won, or the name is taken.
                let first_taken = self
                    .users()
                    .count_documents(doc! { FIRST_ADMIN_FIELD: { "$exists": true } })
                    .await
                    .map_err(classify)?
                    > 0;
                if first_taken || self.admin_exists().await? {
                    Ok(false)
                } else {
                    Err(StoreError::Duplicate("user".into()))
                }
            }
            Err(e) => Err(e),
        }
    }

    // The account reads (accounts.rs) hold everything a user record does;
    // `admin` read through them always agrees with the account's role.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.account_by_username(username).await?.map(|a| a.user))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.account_by_id(id).await?.map(|a| a.user))
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>> {
        let page = self.list_accounts(query).await?;
        Ok(Page {
            items: page.items.into_iter().map(|a| a.user).collect(),
            total: page.total,
        })
    }

    async fn admin_exists(&self) -> StoreResult<bool> {
        Ok(self
            .users()
            .find_one(doc! { "admin": true })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(classify)?
            .is_some())
    }

    async fn update_user(
        &self,
        username: &str,
        update: &UserUpdate,
    ) -> StoreResult<UserWriteOutcome> {
        self.retry_user_write(username, UserWrite::Update(update))
            .await
    }

    async fn delete_user(&self, username: &str) -> StoreResult<UserWriteOutcome> {
        self.retry_user_write(username, UserWrite::Delete).await
    }

    async fn record_login(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        for _ in 0..MAX_RETRIES {
            let Some(mut d) = self
                .users()
                .find_one(doc! { "_id": id })
                .await
                .map_err(classify)?
            else {
                return Ok(());
            };
            let rev = revision(&d);
            d.insert("last_login", to_bson_time(at));
            if self.replace_if_unchanged(d, rev).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: too many concurrent changes to one user; try again".into(),
        ))
    }
}
