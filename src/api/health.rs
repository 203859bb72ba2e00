use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

pub async fn root() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

pub async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    let db = state.services.health.database().await;
    let mail = state.services.health.mail().await;
    Json(json!({"data": {"db": db, "mail": mail}}))
}

/// Liveness: the process answers. No I/O.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let db = state.services.health.database().await;
    let status = if db == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"data": {"db": db}}))).into_response()
}
