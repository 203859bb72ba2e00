//! Logging in and checking staff tokens.

use std::sync::Arc;

use crate::domain::{Password, Username};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::passwords::{PasswordHasher, Verification};
use crate::service::throttle::{LoginThrottle, Refusal, ThrottleReason};
use crate::service::tokens::StaffTokens;
use crate::service::{Actor, Context, CurrentUser, Deps};
use crate::store::{UserRecord, UserUpdate};

/// The one answer for every failed login, so it reveals nothing.
pub const BAD_LOGIN: &str = "Wrong username or password";

#[derive(Clone)]
pub struct AuthService {
    deps: Deps,
    hasher: Arc<PasswordHasher>,
    tokens: Arc<StaffTokens>,
    throttle: LoginThrottle,
    audits: Auditor,
    metrics: Arc<Metrics>,
}

impl AuthService {
    pub fn new(
        deps: Deps,
        hasher: Arc<PasswordHasher>,
        tokens: Arc<StaffTokens>,
        throttle: LoginThrottle,
        audits: Auditor,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            deps,
            hasher,
            tokens,
            throttle,
            audits,
            metrics,
        }
    }

    /// Checks a username and password (both as typed, either may be missing)
    /// and returns the user. Unknown users cost the same hash as known ones.
    /// The attempt is counted against the login limits before the password
    /// is looked at, so parallel guesses cannot outrun the count.
    pub async fn verify_credentials(
        &self,
        ctx: &Context,
        username: Option<&str>,
        password: Option<String>,
    ) -> Result<CurrentUser> {
        let account = username.and_then(|u| Username::parse(u).ok());
        let admission = match self.throttle.admit(account.as_ref(), ctx.client_ip).await? {
            Ok(admission) => admission,
            Err(refusal) => {
                self.throttled(ctx, account.as_ref(), &refusal).await;
                return Err(refusal.into());
            }
        };
        let user = match &account {
            Some(a) => self.deps.store.user_by_username(a.as_str()).await?,
            None => None,
        };
        let password = password.and_then(Password::for_login);
        let verification = match &password {
            Some(p) => {
                self.hasher
                    .verify(p, user.as_ref().map(|u| u.password_hash.as_str()))
                    .await?
            }
            None => Verification::NoMatch,
        };
        match (user, verification) {
            (Some(user), Verification::Match { needs_rehash }) => {
                self.throttle.succeeded(admission).await;
                self.deps
                    .store
                    .record_login(&user.id, self.deps.clock.now())
                    .await?;
                if needs_rehash && let Some(p) = &password {
                    self.upgrade_hash(&user, p).await;
                }
                let signed_in = current_user(&user);
                // The account that just proved itself is the actor.
                let as_user = Context {
                    actor: Actor::Staff(signed_in.clone()),
                    ..ctx.clone()
                };
                self.audits
                    .record(&as_user, AuditTarget::user(&user.username), "login")
                    .await;
                self.metrics.logins.with_label_values(&["ok"]).inc();
                Ok(signed_in)
            }
            (user, _) => {
                self.metrics.logins.with_label_values(&["failed"]).inc();
                if let Some(user) = user {
                    self.audits
                        .record(ctx, AuditTarget::user(&user.username), "login failed")
                        .await;
                }
                Err(Error::Unauthorized(BAD_LOGIN.into()))
            }
        }
    }

    /// Logs a refused login, and audits it on the account's trail once per
    /// account and window when it was the account's budget that refused (an
    /// address over its own limit is not about any one account).
    async fn throttled(&self, ctx: &Context, account: Option<&Username>, refusal: &Refusal) {
        self.metrics.logins.with_label_values(&["throttled"]).inc();
        tracing::warn!(
            account = ?account.map(Username::as_str),
            ip = ?ctx.client_ip,
            reason = ?refusal.reason,
            "login throttled"
        );
        let action = match refusal.reason {
            ThrottleReason::AccountFromAddress => "login throttled",
            ThrottleReason::Account => "login throttled for every address",
            ThrottleReason::Address => return,
        };
        let Some(account) = account else { return };
        let audit = async {
            if self.throttle.first_refusal(account, refusal).await?
                && self
                    .deps
                    .store
                    .user_by_username(account.as_str())
                    .await?
                    .is_some()
            {
                self.audits
                    .record(ctx, AuditTarget::user(account.as_str()), action)
                    .await;
            }
            Ok::<_, Error>(())
        };
        if let Err(err) = audit.await {
            tracing::error!(error = %err, "could not audit a throttled login");
        }
    }

    /// `POST /auth`: credentials in, a staff token out.
    pub async fn login(
        &self,
        ctx: &Context,
        username: Option<&str>,
        password: Option<String>,
    ) -> Result<String> {
        let user = self.verify_credentials(ctx, username, password).await?;
        self.tokens
            .issue_claims(&user.id, user.token_version, self.deps.clock.now())
    }

    /// Checks a staff token and that its user still exists unchanged.
    pub async fn authenticate(&self, token: &str) -> Result<CurrentUser> {
        let claims = self.tokens.verify(token, self.deps.clock.now())?;
        let user = self
            .deps
            .store
            .user_by_id(&claims.identity)
            .await?
            .filter(|u| u.token_version == claims.ver)
            .ok_or_else(|| Error::Unauthorized("Invalid or expired token".into()))?;
        Ok(current_user(&user))
    }

    /// Whether a session that was opened for `user` is still valid.
    pub async fn revalidate(
        &self,
        user_id: &str,
        token_version: i64,
    ) -> Result<Option<CurrentUser>> {
        Ok(self
            .deps
            .store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.token_version == token_version)
            .as_ref()
            .map(current_user))
    }

    /// Re-hashes an imported bcrypt (or weaker argon2) hash with the current
    /// parameters. Failure is logged: the login itself already succeeded.
    async fn upgrade_hash(&self, user: &UserRecord, password: &Password) {
        let result = async {
            let hash = self.hasher.hash(password).await?;
            let update = UserUpdate {
                admin: None,
                password_hash: Some(hash),
                revoke_tokens: false,
                changed: user.changed,
            };
            self.deps.store.update_user(&user.username, &update).await?;
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(user = %user.username, "password hash upgraded to argon2id"),
            Err(err) => {
                tracing::error!(user = %user.username, error = %err, "could not upgrade password hash")
            }
        }
    }
}

fn current_user(user: &UserRecord) -> CurrentUser {
    CurrentUser {
        id: user.id.clone(),
        username: Username::from_trusted(user.username.clone()),
        admin: user.admin,
        token_version: user.token_version,
    }
}
