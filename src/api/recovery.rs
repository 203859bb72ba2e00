//! `POST /user/<username>/reset`: an admin emails a user a reset link.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::extract::Staff;
use crate::app::AppState;
use crate::error::Result;

/// 204 once the mail is handed to the transport (SMTP server or outbox
/// folder); 503 if that failed, so the admin knows to look at `/status`.
#[utoipa::path(
    post, path = "/user/{username}/reset", tag = "staff", operation_id = "sendPasswordReset", summary = "Email a user a password reset link (admin)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 204, description = "The reset email was handed to the mail transport"),
        (status = 403, description = "Only admins send reset emails", body = crate::api::error::ErrorEnvelope),
        (status = 404, description = "No such user", body = crate::api::error::ErrorEnvelope),
        (status = 503, description = "The mail could not be handed over; see `/status`", body = crate::api::error::ErrorEnvelope),
    )
)]
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
