use std::future::IntoFuture as _;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::{DocExt, MongoStore, classify, is_duplicate, retry_idempotent, to_bson_time};
use crate::store::{
    StoreError, StoreResult, ThrottleStore, ThrottleTake, ThrottleWindow, prefix_end,
};

/// Attempts before a hit under extreme contention is reported as
/// `Unavailable`; each round loses only to another hit that did count.
const MAX_ROUNDS: usize = 20;

fn window_from_doc(d: &Document) -> StoreResult<ThrottleWindow> {
    Ok(ThrottleWindow {
        count: u32::try_from(d.req_i64("count")?).unwrap_or(u32::MAX),
        resets_at: d.req_time("resets_at")?,
    })
}

fn window_doc(key: &str, window: &ThrottleWindow) -> Document {
    doc! {
        "_id": key,
        "count": i64::from(window.count),
        "resets_at": to_bson_time(window.resets_at),
    }
}

#[async_trait]
impl ThrottleStore for MongoStore {
    /// One document per key (`_id`), so every instance counts in the same
    /// one. The usual take is a single `findOneAndUpdate` that only matches
    /// an open window with room. When it matches nothing, the document is
    /// read to learn why: a full open window refuses; a missing one is
    /// inserted and an ended one replaced whole, each of which only one of
    /// several racers can do (the others see a duplicate `_id` or a changed
    /// window and go round again). No upsert: it would write the reset time
    /// with `$setOnInsert`, and some wire-compatible servers store such a
    /// date as text.
    async fn throttle_take(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> StoreResult<ThrottleTake> {
        let collection = self.throttle();
        let fresh = ThrottleWindow {
            count: 1,
            resets_at: now + window,
        };
        for _ in 0..MAX_ROUNDS {
            if let Some(d) = collection
                .find_one_and_update(
                    doc! {
                        "_id": key,
                        "resets_at": { "$gt": to_bson_time(now) },
                        "count": { "$lt": i64::from(limit) },
                    },
                    doc! { "$inc": { "count": 1_i64 } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(classify)?
            {
                return Ok(ThrottleTake::Taken(window_from_doc(&d)?));
            }
            match collection
                .find_one(doc! { "_id": key })
                .await
                .map_err(classify)?
            {
                Some(d) => {
                    let current = window_from_doc(&d)?;
                    if current.resets_at > now {
                        if current.count >= limit {
                            return Ok(ThrottleTake::Refused(current));
                        }
                        // Room again (an attempt was given back): take it.
                        continue;
                    }
                    let restarted = collection
                        .replace_one(
                            doc! { "_id": key, "resets_at": to_bson_time(current.resets_at) },
                            window_doc(key, &fresh),
                        )
                        .await
                        .map_err(classify)?;
                    if restarted.matched_count == 1 {
                        return Ok(ThrottleTake::Taken(fresh));
                    }
                }
                None => match collection
                    .insert_one(window_doc(key, &fresh))
                    .await
                    .map_err(classify)
                {
                    Ok(_) => return Ok(ThrottleTake::Taken(fresh)),
                    Err(e) if is_duplicate(&e) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: throttle counter under heavy contention".into(),
        ))
    }

    async fn throttle_give_back(&self, key: &str, taken: &ThrottleWindow) -> StoreResult<()> {
        self.throttle()
            .update_one(
                doc! {
                    "_id": key,
                    "resets_at": to_bson_time(taken.resets_at),
                    "count": { "$gt": 0_i64 },
                },
                doc! { "$inc": { "count": -1_i64 } },
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

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
        let expired = doc! { "resets_at": { "$lte": to_bson_time(now) } };
        let throttle = self.throttle();
        let result =
            retry_idempotent(|| throttle.delete_many(expired.clone()).into_future()).await?;
        Ok(result.deleted_count)
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        self.throttle()
            .delete_one(doc! { "_id": key })
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn throttle_clear_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let mut range = doc! { "$gte": prefix };
        if let Some(end) = prefix_end(prefix) {
            range.insert("$lt", end);
        }
        let keys = doc! { "_id": range };
        let throttle = self.throttle();
        let result = retry_idempotent(|| throttle.delete_many(keys.clone()).into_future()).await?;
        Ok(result.deleted_count)
    }
}
