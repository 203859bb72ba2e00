//! Fixed-window rate limits kept in the store, so every instance behind a
//! load balancer counts the same attempts.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::domain::Username;
use crate::error::{Error, Result};
use crate::service::Deps;
use crate::store::{ThrottleTake, ThrottleWindow};

/// At most `limit` events per key in a window of `window`.
#[derive(Clone)]
pub struct RateLimit {
    deps: Deps,
    prefix: &'static str,
    limit: u32,
    window: Duration,
}

impl RateLimit {
    pub fn new(deps: Deps, prefix: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            deps,
            prefix,
            limit,
            window,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// Takes one event from the key's window in one atomic store step, or
    /// `TooManyRequests` when the window is used up: however many requests
    /// race, at most `limit` get through per window (checking first and
    /// counting afterwards let every racer of a burst through).
    pub async fn take(&self, key: &str) -> Result<()> {
        let now = self.deps.clock.now();
        match self
            .deps
            .store
            .throttle_take(&self.key(key), now, self.window, self.limit)
            .await?
        {
            ThrottleTake::Taken(_) => Ok(()),
            ThrottleTake::Refused(w) => Err(Error::TooManyRequests {
                retry_after_secs: seconds_until(now, w.resets_at),
            }),
        }
    }

    /// Counts one event; true while the key is still within its limit.
    pub async fn hit(&self, key: &str) -> Result<bool> {
        let now = self.deps.clock.now();
        let w = self
            .deps
            .store
            .throttle_hit(&self.key(key), now, self.window)
            .await?;
        Ok(w.count <= self.limit)
    }

    pub async fn clear(&self, key: &str) -> Result<()> {
        Ok(self.deps.store.throttle_clear(&self.key(key)).await?)
    }
}

/// The login limits, from the configuration (see README's table and
/// DEPLOY.md's "Login throttling").
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failed logins per account from one client address per window.
    pub account_from_address: u32,
    /// Failed logins per client address, whatever the accounts, per window.
    pub address: u32,
    /// The first window of both limits above.
    pub window: Duration,
    /// Consecutive failed logins per account from every address together.
    pub account_ceiling: u32,
    /// How long the ceiling's count lasts from its first failure; also the
    /// longest an address's window on an account grows.
    pub ceiling_window: Duration,
}

/// Which budget turned a login away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// This client address used up its attempts on this account; others
    /// may still try it.
    AccountFromAddress,
    /// This client address used up its attempts on all accounts.
    Address,
    /// The account's ceiling: every address is turned away.
    Account,
}

/// A login turned away before its password was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: ThrottleReason,
    /// When the budget that refused has room again.
    pub resets_at: DateTime<Utc>,
    pub retry_after_secs: u64,
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::TooManyRequests {
            retry_after_secs: refusal.retry_after_secs,
        }
    }
}

/// The attempt a login took from its budgets; a successful login hands it
/// to [`LoginThrottle::succeeded`], a failed one simply drops it and stays
/// counted.
#[derive(Debug)]
#[must_use = "a successful login gives its attempt back"]
pub struct Admission {
    account: Option<Username>,
    ip: Option<IpAddr>,
    /// The window the address budget's attempt was taken from.
    address_window: Option<ThrottleWindow>,
}

/// Failed-login limits. Each attempt is taken from its budgets before the
/// password is hashed, in one atomic store step per budget, so however many
/// attempts race, no more than a budget's limit have their password checked;
/// the others get 429:
/// - per account and client address (low): an attacker's address soon gets
///   429 for the account, while its owner signs in from elsewhere;
/// - per client address (higher, offices share addresses), any accounts,
///   so one address cannot spray many accounts;
/// - per account from every address (the ceiling, NIST SP 800-63B's 100
///   consecutive failures): reached, every address gets 429 until its window
///   ends or the owner resets the password.
///
/// An address's window on an account doubles with every
/// `account_from_address` failures the account has seen (the growing delay
/// NIST suggests as an account nears its ceiling), so one address alone
/// stays below the ceiling.
///
/// Budgets are taken from the most specific to the widest, and given back
/// when a later one refuses: a flood that one address's budget refuses never
/// eats into the budgets others share.
#[derive(Clone)]
pub struct LoginThrottle {
    deps: Deps,
    limits: LoginLimits,
}

