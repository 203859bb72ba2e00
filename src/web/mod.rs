//! Server-rendered pages (maud + HTMX). They call the same services as the
//! JSON API.

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

mod init;

pub fn router() -> Router<AppState> {
    Router::new().route("/init", get(init::show).post(init::submit))
}
