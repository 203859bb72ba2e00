//! The staff account lifecycle of SPEC section 11 beyond creating and
//! changing users (`service::users`): invitations, two-factor sign-in,
//! the own account (password, sessions) and what admins see and do on
//! an account's page.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::domain::{Password, Username};
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::auth::AuthService;
use crate::service::mail::Mailer;
use crate::service::mailed_keys::MailedKeys;
use crate::service::passwords::Verification;
use crate::service::throttle::{LoginThrottle, RateLimit};
use crate::service::users::{UserService, not_found};
use crate::service::{Actor, Context, CurrentUser, Deps, seconds};
use crate::store::{AccountChange, AccountRecord};

mod invitations;
mod mfa;
pub mod second_factor;

pub use invitations::ValidInvitation;
pub use mfa::EnrolmentView;
use second_factor::SecondFactorKeys;

/// Password confirmations (enrolment, removal of a factor, password
/// change) and enrolment codes per account per window.
const CONFIRM_LIMIT: u32 = 10;
const CONFIRM_WINDOW_SECS: u64 = 15 * 60;

/// A browser session of an account, as its list shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SessionView {
    /// The stored (hashed) session id; the cookie value is never known.
    #[serde(skip)]
    pub id: String,
    pub started: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub browser: Option<String>,
    /// The session this request came with.
    pub current: bool,
}

/// How much of an account's login budget is used, for its admin page.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleView {
    /// Consecutive failed sign-ins counted against the account.
    pub failures: u32,
    pub until: Option<DateTime<Utc>>,
    pub ceiling: u32,
}

#[derive(Clone)]
pub struct AccountService {
    deps: Deps,
    users: UserService,
    auth: AuthService,
    audits: Auditor,
    mailer: Arc<Mailer>,
    login_throttle: LoginThrottle,
    keys: Arc<SecondFactorKeys>,
    confirmations: RateLimit,
    welcome_submits_per_ip: RateLimit,
    /// The keys of invitation links.
    invitations: MailedKeys,
    session_idle: Duration,
    login_ceiling: u32,
}

/// What `AccountService::new` is built from.
pub struct AccountParts {
    pub users: UserService,
    pub auth: AuthService,
    pub audits: Auditor,
    pub mailer: Arc<Mailer>,
    pub login_throttle: LoginThrottle,
    pub keys: Arc<SecondFactorKeys>,
}

impl AccountService {
    pub fn new(config: &Config, deps: Deps, parts: AccountParts) -> Self {
        Self {
            confirmations: RateLimit::new(
                deps.clone(),
                "account-confirm",
                CONFIRM_LIMIT,
                seconds(CONFIRM_WINDOW_SECS),
            ),
            welcome_submits_per_ip: RateLimit::new(
                deps.clone(),
                "welcome-submit-ip",
                config.reset_submit_ip_limit,
                seconds(config.reset_window_secs),
            ),
            invitations: MailedKeys::new(
                deps.clone(),
                invitations::INVITATION_KEYS,
                seconds(config.invite_token_lifetime_secs),
                config.public_url(),
            ),
            deps,
            users: parts.users,
            auth: parts.auth,
            audits: parts.audits,
            mailer: parts.mailer,
            login_throttle: parts.login_throttle,
            keys: parts.keys,
            session_idle: seconds(config.session_idle_secs),
            login_ceiling: config.login_account_ceiling,
        }
    }

    /// The account `username` if the actor is its owner or an admin.
    async fn own_or_admin(&self, ctx: &Context, username: &str) -> Result<AccountRecord> {
        self.users.account(ctx, username).await
    }

    /// The account `username` if it is the actor's own.
    async fn own(&self, ctx: &Context, username: &str) -> Result<AccountRecord> {
        let me = ctx.require_staff()?;
        let name = Username::parse(username).map_err(|_| not_found())?;
        if me.username != name {
            return Err(Error::Forbidden(
                "only the account's owner may do this".into(),
            ));
        }
        self.deps
            .store
            .account_by_id(&me.id)
            .await?
            .ok_or_else(not_found)
    }

    /// Checks the account's current password, counted against a small
    /// budget per account so a left-open session cannot guess it.
    async fn confirm_password(&self, account: &AccountRecord, password: &str) -> Result<()> {
        self.confirmations.take(&account.user.id).await?;
        let Some(password) = Password::for_login(password.to_owned()) else {
            return Err(wrong_password());
        };
        match self
            .users
            .hasher()
            .verify(&password, Some(&account.user.password_hash))
            .await?
        {
            Verification::Match { .. } => Ok(()),
            Verification::NoMatch => Err(wrong_password()),
        }
    }

