use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::openapi::{Data, Health, Liveness, StoreHealth};
use crate::app::AppState;

#[utoipa::path(
    get, path = "/", tag = "service", operation_id = "root",
    responses((status = 200, description = "The service answers", body = Liveness, example = json!({"status": "ready"})))
)]
pub async fn root() -> Json<Liveness> {
    Json(Liveness {
        status: "ready".into(),
    })
}

#[utoipa::path(
    get, path = "/status", tag = "service", operation_id = "status",
    responses((status = 200, description = "Health of the store and the mail transport", body = Data<Health>))
)]
pub async fn status(State(state): State<AppState>) -> Json<Data<Health>> {
    let db = state.services.health.database().await;
    let mail = state.services.health.mail().await;
    Json(Data {
        data: Health { db, mail },
    })
}

/// Liveness: the process answers. No I/O.
#[utoipa::path(
    get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "The process is alive", body = Liveness, example = json!({"status": "ok"})))
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
    })
}

/// Readiness: the store answers.
#[utoipa::path(
    get, path = "/readyz", tag = "service", operation_id = "readyz",
    responses(
        (status = 200, description = "The store answers", body = Data<StoreHealth>),
        (status = 503, description = "The store does not answer", body = Data<StoreHealth>),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let db = state.services.health.database().await;
    let status = if db == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Data {
            data: StoreHealth { db },
        }),
    )
        .into_response()
}
