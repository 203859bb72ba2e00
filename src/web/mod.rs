//! Server-rendered pages (maud + HTMX). They call the same services as the
//! JSON API.

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

mod init;
mod recovery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/init", get(init::show).post(init::submit))
        .route(
            "/iforgot",
            get(recovery::iforgot_show).post(recovery::iforgot_submit),
        )
        .route(
            "/reset",
            get(recovery::reset_show).post(recovery::reset_submit),
        )
}
