//! The JSON API of SPEC sections 1-6.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

mod accounts;
pub mod error;
pub mod extract;
// `/` is routed with the pages (browsers are sent on); it answers here
// for every other client.
pub mod csv;
pub(crate) mod health;
mod links;
pub mod metrics;
pub mod openapi;
mod records;
mod recovery;
mod subjects;
mod users;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/status", get(health::status))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/auth", post(users::auth))
        .route(
            "/user",
            get(users::list).post(users::create).delete(users::delete),
        )
        .route("/user/{username}", get(users::get).put(users::update))
        .route("/user/{username}/audits", get(users::audits))
        .route("/user/{username}/reset", post(recovery::send_reset))
        .route(
            "/user/{username}/invitation",
            post(accounts::resend_invitation),
        )
        .route(
            "/user/{username}/mfa",
            post(accounts::start_mfa).delete(accounts::remove_mfa),
        )
        .route("/user/{username}/mfa/confirm", post(accounts::confirm_mfa))
        .route("/user/{username}/sessions", get(accounts::sessions))
        .route(
            "/user/{username}/sessions/revoke",
            post(accounts::revoke_sessions),
        )
        .route("/user/{username}/unlock", post(accounts::unlock))
        .route("/subject", get(subjects::list).post(subjects::create))
        .route("/subject/{sssid}", get(subjects::get).put(subjects::update))
        // The subject whose sssid is `import` stays readable and writable
        // at its own path.
        .route(
            "/subject/import",
            post(csv::import)
                .get(subjects::get_import)
                .put(subjects::update_import)
                .layer(DefaultBodyLimit::max(csv::MAX_IMPORT_BYTES)),
        )
        .route("/subject/{sssid}/audits", get(subjects::audits))
        .route("/audit", get(csv::study_audits))
        .route(
            "/subject/{sssid}/links",
            get(subjects::links).post(subjects::create_link),
        )
        .route("/link/{id}", get(links::get).put(links::update))
        .route("/link/{id}/jwt", get(links::jwt))
        .route("/establish", post(links::establish))
        .route("/audit/verify", get(records::verify))
        .route("/subject/{sssid}/corrections", post(records::correct))
        .route("/subject/{sssid}/erasure", post(records::erase))
}
