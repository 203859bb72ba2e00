//! `/link...` and `/establish`: thin adapters over the link service.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;
use utoipa::ToSchema;

use crate::api::error::ErrorEnvelope;
use crate::api::extract::{Anonymous, ApiJson, AuthorizationHeader, Staff, UnreadableHeader};
use crate::api::openapi::{Data, PatientDoc};
use crate::app::AppState;
use crate::error::Result;
use crate::service::links::{EstablishRequest, LinkCredentials, LinkFields, LinkView, PatientBody};

#[utoipa::path(
    get, path = "/link/{id}", tag = "links", operation_id = "getLink", summary = "Read a link",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id (`_id`, the JWT `jti`)")),
    responses(
        (status = 200, description = "The link", body = Data<LinkView>),
        (status = 404, description = "No such link", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
) -> Result<Json<Data<LinkView>>> {
    let link = state.services.links.get(&ctx, &id).await?;
    Ok(Json(Data { data: link }))
}

/// A link body for `PUT`: a whole link as read may be sent back; the
/// server-owned `created`/`changed` are ignored. `sub`, `iss`, `aud`,
/// `algorithm` and `exp` may be sent but not changed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    #[serde(rename = "_id")]
    id: Option<String>,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<String>,
    algorithm: Option<String>,
    exp: Option<String>,
    linked_on: Option<String>,
    linked_to: Option<String>,
    linked_system: Option<String>,
    /// RFC 3339 timestamp or bare date; set once.
    withdrawn_on: Option<String>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
    #[serde(default, rename = "created")]
    _created: Option<IgnoredAny>,
    /// Server-owned; ignored.
    #[schema(value_type = Option<Value>)]
    #[serde(default, rename = "changed")]
    _changed: Option<IgnoredAny>,
}

