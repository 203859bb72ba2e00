//! Browser sessions: what a session holds, and the extractors that turn a
//! request into a visitor (anonymous, signed in, or an admin).
//!
//! A signed-in session holds the user id and the user's token version;
//! every request re-checks both (`AuthService::revalidate`), so a password
//! change, reset, demotion or deletion ends the user's sessions at once.
//! The idle timeout is enforced by the session store (each request extends
//! it), the absolute timeout here, both on the service clock.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::app::AppState;
use crate::clock::random_hex;
use crate::error::Error;
use crate::http::client_ip::client_ip;
use crate::http::request_id::request_id;
use crate::service::auth::PendingLogin;
use crate::service::{Context, CurrentUser, seconds};
use crate::web::csrf::{SignedOutToken, own_page};
use crate::web::error::{SignInReason, WebError};
use crate::web::layout::{Chrome, Flash, Section};
use crate::web::login::local_path;

pub const CSRF_KEY: &str = "csrf";
/// The own account page, the one page an account that must set up a
/// second factor reaches.
pub const ACCOUNT_PAGE: &str = "/account";
const AUTH_KEY: &str = "auth";
const FLASH_KEY: &str = "flash";

/// Random bytes in a CSRF token.
const CSRF_TOKEN_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct SignedInAs {
    user_id: String,
    token_version: i64,
    since: DateTime<Utc>,
    /// Where and with what the session signed in, for the account's list
    /// of its sessions (absent in sessions from before that list).
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Serialize, Deserialize)]
struct AwaitingCode {
    login: PendingLogin,
    since: DateTime<Utc>,
    next: Option<String>,
}

const PENDING_KEY: &str = "pending_login";
/// How long the code page waits after the password.
const PENDING_SECS: i64 = 5 * 60;
/// The longest browser description kept for the list of sessions.
const MAX_AGENT_CHARS: usize = 200;

fn session_error(err: tower_sessions::session::Error) -> WebError {
    WebError::internal(anyhow::anyhow!("session: {err}"))
}

/// Anyone visiting a page.
pub struct Visitor {
    pub session: Session,
    pub ctx: Context,
    pub csrf: String,
    /// The request came from htmx and wants a fragment.
    pub htmx: bool,
    /// The id of the element htmx will swap (`HX-Target`), if any.
    pub htmx_target: Option<String>,
    /// The browser's `User-Agent`, shortened.
    pub user_agent: Option<String>,
}

impl Visitor {
    pub fn user(&self) -> Option<&CurrentUser> {
        self.ctx.current_user()
    }

    /// Whether the visitor may change study data (monitors only read).
    pub fn can_write(&self) -> bool {
        self.user().is_some_and(|u| u.role.may_write())
    }

    pub fn chrome(&self, section: Section) -> Chrome {
        Chrome {
            user: self.user().cloned(),
            csrf: self.csrf.clone(),
            section,
        }
    }

    pub fn fail(&self, error: Error) -> WebError {
        WebError::with_chrome(error, &self.chrome(Section::Other))
    }

    /// Shown on the next full page.
    pub async fn set_flash(&self, flash: Flash) -> Result<(), WebError> {
        self.session
            .insert(FLASH_KEY, flash)
            .await
            .map_err(session_error)
    }

    pub async fn take_flash(&self) -> Result<Option<Flash>, WebError> {
        self.session.remove(FLASH_KEY).await.map_err(session_error)
    }

    /// Starts a signed-in session under a new id (so an id planted before
    /// login is worthless) with a new CSRF token.
    pub async fn sign_in(&mut self, state: &AppState, user: CurrentUser) -> Result<(), WebError> {
        self.session.cycle_id().await.map_err(session_error)?;
        let auth = SignedInAs {
            user_id: user.id.clone(),
            token_version: user.token_version,
            since: state.services.deps.clock.now(),
            ip: self.ctx.client_ip.map(|ip| ip.to_string()),
            agent: self.user_agent.clone(),
        };
        self.session
            .insert(AUTH_KEY, auth)
            .await
            .map_err(session_error)?;
        let _ = self
            .session
            .remove::<AwaitingCode>(PENDING_KEY)
            .await
            .map_err(session_error)?;
        self.csrf = new_csrf_token(state);
        self.session
            .insert(CSRF_KEY, &self.csrf)
            .await
            .map_err(session_error)?;
        self.ctx.actor = crate::service::Actor::Staff(user);
        Ok(())
    }

