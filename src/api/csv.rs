//! CSV answers: the choice between JSON and CSV (`format=csv` or
//! `Accept: text/csv`), the streamed CSV response, and `GET /audit`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::Staff;
use crate::api::openapi::Data;
use crate::app::AppState;
use crate::error::{Error, Result};
pub use crate::http::download::{csv_response, download_name};
pub use crate::service::csv::MAX_IMPORT_BYTES;
use crate::service::csv::{AuditExportRange, ImportMode, ImportReport};

/// Whether the client asked for CSV: `format=csv` (or `json`), else an
/// `Accept` header that names `text/csv` and not JSON.
pub fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) if f.eq_ignore_ascii_case("csv") => Ok(true),
        Some(f) if f.eq_ignore_ascii_case("json") => Ok(false),
        Some(f) => Err(Error::BadRequest(format!(
            "format must be json or csv, got {f:?}"
        ))),
        None => {
            let accept = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|range| {
                    range
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .collect::<Vec<_>>();
            Ok(accept.iter().any(|m| m == "text/csv")
                && !accept.iter().any(|m| m == "application/json"))
        }
    }
}

/// Empty values mean the open end.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StudyAuditQuery {
    /// `csv`; the whole study's trail is only offered as CSV.
    #[param(value_type = Option<String>, pattern = "^\\s*([Cc][Ss][Vv])?\\s*$")]
    format: Option<String>,
    /// The first instant: an RFC 3339 timestamp or a date (midnight UTC).
    #[param(example = "2026-01-01")]
    from: Option<String>,
    /// The end: an RFC 3339 timestamp (exclusive) or a date (that whole
    /// day included).
    #[param(example = "2026-01-31")]
    to: Option<String>,
}

#[utoipa::path(
    get, path = "/audit", tag = "subjects", operation_id = "exportStudyAudits", summary = "The whole study's audit trail as CSV",
    security(("staff_token" = [])),
    params(StudyAuditQuery),
    responses(
        (status = 200, description = "Columns datetime, actor, action, subject, link, user, request_id, client_ip, seq, hash; oldest first. Staff-account entries only for admins.",
            content_type = "text/csv", body = String),
        (status = 400, description = "A bad date, `to` before `from`, or a `format` other than `json` or `csv`", body = ErrorEnvelope),
        (status = 406, description = "Not asked for CSV", body = ErrorEnvelope),
    )
)]
pub async fn study_audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    headers: HeaderMap,
    query: std::result::Result<Query<StudyAuditQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    if !wants_csv(q.format.as_deref(), &headers)? {
        return Err(Error::NotAcceptable(
            "the study's audit trail is offered as CSV: add format=csv".into(),
        ));
    }
    let range = AuditExportRange::parse(q.from.as_deref(), q.to.as_deref())?;
    let chunks = state.services.csv.export_study_audits(&ctx, range).await?;
    Ok(csv_response(chunks, "audit-trail.csv"))
}

/// Empty values mean the default.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true` checks every row and writes nothing.
    #[param(value_type = Option<String>, pattern = "^\\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?\\s*$")]
    dry_run: Option<String>,
    /// `all` (the default) imports nothing if any row has a problem;
    /// `valid` imports the valid rows.
    #[param(value_type = Option<String>, pattern = "^\\s*([Aa][Ll][Ll]|[Vv][Aa][Ll][Ii][Dd])?\\s*$")]
    mode: Option<String>,
}

/// `true` or `false` in any letter case; blank is `false`.
fn flag(name: &str, text: Option<&str>) -> Result<bool> {
    match text
        .map(str::trim)
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "false" => Ok(false),
        "true" => Ok(true),
        other => Err(Error::BadRequest(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

/// Subjects from a CSV file (the columns of the export: `sssid`, `name`,
/// `bday`, optional `email`, `date_invited`, `date_consented`,
/// `date_enrolled`, `date_withdrawn`, in any order).
#[utoipa::path(
    post, path = "/subject/import", tag = "subjects", operation_id = "importSubjects", summary = "Import subjects from CSV, or check a file first",
    security(("staff_token" = [])),
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header row; at most 32 MiB"),
    responses(
        (status = 200, description = "What the file holds and what was imported; `row` counts as a spreadsheet does (the header is row 1)", body = Data<ImportReport>),
        (status = 400, description = "A bad parameter, or a file that cannot be read (not UTF-8, an unknown or missing column)", body = ErrorEnvelope),
        (status = 413, description = "The file is larger than 32 MiB", body = ErrorEnvelope),
        (status = 415, description = "The body is not `Content-Type: text/csv`", body = ErrorEnvelope),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    headers: HeaderMap,
    query: std::result::Result<Query<ImportQuery>, QueryRejection>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Data<ImportReport>>> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let dry_run = flag("dry_run", q.dry_run.as_deref())?;
    let mode = ImportMode::parse(q.mode.as_deref())?;
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(Error::UnsupportedMediaType(
            "expected a CSV file with Content-Type: text/csv".into(),
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge("the file is too large (at most 32 MiB)".into())
        } else {
            Error::BadRequest(format!("cannot read the file: {}", rejection.body_text()))
        }
    })?;
    let report = state
        .services
        .csv
        .import_subjects(&ctx, &body, mode, dry_run)
        .await?;
    Ok(Json(Data { data: report }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn format_wins_over_accept() {
        let none = HeaderMap::new();
        assert!(!wants_csv(None, &none).unwrap());
        assert!(wants_csv(Some("CSV"), &none).unwrap());
        assert!(!wants_csv(Some("json"), &accept("text/csv")).unwrap());
        assert!(wants_csv(None, &accept("text/csv;q=0.9, */*;q=0.1")).unwrap());
        assert!(!wants_csv(None, &accept("application/json, text/csv")).unwrap());
        assert!(!wants_csv(None, &accept("*/*")).unwrap());
        assert_eq!(
            wants_csv(Some("xml"), &none).unwrap_err().to_string(),
            "format must be json or csv, got \"xml\""
        );
    }
}
