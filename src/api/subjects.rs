//! `/subject...`: thin adapters over the subject and link services.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use crate::api::csv::{csv_response, download_name, wants_csv};
use crate::api::error::ErrorEnvelope;
use crate::api::extract::{ApiJson, Staff};
use crate::api::openapi::{AuditEntry, Data};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::service::links::LinkView;
use crate::service::listing::{SubjectListQuery, SubjectListText};
use crate::service::subjects::{SubjectFields, SubjectView};

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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    /// 1-64 characters, case-sensitive, no control characters or
    /// surrounding blanks. Required to create; on update it must equal the
    /// path.
    #[schema(min_length = 1, max_length = 64, example = "S-0002")]
    sssid: Option<String>,
    /// Required to create; 1-256 characters once trimmed.
    #[schema(min_length = 1, example = "Ada Lovelace")]
    name: Option<String>,
    /// Required to create: `YYYY-MM-DD` (or an RFC 3339 timestamp, whose date
    /// is taken as written), 1900-01-01 to 2100-12-31.
    #[schema(min_length = 1, example = "1980-12-31")]
    bday: Option<String>,
    /// An email address; null or empty text removes it.
    #[schema(value_type = Option<String>, example = "ada@example.org")]
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    /// RFC 3339 timestamp or bare date (midnight UTC); set once.
    #[schema(example = "2024-05-01T09:30:00Z")]
    date_invited: Option<String>,
    /// RFC 3339 timestamp or bare date (midnight UTC); set once.
    #[schema(example = "2024-05-01T09:30:00Z")]
    date_consented: Option<String>,
    /// RFC 3339 timestamp or bare date (midnight UTC); set once.
    date_enrolled: Option<String>,
    /// RFC 3339 timestamp or bare date (midnight UTC); set once.
    date_withdrawn: Option<String>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
    #[serde(default, rename = "created")]
    _created: Option<IgnoredAny>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
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

/// Registers a subject: `sssid`, `name` and `bday` are required.
#[utoipa::path(
    post, path = "/subject", tag = "subjects", operation_id = "createSubject", summary = "Register a subject",
    security(("staff_token" = [])),
    request_body = SubjectBody,
    responses(
        (status = 201, description = "The new subject", body = Data<SubjectView>),
        (status = 409, description = "This SSSID is already taken", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    ApiJson(body): ApiJson<SubjectBody>,
) -> Result<Response> {
    let subject = state.services.subjects.create(&ctx, body.into()).await?;
    Ok((StatusCode::CREATED, Json(Data { data: subject })).into_response())
}

/// Empty values mean the default.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many subjects to skip.
    #[param(schema_with = crate::api::openapi::offset_param)]
    offset: Option<String>,
    /// Subjects per page, 50 by default; more than 500 is read as 500.
    #[param(schema_with = crate::api::openapi::perpage_param)]
    perpage: Option<String>,
    /// The column to sort by.
    #[param(value_type = Option<String>, pattern = "^\\s*(sssid|name|bday|created|changed|date_invited|date_consented|date_enrolled|date_withdrawn)?\\s*$")]
    ordercol: Option<String>,
    /// `asc` or `desc`, in any letter case.
    #[param(value_type = Option<String>, pattern = "^\\s*([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?\\s*$")]
    orderdir: Option<String>,
    /// Literal text: an sssid prefix, part of a name (case-insensitive),
    /// or a bday prefix.
    search: Option<String>,
    /// Subjects whose latest state is this one: not-invited (no step
    /// recorded yet), invited, consented, enrolled or withdrawn (any
    /// letter case).
    #[param(value_type = Option<String>, pattern = "^\\s*([Nn][Oo][Tt]-[Ii][Nn][Vv][Ii][Tt][Ee][Dd]|[Ii][Nn][Vv][Ii][Tt][Ee][Dd]|[Cc][Oo][Nn][Ss][Ee][Nn][Tt][Ee][Dd]|[Ee][Nn][Rr][Oo][Ll][Ll][Ee][Dd]|[Ww][Ii][Tt][Hh][Dd][Rr][Aa][Ww][Nn])?\\s*$")]
    status: Option<String>,
    /// `json` (the default) or `csv` (also chosen by `Accept: text/csv`).
    /// As CSV, without `offset` and `perpage` the whole list is sent.
    #[param(value_type = Option<String>, pattern = "^\\s*([Jj][Ss][Oo][Nn]|[Cc][Ss][Vv])?\\s*$")]
    format: Option<String>,
}

