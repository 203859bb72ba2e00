//! One-time password-reset tokens, stored only as hashes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq)]
pub struct ResetTokenRecord {
    /// SHA-256 of the token, hex encoded; the token itself is never stored.
    pub token_hash: String,
    pub user_id: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

#[async_trait]
pub trait ResetTokenStore: Send + Sync {
    /// Stores `token` as the user's only valid reset token: a newer request
    /// supersedes older ones.
    async fn put_reset_token(&self, token: &ResetTokenRecord) -> StoreResult<()>;
    /// The token with this hash, left in place (to show the reset form or
    /// check the new password before the token is spent).
    async fn find_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>>;
    /// Removes and returns the token with this hash (single use, also when
    /// concurrent: only one caller gets it). Expiry is the caller's check.
    async fn take_reset_token(&self, token_hash: &str) -> StoreResult<Option<ResetTokenRecord>>;
    async fn delete_reset_tokens_for_user(&self, user_id: &str) -> StoreResult<()>;
}
