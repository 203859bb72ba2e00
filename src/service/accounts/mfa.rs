//! Setting up and removing the TOTP second factor.
//!
//! Enrolment has two steps: the owner confirms their password and gets a
//! new secret (as text and `otpauth://` URI) and ten recovery codes, shown
//! this once; the factor counts only once they give a valid code from
//! their app. Until then sign-in works as before.

use serde::Serialize;

use super::AccountService;
use super::second_factor::CodeKind;
use crate::domain::Username;
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::audits::AuditTarget;
use crate::service::users::not_found;
use crate::store::{AccountChange, TotpRecord};

/// What an enrolment shows once: never readable again afterwards.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnrolmentView {
    /// The secret for typing into an authenticator app (base32).
    pub secret: String,
    /// The same as a URI for the QR code.
    pub otpauth_uri: String,
    /// Ten single-use codes for when the app is not at hand.
    pub recovery_codes: Vec<String>,
}

impl AccountService {
    /// Starts (or restarts) an enrolment of the own account; refused
    /// while a confirmed second factor exists (remove it first).
    pub async fn start_enrolment(
        &self,
        ctx: &Context,
        username: &str,
        password: &str,
    ) -> Result<EnrolmentView> {
        let account = self.own(ctx, username).await?;
        if account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(Error::Conflict(
                "two-factor sign-in is already set up; remove it before setting it up again".into(),
            ));
        }
        self.confirm_password(&account, password)
            .await
            .map_err(|e| match e {
                Error::Invalid(_) => Error::invalid("password", "the password is not right"),
                other => other,
            })?;
        let enrolment = self.keys.enrol(
            self.deps.random.as_ref(),
            &account.user.id,
            &account.user.username,
        )?;
        let mut change = AccountChange::at(self.deps.clock.now());
        change.totp = Some(Some(TotpRecord {
            sealed_secret: enrolment.sealed_secret,
            confirmed: false,
            last_step: None,
        }));
        change.recovery_hashes = Some(enrolment.recovery_hashes);
        let name = Username::from_trusted(account.user.username.clone());
        self.users.apply_change(&name, &change).await?;
        Ok(EnrolmentView {
            secret: enrolment.secret_base32,
            otpauth_uri: enrolment.otpauth_uri,
            recovery_codes: enrolment.recovery_codes,
        })
    }

    /// Whether the own account has an enrolment waiting for its code.
    pub async fn enrolment_pending(&self, ctx: &Context, username: &str) -> Result<bool> {
        let account = self.own(ctx, username).await?;
        Ok(account.totp.is_some_and(|t| !t.confirmed))
    }

    /// Finishes the enrolment with a code from the app (counted per
    /// account against a small budget).
    pub async fn confirm_enrolment(&self, ctx: &Context, username: &str, otp: &str) -> Result<()> {
        let account = self.own(ctx, username).await?;
        let Some(totp) = account.totp.clone().filter(|t| !t.confirmed) else {
            return Err(Error::Conflict(
                "no two-factor set-up is waiting for a code; start one first".into(),
            ));
        };
        self.confirmations.take(&account.user.id).await?;
        let Some(CodeKind::Totp(step)) = self.auth.spend_code(&account, otp).await? else {
            return Err(Error::invalid(
                "otp",
                "the code is not right; enter the 6 digits your app shows now",
            ));
        };
        let mut change = AccountChange::at(self.deps.clock.now());
        change.totp = Some(Some(TotpRecord {
            confirmed: true,
            last_step: Some(step),
            ..totp
        }));
        let name = Username::from_trusted(account.user.username.clone());
        self.users.apply_change(&name, &change).await?;
        self.audits
            .record(ctx, AuditTarget::user(name.as_str()), "second factor added")
            .await;
        Ok(())
    }

    /// Removes the second factor and its recovery codes: admins for any
    /// account, owners with their password.
    pub async fn remove_second_factor(
        &self,
        ctx: &Context,
        username: &str,
        password: Option<&str>,
    ) -> Result<()> {
        let me = ctx.require_staff().ok();
        let name = Username::parse(username).map_err(|_| not_found())?;
        let own = me.is_some_and(|u| u.username == name);
        let account = if ctx.require_admin().is_ok() && !own {
            self.users.account(ctx, username).await?
        } else {
            let account = self.own(ctx, username).await?;
            let Some(password) = password else {
                return Err(Error::invalid(
                    "password",
                    "enter your password to remove two-factor sign-in",
                ));
            };
            self.confirm_password(&account, password)
                .await
                .map_err(|e| match e {
                    Error::Invalid(_) => Error::invalid("password", "the password is not right"),
                    other => other,
                })?;
            account
        };
        if account.totp.is_none() {
            return Err(Error::Conflict(
                "this account has no two-factor sign-in".into(),
            ));
        }
        let mut change = AccountChange::at(self.deps.clock.now());
        change.totp = Some(None);
        self.users.apply_change(&name, &change).await?;
        self.audits
            .record(
                ctx,
                AuditTarget::user(name.as_str()),
                "second factor removed",
            )
            .await;
        Ok(())
    }

    /// How many recovery codes the own (or, for admins, any) account has left.
    pub async fn recovery_codes_left(&self, ctx: &Context, username: &str) -> Result<u64> {
        let account = self.own_or_admin(ctx, username).await?;
        Ok(self
            .deps
            .store
            .recovery_codes_left(&account.user.id)
            .await?)
    }
}
