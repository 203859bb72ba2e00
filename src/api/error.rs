//! The JSON error envelope: `{"error":{"status":<code>,"message":"..."}}`,
//! for every error on every route, including the framework's own.

use std::collections::BTreeMap;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, StoreFailure};
use crate::http::error_log::{internal_error_message, log_internal};
use crate::http::request_id::current_request_id;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status code of the response.
    #[schema(minimum = 400, maximum = 599, example = 404)]
    pub status: u16,
    /// What went wrong, for people; for a 500 only a request id to quote.
    #[schema(example = "no such subject")]
    pub message: String,
    /// For a 400 about values of the request: each field's message, by the
    /// field's name (`{"sssid": "sssid is required"}`). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!({"bday": "bday must be between 1900-01-01 and 2100-12-31"}))]
    pub fields: Option<BTreeMap<String, String>>,
}

pub fn envelope(status: StatusCode, message: &str) -> Response {
    envelope_with_fields(status, message, None)
}

fn envelope_with_fields(
    status: StatusCode,
    message: &str,
    fields: Option<BTreeMap<String, String>>,
) -> Response {
    let body = ErrorEnvelope {
        error: ErrorDetail {
            status: status.as_u16(),
            message: message.to_owned(),
            fields,
        },
    };
    (status, axum::Json(body)).into_response()
}

/// The field messages of an error; the first message of a field when it
/// has several.
fn field_messages(error: &Error) -> Option<BTreeMap<String, String>> {
    let fields = error.field_errors();
    if fields.is_empty() {
        return None;
    }
    let mut map = BTreeMap::new();
    for field in fields {
        map.entry(field.field.clone())
            .or_insert_with(|| field.message.clone());
    }
    Some(map)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let store_failure = self.is_store_failure();
        let message = match &self {
            Error::Internal(_) => log_internal(&self),
            Error::Unavailable(why) => {
                tracing::warn!(request_id = ?current_request_id(), reason = %why, "service unavailable");
                self.public_message()
            }
            _ => self.public_message(),
        };
        let mut response = envelope_with_fields(status, &message, field_messages(&self));
        if store_failure {
            response.extensions_mut().insert(StoreFailure);
        }
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("JWT realm=\"idm\", Bearer realm=\"idm\""),
                );
            }
            Error::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// Rewrites error responses that the framework produced as plain text or
/// empty bodies (404, 405, body-limit rejections...) into the envelope,
/// keeping their headers (such as `Allow`). HTML pages are left alone.
pub async fn json_error_envelope(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match status {
        StatusCode::NOT_FOUND => "Not found".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large (at most 64 KiB)".to_owned(),
        _ if status.is_server_error() => {
            tracing::error!(request_id = ?current_request_id(), body = %text, "internal error");
            internal_error_message(&current_request_id().unwrap_or_else(|| "unknown".into()))
        }
        _ if !text.trim().is_empty() => text.trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    };
    let rendered = envelope(status, &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::new(rendered.into_body()))
}
