use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::{SessionRecord, SessionRecordStore, StoreResult};

#[async_trait]
impl SessionRecordStore for SqliteStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |c| {
            c.execute_cached(
                "INSERT INTO sessions (id, data, expires) VALUES (?1, ?2, ?3)",
                params![session.id, session.data, ts(session.expires)],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn save_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |c| {
            c.execute_cached(
                "INSERT INTO sessions (id, data, expires) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
                params![session.id, session.data, ts(session.expires)],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn load_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRecord>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                "SELECT id, data, expires FROM sessions WHERE id = ?1 AND expires > ?2",
                params![id, ts(now)],
                |r| {
                    Ok(SessionRecord {
                        id: r.get(0)?,
                        data: r.get(1)?,
                        expires: parse_ts(&r.get::<_, String>(2)?)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute_cached("DELETE FROM sessions WHERE id = ?1", [id])
                .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            let removed = c
                .execute_cached("DELETE FROM sessions WHERE expires <= ?1", [ts(now)])
                .map_err(classify)?;
            Ok(removed as u64)
        })
        .await
    }
}
