//! `GET /metrics`: the Prometheus exposition of what `http::metrics`
//! and the services count.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::Error;
use crate::http::client_ip::ClientIp;

/// `GET /metrics`: off unless enabled, and only for allowed addresses.
#[utoipa::path(
    get, path = "/metrics", tag = "service", operation_id = "metrics", summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 403, description = "The client address is not in `metrics_allow`", body = crate::api::error::ErrorEnvelope),
        (status = 404, description = "Metrics are switched off (`metrics_enabled = false`)", body = crate::api::error::ErrorEnvelope),
    )
)]
pub async fn metrics(State(state): State<AppState>, request: Request) -> Result<Response, Error> {
    if !state.config.metrics_enabled {
        return Err(Error::NotFound("Not found".into()));
    }
    let allowed = request
        .extensions()
        .get::<ClientIp>()
        .is_some_and(|ClientIp(ip)| {
            state
                .config
                .metrics_allow
                .iter()
                .any(|net| net.contains(ip))
        });
    if !allowed {
        return Err(Error::Forbidden(
            "metrics are not available to this address".into(),
        ));
    }
    let mut response = state.services.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
