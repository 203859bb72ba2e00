//! The headers every response carries, pages and API alike: a strict CSP
//! (no inline script or style), no sniffing, no framing, no caching, and
//! HSTS when the service is published over HTTPS. A header the handler set
//! itself (the static files' `Cache-Control`) is left as it is.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The headers to add, worked out once from the configuration.
#[derive(Clone)]
pub struct SecurityHeaders(Arc<Vec<(HeaderName, HeaderValue)>>);

impl SecurityHeaders {
    pub fn from_config(config: &Config) -> Self {
        let mut headers = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ];
        // The config builds the value from digits and ASCII words, which
        // are always a valid header value.
        if let Some(value) = config
            .strict_transport_security()
            .and_then(|value| HeaderValue::from_str(&value).ok())
        {
            headers.push((header::STRICT_TRANSPORT_SECURITY, value));
        }
        Self(Arc::new(headers))
    }
}

/// Middleware: adds each header the response does not have yet.
pub async fn add_security_headers(
    State(SecurityHeaders(wanted)): State<SecurityHeaders>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in wanted.iter() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}
