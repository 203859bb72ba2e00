use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::{DocExt, MongoStore, classify, is_duplicate, to_bson_time};
use crate::store::{StoreError, StoreResult, ThrottleStore, ThrottleWindow};

/// Attempts before a hit under extreme contention is reported as
/// `Unavailable`; each round loses only to another hit that did count.
const MAX_ROUNDS: usize = 20;

fn window_from_doc(d: &Document) -> StoreResult<ThrottleWindow> {
    Ok(ThrottleWindow {
        count: u32::try_from(d.req_i64("count")?).unwrap_or(u32::MAX),
        resets_at: d.req_time("resets_at")?,
    })
}

#[async_trait]
impl ThrottleStore for MongoStore {
    /// Three atomic single-document steps, each of which only succeeds in
    /// the state it expects: count in an open window, restart an ended
    /// window, or create the first window. Concurrent hits from any number
    /// of instances are all counted.
    async fn throttle_hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> StoreResult<ThrottleWindow> {
        let collection = self.throttle();
        for _ in 0..MAX_ROUNDS {
            if let Some(d) = collection
                .find_one_and_update(
                    doc! { "_id": key, "resets_at": { "$gt": to_bson_time(now) } },
                    doc! { "$inc": { "count": 1_i64 } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(classify)?
            {
                return window_from_doc(&d);
            }
            let fresh =
                doc! { "_id": key, "count": 1_i64, "resets_at": to_bson_time(now + window) };
            let restarted = collection
                .replace_one(
                    doc! { "_id": key, "resets_at": { "$lte": to_bson_time(now) } },
                    &fresh,
                )
                .await
                .map_err(classify)?;
            if restarted.matched_count == 1 {
                return window_from_doc(&fresh);
            }
            match collection.insert_one(&fresh).await.map_err(classify) {
                Ok(_) => return window_from_doc(&fresh),
                // Another hit created or restarted the window first: count
                // in it.
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: throttle counter under heavy contention".into(),
        ))
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ThrottleWindow>> {
        self.throttle()
            .find_one(doc! { "_id": key, "resets_at": { "$gt": to_bson_time(now) } })
            .await
            .map_err(classify)?
            .as_ref()
            .map(window_from_doc)
            .transpose()
    }

    /// The TTL index removes old windows too, a day late (see `TTL_GRACE`).
    async fn purge_throttle_windows(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let result = self
            .throttle()
            .delete_many(doc! { "resets_at": { "$lte": to_bson_time(now) } })
            .await
            .map_err(classify)?;
        Ok(result.deleted_count)
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        self.throttle()
            .delete_one(doc! { "_id": key })
            .await
            .map_err(classify)?;
        Ok(())
    }
}
