//! The account lifecycle routes of SPEC section 11 beyond `/user`:
//! invitations, two-factor sign-in, sessions and the login throttle.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::{ApiJson, Staff};
use crate::api::openapi::Data;
use crate::app::AppState;
use crate::error::Result;
use crate::service::accounts::{EnrolmentView, SessionView};

#[utoipa::path(
    post, path = "/user/{username}/invitation", tag = "staff", operation_id = "resendInvitation", summary = "Send a new invitation email (admin)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 204, description = "A new invitation link was mailed; the older one stops working"),
        (status = 403, description = "Only admins send invitations", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 409, description = "The account has no open invitation (it chose its password)", body = ErrorEnvelope),
        (status = 503, description = "The mail could not be handed over; see `/status`", body = ErrorEnvelope),
    )
)]
pub async fn resend_invitation(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<StatusCode> {
    state
        .services
        .accounts
        .resend_invitation(&ctx, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's current password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirmation {
    password: String,
}

#[utoipa::path(
    post, path = "/user/{username}/mfa", tag = "staff", operation_id = "startMfaEnrolment", summary = "Start setting up two-factor sign-in (the account's owner)",
    description = "Needs the owner's own token and current password. Answers the new TOTP secret, its `otpauth://` URI and ten recovery codes: shown this once, never again. Two-factor sign-in is on once `POST /user/{username}/mfa/confirm` gets a valid code.",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address: your own")),
    request_body = PasswordConfirmation,
    responses(
        (status = 201, description = "The secret and recovery codes, shown once", body = Data<EnrolmentView>),
        (status = 400, description = "The password is not right", body = ErrorEnvelope),
        (status = 403, description = "Only the account's owner sets up its second factor", body = ErrorEnvelope),
        (status = 409, description = "Two-factor sign-in is already on; remove it first", body = ErrorEnvelope),
        (status = 429, description = "Too many password confirmations", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn start_mfa(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<PasswordConfirmation>,
) -> Result<Response> {
    let enrolment = state
        .services
        .accounts
        .start_enrolment(&ctx, &username, &body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(Data { data: enrolment })).into_response())
}

/// A code from the authenticator app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpConfirmation {
    #[schema(example = "123456")]
    otp: String,
}

#[utoipa::path(
    post, path = "/user/{username}/mfa/confirm", tag = "staff", operation_id = "confirmMfaEnrolment", summary = "Finish setting up two-factor sign-in with a code (the account's owner)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address: your own")),
    request_body = OtpConfirmation,
    responses(
        (status = 204, description = "Two-factor sign-in is on"),
        (status = 400, description = "The code is not right", body = ErrorEnvelope),
        (status = 403, description = "Only the account's owner confirms its second factor", body = ErrorEnvelope),
        (status = 409, description = "No set-up is waiting for a code", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn confirm_mfa(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<OtpConfirmation>,
) -> Result<StatusCode> {
    state
        .services
        .accounts
        .confirm_enrolment(&ctx, &username, &body.otp)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The owner's current password; admins removing another user's second
/// factor send `{}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalPassword {
    password: Option<String>,
}

#[utoipa::path(
    delete, path = "/user/{username}/mfa", tag = "staff", operation_id = "removeMfa", summary = "Remove two-factor sign-in (admin, or the owner with the password)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    request_body = OptionalPassword,
    responses(
        (status = 204, description = "The second factor and its recovery codes are gone"),
        (status = 400, description = "The owner's password is missing or not right", body = ErrorEnvelope),
        (status = 403, description = "Only admins remove another user's second factor", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 409, description = "The account has no second factor", body = ErrorEnvelope),
    )
)]
pub async fn remove_mfa(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<OptionalPassword>,
) -> Result<StatusCode> {
    state
        .services
        .accounts
        .remove_second_factor(&ctx, &username, body.password.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/user/{username}/sessions/revoke", tag = "staff", operation_id = "revokeSessions", summary = "End every session and token of an account (admin, or the owner)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 204, description = "Every browser session and staff token of the account has ended (the token of this request too, for the owner)"),
        (status = 403, description = "Only admins end another user's sessions", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<StatusCode> {
    state
        .services
        .accounts
        .revoke_sessions(&ctx, &username, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/user/{username}/sessions", tag = "staff", operation_id = "listSessions", summary = "An account's browser sessions (admin, or the owner)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 200, description = "Signed-in browser sessions, most recently used first", body = Data<Vec<SessionView>>),
        (status = 403, description = "Only admins read another user's sessions", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn sessions(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<Json<Data<Vec<SessionView>>>> {
    let sessions = state
        .services
        .accounts
        .sessions(&ctx, &username, None)
        .await?;
    Ok(Json(Data { data: sessions }))
}

#[utoipa::path(
    post, path = "/user/{username}/unlock", tag = "staff", operation_id = "unlockUser", summary = "Forget an account's failed sign-ins (admin)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 204, description = "The account's failed sign-ins from every address are forgotten"),
        (status = 403, description = "Only admins unlock accounts", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn unlock(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<StatusCode> {
    state.services.accounts.unlock(&ctx, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
