//! `/link...` and `/establish`: thin adapters over the link service.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;
use utoipa::ToSchema;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::{Anonymous, ApiJson, Staff};
use crate::api::openapi::{Data, PatientDoc};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::service::links::{LinkFields, LinkView};

#[utoipa::path(
    get, path = "/link/{id}", tag = "links", operation_id = "getLink", summary = "Read a link",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id (`_id`, the JWT `jti`)")),
    responses(
        (status = 200, description = "The link", body = Data<LinkView>),
        (status = 404, description = "No such link", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
) -> Result<Json<Data<LinkView>>> {
    let link = state.services.links.get(&ctx, &id).await?;
    Ok(Json(Data { data: link }))
}

/// A link body for `PUT`: a whole link as read may be sent back; the
/// server-owned `created`/`changed` are ignored. `sub`, `iss`, `aud`,
/// `algorithm` and `exp` may be sent but not changed.
#[derive(Deserialize, ToSchema)]
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
    /// RFC 3339 timestamp or bare date; set once.
    withdrawn_on: Option<String>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
    #[serde(default, rename = "created")]
    _created: Option<IgnoredAny>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
    #[serde(default, rename = "changed")]
    _changed: Option<IgnoredAny>,
}

/// Withdraws a link, or records `linked_to`/`linked_system` while it is
/// not yet established.
#[utoipa::path(
    put, path = "/link/{id}", tag = "links", operation_id = "updateLink", summary = "Withdraw a link or record what it is linked to",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id")),
    request_body = LinkBody,
    responses(
        (status = 204, description = "Changed (or nothing to change)"),
        (status = 404, description = "No such link", body = ErrorEnvelope),
        (status = 409, description = "A field that cannot change differs, or the link is already established or withdrawn", body = ErrorEnvelope),
    )
)]
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
#[utoipa::path(
    get, path = "/link/{id}/jwt", tag = "links", operation_id = "getLinkJwt", summary = "The link JWT for the QR code",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id")),
    responses(
        (status = 200, description = "The link JWT (HS256 with the link secret), issued on the first call and the same until it expires", content_type = "application/jwt",
            body = inline(String), example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIuLi4ifQ.c2lnbmF0dXJl"),
        (status = 404, description = "No such link", body = ErrorEnvelope),
        (status = 410, description = "The link expired, was established or withdrawn: create a new link", body = ErrorEnvelope),
        (status = 412, description = "The subject has withdrawn", body = ErrorEnvelope),
    )
)]
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
#[utoipa::path(
    post, path = "/establish", tag = "links", operation_id = "establishLink", summary = "Redeem a link JWT (mobile app)",
    security(("link_token" = [])),
    request_body(content = PatientDoc, content_type = "application/json",
        description = "A FHIR Patient; `identifier[0].value` becomes `linked_to`"),
    responses(
        (status = 204, description = "The link is established"),
        (status = 401, description = "No Authorization header", body = ErrorEnvelope),
        (status = 403, description = "The link token is invalid, expired, unknown or withdrawn", body = ErrorEnvelope),
        (status = 406, description = "Another authorization scheme, or the body is not a Patient with identifier[0].value", body = ErrorEnvelope),
        (status = 409, description = "This link has already been established", body = ErrorEnvelope),
    )
)]
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
