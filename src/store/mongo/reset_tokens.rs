use async_trait::async_trait;
use mongodb::bson::{Document, doc};

use super::{DocExt, MongoStore, classify, to_bson_time};
use crate::store::{ResetTokenRecord, ResetTokenStore, StoreResult};

fn token_from_doc(d: &Document) -> StoreResult<ResetTokenRecord> {
    Ok(ResetTokenRecord {
        token_hash: d.req_str("token_hash")?,
        user_id: d.req_str("_id")?,
        created: d.req_time("created")?,
        expires: d.req_time("expires")?,
    })
}

/// One document per user (`_id` = user id): storing a token replaces the
/// previous one in a single write, so a newer request always supersedes.
#[async_trait]
impl ResetTokenStore for MongoStore {
    async fn put_reset_token(&self, token: &ResetTokenRecord) -> StoreResult<()> {
        self.reset_tokens()
            .replace_one(
                doc! { "_id": &token.user_id },
                doc! {
                    "_id": &token.user_id,
                    "token_hash": &token.token_hash,
                    "created": to_bson_time(token.created),
                    "expires": to_bson_time(token.expires),
                },
            )
            .upsert(true)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn find_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>> {
        self.reset_tokens()
            .find_one(doc! { "token_hash": token_hash })
            .await
            .map_err(classify)?
            .as_ref()
            .map(token_from_doc)
            .transpose()
    }

    /// `findOneAndDelete` is atomic: of concurrent callers only one gets it.
    async fn take_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>> {
        self.reset_tokens()
            .find_one_and_delete(doc! { "token_hash": token_hash })
            .await
            .map_err(classify)?
            .as_ref()
            .map(token_from_doc)
            .transpose()
    }

    /// One document per user: `delete_one`, which (unlike `delete_many`)
    /// the driver retries once when a failover interrupts it.
    async fn delete_reset_tokens_for_user(&self, user_id: &str) -> StoreResult<()> {
        self.reset_tokens()
            .delete_one(doc! { "_id": user_id })
            .await
            .map_err(classify)?;
        Ok(())
    }
}
