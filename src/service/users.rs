//! Staff accounts: creation (including the first admin), reading, role and
//! password changes, deletion, with the last-admin rule.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::random_hex;
use crate::domain::{Password, PasswordPolicy, Username};
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::listing::{UserListQuery, search_text};
use crate::service::passwords::PasswordHasher;
use crate::service::{Context, Deps};
use crate::store::{Page, StoreError, UserQuery, UserRecord, UserUpdate, UserWriteOutcome};

/// A user as clients see it: never a hash, token version or reset secret.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub admin: bool,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            username: u.username,
            admin: u.admin,
            created: u.created,
            changed: u.changed,
            last_login: u.last_login,
        }
    }
}

/// A request to create a user, as typed.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub admin: bool,
}

/// A change to a user, as typed; `None` leaves the field alone.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub admin: Option<bool>,
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

    /// Validates username and password and builds the record to insert.
    async fn new_record(&self, new: NewUser) -> Result<UserRecord> {
        let (username, password) = self.checked(&new.username, new.password)?;
        let hash = self.hasher.hash(&password).await?;
        let now = self.deps.clock.now();
        Ok(UserRecord {
            id: random_hex(self.deps.random.as_ref(), 16),
            username: username.to_string(),
            password_hash: hash,
            admin: new.admin,
            token_version: 0,
            created: now,
            changed: now,
            last_login: None,
        })
    }

    pub async fn create(&self, ctx: &Context, new: NewUser) -> Result<UserView> {
        ctx.require_admin()?;
        let record = self.new_record(new).await?;
        match self.deps.store.insert_user(&record).await {
            Err(StoreError::Duplicate(_)) => {
                return Err(Error::Conflict(format!(
                    "a user named {} already exists",
                    record.username
                )));
            }
            other => other?,
        }
        let role = if record.admin { "admin" } else { "staff" };
        self.audits
            .record(
                ctx,
                AuditTarget::user(&record.username),
                format!("create user ({role})"),
            )
            .await;
        Ok(record.into())
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
            .new_record(NewUser {
                username: username.to_owned(),
                password,
                admin: true,
            })
            .await?;
        let created = match self.deps.store.insert_first_admin(&record).await {
            Ok(created) => created,
            // A non-admin with that name exists; the first admin must be new.
            Err(StoreError::Duplicate(_)) => {
                return Err(Error::Conflict(format!(
                    "a user named {} already exists",
                    record.username
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
                AuditTarget::user(&record.username),
                "create first admin",
            )
            .await;
        Ok(FirstAdmin::Created(record.into()))
    }

    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(self.deps.store.admin_exists().await?)
    }

    /// Admins may read anyone, staff only themselves.
    pub async fn get(&self, ctx: &Context, username: &str) -> Result<UserView> {
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
            .user_by_username(username.as_str())
            .await?
            .map(UserView::from)
            .ok_or_else(not_found)
    }

    pub async fn list(&self, ctx: &Context, query: UserListQuery) -> Result<Page<UserView>> {
        ctx.require_admin()?;
        let search = search_text(query.search.as_deref())?;
        let page = self
            .deps
            .store
            .list_users(&UserQuery {
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

    /// Changes the admin flag and/or the password. Demotion and a new
    /// password revoke every token and session of the user.
    pub async fn update(
        &self,
        ctx: &Context,
        username: &str,
        changes: UserChanges,
    ) -> Result<UserView> {
        ctx.require_admin()?;
        let username = Username::parse(username).map_err(|_| not_found())?;
        if changes.admin.is_none() && changes.password.is_none() {
            return Err(Error::BadRequest(
                "nothing to change: send admin and/or password".into(),
            ));
        }
        let password = changes
            .password
            .map(|p| self.policy.check(p, &username))
            .transpose()?;
        let current = self
            .deps
            .store
            .user_by_username(username.as_str())
            .await?
            .ok_or_else(not_found)?;
        let demoted = current.admin && changes.admin == Some(false);
        let role_changes = changes.admin.filter(|&a| a != current.admin);
        let updated = self
            .write_update(
                &username,
                changes.admin,
                password.as_ref(),
                demoted || password.is_some(),
            )
            .await?;
        if let Some(admin) = role_changes {
            let action = if admin {
                "role change: admin"
            } else {
                "role change: staff"
            };
            self.audits
                .record(ctx, AuditTarget::user(username.as_str()), action)
                .await;
        }
        if password.is_some() {
            self.audits
                .record(ctx, AuditTarget::user(username.as_str()), "password change")
                .await;
        }
        Ok(updated)
    }

    /// Sets a password without the admin check; for flows that proved
    /// identity otherwise (reset link, login rehash). Revokes tokens only
    /// when asked.
    pub async fn write_update(
        &self,
        username: &Username,
        admin: Option<bool>,
        password: Option<&Password>,
        revoke_tokens: bool,
    ) -> Result<UserView> {
        let password_hash = match password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let update = UserUpdate {
            admin,
            password_hash,
            revoke_tokens,
            changed: self.deps.clock.now(),
        };
        match self
            .deps
            .store
            .update_user(username.as_str(), &update)
            .await?
        {
            UserWriteOutcome::Done(user) => Ok(user.into()),
            UserWriteOutcome::NotFound => Err(not_found()),
            UserWriteOutcome::LastAdmin => Err(last_admin()),
        }
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

fn not_found() -> Error {
    Error::NotFound("no such user".into())
}

fn last_admin() -> Error {
    Error::Conflict("this is the last admin; make another user admin first".into())
}