/// Withdraws a link, or records `linked_to`/`linked_system` while it is
/// not yet established.
#[utoipa::path(
    put, path = "/link/{id}", tag = "links", operation_id = "updateLink", summary = "Withdraw a link or record what it is linked to",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id")),
    request_body = LinkBody,
    responses(
        (status = 204, description = "Changed (or nothing to change)"),
        (status = 404, description = "No such link", body = ErrorEnvelope),
        (status = 409, description = "A field that cannot change differs, or the link is already established or withdrawn", body = ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<LinkBody>,
) -> Result<StatusCode> {
    let fields = LinkFields {
        id: b.id,
        sub: b.sub,
        iss: b.iss,
        aud: b.aud,
        algorithm: b.algorithm,
        exp: b.exp,
        linked_on: b.linked_on,
        linked_to: b.linked_to,
        linked_system: b.linked_system,
        withdrawn_on: b.withdrawn_on,
    };
    state.services.links.update(&ctx, &id, fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The compact JWT for the QR code, as `application/jwt`.
#[utoipa::path(
    get, path = "/link/{id}/jwt", tag = "links", operation_id = "getLinkJwt", summary = "The link JWT for the QR code",
    security(("staff_token" = [])),
    params(("id" = String, Path, description = "The link id")),
    responses(
        (status = 200, description = "The link JWT (HS256 with the link secret), issued on the first call and the same until it expires", content_type = "application/jwt",
            body = inline(String), example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIuLi4ifQ.c2lnbmF0dXJl"),
        (status = 404, description = "No such link", body = ErrorEnvelope),
        (status = 410, description = "The link expired, was established or withdrawn: create a new link", body = ErrorEnvelope),
        (status = 412, description = "The subject has withdrawn", body = ErrorEnvelope),
    )
)]
pub async fn jwt(
    State(state): State<AppState>,
    Staff(ctx): Staff,
    Path(id): Path<String>,
) -> Result<Response> {
    let token = state.services.links.jwt(&ctx, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}

/// `POST /establish` by the mobile app. The header and body are read into
/// typed values without judging them: the service decides in which order
/// their problems are answered (a bad token before a bad body).
#[utoipa::path(
    post, path = "/establish", tag = "links", operation_id = "establishLink", summary = "Redeem a link JWT (mobile app)",
    security(("link_token" = [])),
    request_body(content = PatientDoc, content_type = "application/json",
        description = "A FHIR Patient; `identifier[0].value` becomes `linked_to`"),
    responses(
        (status = 204, description = "The link is established"),
        (status = 401, description = "No Authorization header", body = ErrorEnvelope),
        (status = 403, description = "The link token is invalid, expired, unknown or withdrawn", body = ErrorEnvelope),
        (status = 406, description = "Another authorization scheme, or the body is not a Patient with identifier[0].value", body = ErrorEnvelope),
        (status = 409, description = "This link has already been established", body = ErrorEnvelope),
    )
)]
pub async fn establish(
    State(state): State<AppState>,
    Anonymous(ctx): Anonymous,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let request = EstablishRequest {
        credentials: link_credentials(&headers),
        patient: read_patient(&body),
    };
    state.services.links.establish(&ctx, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn link_credentials(headers: &HeaderMap) -> LinkCredentials {
    match AuthorizationHeader::read(headers) {
        Err(UnreadableHeader) => LinkCredentials::Unreadable,
        Ok(None) => LinkCredentials::Missing,
        Ok(Some(header)) if header.has_token_scheme() => {
            LinkCredentials::Token(header.token.to_owned())
        }
        Ok(Some(_)) => LinkCredentials::OtherScheme,
    }
}

/// The body as a FHIR Patient: a JSON object with
/// `"resourceType":"Patient"`, of which only `identifier[0]` matters.
fn read_patient(body: &[u8]) -> PatientBody {
    let Some(patient) = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| v.get("resourceType").and_then(|t| t.as_str()) == Some("Patient"))
    else {
        return PatientBody::NotAPatient;
    };
    let identifier = patient.pointer("/identifier/0");
    let text = |key: &str| {
        identifier
            .and_then(|i| i.get(key))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    PatientBody::Patient {
        identifier_value: text("value"),
        identifier_system: text("system"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(value: Option<&str>, system: Option<&str>) -> PatientBody {
        PatientBody::Patient {
            identifier_value: value.map(str::to_owned),
            identifier_system: system.map(str::to_owned),
        }
    }

    #[test]
    fn patients_give_their_first_identifier_trimmed() {
        let body =
            br#"{"resourceType":"Patient","identifier":[{"system":"urn:app","value":" p-1 "}]}"#;
        assert_eq!(read_patient(body), patient(Some("p-1"), Some("urn:app")));
        let no_system = br#"{"resourceType":"Patient","identifier":[{"value":"p-1"}]}"#;
        assert_eq!(read_patient(no_system), patient(Some("p-1"), None));
        for no_value in [
            &br#"{"resourceType":"Patient"}"#[..],
            br#"{"resourceType":"Patient","identifier":[]}"#,
            br#"{"resourceType":"Patient","identifier":[{"value":""}]}"#,
            br#"{"resourceType":"Patient","identifier":[{"value":7}]}"#,
            br#"{"resourceType":"Patient","identifier":[{"system":"urn:app"}],"x":[{"value":"p"}]}"#,
        ] {
            let PatientBody::Patient {
                identifier_value, ..
            } = read_patient(no_value)
            else {
                panic!("{no_value:?} is a Patient");
            };
            assert_eq!(identifier_value, None, "{no_value:?}");
        }
    }

    #[test]
    fn other_bodies_are_not_patients() {
        for body in [
            &b""[..],
            b"not json",
            br#"[]"#,
            br#"{"resourceType":"Observation","identifier":[{"value":"x"}]}"#,
            br#"{"identifier":[{"value":"x"}]}"#,
        ] {
            assert_eq!(read_patient(body), PatientBody::NotAPatient, "{body:?}");
        }
    }

    #[test]
    fn link_credentials_tell_missing_unreadable_other_and_token_apart() {
        let with = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                axum::http::HeaderValue::from_bytes(value).unwrap(),
            );
            link_credentials(&headers)
        };
        assert_eq!(
            link_credentials(&HeaderMap::new()),
            LinkCredentials::Missing
        );
        assert_eq!(with(b"Bearer \xff"), LinkCredentials::Unreadable);
        assert_eq!(with(b"Basic abc"), LinkCredentials::OtherScheme);
        assert_eq!(with(b"abc"), LinkCredentials::OtherScheme);
        assert_eq!(with(b"bearer abc"), LinkCredentials::Token("abc".into()));
        assert_eq!(with(b"JWT  abc "), LinkCredentials::Token("abc".into()));
        assert_eq!(with(b"Bearer"), LinkCredentials::Token(String::new()));
    }
}
