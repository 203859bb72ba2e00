//! `POST /user/<username>/reset`: an admin emails a user a reset link.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::extract::Staff;
use crate::app::AppState;
use crate::error::Result;

/// 204 once the mail is handed to the transport (SMTP server or outbox
/// folder); 503 if that failed, so the admin knows to look at `/status`.
pub async fn send_reset(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<StatusCode> {
    state
        .services
        .recovery
        .send_reset_by_admin(&ctx, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