#[utoipa::path(
    get, path = "/subject", tag = "subjects", operation_id = "listSubjects", summary = "List, search and page subjects",
    security(("staff_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of subjects; as CSV (`format=csv`), the columns sssid, name, bday, email, date_invited, date_consented, date_enrolled, date_withdrawn",
            headers(
                ("X-Total-Count" = u64, description = "Subjects matching, over all pages (JSON only): exact up to the server's count limit (`subject_count_limit`, default 2,000); past it a lower bound, at least the limit plus one and at least one past this page, so a pager reading it always offers the next page while there is one"),
                ("X-Total-Count-Exact" = bool, description = "`true` when `X-Total-Count` is the exact number of matches, `false` when it is a lower bound (JSON only)"),
            ),
            content(
                (Data<Vec<SubjectView>> = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A parameter has a bad value; the message names it", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    headers: HeaderMap,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let csv = wants_csv(q.format.as_deref(), &headers)?;
    let query = SubjectListQuery::parse(SubjectListText {
        offset: q.offset.as_deref(),
        perpage: q.perpage.as_deref(),
        ordercol: q.ordercol.as_deref(),
        orderdir: q.orderdir.as_deref(),
        search: q.search.as_deref(),
        status: q.status.as_deref(),
    })?;
    if csv {
        let blank = |text: &Option<String>| text.as_deref().is_none_or(|t| t.trim().is_empty());
        let whole_list = blank(&q.offset) && blank(&q.perpage);
        let chunks = state
            .services
            .csv
            .export_subjects(&ctx, query, whole_list)
            .await?;
        return Ok(csv_response(chunks, "subjects.csv"));
    }
    let page = state.services.subjects.list(&ctx, query).await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total.value()));
    headers.insert(
        "x-total-count-exact",
        HeaderValue::from_static(if page.total.is_exact() {
            "true"
        } else {
            "false"
        }),
    );
    Ok((headers, Json(Data { data: page.items })).into_response())
}

#[utoipa::path(
    get, path = "/subject/{sssid}", tag = "subjects", operation_id = "getSubject", summary = "Read a subject",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    responses(
        (status = 200, description = "The subject", body = Data<SubjectView>),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Json<Data<SubjectView>>> {
    let subject = state.services.subjects.get(&ctx, &sssid).await?;
    Ok(Json(Data { data: subject }))
}

/// `GET /subject/import`: the subject whose sssid is `import` (the path
/// is also the import's).
pub async fn get_import(state: State<AppState>, staff: Staff) -> Result<Json<Data<SubjectView>>> {
    get(state, staff, Path("import".to_owned())).await
}

/// `PUT /subject/import`, as [`get_import`].
pub async fn update_import(
    state: State<AppState>,
    staff: Staff,
    body: ApiJson<SubjectBody>,
) -> Result<StatusCode> {
    update(state, staff, Path("import".to_owned()), body).await
}

/// A partial update. Each `date_*` can be set once; sending the same value
/// again changes nothing.
#[utoipa::path(
    put, path = "/subject/{sssid}", tag = "subjects", operation_id = "updateSubject", summary = "Change a subject, record invitation, consent, enrolment or withdrawal",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    request_body = SubjectBody,
    responses(
        (status = 204, description = "Changed (or nothing to change)"),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
        (status = 409, description = "SSSID cannot be changed, or a set-once date already has another value", body = ErrorEnvelope),
    )
)]
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

#[utoipa::path(
    get, path = "/subject/{sssid}/audits", tag = "subjects", operation_id = "getSubjectAudits", summary = "Audit trail of a subject and its links",
    security(("staff_token" = [])),
    params(
        ("sssid" = String, Path, description = "The study subject id"),
        ("format" = Option<String>, Query, description = "`json` (the default) or `csv` (also chosen by `Accept: text/csv`)", pattern = "^\\s*([Jj][Ss][Oo][Nn]|[Cc][Ss][Vv])?\\s*$"),
    ),
    responses(
        (status = 200, description = "The audit trail of the subject and its links (`[Link] ` entries), oldest first; as CSV the columns datetime, actor, action, subject, link, user, request_id, client_ip, seq, hash",
            content(
                (Data<Vec<AuditEntry>> = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "`format` is neither `json` nor `csv`", body = ErrorEnvelope),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
    )
)]
pub async fn audits(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
    headers: HeaderMap,
    query: std::result::Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(q) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    if wants_csv(q.format.as_deref(), &headers)? {
        let chunks = state
            .services
            .csv
            .export_subject_audits(&ctx, &sssid)
            .await?;
        return Ok(csv_response(chunks, &download_name("audit-trail-", &sssid)));
    }
    let entries = state.services.subjects.audits(&ctx, &sssid).await?;
    Ok(Json(Data {
        data: entries
            .into_iter()
            .map(AuditEntry::from)
            .collect::<Vec<_>>(),
    })
    .into_response())
}

/// `?format=`, for answers that come as JSON or CSV.
#[derive(Deserialize)]
pub struct FormatQuery {
    format: Option<String>,
}

#[utoipa::path(
    get, path = "/subject/{sssid}/links", tag = "links", operation_id = "listSubjectLinks", summary = "Links of a subject",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    responses(
        (status = 200, description = "The subject's links, oldest first", body = Data<Vec<LinkView>>),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
    )
)]
pub async fn links(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Json<Data<Vec<LinkView>>>> {
    let links = state.services.links.for_subject(&ctx, &sssid).await?;
    Ok(Json(Data { data: links }))
}

/// A new QR-code invitation for a consented subject.
#[utoipa::path(
    post, path = "/subject/{sssid}/links", tag = "links", operation_id = "createLink", summary = "Create a link (QR-code invitation)",
    security(("staff_token" = [])),
    params(("sssid" = String, Path, description = "The study subject id")),
    responses(
        (status = 201, description = "The new link", body = Data<LinkView>),
        (status = 404, description = "No such subject", body = ErrorEnvelope),
        (status = 412, description = "The subject has not consented yet, or has withdrawn", body = ErrorEnvelope),
    )
)]
pub async fn create_link(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(sssid): Path<String>,
) -> Result<Response> {
    let link = state.services.links.create(&ctx, &sssid).await?;
    Ok((StatusCode::CREATED, Json(Data { data: link })).into_response())
}
