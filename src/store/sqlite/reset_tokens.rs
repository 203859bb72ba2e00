use async_trait::async_trait;
use rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::{ResetTokenRecord, ResetTokenStore, StoreResult};

const TOKEN_COLUMNS: &str = "token_hash, user_id, created, expires";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ResetTokenRecord> {
    Ok(ResetTokenRecord {
        token_hash: row.get(0)?,
        user_id: row.get(1)?,
        created: parse_ts(&row.get::<_, String>(2)?)?,
        expires: parse_ts(&row.get::<_, String>(3)?)?,
    })
}

#[async_trait]
impl ResetTokenStore for SqliteStore {
    async fn put_reset_token(&self, token: &ResetTokenRecord) -> StoreResult<()> {
        let token = token.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            tx.execute_cached(
                "DELETE FROM reset_tokens WHERE user_id = ?1",
                [&token.user_id],
            )
            .map_err(classify)?;
            tx.execute_cached(
                &format!("INSERT INTO reset_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
                params![
                    token.token_hash,
                    token.user_id,
                    ts(token.created),
                    ts(token.expires)
                ],
            )
            .map_err(classify)?;
            tx.commit().map_err(classify)
        })
        .await
    }

    async fn find_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                &format!("SELECT {TOKEN_COLUMNS} FROM reset_tokens WHERE token_hash = ?1"),
                [token_hash],
                token_from_row,
            )
            .optional()
        })
        .await
    }

    async fn take_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>> {
        let token_hash = token_hash.to_owned();
        // One statement: of concurrent takers only one sees the row.
        self.write(move |c| {
            c.query_row_cached(
                &format!(
                    "DELETE FROM reset_tokens WHERE token_hash = ?1 RETURNING {TOKEN_COLUMNS}"
                ),
                [token_hash],
                token_from_row,
            )
            .optional()
            .map_err(classify)
        })
        .await
    }

    async fn delete_reset_tokens_for_user(&self, user_id: &str) -> StoreResult<()> {
        let user_id = user_id.to_owned();
        self.write(move |c| {
            c.execute_cached("DELETE FROM reset_tokens WHERE user_id = ?1", [user_id])
                .map_err(classify)?;
            Ok(())
        })
        .await
    }
}
