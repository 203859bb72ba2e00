//! The middleware that counts and times every request, pages and API
//! alike, by route template and status (served at `/metrics` by the API).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::error::StoreFailure;

/// The route template that served a request, carried from the router to
/// the outer measuring layer (which runs before routing).
#[derive(Clone)]
struct RouteTemplate(String);

/// Innermost (a route layer): records which route matched.
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
