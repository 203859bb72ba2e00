use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_opt_ts, parse_ts, ts};
use crate::store::accounts::AccountStore;
use crate::store::{
    Page, StoreResult, UserQuery, UserRecord, UserStore, UserUpdate, UserWriteOutcome,
};

pub(super) const USER_COLUMNS: &str =
    "id, username, password_hash, admin, token_version, created, changed, last_login";

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        admin: row.get(3)?,
        token_version: row.get(4)?,
        created: parse_ts(&row.get::<_, String>(5)?)?,
        changed: parse_ts(&row.get::<_, String>(6)?)?,
        last_login: parse_opt_ts(row.get(7)?)?,
    })
}

fn insert(conn: &rusqlite::Connection, user: &UserRecord) -> rusqlite::Result<()> {
    conn.execute_cached(
        &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            user.id,
            user.username,
            user.password_hash,
            user.admin,
            user.token_version,
            ts(user.created),
            ts(user.changed),
            user.last_login.map(ts),
        ],
    )?;
    Ok(())
}

fn by_username(
    conn: &rusqlite::Connection,
    username: &str,
) -> rusqlite::Result<Option<UserRecord>> {
    conn.query_row_cached(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
        [username],
        user_from_row,
    )
    .optional()
}

fn other_admins(conn: &rusqlite::Connection, username: &str) -> rusqlite::Result<i64> {
    conn.query_row_cached(
        "SELECT count(*) FROM users WHERE admin = 1 AND state = 'active' AND username <> ?1",
        [username],
        |r| r.get(0),
    )
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |c| insert(c, &user).map_err(classify))
            .await
    }

    async fn insert_first_admin(&self, user: &UserRecord) -> StoreResult<bool> {
        let user = user.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let admins: i64 = tx
                .query_row_cached("SELECT count(*) FROM users WHERE admin = 1", [], |r| {
                    r.get(0)
                })
                .map_err(classify)?;
            if admins > 0 {
                return Ok(false);
            }
            insert(&tx, &user).map_err(classify)?;
            tx.commit().map_err(classify)?;
            Ok(true)
        })
        .await
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
        self.read(|c| {
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM users WHERE admin = 1)",
                [],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn update_user(
        &self,
        username: &str,
        update: &UserUpdate,
    ) -> StoreResult<UserWriteOutcome> {
        let (username, update) = (username.to_owned(), update.clone());
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let Some(mut user) = by_username(&tx, &username).map_err(classify)? else {
                return Ok(UserWriteOutcome::NotFound);
            };
            if update.admin == Some(false)
                && user.admin
                && other_admins(&tx, &username).map_err(classify)? == 0
            {
                return Ok(UserWriteOutcome::LastAdmin);
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
            tx.execute_cached(
                // `role` follows the admin flag: an admin's word is
                // 'admin', a demoted admin's 'staff'; a monitor stays one.
                "UPDATE users SET admin = ?2, password_hash = ?3, token_version = ?4, changed = ?5,
                     role = CASE WHEN ?2 THEN 'admin' WHEN role = 'admin' THEN 'staff' ELSE role END
                 WHERE id = ?1",
                params![
                    user.id,
                    user.admin,
                    user.password_hash,
                    user.token_version,
                    ts(user.changed)
                ],
            )
            .map_err(classify)?;
            tx.commit().map_err(classify)?;
            Ok(UserWriteOutcome::Done(user))
        })
        .await
    }

    async fn delete_user(&self, username: &str) -> StoreResult<UserWriteOutcome> {
        let username = username.to_owned();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let Some(user) = by_username(&tx, &username).map_err(classify)? else {
                return Ok(UserWriteOutcome::NotFound);
            };
            if user.admin && other_admins(&tx, &username).map_err(classify)? == 0 {
                return Ok(UserWriteOutcome::LastAdmin);
            }
            tx.execute_cached("DELETE FROM users WHERE id = ?1", [&user.id])
                .map_err(classify)?;
            tx.commit().map_err(classify)?;
            Ok(UserWriteOutcome::Done(user))
        })
        .await
    }

    async fn record_login(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute_cached(
                "UPDATE users SET last_login = ?2 WHERE id = ?1",
                params![id, ts(at)],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }
}
