//! Password recovery (SPEC section 8): one-time reset links by email.
//!
//! - A token is 256 random bits, stored only as its SHA-256; a newer token
//!   replaces the older one; it works once and expires (the rules of every
//!   mailed key, `service::mailed_keys`).
//! - `/iforgot` does the same visible work for known and unknown usernames:
//!   it counts the request against the client IP and hands everything else
//!   (lookup, token, mail) to a background task, so neither the answer nor
//!   its timing tells whether the account exists.
//! - Mails per account are limited; requests beyond the limit are audited
//!   but send nothing.
//! - A link an administrator sends says so: the person did not ask for it,
//!   so the self-service wording ("we received a request") would mislead.
//! - Completing a reset sets the password with the shared policy, revokes
//!   every token and session of the user, spends all their reset tokens
//!   and sends a notice. It does not log the user in.

use std::sync::Arc;

use crate::config::Config;
use crate::domain::{AccountState, PasswordPolicy, Username};
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::background::Background;
use crate::service::mail::Mailer;
use crate::service::mailed_keys::{KeyKind, MailedKeys};
use crate::service::throttle::{LoginThrottle, RateLimit};
use crate::service::users::UserService;
use crate::service::{Context, Deps, seconds};
use crate::store::UserRecord;
use chrono::{DateTime, Duration, Utc};

pub(crate) mod mails;

/// The name mails and pages use for the service.
pub const SERVICE_NAME: &str = "C3-PRO IDM";

/// Reset links open active accounts only: invited ones have their
/// invitation for choosing a password.
const RESET_KEYS: KeyKind = KeyKind {
    hash_prefix: "",
    page: "/reset",
    opens: AccountState::Active,
    invalid: "This reset link is invalid, was already used, was replaced by a newer one or has \
              expired.",
};

/// A reset key that can still be used, and whose account it resets.
#[derive(Debug, Clone)]
pub struct ValidKey {
    pub username: Username,
    /// Until when the key works.
    pub expires: DateTime<Utc>,
}

/// Who asked for a reset link; the mail's wording depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestedBy {
    /// Someone on `/iforgot`, hopefully the account's owner.
    Owner,
    /// An administrator, on the users page, the API or the command line.
    Administrator,
}

#[derive(Clone)]
pub struct RecoveryService {
    deps: Deps,
    users: UserService,
    policy: PasswordPolicy,
    audits: Auditor,
    mailer: Arc<Mailer>,
    background: Background,
    login_throttle: LoginThrottle,
    per_account: RateLimit,
    per_ip: RateLimit,
    /// `/reset` submissions per client address.
    submits_per_ip: RateLimit,
    keys: MailedKeys,
    public_url: String,
}

impl RecoveryService {
    pub fn new(
        config: &Config,
        deps: Deps,
        users: UserService,
        audits: Auditor,
        mailer: Arc<Mailer>,
        background: Background,
        login_throttle: LoginThrottle,
    ) -> Self {
        let window = seconds(config.reset_window_secs);
        Self {
            per_account: RateLimit::new(
                deps.clone(),
                "reset-account",
                config.reset_account_limit,
                window,
            ),
            per_ip: RateLimit::new(deps.clone(), "reset-ip", config.reset_ip_limit, window),
            submits_per_ip: RateLimit::new(
                deps.clone(),
                "reset-submit-ip",
                config.reset_submit_ip_limit,
                window,
            ),
            policy: users.policy().clone(),
            keys: MailedKeys::new(
                deps.clone(),
                RESET_KEYS,
                seconds(config.reset_token_lifetime_secs),
                config.public_url(),
            ),
            deps,
            users,
            audits,
            mailer,
            background,
            login_throttle,
            public_url: config.public_url().to_owned(),
        }
    }

    /// How long a reset link stays valid, in words ("2 hours").
    pub fn lifetime_text(&self) -> String {
        self.keys.lifetime_text()
    }

    /// `/iforgot`: answers the same for every well-formed username. Only a
    /// malformed address (400) or too many requests from this IP (429)
    /// are told apart, and neither depends on the account existing.
    pub async fn request_reset(&self, ctx: &Context, username: &str) -> Result<()> {
        let username = Username::parse(username)?;
        if let Some(ip) = ctx.client_ip {
            let ip = ip.to_string();
            self.per_ip.take(&ip).await.inspect_err(|_| {
                tracing::warn!(ip = %ip, "password reset requests throttled");
            })?;
        }
        let this = self.clone();
        let ctx = ctx.clone();
        self.background.spawn(async move {
            if let Err(err) = this.handle_request(&ctx, &username).await {
                tracing::error!(user = %username, error = %err, "password reset request failed");
            }
        });
        Ok(())
    }

    async fn handle_request(&self, ctx: &Context, username: &Username) -> Result<()> {
        let target = || AuditTarget::user(username.as_str());
        let within_limit = self.per_account.hit(username.as_str()).await?;
        let Some(account) = self
            .deps
            .store
            .account_by_username(username.as_str())
            .await?
        else {
            self.audits
                .record(
                    ctx,
                    target(),
                    "password reset requested for unknown account",
                )
                .await;
            return Ok(());
        };
        if !within_limit {
            tracing::warn!(user = %username, "password reset mails for this account throttled");
            self.audits
                .record(
                    ctx,
                    target(),
                    "password reset requested (rate limited, no mail sent)",
                )
                .await;
            return Ok(());
        }
        if account.state != AccountState::Active {
            // Disabled accounts cannot reset; invited ones have their
            // invitation for choosing a password.
            self.audits
                .record(
                    ctx,
                    target(),
                    format!(
                        "password reset requested for {} account (no mail sent)",
                        account.state
                    ),
                )
                .await;
            return Ok(());
        }
        self.audits
            .record(ctx, target(), "password reset requested")
            .await;
        self.send_reset_mail(&account.user, RequestedBy::Owner)
            .await
    }