    /// Changes the own password: needs the current one; ends every token
    /// and every other session of the account (`keep`, the stored id of
    /// the session asking, stays). Returns the account as it is now, whose
    /// token version the asking session takes on.
    pub async fn change_password(
        &self,
        ctx: &Context,
        current: &str,
        new: String,
        keep: Option<&str>,
    ) -> Result<CurrentUser> {
        let me = ctx.require_staff()?;
        let account = self.own(ctx, me.username.as_str()).await?;
        let username = Username::from_trusted(account.user.username.clone());
        let new = self.users.policy().check(new, &username);
        if let Err(wrong) = self.confirm_password(&account, current).await {
            return Err(match (wrong, new) {
                (Error::Invalid(mut fields), Err(Error::Invalid(more))) => {
                    fields.extend(more);
                    Error::Invalid(fields)
                }
                (wrong, _) => wrong,
            });
        }
        let new = new?;
        let mut change = AccountChange::at(self.deps.clock.now());
        change.password_hash = Some(self.users.hasher().hash(&new).await?);
        change.revoke_tokens = true;
        let account = self.users.apply_change(&username, &change).await?;
        self.deps
            .store
            .delete_sessions_of_user(&account.user.id, keep)
            .await?;
        self.audits
            .record(ctx, AuditTarget::user(username.as_str()), "password change")
            .await;
        Ok(self.auth.current_user(&account))
    }

    /// Ends every session and token of the account (admins, or the owner);
    /// `keep` (the stored id of the asking session of the owner) stays
    /// signed in, under the new token version returned.
    pub async fn revoke_sessions(
        &self,
        ctx: &Context,
        username: &str,
        keep: Option<&str>,
    ) -> Result<CurrentUser> {
        let account = self.own_or_admin(ctx, username).await?;
        let username = Username::from_trusted(account.user.username.clone());
        let mut change = AccountChange::at(self.deps.clock.now());
        change.revoke_tokens = true;
        let account = self.users.apply_change(&username, &change).await?;
        let mine = ctx.current_user().is_some_and(|u| u.id == account.user.id);
        self.deps
            .store
            .delete_sessions_of_user(&account.user.id, keep.filter(|_| mine))
            .await?;
        self.audits
            .record(
                ctx,
                AuditTarget::user(username.as_str()),
                "sessions revoked",
            )
            .await;
        Ok(self.auth.current_user(&account))
    }

    /// The account's signed-in browser sessions, newest first; `current`
    /// is the stored id of the asking session.
    pub async fn sessions(
        &self,
        ctx: &Context,
        username: &str,
        current: Option<&str>,
    ) -> Result<Vec<SessionView>> {
        let account = self.own_or_admin(ctx, username).await?;
        let now = self.deps.clock.now();
        let sessions = self
            .deps
            .store
            .sessions_of_user(&account.user.id, now)
            .await?;
        Ok(sessions
            .into_iter()
            .filter_map(|s| {
                let data: serde_json::Value = serde_json::from_str(&s.data).ok()?;
                let auth = data.get("auth")?;
                // A session of an older token version is already over.
                if auth.get("token_version")?.as_i64()? != account.user.token_version {
                    return None;
                }
                let text = |key: &str| auth.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                Some(SessionView {
                    current: current == Some(s.id.as_str()),
                    started: text("since").and_then(|t| t.parse().ok()),
                    last_seen: s.expires - self.session_idle,
                    client_ip: text("ip"),
                    browser: text("agent"),
                    id: s.id,
                })
            })
            .collect())
    }

    /// The account's failed sign-ins as the login throttle counts them.
    pub async fn throttle_state(&self, ctx: &Context, username: &str) -> Result<ThrottleView> {
        ctx.require_admin()?;
        let account = self.own_or_admin(ctx, username).await?;
        let name = Username::from_trusted(account.user.username);
        let window = self.login_throttle.account_failures(&name).await?;
        Ok(ThrottleView {
            failures: window.map_or(0, |w| w.count),
            until: window.map(|w| w.resets_at),
            ceiling: self.login_ceiling,
        })
    }

    /// Forgets the account's failed sign-ins from every address (admins).
    pub async fn unlock(&self, ctx: &Context, username: &str) -> Result<()> {
        ctx.require_admin()?;
        let account = self.own_or_admin(ctx, username).await?;
        let name = Username::from_trusted(account.user.username);
        self.login_throttle.clear_account(&name).await?;
        self.audits
            .record(
                ctx,
                AuditTarget::user(name.as_str()),
                "login throttle cleared",
            )
            .await;
        Ok(())
    }

    /// `ctx` with the account as actor (an invitation accepted, a sign-in).
    fn as_account(&self, ctx: &Context, account: &AccountRecord) -> Context {
        Context {
            actor: Actor::Staff(self.auth.current_user(account)),
            ..ctx.clone()
        }
    }
}

fn wrong_password() -> Error {
    Error::invalid("current_password", "the current password is not right")
}
