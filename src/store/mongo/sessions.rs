use std::future::IntoFuture as _;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};

use super::{DocExt, MongoStore, classify, insert_unique, put_opt, retry_idempotent, to_bson_time};
use crate::store::accounts::session_user_id;
use crate::store::{SessionRecord, SessionRecordStore, StoreResult};

fn session_doc(s: &SessionRecord) -> Document {
    let mut d = doc! { "_id": &s.id, "data": &s.data, "expires": to_bson_time(s.expires) };
    // The signed-in user, so an account's sessions can be found.
    put_opt(&mut d, "user_id", session_user_id(&s.data));
    d
}

pub(super) fn session_from_doc(d: &Document) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: d.req_str("_id")?,
        data: d.req_str("data")?,
        expires: d.req_time("expires")?,
    })
}

/// Shared by every instance; expired sessions are ignored by `load_session`
/// at once and removed by the TTL index later.
#[async_trait]
impl SessionRecordStore for MongoStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        insert_unique(&self.sessions(), session_doc(session), "session").await
    }

    async fn save_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.sessions()
            .replace_one(doc! { "_id": &session.id }, session_doc(session))
            .upsert(true)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn load_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRecord>> {
        self.sessions()
            .find_one(doc! { "_id": id, "expires": { "$gt": to_bson_time(now) } })
            .await
            .map_err(classify)?
            .as_ref()
            .map(session_from_doc)
            .transpose()
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        self.sessions()
            .delete_one(doc! { "_id": id })
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let expired = doc! { "expires": { "$lte": to_bson_time(now) } };
        let sessions = self.sessions();
        let result =
            retry_idempotent(|| sessions.delete_many(expired.clone()).into_future()).await?;
        Ok(result.deleted_count)
    }
}
