//! `/subject...`: thin adapters over the subject and link services.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::api::extract::{ApiJson, Staff};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::service::subjects::{SubjectFields, SubjectListParams};

/// Tells a JSON `null` (`Some(None)`) from a missing field (`None`).
pub(crate) fn nullable<'de, D, T>(
    deserializer: D,
) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A subject body for `POST` and `PUT`. Unknown fields are refused with
/// their name; the server-owned `created`/`changed` are ignored, so a
/// client may send back what it read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    sssid: Option<String>,
    name: Option<String>,
    bday: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    date_invited: Option<String>,
    date_consented: Option<String>,
    date_enrolled: Option<String>,
    date_withdrawn: Option<String>,
    #[serde(default, rename = "created")]
    _created: Option<IgnoredAny>,
    #[serde(default, rename = "changed")]
    _changed: Option<IgnoredAny>,
}

impl From<SubjectBody> for SubjectFields {
    fn from(b: SubjectBody) -> Self {
        Self {
            sssid: b.sssid,
            name: b.name,
            bday: b.bday,
            email: b.email,
            date_invited: b.date_invited,
            date_consented: b.date_consented,
            date_enrolled: b.date_enrolled,
            date_withdrawn: b.date_withdrawn,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<SubjectBody>,
) -> Result<Response> {
    let subject = state.services.subjects.create(&ctx, body.into()).await?;
    Ok((StatusCode::CREATED, Json(json!({"data": subject}))).into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    offset: Option<String>,
    perpage: Option<String>,
    ordercol: Option<String>,
    orderdir: Option<String>,
    search: Option<String>,
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let page = state
        .services
        .subjects
        .list(
            &ctx,
            SubjectListParams {
                offset: q.offset,
                perpage: q.perpage,
                ordercol: q.ordercol,
                orderdir: q.orderdir,
                search: q.search,
                status: q.status,
            },
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    Ok((headers, Json(json!({"data": page.items}))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let subject = state.services.subjects.get(&ctx, &sssid).await?;
    Ok(Json(json!({"data": subject})))
}

pub async fn update(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
    ApiJson(body): ApiJson<SubjectBody>,
) -> Result<StatusCode> {
    state
        .services
        .subjects
        .update(&ctx, &sssid, body.into())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let entries = state.services.subjects.audits(&ctx, &sssid).await?;
    let data: Vec<_> = entries
        .into_iter()
        .map(|e| json!({"datetime": e.datetime, "action": e.action, "actor": e.actor}))
        .collect();
    Ok(Json(json!({"data": data})))
}

pub async fn links(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let links = state.services.links.for_subject(&ctx, &sssid).await?;
    Ok(Json(json!({"data": links})))
}

pub async fn create_link(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Response> {
    let link = state.services.links.create(&ctx, &sssid).await?;
    Ok((StatusCode::CREATED, Json(json!({"data": link}))).into_response())
}