impl LoginThrottle {
    pub fn new(deps: Deps, limits: LoginLimits) -> Self {
        Self { deps, limits }
    }

    /// The account's ceiling count.
    fn account_key(account: &Username) -> String {
        format!("login-account:{account}")
    }

    /// Every other key about the account starts with this. Usernames
    /// contain no spaces, so no other account's keys do.
    fn account_prefix(account: &Username) -> String {
        format!("login-account:{account} ")
    }

    fn account_from_address_key(account: &Username, ip: Option<IpAddr>) -> String {
        match ip {
            Some(ip) => format!("{}from {ip}", Self::account_prefix(account)),
            None => format!("{}from unknown", Self::account_prefix(account)),
        }
    }

    fn address_key(ip: IpAddr) -> String {
        format!("login-ip:{ip}")
    }

    /// Takes one attempt from every budget this login draws on, before its
    /// password is checked: `Ok(Err(refusal))` turns it away with 429 and
    /// leaves every budget as it was.
    pub async fn admit(
        &self,
        account: Option<&Username>,
        ip: Option<IpAddr>,
    ) -> Result<std::result::Result<Admission, Refusal>> {
        let now = self.deps.clock.now();
        let store = &self.deps.store;
        let mut taken: Vec<(String, ThrottleWindow)> = Vec::new();
        let mut budgets: Vec<(String, Duration, u32, ThrottleReason)> = Vec::new();
        if let Some(account) = account {
            let failures = store
                .throttle_peek(&Self::account_key(account), now)
                .await?
                .map_or(0, |w| w.count);
            budgets.push((
                Self::account_from_address_key(account, ip),
                address_window(&self.limits, failures),
                self.limits.account_from_address,
                ThrottleReason::AccountFromAddress,
            ));
        }
        if let Some(ip) = ip {
            budgets.push((
                Self::address_key(ip),
                self.limits.window,
                self.limits.address,
                ThrottleReason::Address,
            ));
        }
        if let Some(account) = account {
            budgets.push((
                Self::account_key(account),
                self.limits.ceiling_window,
                self.limits.account_ceiling,
                ThrottleReason::Account,
            ));
        }
        for (key, window, limit, reason) in budgets {
            match store.throttle_take(&key, now, window, limit).await {
                Ok(ThrottleTake::Taken(w)) => taken.push((key, w)),
                Ok(ThrottleTake::Refused(w)) => {
                    self.give_back(&taken).await;
                    return Ok(Err(Refusal {
                        reason,
                        resets_at: w.resets_at,
                        retry_after_secs: seconds_until(now, w.resets_at),
                    }));
                }
                Err(e) => {
                    self.give_back(&taken).await;
                    return Err(e.into());
                }
            }
        }
        let address_window = ip.and_then(|ip| {
            let key = Self::address_key(ip);
            taken.iter().find(|(k, _)| *k == key).map(|(_, w)| *w)
        });
        Ok(Ok(Admission {
            account: account.cloned(),
            ip,
            address_window,
        }))
    }

    /// Attempts a refused login had taken go back: it never reached the
    /// password. A failure here leaves them counted, the safe side.
    async fn give_back(&self, taken: &[(String, ThrottleWindow)]) {
        for (key, window) in taken {
            if let Err(err) = self.deps.store.throttle_give_back(key, window).await {
                tracing::error!(key = %key, error = %err, "could not give a login attempt back");
            }
        }
    }

