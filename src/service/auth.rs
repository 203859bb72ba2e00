//! Logging in (password, then a second factor where the account has one)
//! and checking staff tokens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::MfaRequired;
use crate::domain::{AccountState, Password, Role, Username};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::service::accounts::second_factor::{CodeKind, SecondFactorKeys};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::passwords::{PasswordHasher, Verification};
use crate::service::throttle::{LoginThrottle, Refusal, ThrottleReason};
use crate::service::tokens::StaffTokens;
use crate::service::{Actor, Context, CurrentUser, Deps};
use crate::store::{AccountRecord, UserRecord, UserUpdate};

/// The one answer for every failed login, so it reveals nothing.
pub const BAD_LOGIN: &str = "Wrong username or password";

/// A right password for an account with a second factor: the sign-in
/// waits for a code. Holds nothing secret; the account's token version
/// ties it to the password that was checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub user_id: String,
    pub token_version: i64,
}

/// What a right password leads to.
#[derive(Debug)]
pub enum FirstStep {
    SignedIn(CurrentUser),
    SecondFactor(PendingLogin),
}

/// What the login needs beyond its collaborators.
#[derive(Clone)]
pub struct LoginPolicy {
    pub keys: Arc<SecondFactorKeys>,
    pub mfa_required: MfaRequired,
}

#[derive(Clone)]
pub struct AuthService {
    deps: Deps,
    hasher: Arc<PasswordHasher>,
    tokens: Arc<StaffTokens>,
    throttle: LoginThrottle,
    audits: Auditor,
    metrics: Arc<Metrics>,
    policy: LoginPolicy,
}

impl AuthService {
    pub fn new(
        deps: Deps,
        hasher: Arc<PasswordHasher>,
        tokens: Arc<StaffTokens>,
        throttle: LoginThrottle,
        audits: Auditor,
        metrics: Arc<Metrics>,
        policy: LoginPolicy,
    ) -> Self {
        Self {
            deps,
            hasher,
            tokens,
            throttle,
            audits,
            metrics,
            policy,
        }
    }

    /// Checks a username and password (both as typed, either may be
    /// missing). Unknown, invited and disabled accounts cost the same hash
    /// as active ones and fail alike. The attempt is counted against the
    /// login limits before the password is looked at, so parallel guesses
    /// cannot outrun the count. A right password for an account with a
    /// second factor stays counted until its code is right too, so knowing
    /// the password does not reset the budget for guessing codes.
    pub async fn check_password(
        &self,
        ctx: &Context,
        username: Option<&str>,
        password: Option<String>,
    ) -> Result<FirstStep> {
        let account_name = username.and_then(|u| Username::parse(u).ok());
        let admission = match self
            .throttle
            .admit(account_name.as_ref(), ctx.client_ip)
            .await?
        {
            Ok(admission) => admission,
            Err(refusal) => {
                self.throttled(ctx, account_name.as_ref(), &refusal).await;
                return Err(refusal.into());
            }
        };
        let account = match &account_name {
            Some(a) => self.deps.store.account_by_username(a.as_str()).await?,
            None => None,
        };
        let usable = account
            .as_ref()
            .filter(|a| a.state == AccountState::Active)
            .map(|a| a.user.password_hash.as_str());
        let password = password.and_then(Password::for_login);
        let verification = match &password {
            Some(p) => self.hasher.verify(p, usable).await?,
            None => Verification::NoMatch,
        };
        let (account, needs_rehash) = match (account, verification) {
            (Some(account), Verification::Match { needs_rehash }) => (account, needs_rehash),
            (account, _) => {
                self.metrics.logins.with_label_values(&["failed"]).inc();
                if let Some(account) = account {
                    let action = match account.state {
                        AccountState::Active => "login failed",
                        AccountState::Disabled => "login refused: account disabled",
                        AccountState::Invited => "login refused: invitation not accepted yet",
                    };
                    self.audits
                        .record(ctx, AuditTarget::user(&account.user.username), action)
                        .await;
                }
                return Err(Error::Unauthorized(BAD_LOGIN.into()));
            }
        };
        if needs_rehash && let Some(p) = &password {
            self.upgrade_hash(&account.user, p).await;
        }
        if account.totp.as_ref().is_some_and(|t| t.confirmed) {
            drop(admission);
            return Ok(FirstStep::SecondFactor(PendingLogin {
                user_id: account.user.id.clone(),
                token_version: account.user.token_version,
            }));
        }
        self.throttle.succeeded(admission).await;
        self.signed_in(ctx, &account, "login")
            .await
            .map(FirstStep::SignedIn)
    }

