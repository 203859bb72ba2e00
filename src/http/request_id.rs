//! The request id: set (or taken from the client) by the `x-request-id`
//! layers in `crate::app`, echoed on the response, and made available to
//! error rendering and logs deep inside the handlers.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

/// The header that carries the id, in and out.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    static REQUEST_ID: String;
}

/// The id of the request being handled, outside [`request_scope`] `None`.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The id set by the request-id layer, for a handler's `Context`.
pub fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Middleware: makes the request id available to [`current_request_id`]
/// for everything inside it.
pub async fn request_scope(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    REQUEST_ID.scope(id, next.run(request)).await
}