    /// Ends the session: its row is deleted, so the old cookie is worthless.
    pub async fn sign_out(&self) -> Result<(), WebError> {
        end_session(&self.session).await
    }

    /// Keeps a right password of an account with a second factor, under a
    /// new session id, until its code comes; the session is not signed in.
    pub async fn await_code(
        &mut self,
        state: &AppState,
        login: PendingLogin,
        next: Option<String>,
    ) -> Result<(), WebError> {
        self.session.cycle_id().await.map_err(session_error)?;
        let pending = AwaitingCode {
            login,
            since: state.services.deps.clock.now(),
            next,
        };
        self.session
            .insert(PENDING_KEY, pending)
            .await
            .map_err(session_error)
    }

    /// The sign-in waiting for its code, and where it goes next, unless
    /// it waited too long.
    pub async fn awaiting_code(
        &self,
        state: &AppState,
    ) -> Result<Option<(PendingLogin, Option<String>)>, WebError> {
        let Some(pending) = self
            .session
            .get::<AwaitingCode>(PENDING_KEY)
            .await
            .map_err(session_error)?
        else {
            return Ok(None);
        };
        let now = state.services.deps.clock.now();
        if (now - pending.since).num_seconds() >= PENDING_SECS {
            self.session
                .remove::<AwaitingCode>(PENDING_KEY)
                .await
                .map_err(session_error)?;
            return Ok(None);
        }
        Ok(Some((pending.login, pending.next)))
    }

    /// The id the store keeps for this session (a hash of the cookie).
    pub fn stored_session_id(&self) -> Option<String> {
        self.session
            .id()
            .map(|id| crate::web::session_store::stored_id(&id))
    }

    /// Keeps this session signed in after its account's tokens were
    /// revoked on purpose (a password change, "sign out everywhere
    /// else"): it takes on the account's new token version.
    pub async fn renew(&mut self, user: CurrentUser) -> Result<(), WebError> {
        let Some(mut auth) = self
            .session
            .get::<SignedInAs>(AUTH_KEY)
            .await
            .map_err(session_error)?
        else {
            return Ok(());
        };
        auth.token_version = user.token_version;
        self.session
            .insert(AUTH_KEY, auth)
            .await
            .map_err(session_error)?;
        self.ctx.actor = crate::service::Actor::Staff(user);
        Ok(())
    }
}

/// Deletes the session and its data. Anything stored afterwards (a flash,
/// a fresh CSRF token) goes into a new session under a new id: flushing
/// alone would reuse the old id.
async fn end_session(session: &Session) -> Result<(), WebError> {
    session.flush().await.map_err(session_error)?;
    session.cycle_id().await.map_err(session_error)
}

fn new_csrf_token(state: &AppState) -> String {
    random_hex(state.services.deps.random.as_ref(), CSRF_TOKEN_BYTES)
}

/// The signed-in user of `session`, if the session is still valid; an
/// expired or revoked session is ended.
async fn signed_in_user(
    session: &Session,
    state: &AppState,
) -> Result<Option<CurrentUser>, WebError> {
    let Some(auth) = session
        .get::<SignedInAs>(AUTH_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let now = state.services.deps.clock.now();
    let too_old = now - auth.since >= seconds(state.config.session_absolute_secs);
    let user = if too_old {
        None
    } else {
        state
            .services
            .auth
            .revalidate(&auth.user_id, auth.token_version)
            .await?
    };
    if user.is_none() {
        end_session(session).await?;
    }
    Ok(user)
}

/// Whether the session holds a sign-in, still valid or not. A wrong token
/// in such a session is not explained by a session that ended.
pub async fn holds_sign_in(session: &Session) -> bool {
    matches!(session.get::<SignedInAs>(AUTH_KEY).await, Ok(Some(_)))
}

/// Where to come back to after signing in: the page the visitor was on,
/// with its query (search, filter, sort, page).
fn here(parts: &Parts, state: &AppState) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let page = if parts.method.is_safe() {
        // A page, or an htmx GET of one (search, sort, pages: every hx-get
        // URL is also a page, and the one htmx is about to push).
        parts.uri.path_and_query().map(|p| p.as_str().to_owned())
    } else {
        // A post goes to its handler; the page holding the form is the
        // one htmx names, or the Referer (sent for same-origin requests).
        header("hx-current-url")
            .or_else(|| header("referer"))
            .and_then(|url| own_page(url, &parts.headers, state.config.public_url()))
    };
    local_path(page.as_deref()).map(str::to_owned)
}

