//! The one-time keys of mailed links: reset links (`/reset?k=`) and
//! invitations (`/welcome?k=`) follow the same rules.
//!
//! - A key is 256 random bits; the store keeps only its SHA-256, so the
//!   key exists only in the mail.
//! - It expires, works once, and a newer key of the account replaces the
//!   older one (the store keeps one key per account).
//! - Each kind hashes its keys with a prefix of its own, so an invitation
//!   is never a reset link and a reset link never an invitation.

use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::clock::random_hex;
use crate::domain::{AccountState, Password, Username};
use crate::error::{Error, Result};
use crate::service::Deps;
use crate::service::recovery::duration_text;
use crate::service::users::UserService;
use crate::store::ResetTokenRecord;

/// Random bytes in a key (hex encoded in the link).
const KEY_BYTES: usize = 32;

/// What tells one kind of mailed key from another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyKind {
    /// Put before the key when it is hashed.
    pub hash_prefix: &'static str,
    /// The page the mailed link opens.
    pub page: &'static str,
    /// The only state of account a key of this kind opens.
    pub opens: AccountState,
    /// What an unusable key (unknown, used, superseded or expired) is told.
    pub invalid: &'static str,
}

impl KeyKind {
    /// What the store keeps instead of a key. The key has 256 random bits,
    /// so a fast hash is enough: there is nothing to brute-force.
    pub fn hash(&self, key: &str) -> String {
        hex::encode(Sha256::digest(
            format!("{}{key}", self.hash_prefix).as_bytes(),
        ))
    }
}

/// The keys of one kind, issued and checked against the store and clock.
#[derive(Clone)]
pub(crate) struct MailedKeys {
    deps: Deps,
    kind: KeyKind,
    lifetime: Duration,
    public_url: String,
}

/// A key that can still be used, and the account it opens.
pub(crate) struct UsableKey {
    pub record: ResetTokenRecord,
    pub username: Username,
}

impl MailedKeys {
    pub fn new(deps: Deps, kind: KeyKind, lifetime: Duration, public_url: &str) -> Self {
        Self {
            deps,
            kind,
            lifetime,
            public_url: public_url.to_owned(),
        }
    }

    /// How long a key works, in words ("2 hours").
    pub fn lifetime_text(&self) -> String {
        duration_text(self.lifetime)
    }

    /// A new key for the user `user_id` (replacing any older one), as the
    /// link to mail.
    pub async fn issue(&self, user_id: &str) -> Result<String> {
        let key = random_hex(self.deps.random.as_ref(), KEY_BYTES);
        let now = self.deps.clock.now();
        self.deps
            .store
            .put_reset_token(&ResetTokenRecord {
                token_hash: self.hash(&key),
                user_id: user_id.to_owned(),
                created: now,
                expires: now + self.lifetime,
            })
            .await?;
        Ok(format!("{}{}?k={key}", self.public_url, self.kind.page))
    }

    /// The stored key for `key` and its account, if the key is well
    /// formed, known, not expired and its account in the state the kind
    /// opens; else `Gone`.
    pub async fn usable(&self, key: &str) -> Result<UsableKey> {
        let gone = || self.gone();
        let key = key.trim();
        if key.len() != KEY_BYTES * 2 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(gone());
        }
        let hash = self.hash(&key.to_ascii_lowercase());
        let record = self
            .deps
            .store
            .find_reset_token(&hash)
            .await?
            .ok_or_else(gone)?;
        if self.deps.clock.now() >= record.expires {
            // Housekeeping: an expired key is never useful again.
            self.deps.store.take_reset_token(&hash).await?;
            return Err(gone());
        }
        let account = self
            .deps
            .store
            .account_by_id(&record.user_id)
            .await?
            .filter(|a| a.state == self.kind.opens)
            .ok_or_else(gone)?;
        Ok(UsableKey {
            record,
            username: Username::from_trusted(account.user.username),
        })
    }

    /// Spends `key` and sets the account's password (activating it), then
    /// spends every other key of the account. Of concurrent uses of one
    /// key only one gets past the first step; the others are `Gone`.
    pub async fn spend_on_password(
        &self,
        users: &UserService,
        key: &UsableKey,
        password: &Password,
    ) -> Result<()> {
        let store = &self.deps.store;
        if store
            .take_reset_token(&key.record.token_hash)
            .await?
            .is_none()
        {
            return Err(self.gone());
        }
        users.write_update(&key.username, password, true).await?;
        store
            .delete_reset_tokens_for_user(&key.record.user_id)
            .await?;
        Ok(())
    }

    fn gone(&self) -> Error {
        Error::Gone(self.kind.invalid.into())
    }

    fn hash(&self, key: &str) -> String {
        self.kind.hash(key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A well-formed key, for the kinds' own tests.
    pub(crate) fn some_key() -> String {
        "ab".repeat(KEY_BYTES)
    }

    #[test]
    fn the_stored_hash_is_not_the_key() {
        let kind = KeyKind {
            hash_prefix: "",
            page: "/page",
            opens: AccountState::Active,
            invalid: "invalid",
        };
        let hash = kind.hash(&some_key());
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, some_key());
        assert_eq!(hash, kind.hash(&some_key()), "the hash is deterministic");
    }
}
