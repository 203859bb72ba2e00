//! `/auth` and `/user`: thin adapters over the auth and user services.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::error::ErrorEnvelope;
use crate::api::extract::{Anonymous, ApiJson, Staff};
use crate::api::openapi::{AccessToken, AuditEntry, Credentials, Data};
use crate::app::AppState;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::service::listing::{DEFAULT_PER_PAGE, Paging, UserListQuery};
use crate::service::users::{UserChanges, UserView};

/// `POST /auth`. Missing or mistyped fields are a failed login (401), like
/// a wrong password, so the answer never tells what was wrong.
#[utoipa::path(
    post, path = "/auth", tag = "staff", operation_id = "login", summary = "Log in: a staff token for username, password and (for accounts with two-factor sign-in) a code",
    request_body = Credentials,
    responses(
        (status = 200, description = "A staff token", body = AccessToken),
        (status = 400, description = "The body is not a JSON object", body = ErrorEnvelope),
        (status = 401, description = "Wrong username, password or code, a missing field, or an account that is disabled or has not accepted its invitation: one answer for all", body = ErrorEnvelope),
        (status = 429, description = "Too many failed logins for this account or address", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn auth(
    State(state): State<AppState>,
    Anonymous(ctx): Anonymous,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<AccessToken>> {
    let username = body.get("username").and_then(|v| v.as_str());
    let password = body
        .get("password")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    // A code that is not a string is as wrong as a wrong code.
    let otp = match body.get("otp") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(value.as_str().unwrap_or("")),
    };
    let token = state
        .services
        .auth
        .login(&ctx, username, password, otp)
        .await?;
    Ok(Json(AccessToken {
        access_token: token,
    }))
}

/// A new user. Without `password` the user is invited: the account is
/// created in state `invited` and its owner gets an email with a link to
/// choose a password. `role` and `admin` say the same (`admin: true` is
/// role `admin`); sent together they must agree.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// An email address; trimmed and lower-cased.
    #[schema(format = Email, example = "new.staff@example.org")]
    username: String,
    /// At least 8 characters (by default; `password_min_chars`), at most
    /// 1024 bytes, not a common password, not the username.
    #[schema(min_length = 8)]
    password: Option<String>,
    admin: Option<bool>,
    /// `admin`, `staff` (the default) or `monitor` (reads, changes nothing).
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// The role a create or update asks for: `role`, else `admin`.
pub(crate) fn requested_role(role: Option<&str>, admin: Option<bool>) -> Result<Option<Role>> {
    let role = role.map(Role::parse).transpose()?;
    match (role, admin) {
        (Some(role), Some(admin)) if (role == Role::Admin) != admin => Err(Error::invalid(
            "admin",
            format!("admin {admin} contradicts role {role}; send one of them"),
        )),
        (Some(role), _) => Ok(Some(role)),
        (None, Some(true)) => Ok(Some(Role::Admin)),
        (None, Some(false)) => Ok(Some(Role::Staff)),
        (None, None) => Ok(None),
    }
}

#[utoipa::path(
    post, path = "/user", tag = "staff", operation_id = "createUser", summary = "Create or invite a staff user (admin)",
    security(("staff_token" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "The new user (state `invited` when no password was sent; the invitation email is on its way)", body = Data<UserView>),
        (status = 400, description = "A bad email address, password or role", body = ErrorEnvelope),
        (status = 403, description = "Only admins create users", body = ErrorEnvelope),
        (status = 409, description = "The username is taken", body = ErrorEnvelope),
        (status = 503, description = "The user was created but the invitation email could not be sent; resend it", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response> {
    let role = requested_role(body.role.as_deref(), body.admin)?.unwrap_or(Role::Staff);
    let user = state
        .services
        .accounts
        .create(&ctx, &body.username, body.password, role)
        .await?;
    Ok((StatusCode::CREATED, Json(Data { data: user })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUser {
    username: String,
}

#[utoipa::path(
    delete, path = "/user", tag = "staff", operation_id = "deleteUser", summary = "Delete a staff user (admin)",
    security(("staff_token" = [])),
    request_body = DeleteUser,
    responses(
        (status = 204, description = "Deleted; the user's tokens and sessions end"),
        (status = 403, description = "Only admins delete users", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 409, description = "The last admin cannot be deleted", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<DeleteUser>,
) -> Result<StatusCode> {
    state.services.users.delete(&ctx, &body.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many users to skip.
    offset: Option<u64>,
    /// Users per page (1-500; 0 is read as 1, more as 500).
    perpage: Option<u64>,
    /// Part of a username (no control characters).
    search: Option<String>,
}

#[utoipa::path(
    get, path = "/user", tag = "staff", operation_id = "listUsers", summary = "List staff users (admin)",
    security(("staff_token" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of users, by username", body = Data<Vec<UserView>>,
            headers(("X-Total-Count" = u64, description = "Users matching, over all pages"))),
        (status = 400, description = "A paging parameter is not a whole number, or the search holds a control character", body = ErrorEnvelope),
        (status = 403, description = "Only admins list users", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    params: std::result::Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(params) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    // The stores page with signed 64-bit numbers.
    for (name, value) in [("offset", params.offset), ("perpage", params.perpage)] {
        if value.is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(Error::BadRequest(format!(
                "{name} must be at most {}",
                i64::MAX
            )));
        }
    }
    let page = state
        .services
        .users
        .list(
            &ctx,
            UserListQuery {
                search: params.search,
                paging: Paging::new(
                    params.offset.unwrap_or(0),
                    params.perpage.unwrap_or(DEFAULT_PER_PAGE),
                ),
            },
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    Ok((headers, Json(Data { data: page.items })).into_response())
}

#[utoipa::path(
    get, path = "/user/{username}", tag = "staff", operation_id = "getUser", summary = "Read a staff user",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 200, description = "The user", body = Data<UserView>),
        (status = 403, description = "Only admins read other users", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<Json<Data<UserView>>> {
    let user = state.services.users.get(&ctx, &username).await?;
    Ok(Json(Data { data: user }))
}

/// What to change; at least one field. `role` and `admin` say the same
/// (`admin: false` makes an admin staff); sent together they must agree.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    admin: Option<bool>,
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// `true` disables the account (its tokens and sessions end at once),
    /// `false` enables it again.
    disabled: Option<bool>,
    /// A new password, under the same policy as for new users; ends the
    /// user's tokens and sessions.
    #[schema(min_length = 8)]
    password: Option<String>,
}

/// Changes role, state and/or password.
#[utoipa::path(
    put, path = "/user/{username}", tag = "staff", operation_id = "updateUser", summary = "Change a staff user's role, state or password (admin)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The changed user", body = Data<UserView>),
        (status = 403, description = "Only admins change users", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 409, description = "The last active admin cannot be demoted or disabled", body = ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<Data<UserView>>> {
    let user = state
        .services
        .users
        .update(
            &ctx,
            &username,
            UserChanges {
                admin: body.admin,
                role: body.role.as_deref().map(Role::parse).transpose()?,
                disabled: body.disabled,
                password: body.password,
            },
        )
        .await?;
    Ok(Json(Data { data: user }))
}

#[utoipa::path(
    get, path = "/user/{username}/audits", tag = "staff", operation_id = "getUserAudits", summary = "Account events of a staff user (admin)",
    security(("staff_token" = [])),
    params(("username" = String, Path, description = "The user's email address")),
    responses(
        (status = 200, description = "The user's account events, oldest first", body = Data<Vec<AuditEntry>>),
        (status = 403, description = "Only admins read audit trails", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<Json<Data<Vec<AuditEntry>>>> {
    let entries = state.services.users.audits(&ctx, &username).await?;
    Ok(Json(Data {
        data: entries
            .into_iter()
            .map(AuditEntry::with_client_ip)
            .collect(),
    }))
}