    /// An admin (or the command line) sends a reset link to a user. Waits
    /// for the mail to be handed over, so the admin learns of a failure.
    pub async fn send_reset_by_admin(&self, ctx: &Context, username: &str) -> Result<()> {
        ctx.require_admin()?;
        let username =
            Username::parse(username).map_err(|_| Error::NotFound("no such user".into()))?;
        let account = self
            .deps
            .store
            .account_by_username(username.as_str())
            .await?
            .ok_or_else(|| Error::NotFound("no such user".into()))?;
        match account.state {
            AccountState::Active => {}
            AccountState::Disabled => {
                return Err(Error::Conflict(
                    "this account is disabled; enable it before sending a reset link".into(),
                ));
            }
            AccountState::Invited => {
                return Err(Error::Conflict(
                    "this account has not chosen a password yet; resend its invitation instead"
                        .into(),
                ));
            }
        }
        let user = account.user;
        self.send_reset_mail(&user, RequestedBy::Administrator)
            .await?;
        self.audits
            .record(
                ctx,
                AuditTarget::user(&user.username),
                "password reset email sent by an administrator",
            )
            .await;
        Ok(())
    }

    /// Creates a token for `user` (replacing any older one) and mails the
    /// link. The token exists only in this mail and as a hash in the store.
    async fn send_reset_mail(&self, user: &UserRecord, by: RequestedBy) -> Result<()> {
        let link = self.keys.issue(&user.id).await?;
        let expiry = self.lifetime_text();
        let iforgot = self.iforgot_url();
        let to = self.recipient(&user.username, &iforgot);
        let (subject, bodies) = match by {
            RequestedBy::Owner => (
                format!("Reset your {SERVICE_NAME} password"),
                mails::reset(&to, &link, &expiry),
            ),
            RequestedBy::Administrator => (
                format!("Set a new password for your {SERVICE_NAME} account"),
                mails::reset_by_admin(&to, &link, &expiry),
            ),
        };
        let message = self.mailer.compose(&user.username, &subject, bodies)?;
        self.mailer.send(message).await.map_err(|_| {
            Error::Unavailable("the reset email could not be sent; see /status and the log".into())
        })
    }

    /// Whether `key` can still reset a password, for showing the form.
    pub async fn check_key(&self, key: &str) -> Result<ValidKey> {
        let key = self.keys.usable(key).await?;
        Ok(ValidKey {
            username: key.username,
            expires: key.record.expires,
        })
    }

    /// Counts a `/reset` submission against its client address before its
    /// key is looked at (429 once the address used up its window), so keys
    /// cannot be tried in bulk; then as [`RecoveryService::check_key`].
    pub async fn check_submitted_key(&self, ctx: &Context, key: &str) -> Result<ValidKey> {
        if let Some(ip) = ctx.client_ip {
            let ip = ip.to_string();
            self.submits_per_ip.take(&ip).await.inspect_err(|_| {
                tracing::warn!(ip = %ip, "password reset submissions throttled");
            })?;
        }
        self.check_key(key).await
    }

    /// `/reset`: sets the new password if `key` is still usable and the
    /// password meets the policy. A password the policy refuses leaves the
    /// key usable (`BadRequest`); an unusable key is `Gone`.
    pub async fn complete_reset(&self, ctx: &Context, key: &str, password: String) -> Result<()> {
        let key = self.keys.usable(key).await?;
        let password = self.policy.check(password, &key.username)?;
        self.keys
            .spend_on_password(&self.users, &key, &password)
            .await?;
        let username = key.username;
        self.login_throttle.clear_account(&username).await?;
        self.audits
            .record(
                ctx,
                AuditTarget::user(username.as_str()),
                "password reset completed",
            )
            .await;
        let iforgot = self.iforgot_url();
        let notice = self.mailer.compose(
            username.as_str(),
            &format!("Your {SERVICE_NAME} password was changed"),
            mails::password_changed(&self.recipient(username.as_str(), &iforgot)),
        )?;
        let mailer = self.mailer.clone();
        self.background.spawn(async move {
            // A failure is logged and shown on /status by the mailer.
            let _ = mailer.send(notice).await;
        });
        Ok(())
    }

    /// The page that sends a new reset link, named in every reset mail.
    fn iforgot_url(&self) -> String {
        format!("{}/iforgot", self.public_url)
    }

    fn recipient<'a>(&self, username: &'a str, iforgot: &'a str) -> mails::Recipient<'a> {
        mails::Recipient {
            service: SERVICE_NAME,
            username,
            iforgot,
        }
    }
}

/// "2 hours", "90 minutes", "1 hour": for mails and pages.
pub(crate) fn duration_text(d: Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let minutes = d.num_minutes();
    if minutes >= 60 && minutes % 60 == 0 {
        plural(minutes / 60, "hour")
    } else if minutes >= 1 {
        plural(minutes, "minute")
    } else {
        plural(d.num_seconds(), "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_text(Duration::hours(2)), "2 hours");
        assert_eq!(duration_text(Duration::hours(1)), "1 hour");
        assert_eq!(duration_text(Duration::minutes(90)), "90 minutes");
        assert_eq!(duration_text(Duration::seconds(30)), "30 seconds");
    }

    #[test]
    fn a_reset_key_is_stored_as_its_plain_sha256() {
        // So the keys already in a store stay usable.
        use sha2::{Digest, Sha256};
        let token = crate::service::mailed_keys::tests::some_key();
        assert_eq!(
            RESET_KEYS.hash(&token),
            hex::encode(Sha256::digest(token.as_bytes()))
        );
    }
}
