use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::{StoreResult, ThrottleStore, ThrottleTake, ThrottleWindow, prefix_end};

fn window_from_row(r: &Row<'_>) -> rusqlite::Result<ThrottleWindow> {
    Ok(ThrottleWindow {
        count: r.get(0)?,
        resets_at: parse_ts(&r.get::<_, String>(1)?)?,
    })
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    /// One upsert takes the attempt: it inserts a first window, restarts an
    /// ended one, or counts in an open one with room; a full open window
    /// fails its `WHERE`, so no row comes back and nothing changes. Only
    /// then is the window read, in the same transaction, for its reset time.
    async fn throttle_take(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> StoreResult<ThrottleTake> {
        let key = key.to_owned();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let taken = tx
                .query_row_cached(
                    "INSERT INTO throttle (key, count, resets_at) VALUES (?1, 1, ?3)
                     ON CONFLICT (key) DO UPDATE SET
                        count = CASE WHEN resets_at <= ?2 THEN 1 ELSE count + 1 END,
                        resets_at = CASE WHEN resets_at <= ?2 THEN ?3 ELSE resets_at END
                     WHERE resets_at <= ?2 OR count < ?4
                     RETURNING count, resets_at",
                    params![key, ts(now), ts(now + window), limit],
                    window_from_row,
                )
                .optional()
                .map_err(classify)?;
            let answer = match taken {
                Some(w) => ThrottleTake::Taken(w),
                None => ThrottleTake::Refused(
                    tx.query_row_cached(
                        "SELECT count, resets_at FROM throttle WHERE key = ?1",
                        [&key],
                        window_from_row,
                    )
                    .map_err(classify)?,
                ),
            };
            tx.commit().map_err(classify)?;
            Ok(answer)
        })
        .await
    }

    async fn throttle_give_back(&self, key: &str, taken: &ThrottleWindow) -> StoreResult<()> {
        let key = key.to_owned();
        let resets_at = ts(taken.resets_at);
        self.write(move |c| {
            c.execute_cached(
                "UPDATE throttle SET count = count - 1
                 WHERE key = ?1 AND resets_at = ?2 AND count > 0",
                params![key, resets_at],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn throttle_hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> StoreResult<ThrottleWindow> {
        let key = key.to_owned();
        self.write(move |c| {
            // One statement: a window that has ended restarts at 1.
            let (count, resets_at): (u32, String) = c
                .query_row_cached(
                    "INSERT INTO throttle (key, count, resets_at) VALUES (?1, 1, ?3)
                     ON CONFLICT (key) DO UPDATE SET
                        count = CASE WHEN resets_at <= ?2 THEN 1 ELSE count + 1 END,
                        resets_at = CASE WHEN resets_at <= ?2 THEN ?3 ELSE resets_at END
                     RETURNING count, resets_at",
                    params![key, ts(now), ts(now + window)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(classify)?;
            Ok(ThrottleWindow {
                count,
                resets_at: parse_ts(&resets_at).map_err(classify)?,
            })
        })
        .await
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ThrottleWindow>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                "SELECT count, resets_at FROM throttle WHERE key = ?1 AND resets_at > ?2",
                params![key, ts(now)],
                window_from_row,
            )
            .optional()
        })
        .await
    }

    async fn purge_throttle_windows(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            let removed = c
                .execute("DELETE FROM throttle WHERE resets_at <= ?1", [ts(now)])
                .map_err(classify)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute_cached("DELETE FROM throttle WHERE key = ?1", [key])
                .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn throttle_clear_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let start = prefix.to_owned();
        let end = prefix_end(prefix);
        self.write(move |c| {
            let removed = c
                .execute(
                    "DELETE FROM throttle WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)",
                    params![start, end],
                )
                .map_err(classify)?;
            Ok(removed as u64)
        })
        .await
    }
}
