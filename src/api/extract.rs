//! Request extractors shared by the JSON handlers: a strict JSON body, the
//! request context, and staff authentication.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::api::client_ip::ClientIp;
use crate::app::AppState;
use crate::error::Error;
use crate::service::Context;

/// The id set by the request-id layer.
pub fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The client's address as resolved by `client_ip::resolve_client_ip`
/// (trusted proxies honoured), else the socket peer.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|ClientIp(ip)| *ip)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        })
}

/// A JSON object body, with errors that name the problem: wrong content
/// type (415), too large (413), malformed, not an object, wrong field types
/// or unknown fields (400).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Error::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("request body is too large (at most 64 KiB)".into())
            } else {
                Error::BadRequest(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        parse_json_object(&bytes).map(ApiJson)
    }
}

/// Parses a JSON object into `T`, naming the offending field on error.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::BadRequest(
            "request body must be a JSON object".into(),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            Error::BadRequest(e.inner().to_string())
        } else {
            Error::BadRequest(format!("{path}: {}", e.inner()))
        }
    })
}

/// The context of an unauthenticated request.
pub struct Anonymous(pub Context);

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Anonymous(Context::anonymous(
            request_id(parts),
            client_ip(parts),
        )))
    }
}

/// The token of an `Authorization: JWT <token>` or `Bearer <token>` header
/// (scheme case-insensitive). No header is "Authorization Required".
pub fn authorization_token(parts: &Parts) -> Result<&str, Error> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(Error::Unauthorized("Authorization Required".into()));
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthorized("Malformed Authorization header".into()))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Error::Unauthorized("Malformed Authorization header".into()))?;
    if !(scheme.eq_ignore_ascii_case("jwt") || scheme.eq_ignore_ascii_case("bearer")) {
        return Err(Error::Unauthorized(
            "Unsupported authorization scheme; use JWT or Bearer".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Unauthorized("Malformed Authorization header".into()));
    }
    Ok(token)
}

/// The context of a request by a staff member with a valid token.
pub struct Staff(pub Context);

impl FromRequestParts<AppState> for Staff {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = authorization_token(parts)?;
        let user = state.services.auth.authenticate(token).await?;
        Ok(Staff(Context::staff(
            user,
            request_id(parts),
            client_ip(parts),
        )))
    }
}
