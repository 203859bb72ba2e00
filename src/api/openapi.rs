//! The OpenAPI 3 description of the JSON API, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they read and write, served
//! at `GET /openapi.json`. `static/api/` renders it for people.

use std::sync::OnceLock;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, Ref, RefOr, ResponseBuilder, content::Content};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::error::ErrorEnvelope;
use crate::api::{accounts, csv, health, links, metrics, records, recovery, subjects, users};
use crate::store::AuditRecord;

/// The staff-token security scheme: `Authorization: JWT <token>` or
/// `Bearer <token>`, as issued by `POST /auth`. The `security(...)` of the
/// handlers' annotations name it literally (the macro wants literals).
pub const STAFF_TOKEN: &str = "staff_token";
/// The link JWT the mobile app presents at `/establish`.
pub const LINK_TOKEN: &str = "link_token";

/// `{"data": ...}`, the success envelope.
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `{"status": ...}` of `/` and `/healthz`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ready")]
    pub status: String,
}

/// Health of the dependencies: `"ok"` or a short description of the problem.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub db: String,
    #[schema(example = "ok")]
    pub mail: String,
}

/// Health of the store: `"ok"` or a short description of the problem.
#[derive(Serialize, ToSchema)]
pub struct StoreHealth {
    #[schema(example = "ok")]
    pub db: String,
}

/// Credentials for `POST /auth`. Missing or mistyped fields are a failed
/// login (401), like a wrong password.
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "staff@example.org")]
    pub username: String,
    pub password: String,
    /// For accounts with two-factor sign-in: the 6-digit code of the
    /// authenticator app, or one of the account's recovery codes. Without
    /// it, or with a wrong one, such an account gets the same 401 as for a
    /// wrong password. Accounts without a second factor ignore it.
    #[schema(example = "123456")]
    pub otp: Option<String>,
}

/// A staff token, sent back as `Authorization: JWT <token>`.
#[derive(Serialize, ToSchema)]
pub struct AccessToken {
    pub access_token: String,
}

/// One entry of an audit trail, oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub datetime: DateTime<Utc>,
    #[schema(example = "consented: 2024-05-01T09:30:00Z")]
    pub action: String,
    /// The staff member who acted; absent or null for the mobile app.
    pub actor: Option<String>,
    /// The client address of the request (staff-account trails only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    /// The subject trail's shape: `datetime`, `action`, `actor`.
    fn from(record: AuditRecord) -> Self {
        Self {
            datetime: record.datetime,
            action: record.action,
            actor: record.actor,
            ip: None,
        }
    }
}

impl AuditEntry {
    /// A staff-account trail entry, with the client address.
    pub fn with_client_ip(record: AuditRecord) -> Self {
        let ip = record.client_ip.clone();
        Self {
            ip,
            ..Self::from(record)
        }
    }
}

/// The FHIR `Patient` the mobile app sends to `/establish`; only
/// `identifier[0].value` (and `.system`) are read.
#[derive(Serialize, ToSchema)]
#[schema(as = Patient)]
pub struct PatientDoc {
    #[schema(value_type = String, pattern = "^Patient$")]
    #[serde(rename = "resourceType")]
    pub resource_type: &'static str,
    #[schema(min_items = 1)]
    pub identifier: Vec<PatientIdentifier>,
}

