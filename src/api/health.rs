//! Liveness, readiness and health of the service.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::error::envelope;
use crate::api::openapi::{Data, Health, Liveness, StoreHealth};
use crate::app::AppState;

/// What `/` answers every client but a browser. The route itself is the
/// pages' (they send browsers on); `crate::app` hands them this answer.
#[utoipa::path(
    get, path = "/", tag = "service", operation_id = "root", summary = "Service is up",
    description = "A browser (`Accept` naming `text/html`) is sent on instead: to `/home` when signed in, `/login` when an administrator exists, `/init` before.",
    responses(
        (status = 200, description = "The service answers", body = Liveness, example = json!({"status": "ready"})),
        (status = 303, description = "A browser is sent to /home, /login or /init"),
    )
)]
pub fn root() -> Response {
    Json(Liveness {
        status: "ready".into(),
    })
    .into_response()
}

#[utoipa::path(
    get, path = "/status", tag = "service", operation_id = "status", summary = "Health of the store and the mail transport",
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
    get, path = "/healthz", tag = "service", operation_id = "healthz", summary = "Liveness (no I/O)",
    responses((status = 200, description = "The process is alive", body = Liveness, example = json!({"status": "ok"})))
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
    })
}

/// Readiness: the store answers. Not ready is an error like any other, in
/// the envelope, naming the problem.
#[utoipa::path(
    get, path = "/readyz", tag = "service", operation_id = "readyz", summary = "Readiness (store reachable)",
    responses((status = 200, description = "The store answers", body = Data<StoreHealth>))
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let db = state.services.health.database().await;
    if db != "ok" {
        return envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: database {db}"),
        );
    }
    Json(Data {
        data: StoreHealth { db },
    })
    .into_response()
}