    /// The owner proved who they are: the address budget gets the attempt
    /// back, and the account's failures from this address and its
    /// consecutive failures are forgotten (NIST SP 800-63B: disregard
    /// earlier failures from the address the subscriber signed in from).
    /// Other addresses' counts on the account stay. Errors are logged: the
    /// login itself succeeded.
    pub async fn succeeded(&self, admission: Admission) {
        let store = &self.deps.store;
        let mut results = Vec::new();
        if let Some(account) = &admission.account {
            results.push(
                store
                    .throttle_clear(&Self::account_from_address_key(account, admission.ip))
                    .await,
            );
            results.push(store.throttle_clear(&Self::account_key(account)).await);
        }
        if let (Some(ip), Some(window)) = (admission.ip, &admission.address_window) {
            results.push(
                store
                    .throttle_give_back(&Self::address_key(ip), window)
                    .await,
            );
        }
        for err in results.into_iter().filter_map(|r| r.err()) {
            tracing::error!(error = %err, "could not clear the login throttle after a login");
        }
    }

    /// True for the first refusal of its kind for the account in the
    /// refusing window (on any instance), so that throttling is audited
    /// once per account and window, not once per attempt.
    pub async fn first_refusal(&self, account: &Username, refusal: &Refusal) -> Result<bool> {
        let now = self.deps.clock.now();
        let kind = match refusal.reason {
            ThrottleReason::AccountFromAddress => "address",
            ThrottleReason::Address => "all accounts",
            ThrottleReason::Account => "account",
        };
        let key = format!("{}audited {kind}", Self::account_prefix(account));
        let window = (refusal.resets_at - now).max(Duration::seconds(1));
        let take = self.deps.store.throttle_take(&key, now, window, 1).await?;
        Ok(matches!(take, ThrottleTake::Taken(_)))
    }

    /// The account's window of consecutive failed logins (the ceiling's
    /// count), if one is open.
    pub async fn account_failures(&self, account: &Username) -> Result<Option<ThrottleWindow>> {
        let now = self.deps.clock.now();
        Ok(self
            .deps
            .store
            .throttle_peek(&Self::account_key(account), now)
            .await?)
    }

    /// Forgets every failed login of the account, from every address, once
    /// its owner proved who they are through the reset link sent to them (a
    /// user locked out by mistyping, who then resets, can log in with the
    /// new password at once, anywhere).
    pub async fn clear_account(&self, account: &Username) -> Result<()> {
        self.deps
            .store
            .throttle_clear(&Self::account_key(account))
            .await?;
        self.deps
            .store
            .throttle_clear_prefix(&Self::account_prefix(account))
            .await?;
        Ok(())
    }
}

/// The window an address opens on an account that has seen `failures`
/// consecutive failures: the base window, doubled for every
/// `account_from_address` of them, at most the ceiling window.
fn address_window(limits: &LoginLimits, failures: u32) -> Duration {
    let doublings = failures / limits.account_from_address.max(1);
    let grown = if doublings < 31 {
        limits.window.checked_mul(1_i32 << doublings)
    } else {
        None
    };
    grown
        .unwrap_or(limits.ceiling_window)
        .min(limits.ceiling_window)
        .max(limits.window)
}

/// Whole seconds from `now` until `at`, rounded up and at least 1, for
/// `Retry-After`: a client that waits that long finds room.
fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let millis = (at - now).num_milliseconds().max(1);
    u64::try_from((millis + 999) / 1000).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_window_doubles_per_limit_of_failures_up_to_the_ceiling_window() {
        let limits = LoginLimits {
            account_from_address: 10,
            address: 100,
            window: Duration::minutes(5),
            account_ceiling: 100,
            ceiling_window: Duration::hours(24),
        };
        let minutes = |failures| address_window(&limits, failures).num_minutes();
        assert_eq!(minutes(0), 5);
        assert_eq!(minutes(9), 5);
        assert_eq!(minutes(10), 10);
        assert_eq!(minutes(29), 20);
        assert_eq!(minutes(80), 1280);
        assert_eq!(minutes(90), 24 * 60);
        for failures in [300, 310, 320, 10_000, u32::MAX] {
            assert_eq!(minutes(failures), 24 * 60, "{failures}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let now = Utc::now();
        assert_eq!(seconds_until(now, now + Duration::milliseconds(1)), 1);
        assert_eq!(seconds_until(now, now + Duration::milliseconds(1001)), 2);
        assert_eq!(seconds_until(now, now + Duration::seconds(300)), 300);
        assert_eq!(seconds_until(now, now - Duration::seconds(5)), 1);
    }
}
