//! Account lifecycle fields on the user documents: `role`, `state` and the
//! flat `totp_*` fields; a document without them (written by an older
//! version) reads as an active account whose role follows `admin`.
//! Recovery codes live in their own collection, one document per code,
//! so that spending one is a single atomic delete.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};

use super::sessions::session_from_doc;
use super::users::{revision, user_doc, user_from_doc};
use super::{DocExt, MongoStore, classify, collect, insert_unique, regex_literal, to_bson_time};
use crate::domain::{AccountState, Role};
use crate::store::{
    AccountChange, AccountRecord, AccountStore, AccountWriteOutcome, Page, SessionRecord,
    StoreError, StoreResult, TotpRecord, UserQuery,
};

/// Optimistic retries before reporting contention as `Unavailable`.
const MAX_RETRIES: usize = 50;

/// `totp_last_step` when no code was used yet: every step is later.
const NO_STEP: i64 = -1;

fn account_from_doc(d: &Document) -> StoreResult<AccountRecord> {
    let mut user = user_from_doc(d)?;
    let role = Role::from_stored(user.admin, d.opt_str("role").as_deref());
    user.admin = role == Role::Admin;
    let totp = d.opt_str("totp_secret").map(|sealed_secret| TotpRecord {
        sealed_secret,
        confirmed: d.req_bool("totp_confirmed").unwrap_or(false),
        last_step: d.req_i64("totp_last_step").ok().filter(|&s| s != NO_STEP),
    });
    Ok(AccountRecord {
        user,
        role,
        state: AccountState::from_stored(d.opt_str("state").as_deref()),
        totp,
    })
}

/// Writes the lifecycle fields of `account` into its user document.
fn put_account_fields(d: &mut Document, account: &AccountRecord) {
    d.insert("admin", account.role == Role::Admin);
    d.insert("role", account.role.as_str());
    d.insert("state", account.state.as_str());
    match &account.totp {
        Some(totp) => {
            d.insert("totp_secret", &totp.sealed_secret);
            d.insert("totp_confirmed", totp.confirmed);
            d.insert("totp_last_step", totp.last_step.unwrap_or(NO_STEP));
        }
        None => {
            d.remove("totp_secret");
            d.remove("totp_confirmed");
            d.remove("totp_last_step");
        }
    }
}

impl MongoStore {
    /// One attempt of `change_account`; `None` when a concurrent write got
    /// there first, `Some(Err(()))` when it needs the admins lease.
    async fn try_change_account(
        &self,
        username: &str,
        change: &AccountChange,
        holding_lease: bool,
    ) -> StoreResult<Option<Result<AccountWriteOutcome, ()>>> {
        let Some(mut d) = self.user_doc_by_username(username).await? else {
            return Ok(Some(Ok(AccountWriteOutcome::NotFound)));
        };
        let rev = revision(&d);
        let current = account_from_doc(&d)?;
        let user_id = current.user.id.clone();
        let removes_admin = current.is_active_admin();
        let next = change.apply_to(current);
        if removes_admin && !next.is_active_admin() {
            if !holding_lease {
                return Ok(Some(Err(())));
            }
            // Fenced like every admin removal (users.rs).
            if self.fence_other_admins(&user_id).await? == 0 {
                return Ok(Some(Ok(AccountWriteOutcome::LastAdmin)));
            }
        }
        put_account_fields(&mut d, &next);
        d.insert("password_hash", &next.user.password_hash);
        d.insert("token_version", next.user.token_version);
        d.insert("changed", to_bson_time(next.user.changed));
        if !self.replace_if_unchanged(d, rev).await? {
            return Ok(None);
        }
        if change.totp == Some(None) || change.recovery_hashes.is_some() {
            self.recovery_codes()
                .delete_many(doc! { "user_id": &next.user.id })
                .await
                .map_err(classify)?;
        }
        if let Some(hashes) = &change.recovery_hashes
            && !hashes.is_empty()
        {
            let docs = hashes
                .iter()
                .map(|hash| doc! { "user_id": &next.user.id, "code_hash": hash });
            self.recovery_codes()
                .insert_many(docs)
                .await
                .map_err(classify)?;
        }
        Ok(Some(Ok(AccountWriteOutcome::Done(next))))
    }
}

#[async_trait]
impl AccountStore for MongoStore {
    async fn insert_account(&self, account: &AccountRecord) -> StoreResult<()> {
        let mut d = user_doc(&account.user);
        put_account_fields(&mut d, account);
        insert_unique(&self.users(), d, "user").await
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        self.user_doc_by_username(username)
            .await?
            .as_ref()
            .map(account_from_doc)
            .transpose()
    }

    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        self.users()
            .find_one(doc! { "_id": id })
            .await
            .map_err(classify)?
            .as_ref()
            .map(account_from_doc)
            .transpose()
    }

    async fn list_accounts(&self, query: &UserQuery) -> StoreResult<Page<AccountRecord>> {
        let filter = match query.search.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => doc! { "username": { "$regex": regex_literal(s), "$options": "i" } },
            None => doc! {},
        };
        let total = self
            .users()
            .count_documents(filter.clone())
            .max_time(self.scan_limit)
            .await
            .map_err(classify)?;
        let cursor = self
            .users()
            .find(filter)
            .max_time(self.scan_limit)
            .sort(doc! { "username": 1 })
            .skip(query.offset)
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .await
            .map_err(classify)?;
        let items = collect(cursor)
            .await?
            .iter()
            .map(account_from_doc)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    async fn change_account(
        &self,
        username: &str,
        change: &AccountChange,
    ) -> StoreResult<AccountWriteOutcome> {
        let mut with_lease = false;
        for _ in 0..MAX_RETRIES {
            let attempt = if with_lease {
                let holder = self.acquire_admins_lease().await?;
                let attempt = self.try_change_account(username, change, true).await;
                self.release_admins_lease(&holder).await;
                attempt?
            } else {
                self.try_change_account(username, change, false).await?
            };
            match attempt {
                Some(Ok(outcome)) => return Ok(outcome),
                Some(Err(())) => with_lease = true,
                None => {}
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: too many concurrent changes to one user; try again".into(),
        ))
    }

    async fn take_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        // `rev` moves too, so a concurrent whole-document write of an older
        // read cannot put an earlier step back.
        let result = self
            .users()
            .update_one(
                doc! {
                    "_id": user_id,
                    "totp_secret": { "$exists": true },
                    "totp_last_step": { "$lt": step },
                },
                doc! { "$set": { "totp_last_step": step }, "$inc": { "rev": 1_i64 } },
            )
            .await
            .map_err(classify)?;
        Ok(result.modified_count == 1)
    }

    async fn take_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        let result = self
            .recovery_codes()
            .delete_one(doc! { "user_id": user_id, "code_hash": code_hash })
            .await
            .map_err(classify)?;
        Ok(result.deleted_count == 1)
    }

    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u64> {
        self.recovery_codes()
            .count_documents(doc! { "user_id": user_id })
            .await
            .map_err(classify)
    }

    async fn sessions_of_user(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>> {
        let cursor = self
            .sessions()
            .find(doc! { "user_id": user_id, "expires": { "$gt": to_bson_time(now) } })
            .sort(doc! { "expires": -1 })
            .await
            .map_err(classify)?;
        collect(cursor)
            .await?
            .iter()
            .map(session_from_doc)
            .collect()
    }

    async fn delete_sessions_of_user(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        let result = self
            .sessions()
            .delete_many(doc! { "user_id": user_id, "_id": { "$ne": keep.unwrap_or("") } })
            .await
            .map_err(classify)?;
        Ok(result.deleted_count)
    }
}
