//! A time bound around every store call. The drivers bound parts of a
//! call (server selection, a write concern), but not the whole: a server
//! that accepts a connection and never answers, a lease that is never
//! released, or a retry loop under contention could hold a request
//! forever. Past the bound the call fails as `Unavailable` (503), so
//! clients and load balancers see an answer they can act on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

/// Wraps a store so that no call takes longer than `limit`.
pub struct Bounded {
    inner: Arc<dyn Store>,
    limit: Duration,
}

impl Bounded {
    pub fn new(inner: Arc<dyn Store>, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn within<T>(
        &self,
        call: &'static str,
        work: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.limit, work).await {
            Ok(result) => result,
            Err(_) => {
                // Counted in idm_store_errors_total with the request's 503.
                Err(StoreError::Unavailable(format!(
                    "{}: {call} did not finish within {} s (database_timeout_secs)",
                    self.inner.backend(),
                    self.limit.as_secs_f64()
                )))
            }
        }
    }
}

/// Implements `$trait` for [`Bounded`] by passing each call on to the inner
/// store within the bound.
macro_rules! bounded {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )* }) => {
        #[async_trait]
        impl $trait for Bounded {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    self.within(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*
        }
    };
}

/// Calls `$m!(Trait { fn ...; })` for every store trait with the calls it
/// has: the one list of store calls that the bound (and its test) cover.
/// A new store call is added here.
macro_rules! for_each_store_call {
    ($m:ident) => {
    $m!(UserStore {
        fn insert_user(&self, user: &UserRecord) -> ();
        fn insert_first_admin(&self, user: &UserRecord) -> bool;
        fn user_by_username(&self, username: &str) -> Option<UserRecord>;
        fn user_by_id(&self, id: &str) -> Option<UserRecord>;
        fn list_users(&self, query: &UserQuery) -> Page<UserRecord>;
        fn admin_exists(&self) -> bool;
        fn update_user(&self, username: &str, update: &UserUpdate) -> UserWriteOutcome;
        fn delete_user(&self, username: &str) -> UserWriteOutcome;
        fn record_login(&self, id: &str, at: DateTime<Utc>) -> ();
    });
    $m!(AuditStore {
        fn append_audit(&self, entry: &AuditRecord) -> ();
        fn audits_between(&self, range: &AuditRange) -> AuditPage;
        fn verify_audit_chain_part(&self, verifier: chain::ChainVerifier, limit: u64) -> chain::ChainVerifier;
        fn erase_personal_values(&self, sssid: &str) -> u64;
        fn audits_for_subject(&self, sssid: &str) -> Vec<AuditRecord>;
        fn audits_for_user(&self, username: &str) -> Vec<AuditRecord>;
    });
    $m!(ThrottleStore {
        fn throttle_take(&self, key: &str, now: DateTime<Utc>, window: chrono::Duration, limit: u32) -> ThrottleTake;
        fn throttle_give_back(&self, key: &str, taken: &ThrottleWindow) -> ();
        fn throttle_hit(&self, key: &str, now: DateTime<Utc>, window: chrono::Duration) -> ThrottleWindow;
        fn throttle_peek(&self, key: &str, now: DateTime<Utc>) -> Option<ThrottleWindow>;
        fn throttle_clear(&self, key: &str) -> ();
        fn throttle_clear_prefix(&self, prefix: &str) -> u64;
        fn purge_throttle_windows(&self, now: DateTime<Utc>) -> u64;
    });
    $m!(SessionRecordStore {
        fn create_session(&self, session: &SessionRecord) -> ();
        fn save_session(&self, session: &SessionRecord) -> ();
        fn load_session(&self, id: &str, now: DateTime<Utc>) -> Option<SessionRecord>;
        fn delete_session(&self, id: &str) -> ();
        fn delete_expired_sessions(&self, now: DateTime<Utc>) -> u64;
    });
    $m!(ResetTokenStore {
        fn put_reset_token(&self, token: &ResetTokenRecord) -> ();
        fn find_reset_token(&self, token_hash: &str) -> Option<ResetTokenRecord>;
        fn take_reset_token(&self, token_hash: &str) -> Option<ResetTokenRecord>;
        fn delete_reset_tokens_for_user(&self, user_id: &str) -> ();
    });
    $m!(SubjectStore {
        fn insert_subject(&self, subject: &SubjectRecord) -> ();
        fn subject(&self, sssid: &str) -> Option<SubjectRecord>;
        fn replace_subject(&self, subject: &SubjectRecord, expected_version: i64) -> bool;
        fn list_subject_page(&self, query: &SubjectQuery, count_limit: u64) -> SubjectPage;
    });
    $m!(LinkStore {
        fn insert_link(&self, link: &LinkRecord) -> ();
        fn link(&self, id: &str) -> Option<LinkRecord>;
        fn links_for_subject(&self, sssid: &str) -> Vec<LinkRecord>;
        fn replace_link(&self, link: &LinkRecord, expected_version: i64) -> bool;
    });
    $m!(AccountStore {
        fn insert_account(&self, account: &AccountRecord) -> ();
        fn account_by_username(&self, username: &str) -> Option<AccountRecord>;
        fn account_by_id(&self, id: &str) -> Option<AccountRecord>;
        fn list_accounts(&self, query: &UserQuery) -> Page<AccountRecord>;
        fn change_account(&self, username: &str, change: &AccountChange) -> AccountWriteOutcome;
        fn take_totp_step(&self, user_id: &str, step: i64) -> bool;
        fn take_recovery_code(&self, user_id: &str, code_hash: &str) -> bool;
        fn recovery_codes_left(&self, user_id: &str) -> u64;
        fn sessions_of_user(&self, user_id: &str, now: DateTime<Utc>) -> Vec<SessionRecord>;
        fn delete_sessions_of_user(&self, user_id: &str, keep: Option<&str>) -> u64;
    });
    };
}

for_each_store_call!(bounded);

#[async_trait]
impl Store for Bounded {
    async fn ping(&self) -> StoreResult<()> {
        self.within("ping", self.inner.ping()).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose every call waits forever, like a server that accepted
    /// the connection and never answers.
    struct Silent;

    #[async_trait]
    impl Store for Silent {
        async fn ping(&self) -> StoreResult<()> {
            std::future::pending().await
        }
        fn backend(&self) -> &'static str {
            "silent"
        }
    }

    macro_rules! silent {
        ($trait:ident { $( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )* }) => {
            #[async_trait]
            impl $trait for Silent {
                $( async fn $name(&self $(, _: $ty)*) -> StoreResult<$ret> {
                    std::future::pending().await
                } )*
            }
        };
    }
    for_each_store_call!(silent);

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_finishes_is_unavailable_after_the_limit() {
        let store = Bounded::new(Arc::new(Silent), Duration::from_secs(20));
        let started = tokio::time::Instant::now();
        let err = store.user_by_id("u").await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        assert!(
            matches!(&err, StoreError::Unavailable(why) if why.contains("user_by_id did not finish within 20 s")),
            "{err}"
        );
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