#[derive(Serialize, ToSchema)]
pub struct PatientIdentifier {
    #[schema(min_length = 1, max_length = 1024)]
    pub value: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub system: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "C3-PRO IDM",
        description = "Identity and study-participant manager for research studies. \
            Every error, on every route, is `{\"error\":{\"status\":<code>,\"message\":\"...\"}}` \
            with the same status code on the response. Protected routes take \
            `Authorization: JWT <token>` or `Authorization: Bearer <token>` with a token from `POST /auth`.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::root,
        health::status,
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi_json,
        users::auth,
        users::list,
        users::create,
        users::delete,
        users::get,
        users::update,
        users::audits,
        recovery::send_reset,
        accounts::resend_invitation,
        accounts::start_mfa,
        accounts::confirm_mfa,
        accounts::remove_mfa,
        accounts::sessions,
        accounts::revoke_sessions,
        accounts::unlock,
        subjects::list,
        subjects::create,
        subjects::get,
        subjects::update,
        subjects::audits,
        subjects::links,
        subjects::create_link,
        csv::study_audits,
        csv::import,
        links::get,
        links::update,
        links::jwt,
        links::establish,
        records::verify,
        records::correct,
        records::erase,
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&CommonResponses),
    tags(
        (name = "service", description = "Health, readiness, metrics and this description"),
        (name = "staff", description = "Staff accounts and tokens"),
        (name = "subjects", description = "Study subjects and their audit trail"),
        (name = "links", description = "QR-code invitations and their redemption by the mobile app"),
        (name = "audits", description = "The tamper-evident audit trail, corrections and erasure"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes, and the error answers every operation of a
/// kind can give, so the annotations list only what is particular to them.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some("JWT".into());
            http
        };
        let mut staff = bearer();
        staff.description = Some(
            "A staff token from `POST /auth`. The scheme may also be written `JWT` \
             (`Authorization: JWT <token>`), case-insensitively."
                .into(),
        );
        components.add_security_scheme(STAFF_TOKEN, SecurityScheme::Http(staff));
        let mut link = bearer();
        link.description = Some("The link JWT of a QR code (`Bearer` or `JWT`).".into());
        components.add_security_scheme(LINK_TOKEN, SecurityScheme::Http(link));

        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_common_responses(operation);
            }
        }
    }
}

fn add_common_responses(operation: &mut Operation) {
    let secured_by = |scheme: &str| {
        operation.security.iter().flatten().any(|requirement| {
            serde_json::to_value(requirement)
                .is_ok_and(|v| v.as_object().is_some_and(|o| o.contains_key(scheme)))
        })
    };
    let mut errors: Vec<(&str, &str)> = Vec::new();
    if secured_by(STAFF_TOKEN) {
        errors.push((
            "401",
            "No, a malformed or an invalid staff token (\"Authorization Required\" without a header)",
        ));
    }
    let json_body = operation.request_body.as_ref().is_some_and(|body| {
        body.content
            .keys()
            .any(|mime| mime.as_str() == "application/json")
    });
    if json_body && secured_by(STAFF_TOKEN) {
        errors.push((
            "400",
            "The body is empty, malformed JSON, not an object, has a field of the wrong type \
             or an unknown field, or a value breaks a rule; the message names the problem",
        ));
    }
    if json_body {
        errors.push(("413", "The body is larger than 64 KiB"));
    }
    // `/establish` reads its body raw, whatever the type; the FHIR checks
    // answer 406 instead.
    if json_body && !secured_by(LINK_TOKEN) {
        errors.push(("415", "The body is not `Content-Type: application/json`"));
    }
    errors.push(("503", "The store is unavailable; try again later"));
    let responses = &mut operation.responses.responses;
    for (status, description) in errors {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
                    )
                    .build(),
            )
        });
    }
}

/// A paging number in a query string: a whole number from `minimum` up to
/// `i64::MAX` (what the stores page by), or blank for the default, since
/// clients send `offset=&perpage=`.
fn blank_or_whole_number(minimum: i64) -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(minimum)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^\s*$")),
        )
        .into()
}

/// `offset` of `GET /subject`.
pub fn offset_param() -> Schema {
    blank_or_whole_number(0)
}

/// `perpage` of `GET /subject`.
pub fn perpage_param() -> Schema {
    blank_or_whole_number(1)
}

/// The description, built once.
pub fn document() -> &'static OpenApiDoc {
    static DOCUMENT: OnceLock<OpenApiDoc> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service", operation_id = "openapi", summary = "This OpenAPI description",
    responses((status = 200, description = "This OpenAPI description", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    let mut response = Json(document()).into_response();
    // Not PHI: the description may be cached like any static file.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
