//! Records that hold up in an inspection: checking the audit chain,
//! corrections of journey dates and erasure of personal data. Thin
//! adapters over the audit and subject services.

use axum::Json;
use axum::extract::State;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::Staff;
use crate::api::openapi::Data;
use crate::app::AppState;
use crate::error::Result;
use crate::store::chain::ChainReport;

/// Reads the whole audit trail (subject, link and account entries) in
/// order and checks its hash chain: `ok` with the number of entries, or
/// the first entry that was changed, removed, reordered or inserted
/// directly in the database.
#[utoipa::path(
    get, path = "/audit/verify", tag = "audits", operation_id = "verifyAudits", summary = "Check the audit trail for tampering (admin)",
    security(("staff_token" = [])),
    responses(
        (status = 200, description = "The verdict: `ok` and the count, or the first broken entry", body = Data<ChainReport>),
        (status = 403, description = "Only admins verify the audit trail", body = ErrorEnvelope),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Staff(ctx): Staff,
) -> Result<Json<Data<ChainReport>>> {
    let report = state.services.audits.verify(&ctx).await?;
    Ok(Json(Data { data: report }))
}
