//! Staff accounts: creation (including the first admin), reading, role,
//! state and password changes, deletion, with the last-active-admin rule.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::random_hex;
use crate::domain::{AccountState, Password, PasswordPolicy, Role, Username};
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::listing::{UserListQuery, search_text};
use crate::service::passwords::PasswordHasher;
use crate::service::{Context, Deps};
use crate::store::{
    AccountChange, AccountRecord, AccountWriteOutcome, Page, StoreError, UserQuery, UserRecord,
    UserWriteOutcome,
};

/// What an invited account holds instead of a password hash until its
/// owner chooses a password: no PHC string, so no password matches it.
pub const NO_PASSWORD: &str = "!invited";

/// A user as clients see it: never a hash, token version, second-factor
/// secret or reset secret.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    /// `role == "admin"`, for clients that know only this flag.
    pub admin: bool,
    pub role: Role,
    pub state: AccountState,
    /// Signs in with a second factor (TOTP).
    pub mfa: bool,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

impl From<AccountRecord> for UserView {
    fn from(a: AccountRecord) -> Self {
        Self {
            username: a.user.username,
            admin: a.role == Role::Admin,
            role: a.role,
            state: a.state,
            mfa: a.totp.is_some_and(|t| t.confirmed),
            created: a.user.created,
            changed: a.user.changed,
            last_login: a.user.last_login,
        }
    }
}

/// A request to create a user with a password, as typed.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub admin: bool,
}

/// A change to a user, as typed; `None` leaves the field alone. `role`
/// and `admin` say the same thing (`admin: true` is role admin,
/// `admin: false` makes an admin staff); sent together they must agree.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub admin: Option<bool>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

#[derive(Debug)]
pub enum FirstAdmin {
    Created(UserView),
    /// An admin exists already; nothing was created.
    AlreadyInitialized,
}

#[derive(Clone)]
pub struct UserService {
    deps: Deps,
    hasher: Arc<PasswordHasher>,
    policy: PasswordPolicy,
    audits: Auditor,
}

impl UserService {
    pub fn new(
        deps: Deps,
        hasher: Arc<PasswordHasher>,
        policy: PasswordPolicy,
        audits: Auditor,
    ) -> Self {
        Self {
            deps,
            hasher,
            policy,
            audits,
        }
    }

    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The username and password of a new account, each checked; every
    /// problem of both is reported at once.
    fn checked(&self, username: &str, password: String) -> Result<(Username, Password)> {
        let username = Username::parse(username)
            .map_err(|invalid| invalid.with(self.policy.check_without_username(&password)))?;
        let password = self.policy.check(password, &username)?;
        Ok((username, password))
    }

    /// Whether an account could be created with these values, without
    /// creating it: for a form that finds a problem of its own (a repeated
    /// password that differs) and shows the service's problems beside it.
    pub fn check_new_user(&self, username: &str, password: &str) -> Result<()> {
        self.checked(username, password.to_owned()).map(drop)
    }

    /// The record of a new account: with a password (checked and hashed)
    /// an active one, without one an invited one.
    async fn new_record(
        &self,
        username: &str,
        password: Option<String>,
        role: Role,
    ) -> Result<AccountRecord> {
        let (username, hash, state) = match password {
            Some(password) => {
                let (username, password) = self.checked(username, password)?;
                let hash = self.hasher.hash(&password).await?;
                (username, hash, AccountState::Active)
            }
            None => (
                Username::parse(username)?,
                NO_PASSWORD.to_owned(),
                AccountState::Invited,
            ),
        };
        let now = self.deps.clock.now();
        Ok(AccountRecord {
            user: UserRecord {
                id: random_hex(self.deps.random.as_ref(), 16),
                username: username.to_string(),
                password_hash: hash,
                admin: role == Role::Admin,
                token_version: 0,
                created: now,
                changed: now,
                last_login: None,
            },
            role,
            state,
            totp: None,
        })
    }

    pub async fn create(&self, ctx: &Context, new: NewUser) -> Result<UserView> {
        let role = if new.admin { Role::Admin } else { Role::Staff };
        self.create_account(ctx, &new.username, Some(new.password), role)
            .await
            .map(UserView::from)
    }

