//! Invitations: an admin creates an account without a password, and its
//! owner chooses one through the emailed `/welcome?k=` link.
//!
//! The token follows the rules of reset links (`service::mailed_keys`:
//! 256 random bits, stored only as a hash, single use, expires, a newer
//! one replaces the older) and shares their store: one token per account.
//! Its hash is taken over `invite:` and the token, so an invitation is
//! never a reset link and a reset link never an invitation.

use chrono::{DateTime, Utc};
use maud::html;

use super::AccountService;
use crate::domain::{AccountState, Role, Username};
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::audits::AuditTarget;
use crate::service::mail::Bodies;
use crate::service::mailed_keys::KeyKind;
use crate::service::recovery::SERVICE_NAME;
use crate::service::recovery::mails::{SIGNATURE_SEPARATOR, page};
use crate::service::users::{UserView, not_found};
use crate::store::AccountRecord;

/// Invitations open invited accounts only: once the password is chosen,
/// a left-over link is useless.
pub(super) const INVITATION_KEYS: KeyKind = KeyKind {
    hash_prefix: "invite:",
    page: "/welcome",
    opens: AccountState::Invited,
    invalid: "This invitation link is invalid, was already used, was replaced by a \
     newer one or has expired. Ask your administrator to send a new invitation.",
};

/// An invitation that can still be accepted.
#[derive(Debug, Clone)]
pub struct ValidInvitation {
    pub username: Username,
    pub expires: DateTime<Utc>,
}

impl AccountService {
    /// How long an invitation link works, in words ("72 hours").
    pub fn invitation_lifetime_text(&self) -> String {
        self.invitations.lifetime_text()
    }

    /// Creates an account (admins, the command line): with a password an
    /// active one, without one an invited one that is sent its invitation.
    pub async fn create(
        &self,
        ctx: &Context,
        username: &str,
        password: Option<String>,
        role: Role,
    ) -> Result<UserView> {
        let invited = password.is_none();
        let account = self
            .users
            .create_account(ctx, username, password, role)
            .await?;
        if invited {
            self.send_invitation(&account).await.map_err(|_| {
                Error::Unavailable(
                    "the account was created, but its invitation email could not be sent; \
                     see /status, then resend the invitation"
                        .into(),
                )
            })?;
        }
        Ok(account.into())
    }

    /// Sends a new invitation (the older link stops working). Only for
    /// accounts that have not accepted theirs.
    pub async fn resend_invitation(&self, ctx: &Context, username: &str) -> Result<()> {
        ctx.require_admin()?;
        let name = Username::parse(username).map_err(|_| not_found())?;
        let account = self
            .deps
            .store
            .account_by_username(name.as_str())
            .await?
            .ok_or_else(not_found)?;
        if account.state != AccountState::Invited {
            return Err(Error::Conflict(
                "this account has no open invitation: it chose its password already".into(),
            ));
        }
        self.send_invitation(&account).await.map_err(|_| {
            Error::Unavailable(
                "the invitation email could not be sent; see /status and the log".into(),
            )
        })?;
        self.audits
            .record(ctx, AuditTarget::user(name.as_str()), "invitation resent")
            .await;
        Ok(())
    }

    /// A new token for `account` and the mail with its link. The token
    /// exists only in this mail and as a hash in the store.
    async fn send_invitation(&self, account: &AccountRecord) -> Result<()> {
        let link = self.invitations.issue(&account.user.id).await?;
        let bodies = invitation_mail(
            &account.user.username,
            account.role,
            &link,
            &self.invitation_lifetime_text(),
        );
        let message = self.mailer.compose(
            &account.user.username,
            &format!("Your {SERVICE_NAME} account: choose a password"),
            bodies,
        )?;
        self.mailer.send(message).await.map_err(Error::internal)
    }

    /// Whether `key` is an invitation that can still be accepted.
    pub async fn check_invitation(&self, key: &str) -> Result<ValidInvitation> {
        let key = self.invitations.usable(key).await?;
        Ok(ValidInvitation {
            username: key.username,
            expires: key.record.expires,
        })
    }

    /// Counts a `/welcome` submission against its client address before
    /// its key is looked at, then as [`Self::check_invitation`].
    pub async fn check_submitted_invitation(
        &self,
        ctx: &Context,
        key: &str,
    ) -> Result<ValidInvitation> {
        if let Some(ip) = ctx.client_ip {
            self.welcome_submits_per_ip.take(&ip.to_string()).await?;
        }
        self.check_invitation(key).await
    }

    /// Sets the first password of an invited account and activates it. It
    /// does not sign the person in: they do that next, as everyone does.
    pub async fn accept_invitation(
        &self,
        ctx: &Context,
        key: &str,
        password: String,
    ) -> Result<()> {
        let key = self.invitations.usable(key).await?;
        let password = self.users.policy().check(password, &key.username)?;
        self.invitations
            .spend_on_password(&self.users, &key, &password)
            .await?;
        let username = key.username;
        if let Some(account) = self.deps.store.account_by_id(&key.record.user_id).await? {
            let ctx = self.as_account(ctx, &account);
            self.audits
                .record(
                    &ctx,
                    AuditTarget::user(username.as_str()),
                    "invitation accepted: account activated",
                )
                .await;
        }
        Ok(())
    }
}

/// The invitation mail, plain text and HTML, built in one pass (values
/// are never read again as a template).
fn invitation_mail(username: &str, role: Role, link: &str, expiry: &str) -> Bodies {
    let service = SERVICE_NAME;
    let role = role.label().to_lowercase();
    let text = format!(
        "Hello,\n\
         \n\
         An administrator of {service} has created an account for you:\n\
         {username} ({role}).\n\
         \n\
         To choose your password, open this link within {expiry}:\n\
         \n\
         {link}\n\
         \n\
         The link works once. When it has expired, ask your administrator for a\n\
         new invitation (reply to this message).\n\
         {SIGNATURE_SEPARATOR}\
         {service}\n"
    );
    let html = page(
        html! { "Your " (service) " account" },
        html! {
            p { "An administrator of " (service) " has created an account for you: "
                strong { (username) } " (" (role) ")." }
            p { "To choose your password, open this link within " (expiry) ":" }
            p { a href=(link) { (link) } }
            p { "The link works once. When it has expired, ask your administrator for a new \
                 invitation (reply to this message)." }
        },
        service,
    );
    Bodies { text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_hash_is_never_a_reset_hash() {
        use sha2::{Digest, Sha256};
        let token = crate::service::mailed_keys::tests::some_key();
        assert_ne!(
            INVITATION_KEYS.hash(&token),
            hex::encode(Sha256::digest(token.as_bytes()))
        );
    }

    #[test]
    fn the_mail_names_account_role_and_link() {
        let bodies = invitation_mail(
            "<b>new</b>@example.org",
            Role::Monitor,
            "http://idm.test/welcome?k=00&x=1",
            "72 hours",
        );
        assert!(
            bodies
                .text
                .contains("\n\nhttp://idm.test/welcome?k=00&x=1\n\n")
        );
        assert!(bodies.text.contains("monitor (read only)"));
        assert!(bodies.html.contains("&lt;b&gt;new&lt;/b&gt;@example.org"));
        assert!(bodies.html.contains("welcome?k=00&amp;x=1"));
    }
}
