//! Records that hold up in an inspection: checking the audit chain,
//! corrections of journey dates and erasure of personal data. Thin
//! adapters over the audit and subject services.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::{ApiJson, Staff};
use crate::api::openapi::Data;
use crate::api::subjects::nullable;
use crate::app::AppState;
use crate::error::Result;
use crate::service::subjects::Correction;
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

/// A correction of one journey date.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// `date_invited`, `date_consented`, `date_enrolled` or `date_withdrawn`.
    #[schema(example = "date_consented")]
    field: Option<String>,
    /// The right date: an RFC 3339 timestamp or a bare date (midnight
    /// UTC); `null` clears it.
    #[schema(value_type = Option<String>, example = "2024-05-02T09:30:00Z")]
    #[serde(default, deserialize_with = "nullable")]
    value: Option<Option<String>>,
    /// Why the recorded date was wrong; 1-500 characters, one line. Part
    /// of the audit trail: name no personal data here.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "consent form dated the day after"
    )]
    reason: Option<String>,
}

/// Corrects a journey date that was recorded wrongly (admin). `PUT
/// /subject` keeps the dates set-once; this is audited as
/// `corrected <field>: <old> -> <new> (<reason>)`.
#[utoipa::path(
    post, path = "/subject/{sssid}/corrections", tag = "audits", operation_id = "correctSubject", summary = "Correct a journey date, with a reason (admin)",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    request_body = CorrectionBody,
    responses(
        (status = 204, description = "Corrected and audited"),
        (status = 403, description = "Only admins correct dates", body = ErrorEnvelope),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
        (status = 409, description = "The date already has this value", body = ErrorEnvelope),
    )
)]
pub async fn correct(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<StatusCode> {
    let correction = Correction {
        field: body.field.unwrap_or_default(),
        value: body.value,
        reason: body.reason.unwrap_or_default(),
    };
    state
        .services
        .subjects
        .correct(&ctx, &sssid, correction)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a subject's personal data is erased.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// 1-500 characters, one line; kept in the audit trail.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "request of the participant (GDPR art. 17)"
    )]
    reason: Option<String>,
}

/// Erases a withdrawn subject's name, email and birth date (admin), in
/// the subject and in every entry of its audit trail; the sssid, the
/// journey dates and the trail remain, and the trail still verifies.
/// Audited as `erased personal data (<reason>)`.
#[utoipa::path(
    post, path = "/subject/{sssid}/erasure", tag = "audits", operation_id = "eraseSubject", summary = "Erase a withdrawn subject's personal data, with a reason (admin)",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    request_body = ErasureBody,
    responses(
        (status = 204, description = "Erased (or erased before)"),
        (status = 403, description = "Only admins erase personal data", body = ErrorEnvelope),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
        (status = 409, description = "The subject has not withdrawn", body = ErrorEnvelope),
    )
)]
pub async fn erase(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
    ApiJson(body): ApiJson<ErasureBody>,
) -> Result<StatusCode> {
    let reason = body.reason.unwrap_or_default();
    state.services.subjects.erase(&ctx, &sssid, &reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