    /// Creates an account (admins and the command line): with a password
    /// an active one, without one an invited one, whose invitation the
    /// caller sends.
    pub async fn create_account(
        &self,
        ctx: &Context,
        username: &str,
        password: Option<String>,
        role: Role,
    ) -> Result<AccountRecord> {
        ctx.require_admin()?;
        let invited = password.is_none();
        let record = self.new_record(username, password, role).await?;
        match self.deps.store.insert_account(&record).await {
            Err(StoreError::Duplicate(_)) => {
                return Err(Error::Conflict(format!(
                    "a user named {} already exists",
                    record.user.username
                )));
            }
            other => other?,
        }
        let action = if invited {
            format!("invited ({role})")
        } else {
            format!("create user ({role})")
        };
        self.audits
            .record(ctx, AuditTarget::user(&record.user.username), action)
            .await;
        Ok(record)
    }

    /// Creates the first admin, only while no admin exists; of concurrent
    /// calls exactly one succeeds.
    pub async fn create_first_admin(
        &self,
        ctx: &Context,
        username: &str,
        password: String,
    ) -> Result<FirstAdmin> {
        if self.deps.store.admin_exists().await? {
            return Ok(FirstAdmin::AlreadyInitialized);
        }
        let record = self
            .new_record(username, Some(password), Role::Admin)
            .await?;
        let created = match self.deps.store.insert_first_admin(&record.user).await {
            Ok(created) => created,
            // A non-admin with that name exists; the first admin must be new.
            Err(StoreError::Duplicate(_)) => {
                return Err(Error::Conflict(format!(
                    "a user named {} already exists",
                    record.user.username
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if !created {
            return Ok(FirstAdmin::AlreadyInitialized);
        }
        self.audits
            .record(
                ctx,
                AuditTarget::user(&record.user.username),
                "create first admin",
            )
            .await;
        Ok(FirstAdmin::Created(record.into()))
    }

    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(self.deps.store.admin_exists().await?)
    }

    /// Admins may read anyone, others only themselves.
    pub async fn get(&self, ctx: &Context, username: &str) -> Result<UserView> {
        self.account(ctx, username).await.map(UserView::from)
    }

    /// The account behind `get`, with the same access rule.
    pub async fn account(&self, ctx: &Context, username: &str) -> Result<AccountRecord> {
        let me = ctx.current_user();
        let username = Username::parse(username).map_err(|_| not_found())?;
        let allowed = match &ctx.actor {
            crate::service::Actor::System => true,
            _ => me.is_some_and(|u| u.admin || u.username == username),
        };
        if !allowed {
            ctx.require_staff()?;
            return Err(Error::Forbidden(
                "you may only read your own account".into(),
            ));
        }
        self.deps
            .store
            .account_by_username(username.as_str())
            .await?
            .ok_or_else(not_found)
    }

    pub async fn list(&self, ctx: &Context, query: UserListQuery) -> Result<Page<UserView>> {
        ctx.require_admin()?;
        let search = search_text(query.search.as_deref())?;
        let page = self
            .deps
            .store
            .list_accounts(&UserQuery {
                search: search
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty()),
                offset: query.paging.offset,
                limit: query.paging.perpage,
            })
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(UserView::from).collect(),
            total: page.total,
        })
    }

    /// Changes role, state and/or password (admins and the command line).
    /// Demotion of an admin, disabling and a new password end every token
    /// and session of the user at once; the last active admin can be
    /// neither demoted nor disabled.
    pub async fn update(
        &self,
        ctx: &Context,
        username: &str,
        changes: UserChanges,
    ) -> Result<UserView> {
        ctx.require_admin()?;
        let username = Username::parse(username).map_err(|_| not_found())?;
        if changes.admin.is_none()
            && changes.role.is_none()
            && changes.disabled.is_none()
            && changes.password.is_none()
        {
            return Err(Error::BadRequest(
                "nothing to change: send role (or admin), disabled and/or password".into(),
            ));
        }
        if let (Some(role), Some(admin)) = (changes.role, changes.admin)
            && (role == Role::Admin) != admin
        {
            return Err(Error::invalid(
                "admin",
                format!("admin {admin} contradicts role {role}; send one of them"),
            ));
        }
        let password = changes
            .password
            .map(|p| self.policy.check(p, &username))
            .transpose()?;
        let current = self
            .deps
            .store
            .account_by_username(username.as_str())
            .await?
            .ok_or_else(not_found)?;
        let role = changes.role.or(match changes.admin {
            Some(true) => Some(Role::Admin),
            Some(false) if current.role == Role::Admin => Some(Role::Staff),
            _ => None,
        });
        let state = changes.disabled.map(|disabled| match disabled {
            true => AccountState::Disabled,
            // An invited account that was disabled is invited again.
            false if current.user.password_hash == NO_PASSWORD => AccountState::Invited,
            false => AccountState::Active,
        });
        let mut change = AccountChange::at(self.deps.clock.now());
        change.role = role.filter(|&r| r != current.role);
        // An admin who sets an invited user's password accepts the
        // invitation for them.
        change.state = state.filter(|&s| s != current.state).or((password.is_some()
            && current.state == AccountState::Invited)
            .then_some(AccountState::Active));
        change.password_hash = match &password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let demoted = current.role == Role::Admin && change.role.is_some();
        let disabled = change.state == Some(AccountState::Disabled);
        change.revoke_tokens = demoted || disabled || password.is_some();
        let updated = self.apply_change(&username, &change).await?;
        if disabled {
            self.deps
                .store
                .delete_sessions_of_user(&updated.user.id, None)
                .await?;
        }
        let target = || AuditTarget::user(username.as_str());
        if let Some(role) = change.role {
            self.audits
                .record(ctx, target(), format!("role change: {role}"))
                .await;
        }
        match change.state {
            Some(AccountState::Disabled) => {
                self.audits.record(ctx, target(), "account disabled").await
            }
            Some(_) if current.state == AccountState::Disabled => {
                self.audits.record(ctx, target(), "account enabled").await
            }
            _ => {}
        }
        if password.is_some() {
            self.audits.record(ctx, target(), "password change").await;
        }
        Ok(updated.into())
    }

    /// Applies `change` to the account, with the last-admin rule.
    pub async fn apply_change(
        &self,
        username: &Username,
        change: &AccountChange,
    ) -> Result<AccountRecord> {
        match self
            .deps
            .store
            .change_account(username.as_str(), change)
            .await?
        {
            AccountWriteOutcome::Done(account) => Ok(account),
            AccountWriteOutcome::NotFound => Err(not_found()),
            AccountWriteOutcome::LastAdmin => Err(last_admin()),
        }
    }

    /// Sets a password without the admin check; for flows that proved
    /// identity otherwise (reset link, invitation). Revokes tokens only
    /// when asked. An invited account becomes active.
    pub async fn write_update(
        &self,
        username: &Username,
        password: &Password,
        revoke_tokens: bool,
    ) -> Result<UserView> {
        let mut change = AccountChange::at(self.deps.clock.now());
        change.password_hash = Some(self.hasher.hash(password).await?);
        change.revoke_tokens = revoke_tokens;
        let current = self
            .deps
            .store
            .account_by_username(username.as_str())
            .await?
            .ok_or_else(not_found)?;
        if current.state == AccountState::Invited {
            change.state = Some(AccountState::Active);
        }
        self.apply_change(username, &change).await.map(Into::into)
    }

    pub async fn delete(&self, ctx: &Context, username: &str) -> Result<()> {
        ctx.require_admin()?;
        let username = Username::parse(username).map_err(|_| not_found())?;
        match self.deps.store.delete_user(username.as_str()).await? {
            UserWriteOutcome::Done(_) => {
                self.audits
                    .record(ctx, AuditTarget::user(username.as_str()), "delete user")
                    .await;
                Ok(())
            }
            UserWriteOutcome::NotFound => Err(not_found()),
            UserWriteOutcome::LastAdmin => Err(last_admin()),
        }
    }

    /// The audit trail of one staff account (admins only).
    pub async fn audits(
        &self,
        ctx: &Context,
        username: &str,
    ) -> Result<Vec<crate::store::AuditRecord>> {
        ctx.require_admin()?;
        let username = Username::parse(username).map_err(|_| not_found())?;
        Ok(self.deps.store.audits_for_user(username.as_str()).await?)
    }
}

pub(crate) fn not_found() -> Error {
    Error::NotFound("no such user".into())
}

fn last_admin() -> Error {
    Error::Conflict("this is the last admin; make another user admin first".into())
}
