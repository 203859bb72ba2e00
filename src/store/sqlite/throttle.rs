use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::{StoreResult, ThrottleStore, ThrottleWindow};

#[async_trait]
impl ThrottleStore for SqliteStore {
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
                |r| {
                    Ok(ThrottleWindow {
                        count: r.get(0)?,
                        resets_at: parse_ts(&r.get::<_, String>(1)?)?,
                    })
                },
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
}
