//! The JSON API of SPEC sections 1-6.

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub mod client_ip;
pub mod error;
pub mod extract;
mod health;
pub mod metrics;
mod users;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(health::root))
        .route("/status", get(health::status))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/auth", post(users::auth))
        .route(
            "/user",
            get(users::list).post(users::create).delete(users::delete),
        )
        .route("/user/{username}", get(users::get).put(users::update))
        .route("/user/{username}/audits", get(users::audits))
}
