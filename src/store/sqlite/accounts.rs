use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{self, Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::cached::CachedStatements;
use super::users::{USER_COLUMNS, user_from_row};
use super::{SqliteStore, classify, like_literal, parse_ts, ts};
use crate::domain::{AccountState, Role};
use crate::store::{
    AccountChange, AccountRecord, AccountStore, AccountWriteOutcome, Page, SessionRecord,
    StoreResult, TotpRecord, UserQuery,
};

fn account_columns() -> String {
    format!("{USER_COLUMNS}, role, state, totp_secret, totp_confirmed, totp_last_step")
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    let mut user = user_from_row(row)?;
    let role = Role::from_stored(user.admin, row.get::<_, Option<String>>(8)?.as_deref());
    user.admin = role == Role::Admin;
    let state = AccountState::from_stored(row.get::<_, Option<String>>(9)?.as_deref());
    let totp = row
        .get::<_, Option<String>>(10)?
        .map(|sealed_secret| -> rusqlite::Result<TotpRecord> {
            Ok(TotpRecord {
                sealed_secret,
                confirmed: row.get(11)?,
                last_step: row.get(12)?,
            })
        })
        .transpose()?;
    Ok(AccountRecord {
        user,
        role,
        state,
        totp,
    })
}

fn by_username(conn: &Connection, username: &str) -> rusqlite::Result<Option<AccountRecord>> {
    conn.query_row_cached(
        &format!(
            "SELECT {} FROM users WHERE username = ?1",
            account_columns()
        ),
        [username],
        account_from_row,
    )
    .optional()
}

fn other_active_admins(conn: &Connection, username: &str) -> rusqlite::Result<i64> {
    conn.query_row_cached(
        "SELECT count(*) FROM users WHERE admin = 1 AND state = 'active' AND username <> ?1",
        [username],
        |r| r.get(0),
    )
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        data: r.get(1)?,
        expires: parse_ts(&r.get::<_, String>(2)?)?,
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn insert_account(&self, account: &AccountRecord) -> StoreResult<()> {
        let a = account.clone();
        self.write(move |c| {
            c.execute_cached(
                &format!(
                    "INSERT INTO users ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    account_columns()
                ),
                params![
                    a.user.id,
                    a.user.username,
                    a.user.password_hash,
                    a.role == Role::Admin,
                    a.user.token_version,
                    ts(a.user.created),
                    ts(a.user.changed),
                    a.user.last_login.map(ts),
                    a.role.as_str(),
                    a.state.as_str(),
                    a.totp.as_ref().map(|t| t.sealed_secret.clone()),
                    a.totp.as_ref().is_some_and(|t| t.confirmed),
                    a.totp.as_ref().and_then(|t| t.last_step),
                ],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        self.read_by_key(|c| by_username(c, username)).await
    }

    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                &format!("SELECT {} FROM users WHERE id = ?1", account_columns()),
                [id],
                account_from_row,
            )
            .optional()
        })
        .await
    }

    async fn list_accounts(&self, query: &UserQuery) -> StoreResult<Page<AccountRecord>> {
        let pattern = format!("%{}%", like_literal(query.search.as_deref().unwrap_or("")));
        let (offset, limit) = (query.offset as i64, query.limit as i64);
        self.read(move |c| {
            let total: i64 = c.query_row_cached(
                "SELECT count(*) FROM users WHERE username LIKE ?1 ESCAPE '\\'",
                [&pattern],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM users WHERE username LIKE ?1 ESCAPE '\\'
                 ORDER BY username LIMIT ?2 OFFSET ?3",
                account_columns()
            ))?;
            let items = stmt
                .query_map(params![pattern, limit, offset], account_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page {
                items,
                total: total as u64,
            })
        })
        .await
    }

    async fn change_account(
        &self,
        username: &str,
        change: &AccountChange,
    ) -> StoreResult<AccountWriteOutcome> {
        let (username, change) = (username.to_owned(), change.clone());
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let Some(current) = by_username(&tx, &username).map_err(classify)? else {
                return Ok(AccountWriteOutcome::NotFound);
            };
            let was_active_admin = current.is_active_admin();
            let next = change.apply_to(current);
            if was_active_admin
                && !next.is_active_admin()
                && other_active_admins(&tx, &username).map_err(classify)? == 0
            {
                return Ok(AccountWriteOutcome::LastAdmin);
            }
            let totp = next.totp.as_ref();
            tx.execute_cached(
                "UPDATE users SET admin = ?2, role = ?3, state = ?4, password_hash = ?5,
                     token_version = ?6, changed = ?7, totp_secret = ?8, totp_confirmed = ?9,
                     totp_last_step = ?10
                 WHERE id = ?1",
                params![
                    next.user.id,
                    next.user.admin,
                    next.role.as_str(),
                    next.state.as_str(),
                    next.user.password_hash,
                    next.user.token_version,
                    ts(next.user.changed),
                    totp.map(|t| t.sealed_secret.clone()),
                    totp.is_some_and(|t| t.confirmed),
                    totp.and_then(|t| t.last_step),
                ],
            )
            .map_err(classify)?;
            if change.totp == Some(None) || change.recovery_hashes.is_some() {
                tx.execute_cached(
                    "DELETE FROM recovery_codes WHERE user_id = ?1",
                    [&next.user.id],
                )
                .map_err(classify)?;
            }
            for hash in change.recovery_hashes.iter().flatten() {
                tx.execute_cached(
                    "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![next.user.id, hash],
                )
                .map_err(classify)?;
            }
            tx.commit().map_err(classify)?;
            Ok(AccountWriteOutcome::Done(next))
        })
        .await
    }

    async fn take_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let user_id = user_id.to_owned();
        // One statement: of concurrent callers only one changes the row.
        self.write(move |c| {
            let changed = c
                .execute_cached(
                    "UPDATE users SET totp_last_step = ?2
                     WHERE id = ?1 AND totp_secret IS NOT NULL
                       AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                    params![user_id, step],
                )
                .map_err(classify)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn take_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        let (user_id, code_hash) = (user_id.to_owned(), code_hash.to_owned());
        self.write(move |c| {
            let removed = c
                .execute_cached(
                    "DELETE FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2",
                    params![user_id, code_hash],
                )
                .map_err(classify)?;
            Ok(removed == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u64> {
        self.read_by_key(|c| {
            c.query_row_cached(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1",
                [user_id],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n as u64)
    }

    async fn sessions_of_user(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, data, expires FROM sessions
                 WHERE user_id = ?1 AND expires > ?2 ORDER BY expires DESC",
            )?;
            stmt.query_map(params![user_id, ts(now)], session_from_row)?
                .collect()
        })
        .await
    }

    async fn delete_sessions_of_user(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        let (user_id, keep) = (user_id.to_owned(), keep.unwrap_or("").to_owned());
        self.write(move |c| {
            let removed = c
                .execute_cached(
                    "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2",
                    params![user_id, keep],
                )
                .map_err(classify)?;
            Ok(removed as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migration_steps;
    use rusqlite_migration::Migrations;

    /// Accounts of a database from before roles and states are active,
    /// and their role follows the admin flag.
    #[tokio::test]
    async fn migration_008_keeps_existing_accounts_active_in_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            let mut before = migration_steps();
            before.truncate(7);
            Migrations::new(before).to_latest(&mut conn).unwrap();
            for (id, admin) in [("a@example.org", 1), ("s@example.org", 0)] {
                conn.execute(
                    "INSERT INTO users (id, username, password_hash, admin, token_version, created, changed)
                     VALUES (?1, ?1, '$2b$12$x', ?2, 0, '2026-01-01T00:00:00.000000Z',
                             '2026-01-01T00:00:00.000000Z')",
                    params![id, admin],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let a = store.account_by_id("a@example.org").await.unwrap().unwrap();
        let s = store.account_by_id("s@example.org").await.unwrap().unwrap();
        assert_eq!((a.role, a.state), (Role::Admin, AccountState::Active));
        assert_eq!((s.role, s.state), (Role::Staff, AccountState::Active));
        assert_eq!(a.totp, None);
    }
}
