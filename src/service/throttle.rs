//! Fixed-window rate limits kept in the store, so every instance behind a
//! load balancer counts the same attempts.

use chrono::Duration;

use crate::domain::Username;
use crate::error::{Error, Result};
use crate::service::Deps;

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

    /// `TooManyRequests` while the key has used up its window.
    pub async fn check(&self, key: &str) -> Result<()> {
        let now = self.deps.clock.now();
        match self.deps.store.throttle_peek(&self.key(key), now).await? {
            Some(w) if w.count >= self.limit => Err(Error::TooManyRequests {
                retry_after_secs: (w.resets_at - now).num_seconds().max(1) as u64,
            }),
            _ => Ok(()),
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

/// Failed-login limits per account and per client IP. The account limit is
/// low but its window short, so an attacker can hold a real user off for at
/// most one window; the IP limit is higher because offices share addresses.
#[derive(Clone)]
pub struct LoginThrottle {
    per_account: RateLimit,
    per_ip: RateLimit,
}

impl LoginThrottle {
    pub fn new(deps: Deps, account_limit: u32, ip_limit: u32, window: Duration) -> Self {
        Self {
            per_account: RateLimit::new(deps.clone(), "login-account", account_limit, window),
            per_ip: RateLimit::new(deps, "login-ip", ip_limit, window),
        }
    }

    pub async fn check(
        &self,
        account: Option<&Username>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        if let Some(ip) = ip {
            self.per_ip.check(&ip.to_string()).await?;
        }
        if let Some(account) = account {
            self.per_account.check(account.as_str()).await?;
        }
        Ok(())
    }

    pub async fn record_failure(
        &self,
        account: Option<&Username>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        if let Some(ip) = ip {
            self.per_ip.hit(&ip.to_string()).await?;
        }
        if let Some(account) = account {
            self.per_account.hit(account.as_str()).await?;
        }
        Ok(())
    }

    /// Forgets the account's failed logins once its owner proved who they
    /// are: a successful login, or a password reset through the link sent
    /// to them (a user locked out by mistyping, who then resets, can log
    /// in with the new password at once).
    pub async fn clear_account(&self, account: &Username) -> Result<()> {
        self.per_account.clear(account.as_str()).await
    }
}
