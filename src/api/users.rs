//! `/auth` and `/user`: thin adapters over the auth and user services.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::extract::{Anonymous, ApiJson, Staff};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::service::users::{NewUser, UserChanges};

/// `POST /auth`. Missing or mistyped fields are a failed login (401), like
/// a wrong password, so the answer never tells what was wrong.
pub async fn auth(
    State(state): State<AppState>,
    Anonymous(ctx): Anonymous,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<serde_json::Value>> {
    let username = body.get("username").and_then(|v| v.as_str());
    let password = body
        .get("password")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let token = state.services.auth.login(&ctx, username, password).await?;
    Ok(Json(json!({"access_token": token})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

pub async fn create(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response> {
    let user = state
        .services
        .users
        .create(
            &ctx,
            NewUser {
                username: body.username,
                password: body.password,
                admin: body.admin,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"data": user}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteUser {
    username: String,
}

pub async fn delete(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<DeleteUser>,
) -> Result<StatusCode> {
    state.services.users.delete(&ctx, &body.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ListParams {
    offset: Option<u64>,
    perpage: Option<u64>,
    search: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    params: std::result::Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(params) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    let page = state
        .services
        .users
        .list(
            &ctx,
            params.search,
            params.offset.unwrap_or(0),
            params.perpage.unwrap_or(50),
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    Ok((headers, Json(json!({"data": page.items}))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let user = state.services.users.get(&ctx, &username).await?;
    Ok(Json(json!({"data": user})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    admin: Option<bool>,
    password: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<serde_json::Value>> {
    let user = state
        .services
        .users
        .update(
            &ctx,
            &username,
            UserChanges {
                admin: body.admin,
                password: body.password,
            },
        )
        .await?;
    Ok(Json(json!({"data": user})))
}

pub async fn audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(username): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let entries = state.services.users.audits(&ctx, &username).await?;
    let data: Vec<_> = entries
        .into_iter()
        .map(|e| {
            json!({"datetime": e.datetime, "action": e.action, "actor": e.actor, "ip": e.client_ip})
        })
        .collect();
    Ok(Json(json!({"data": data})))
}