    /// The second step of a sign-in: a TOTP code or a recovery code for
    /// the account whose password was right. Each attempt is counted like
    /// a password; a TOTP code works once, a recovery code once ever.
    pub async fn check_second_factor(
        &self,
        ctx: &Context,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<CurrentUser> {
        let account = self
            .deps
            .store
            .account_by_id(&pending.user_id)
            .await?
            .filter(|a| {
                a.state == AccountState::Active && a.user.token_version == pending.token_version
            })
            .ok_or_else(|| Error::Unauthorized(BAD_LOGIN.into()))?;
        let name = Username::from_trusted(account.user.username.clone());
        let admission = match self.throttle.admit(Some(&name), ctx.client_ip).await? {
            Ok(admission) => admission,
            Err(refusal) => {
                self.throttled(ctx, Some(&name), &refusal).await;
                return Err(refusal.into());
            }
        };
        let target = || AuditTarget::user(&account.user.username);
        match self.spend_code(&account, code).await? {
            Some(kind) => {
                self.throttle.succeeded(admission).await;
                if kind == CodeKind::Recovery {
                    // The account proved itself: it is the actor.
                    let as_user = Context {
                        actor: Actor::Staff(self.current_user(&account)),
                        ..ctx.clone()
                    };
                    self.audits
                        .record(&as_user, target(), "second factor: recovery code used")
                        .await;
                }
                self.signed_in(ctx, &account, "login").await
            }
            None => {
                self.metrics.logins.with_label_values(&["failed"]).inc();
                self.audits
                    .record(ctx, target(), "login failed: wrong second-factor code")
                    .await;
                Err(Error::Unauthorized(BAD_LOGIN.into()))
            }
        }
    }

    /// Checks `code` against the account's second factor and spends it:
    /// the kind of code on success, `None` for a wrong or used code.
    pub async fn spend_code(
        &self,
        account: &AccountRecord,
        code: &str,
    ) -> Result<Option<CodeKind>> {
        let Some(totp) = &account.totp else {
            return Ok(None);
        };
        let id = &account.user.id;
        let kind = self.policy.keys.check(
            id,
            &account.user.username,
            &totp.sealed_secret,
            code,
            self.deps.clock.now(),
        )?;
        let spent = match kind {
            Some(CodeKind::Totp(step)) => self.deps.store.take_totp_step(id, step).await?,
            Some(CodeKind::Recovery) if totp.confirmed => {
                let hash = self.policy.keys.recovery_hash(id, code);
                self.deps.store.take_recovery_code(id, &hash).await?
            }
            _ => false,
        };
        Ok(kind.filter(|_| spent))
    }

    /// Records a successful sign-in, audited with the account as actor.
    async fn signed_in(
        &self,
        ctx: &Context,
        account: &AccountRecord,
        action: &str,
    ) -> Result<CurrentUser> {
        self.deps
            .store
            .record_login(&account.user.id, self.deps.clock.now())
            .await?;
        let signed_in = self.current_user(account);
        let as_user = Context {
            actor: Actor::Staff(signed_in.clone()),
            ..ctx.clone()
        };
        self.audits
            .record(&as_user, AuditTarget::user(&account.user.username), action)
            .await;
        self.metrics.logins.with_label_values(&["ok"]).inc();
        Ok(signed_in)
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

    /// `POST /auth`: credentials in, a staff token out. An account with a
    /// second factor needs its code in `otp`; without one, or with a wrong
    /// one, the answer is the same as for a wrong password.
    pub async fn login(
        &self,
        ctx: &Context,
        username: Option<&str>,
        password: Option<String>,
        otp: Option<&str>,
    ) -> Result<String> {
        let user = match self.check_password(ctx, username, password).await? {
            FirstStep::SignedIn(user) => user,
            FirstStep::SecondFactor(pending) => match otp {
                Some(code) => self.check_second_factor(ctx, &pending, code).await?,
                None => {
                    self.metrics.logins.with_label_values(&["failed"]).inc();
                    if let Some(account) = self.deps.store.account_by_id(&pending.user_id).await? {
                        self.audits
                            .record(
                                ctx,
                                AuditTarget::user(&account.user.username),
                                "login failed: second-factor code missing",
                            )
                            .await;
                    }
                    return Err(Error::Unauthorized(BAD_LOGIN.into()));
                }
            },
        };
        self.tokens
            .issue_claims(&user.id, user.token_version, self.deps.clock.now())
    }

    /// Checks a staff token and that its user is still active and
    /// unchanged.
    pub async fn authenticate(&self, token: &str) -> Result<CurrentUser> {
        let claims = self.tokens.verify(token, self.deps.clock.now())?;
        self.revalidate(&claims.identity, claims.ver)
            .await?
            .ok_or_else(|| Error::Unauthorized("Invalid or expired token".into()))
    }

    /// Whether a session or token that was opened for `user` is still
    /// valid: the account exists, is active, and its tokens were not
    /// revoked since.
    pub async fn revalidate(
        &self,
        user_id: &str,
        token_version: i64,
    ) -> Result<Option<CurrentUser>> {
        Ok(self
            .deps
            .store
            .account_by_id(user_id)
            .await?
            .filter(|a| a.user.token_version == token_version && a.state == AccountState::Active)
            .map(|a| self.current_user(&a)))
    }

    /// Whether the configuration requires a second factor of `account`.
    pub fn requires_second_factor(&self, role: Role) -> bool {
        match self.policy.mfa_required {
            MfaRequired::None => false,
            MfaRequired::Admins => role == Role::Admin,
            MfaRequired::All => true,
        }
    }

    pub fn current_user(&self, account: &AccountRecord) -> CurrentUser {
        let enrolled = account.totp.as_ref().is_some_and(|t| t.confirmed);
        CurrentUser {
            id: account.user.id.clone(),
            username: Username::from_trusted(account.user.username.clone()),
            admin: account.role == Role::Admin,
            role: account.role,
            token_version: account.user.token_version,
            must_enrol: !enrolled && self.requires_second_factor(account.role),
        }
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
