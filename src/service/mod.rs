//! The service layer: every rule of the product lives here. The JSON API
//! (`crate::api`) and the browser pages (`crate::web`) are thin adapters
//! that turn requests into calls on [`Services`].

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Duration;

use crate::clock::{Clock, RandomSource};
use crate::config::{Config, Secrets};
use crate::domain::{PasswordPolicy, Role, Username};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Store;

pub mod accounts;
pub mod audits;
pub mod auth;
pub mod background;
pub mod csv;
pub mod health;
pub mod housekeeping;
pub mod import;
pub mod link_tokens;
pub mod links;
pub mod listing;
pub mod mail;
pub(crate) mod mailed_keys;
pub(crate) mod optimistic;
pub mod passwords;
pub mod recovery;
pub mod subjects;
pub mod throttle;
pub mod tokens;
pub mod users;

/// Who is acting.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A logged-in staff member.
    Staff(CurrentUser),
    /// The operator at the command line.
    System,
    /// Nobody logged in: public pages, the mobile app.
    Anonymous,
}

/// A staff member whose token or session was just verified.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentUser {
    pub id: String,
    pub username: Username,
    /// `role == Role::Admin`, for the many places that only ask that.
    pub admin: bool,
    pub role: Role,
    pub token_version: i64,
    /// The configuration requires a second factor this account has not set
    /// up yet: it may only reach its own account to set one up.
    pub must_enrol: bool,
}

/// Everything a service call needs to know about the request behind it.
#[derive(Debug, Clone)]
pub struct Context {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub client_ip: Option<IpAddr>,
}

impl Context {
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            request_id: None,
            client_ip: None,
        }
    }

    pub fn staff(user: CurrentUser, request_id: Option<String>, client_ip: Option<IpAddr>) -> Self {
        Self {
            actor: Actor::Staff(user),
            request_id,
            client_ip,
        }
    }

    pub fn anonymous(request_id: Option<String>, client_ip: Option<IpAddr>) -> Self {
        Self {
            actor: Actor::Anonymous,
            request_id,
            client_ip,
        }
    }

    /// The username to record in audits, if a person is acting.
    pub fn actor_name(&self) -> Option<String> {
        match &self.actor {
            Actor::Staff(u) => Some(u.username.to_string()),
            Actor::System | Actor::Anonymous => None,
        }
    }

    pub fn current_user(&self) -> Option<&CurrentUser> {
        match &self.actor {
            Actor::Staff(u) => Some(u),
            _ => None,
        }
    }

    pub fn require_staff(&self) -> Result<&CurrentUser> {
        self.current_user()
            .ok_or_else(|| Error::Unauthorized("Authorization Required".into()))
    }

    /// Changing study data (subjects, links): staff, admins and the command
    /// line pass; monitors only read.
    pub fn require_write(&self) -> Result<()> {
        match &self.actor {
            Actor::System => Ok(()),
            Actor::Staff(u) if u.role.may_write() => Ok(()),
            Actor::Staff(_) => Err(Error::Forbidden(
                "monitors may read study data but not change it".into(),
            )),
            Actor::Anonymous => Err(Error::Unauthorized("Authorization Required".into())),
        }
    }

    /// Admins and the command line pass.
    pub fn require_admin(&self) -> Result<()> {
        match &self.actor {
            Actor::System => Ok(()),
            Actor::Staff(u) if u.admin => Ok(()),
            Actor::Staff(_) => Err(Error::Forbidden("only admins may do this".into())),
            Actor::Anonymous => Err(Error::Unauthorized("Authorization Required".into())),
        }
    }
}

/// What the services share.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

/// All services, built once per process.
pub struct Services {
    pub deps: Deps,
    pub users: users::UserService,
    pub auth: auth::AuthService,
    pub health: health::HealthService,
    pub mailer: Arc<mail::Mailer>,
    pub metrics: Arc<Metrics>,
    pub recovery: recovery::RecoveryService,
    /// Work that runs after its request answered (mail delivery).
    pub background: background::Background,
    pub subjects: subjects::SubjectService,
    pub links: links::LinkService,
    /// CSV exports and the bulk import of subjects.
    pub csv: csv::CsvService,
    pub accounts: accounts::AccountService,
    pub audits: audits::AuditService,
}

impl Services {
    pub fn new(config: &Config, secrets: &Secrets, deps: Deps) -> anyhow::Result<Self> {
        let hasher = Arc::new(passwords::PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            deps.random.clone(),
        )?);
        let policy = PasswordPolicy {
            min_chars: config.password_min_chars,
        };
        let audits = audits::Auditor::new(deps.clone());
        let metrics = Arc::new(Metrics::new());
        let mailer = Arc::new(mail::Mailer::from_config(config, metrics.clone())?);
        let tokens = Arc::new(tokens::StaffTokens::new(
            &secrets.token_key,
            seconds(config.token_lifetime_secs),
        )?);
        let login_throttle = throttle::LoginThrottle::new(
            deps.clone(),
            throttle::LoginLimits {
                account_from_address: config.login_account_limit,
                address: config.login_ip_limit,
                window: seconds(config.login_window_secs),
                account_ceiling: config.login_account_ceiling,
                ceiling_window: seconds(config.login_account_ceiling_window_secs),
            },
        );
        let background = background::Background::default();
        let recovery = recovery::RecoveryService::new(
            config,
            deps.clone(),
            users::UserService::new(deps.clone(), hasher.clone(), policy.clone(), audits.clone()),
            audits.clone(),
            mailer.clone(),
            background.clone(),
            login_throttle.clone(),
        );
        let subjects = subjects::SubjectService::new(deps.clone(), audits.clone())
            .with_count_limit(config.subject_count_limit);
        let csv = csv::CsvService::new(deps.clone(), subjects.clone(), audits.clone());
        let links = links::LinkService::new(
            deps.clone(),
            subjects.clone(),
            Arc::new(link_tokens::LinkTokens::new(&secrets.link_secret)?),
            links::LinkSettings {
                issuer: config.link_issuer(),
                audience: config.link_audience(),
                lifetime: seconds(config.link_lifetime_secs),
            },
            audits.clone(),
        );
        let users = users::UserService::new(deps.clone(), hasher.clone(), policy, audits.clone());
        let keys = Arc::new(accounts::second_factor::SecondFactorKeys::derive(
            &secrets.token_key,
        ));
        let auth = auth::AuthService::new(
            deps.clone(),
            hasher,
            tokens,
            login_throttle.clone(),
            audits.clone(),
            metrics.clone(),
            auth::LoginPolicy {
                keys: keys.clone(),
                mfa_required: config.mfa_required,
            },
        );
        let accounts = accounts::AccountService::new(
            config,
            deps.clone(),
            accounts::AccountParts {
                users: users.clone(),
                auth: auth.clone(),
                audits,
                mailer: mailer.clone(),
                login_throttle,
                keys,
            },
        );
        Ok(Self {
            users,
            auth,
            accounts,
            health: health::HealthService::new(
                deps.clone(),
                mailer.clone(),
                config.database_timeouts().readiness,
            ),
            mailer,
            metrics,
            recovery,
            background,
            audits: audits::AuditService::new(deps.clone()),
            deps,
            subjects,
            links,
            csv,
        })
    }
}

/// Configuration durations are whole seconds.
pub fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}
