//! `/metrics` and the middleware that measures every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::client_ip::ClientIp;
use crate::app::AppState;
use crate::error::{Error, StoreFailure};

/// The route template that served a request, carried from the router to
/// the outer measuring layer (which runs before routing).
#[derive(Clone)]
struct RouteTemplate(String);

/// Innermost: records which route matched.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Outermost: counts and times every request by route template and status.
pub async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str());
    let metrics = &state.services.metrics;
    metrics
        .http_requests
        .with_label_values(&[method.as_str(), route, response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[method.as_str(), route])
        .observe(started.elapsed().as_secs_f64());
    if response.extensions().get::<StoreFailure>().is_some() {
        metrics.store_errors.inc();
    }
    response
}

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
