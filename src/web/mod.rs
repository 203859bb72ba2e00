//! Server-rendered pages (maud + HTMX). They call the same services as the
//! JSON API.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::app::AppState;
use crate::service::seconds;

mod account;
mod assets;
pub mod csrf;
pub mod error;
mod home;
mod init;
pub(crate) mod invitations;
pub mod layout;
mod link_key;
mod login;
mod login_code;
pub mod messages;
mod recovery;
mod root;
pub mod session;
pub mod session_store;
pub mod subjects;
pub(crate) mod users;
mod welcome;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "idm_session";

/// The pages; `/` answers browsers and leaves every other client to
/// `root_for_clients` (the API's answer, passed in by `crate::app`).
pub fn router(state: &AppState, root_for_clients: root::OtherClients) -> Router<AppState> {
    let config = &state.config;
    let deps = &state.services.deps;
    let store = session_store::DbSessionStore::new(
        deps.store.clone(),
        deps.clock.clone(),
        seconds(config.session_idle_secs),
    );
    let idle = tower_sessions::cookie::time::Duration::seconds(
        i64::try_from(config.session_idle_secs).unwrap_or(i64::MAX),
    );
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.serves_https())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
        // Every request moves the idle deadline.
        .with_always_save(true);
    // The CSRF check wraps each page's handlers, not the router: a method a
    // page does not take then answers 405 (with `Allow`) instead of being
    // judged as a form post.
    let csrf = middleware::from_fn_with_state(state.clone(), csrf::protect);
    let page = |methods: MethodRouter<AppState>| methods.route_layer(csrf.clone());
    let pages = Router::new()
        .route(
            "/",
            page(get(move |state, request| {
                root::show(state, root_for_clients, request)
            })),
        )
        .route("/init", page(get(init::show).post(init::submit)))
        .route("/login", page(get(login::show).post(login::submit)))
        .route(
            "/login/code",
            page(get(login_code::show).post(login_code::submit)),
        )
        .route(
            "/logout",
            page(get(login::confirm_logout).post(login::logout)),
        )
        .route("/home", page(get(home::show)))
        .route("/account", page(get(account::show)))
        .route("/account/password", page(post(account::change_password)))
        .route("/account/mfa", page(post(account::start_mfa)))
        .route("/account/mfa/confirm", page(post(account::confirm_mfa)))
        .route("/account/mfa/remove", page(post(account::remove_mfa)))
        .route(
            "/account/sessions/revoke",
            page(post(account::revoke_sessions)),
        )
        .route(
            "/iforgot",
            page(get(recovery::iforgot_show).post(recovery::iforgot_submit)),
        )
        .route(
            "/reset",
            page(get(recovery::reset_show).post(recovery::reset_submit)),
        )
        .route("/welcome", page(get(welcome::show).post(welcome::submit)))
        .route("/users", page(get(users::list).post(users::create)))
        .route("/users/admin", page(post(users::set_admin)))
        .route("/users/reset", page(post(users::send_reset)))
        .route(
            "/users/delete",
            page(get(users::confirm_delete).post(users::delete)),
        )
        .route("/users/{username}", page(get(users::show)))
        .route("/users/{username}/{action}", page(post(users::act)))
        .route(
            "/subjects",
            page(get(subjects::list).post(subjects::create)),
        )
        .route("/subjects.csv", page(get(subjects::export_list)))
        .route("/audit.csv", page(get(subjects::export_study_audits)))
        .route("/subjects/new", page(get(subjects::new_form)))
        .route(
            subjects::IMPORT_PATH,
            page(get(subjects::import_form).post(subjects::import_upload))
                .layer(DefaultBodyLimit::max(crate::service::csv::MAX_IMPORT_BYTES)),
        )
        .route(
            "/subjects/{sssid}",
            page(get(subjects::show).post(subjects::update)),
        )
        .route(
            "/subjects/{sssid}/corrections",
            page(post(subjects::correct)),
        )
        .route(
            "/subjects/{sssid}/erasure",
            page(get(subjects::confirm_erasure).post(subjects::erase)),
        )
        .route(
            "/subjects/{sssid}/activity.csv",
            page(get(subjects::export_activity)),
        )
        .route(
            "/subjects/{sssid}/record",
            page(get(subjects::confirm_step).post(subjects::record_step)),
        )
        .route(
            "/subjects/{sssid}/links/{link}/revoke",
            page(get(subjects::confirm_revoke).post(subjects::revoke_link)),
        )
        .route(
            "/subjects/{sssid}/invitation",
            page(post(invitations::show_qr)),
        )
        .route(
            "/subjects/{sssid}/invitations/{link}",
            page(get(invitations::show_invitation)),
        )
        .layer(sessions);
    Router::new()
        .merge(pages)
        .merge(assets::router(assets::StaticFiles::from_config(config)))
}
