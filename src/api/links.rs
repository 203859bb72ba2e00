//! `/link...` and `/establish`: thin adapters over the link service.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use crate::api::extract::{Anonymous, ApiJson, Staff};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::service::links::LinkFields;

pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let link = state.services.links.get(&ctx, &id).await?;
    Ok(Json(json!({"data": link})))
}

/// A link body for `PUT`: a whole link as read may be sent back; the
/// server-owned `created`/`changed` are ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    #[serde(rename = "_id")]
    id: Option<String>,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<String>,
    algorithm: Option<String>,
    exp: Option<String>,
    linked_on: Option<String>,
    linked_to: Option<String>,
    linked_system: Option<String>,
    withdrawn_on: Option<String>,
    #[serde(default, rename = "created")]
    _created: Option<IgnoredAny>,
    #[serde(default, rename = "changed")]
    _changed: Option<IgnoredAny>,
}

pub async fn update(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<LinkBody>,
) -> Result<StatusCode> {
    let fields = LinkFields {
        id: b.id,
        sub: b.sub,
        iss: b.iss,
        aud: b.aud,
        algorithm: b.algorithm,
        exp: b.exp,
        linked_on: b.linked_on,
        linked_to: b.linked_to,
        linked_system: b.linked_system,
        withdrawn_on: b.withdrawn_on,
    };
    state.services.links.update(&ctx, &id, fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The compact JWT for the QR code, as `application/jwt`.
pub async fn jwt(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
) -> Result<Response> {
    let token = state.services.links.jwt(&ctx, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}

/// `POST /establish` by the mobile app. The header and body are read raw:
/// the service decides in which order they are checked.
pub async fn establish(
    State(state): State<AppState>,
    Anonymous(ctx): Anonymous,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::NotAcceptable("malformed Authorization header".into()))
        })
        .transpose()?;
    state
        .services
        .links
        .establish(&ctx, authorization, &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