/// The answer to a request that needs a signed-in session and has none.
/// An htmx request or a post can only come from a console page, so its
/// session has ended; a page opened without one may never have had one.
pub fn sign_in_required(parts: &Parts, state: &AppState) -> WebError {
    let htmx = parts.headers.contains_key("hx-request");
    if parts.uri.path() == "/logout" {
        // Signing out of a session that already ended: no way back needed.
        return WebError::SignIn {
            next: None,
            htmx,
            reason: SignInReason::SessionEnded,
        };
    }
    let reason = if !parts.method.is_safe() {
        SignInReason::SessionEndedWithForm
    } else if htmx {
        SignInReason::SessionEnded
    } else {
        SignInReason::NotSignedIn
    };
    WebError::SignIn {
        next: here(parts, state),
        htmx,
        reason,
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| WebError::internal(anyhow::anyhow!("session layer missing")))?;
        let ctx = match signed_in_user(&session, state).await? {
            Some(user) => Context::staff(user, request_id(parts), client_ip(parts)),
            None => Context::anonymous(request_id(parts), client_ip(parts)),
        };
        let csrf = match session
            .get::<String>(CSRF_KEY)
            .await
            .map_err(session_error)?
        {
            Some(token) => token,
            // Not signed in: no session is made (see web::csrf), the
            // forms carry the signed token of the visitor's nonce cookie.
            None => parts
                .extensions
                .get::<SignedOutToken>()
                .map(|token| token.0.clone())
                .ok_or_else(|| WebError::internal(anyhow::anyhow!("CSRF layer missing")))?,
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Visitor {
            user_agent: header("user-agent")
                .map(|agent| agent.chars().take(MAX_AGENT_CHARS).collect()),
            htmx: header("hx-request").is_some(),
            htmx_target: header("hx-target").map(str::to_owned),
            session,
            ctx,
            csrf,
        })
    }
}

/// A signed-in staff member; others are sent to the login page.
pub struct SignedIn(pub Visitor);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let Some(user) = visitor.user() else {
            return Err(sign_in_required(parts, state));
        };
        // An account that must set up a second factor reaches only its
        // account page until it has.
        if user.must_enrol && !parts.uri.path().starts_with(ACCOUNT_PAGE) {
            return Err(WebError::Redirect {
                to: ACCOUNT_PAGE.to_owned(),
                htmx: visitor.htmx,
            });
        }
        Ok(SignedIn(visitor))
    }
}

/// A signed-in admin; other staff get the 403 page.
pub struct Admin(pub Visitor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(visitor) = SignedIn::from_request_parts(parts, state).await?;
        if visitor.ctx.require_admin().is_err() {
            return Err(visitor.fail(Error::Forbidden(
                "User management is for administrators. Ask an administrator if you need access."
                    .into(),
            )));
        }
        Ok(Admin(visitor))
    }
}

/// A signed-in staff member who may change study data; monitors get the
/// 403 page.
pub struct Writer(pub Visitor);

impl FromRequestParts<AppState> for Writer {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(visitor) = SignedIn::from_request_parts(parts, state).await?;
        if let Err(error) = visitor.ctx.require_write() {
            return Err(visitor.fail(error));
        }
        Ok(Writer(visitor))
    }
}
