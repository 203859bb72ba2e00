//! The lifecycle of a staff account beyond its name and password: role,
//! state, second factor and recovery codes, and the browser sessions it
//! holds. The same users are read and written through `UserStore`; a
//! record written before these fields existed reads as an active account
//! whose role follows its admin flag.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, SessionRecord, StoreResult, UserQuery, UserRecord};
use crate::domain::{AccountState, Role};

/// An account's TOTP second factor as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpRecord {
    /// The secret, sealed (encrypted) by the service: the store never holds
    /// it in clear.
    pub sealed_secret: String,
    /// Enrolment is finished: a valid code was given. Until then the
    /// factor is not asked for at sign-in.
    pub confirmed: bool,
    /// The last time step whose code was accepted: a code of this step or
    /// an earlier one is refused, so every code works once.
    pub last_step: Option<i64>,
}

/// A user with its lifecycle fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    /// `user.admin` agrees with `role`.
    pub user: UserRecord,
    pub role: Role,
    pub state: AccountState,
    pub totp: Option<TotpRecord>,
}

impl AccountRecord {
    /// An active admin: one of those the last-admin rule keeps.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.state == AccountState::Active
    }
}

/// A change to an account, applied atomically with the last-admin rule;
/// `None` leaves a field alone.
#[derive(Debug, Clone)]
pub struct AccountChange {
    pub role: Option<Role>,
    pub state: Option<AccountState>,
    pub password_hash: Option<String>,
    /// `Some(None)` removes the second factor and every recovery code.
    pub totp: Option<Option<TotpRecord>>,
    /// Hashes of recovery codes that replace the account's.
    pub recovery_hashes: Option<Vec<String>>,
    /// Invalidate every token and session of the user.
    pub revoke_tokens: bool,
    pub changed: DateTime<Utc>,
}

impl AccountChange {
    pub fn at(changed: DateTime<Utc>) -> Self {
        Self {
            role: None,
            state: None,
            password_hash: None,
            totp: None,
            recovery_hashes: None,
            revoke_tokens: false,
            changed,
        }
    }

    /// The account as this change leaves it (recovery codes aside).
    pub fn apply_to(&self, mut account: AccountRecord) -> AccountRecord {
        if let Some(role) = self.role {
            account.role = role;
            account.user.admin = role == Role::Admin;
        }
        if let Some(state) = self.state {
            account.state = state;
        }
        if let Some(hash) = &self.password_hash {
            account.user.password_hash = hash.clone();
        }
        if let Some(totp) = &self.totp {
            account.totp = totp.clone();
        }
        if self.revoke_tokens {
            account.user.token_version += 1;
        }
        account.user.changed = self.changed;
        account
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccountWriteOutcome {
    /// The account as it is after the write.
    Done(AccountRecord),
    NotFound,
    /// Refused: no active admin would be left.
    LastAdmin,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts a new account (`user.admin` must agree with `role`); fails
    /// with `Duplicate("user")` if the username is taken.
    async fn insert_account(&self, account: &AccountRecord) -> StoreResult<()>;
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<AccountRecord>>;
    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRecord>>;
    /// Ordered by username, like `list_users`.
    async fn list_accounts(&self, query: &UserQuery) -> StoreResult<Page<AccountRecord>>;
    /// Applies `change`, unless the account is an active admin that would
    /// stop being one while no other active admin exists (`LastAdmin`).
    /// Of concurrent changes that each remove an active admin, at most all
    /// but one succeed.
    async fn change_account(
        &self,
        username: &str,
        change: &AccountChange,
    ) -> StoreResult<AccountWriteOutcome>;
    /// Marks TOTP time step `step` as used by the account, if it is later
    /// than the last used one: true for exactly one of concurrent callers
    /// with the same step, false when the step (or a later one) was used
    /// or the account has no second factor.
    async fn take_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;
    /// Removes the recovery code with this hash from the account: true for
    /// exactly one of concurrent callers, false for an unknown code.
    async fn take_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u64>;
    /// The browser sessions signed in as the user (the session data's
    /// `auth.user_id`), unexpired at `now`.
    async fn sessions_of_user(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes the user's sessions, except the one with id `keep`; returns
    /// how many.
    async fn delete_sessions_of_user(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64>;
}

/// The user id a session's data holds when it is signed in (the web layer
/// writes it at `auth.user_id`).
pub fn session_user_id(data: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value
        .get("auth")?
        .get("user_id")?
        .as_str()
        .map(str::to_owned)
}
