//! Request extractors shared by the JSON handlers: a strict JSON body, the
//! request context, the `Authorization` header, and staff authentication.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::Error;
use crate::http::client_ip::client_ip;
use crate::http::request_id::request_id;
use crate::service::Context;

/// A JSON object body, with errors that name the problem: wrong content
/// type (415), too large (413), malformed, not an object, wrong field types
/// or unknown fields (400).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Error::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("request body is too large (at most 64 KiB)".into())
            } else {
                Error::BadRequest(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        parse_json_object(&bytes).map(ApiJson)
    }
}

/// Parses a JSON object into `T`, naming the offending field on error.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadRequest(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::BadRequest(
            "request body must be a JSON object".into(),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            Error::BadRequest(e.inner().to_string())
        } else {
            Error::BadRequest(format!("{path}: {}", e.inner()))
        }
    })
}

/// The context of an unauthenticated request.
pub struct Anonymous(pub Context);

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Anonymous(Context::anonymous(
            request_id(parts),
            client_ip(parts),
        )))
    }
}

/// An `Authorization` header read as `<scheme> <token>`, both trimmed. A
/// header without a blank is all scheme, with an empty token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    pub scheme: &'a str,
    pub token: &'a str,
}

/// The header value is not visible ASCII text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadableHeader;

impl<'a> AuthorizationHeader<'a> {
    /// `None` without a header. The staff extractor and `/establish` read
    /// the header alike and answer its problems differently.
    pub fn read(headers: &'a HeaderMap) -> Result<Option<Self>, UnreadableHeader> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| UnreadableHeader)?.trim();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        Ok(Some(Self {
            scheme,
            token: token.trim(),
        }))
    }

    /// `JWT` or `Bearer`, in any letter case: the schemes of staff and link
    /// tokens alike.
    pub fn has_token_scheme(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("jwt") || self.scheme.eq_ignore_ascii_case("bearer")
    }
}

/// The token of an `Authorization: JWT <token>` or `Bearer <token>` header
/// (scheme case-insensitive). No header is "Authorization Required".
pub fn authorization_token(parts: &Parts) -> Result<&str, Error> {
    let malformed = || Error::Unauthorized("Malformed Authorization header".into());
    let header = AuthorizationHeader::read(&parts.headers)
        .map_err(|UnreadableHeader| malformed())?
        .ok_or_else(|| Error::Unauthorized("Authorization Required".into()))?;
    // The value is trimmed, so a token is empty exactly when there is no
    // blank between scheme and token.
    if header.token.is_empty() {
        return Err(malformed());
    }
    if !header.has_token_scheme() {
        return Err(Error::Unauthorized(
            "Unsupported authorization scheme; use JWT or Bearer".into(),
        ));
    }
    Ok(header.token)
}

/// What an account that must set up a second factor may still do with
/// its token: read itself and set the factor up.
fn enrolment_route(parts: &Parts, username: &str) -> bool {
    let path = parts.uri.path();
    let own = format!("/user/{username}");
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let method = &parts.method;
    (method == axum::http::Method::GET && decoded == own)
        || (method == axum::http::Method::POST
            && (decoded == format!("{own}/mfa") || decoded == format!("{own}/mfa/confirm")))
}

/// The context of a request by a staff member with a valid token.
pub struct Staff(pub Context);

impl FromRequestParts<AppState> for Staff {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = authorization_token(parts)?;
        let user = state.services.auth.authenticate(token).await?;
        if user.must_enrol && !enrolment_route(parts, user.username.as_str()) {
            return Err(Error::Forbidden(format!(
                "two-factor sign-in is required for this account: set it up first \
                 (POST /user/{}/mfa, then /mfa/confirm)",
                user.username
            )));
        }
        Ok(Staff(Context::staff(
            user,
            request_id(parts),
            client_ip(parts),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};

    fn parts(authorization: Option<&[u8]>) -> Parts {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        request.into_parts().0
    }

    fn read(value: &[u8]) -> Result<Option<(String, String)>, UnreadableHeader> {
        let parts = parts(Some(value));
        AuthorizationHeader::read(&parts.headers)
            .map(|h| h.map(|h| (h.scheme.to_owned(), h.token.to_owned())))
    }

    #[test]
    fn authorization_header_splits_at_the_first_blank() {
        let pair = |s: &str, t: &str| Ok(Some((s.to_owned(), t.to_owned())));
        assert_eq!(read(b"Bearer abc"), pair("Bearer", "abc"));
        assert_eq!(read(b"  jwt   abc  "), pair("jwt", "abc"));
        assert_eq!(read(b"Bearer"), pair("Bearer", ""));
        assert_eq!(read(b"Bearer\tabc"), pair("Bearer\tabc", ""));
        assert_eq!(read(b"Basic a b"), pair("Basic", "a b"));
        assert_eq!(read(b"Bearer \xff"), Err(UnreadableHeader));
        assert_eq!(AuthorizationHeader::read(&parts(None).headers), Ok(None));
    }

    #[test]
    fn staff_tokens_need_a_token_scheme_and_a_token() {
        let message = |value: Option<&[u8]>| match authorization_token(&parts(value)) {
            Ok(token) => token.to_owned(),
            Err(Error::Unauthorized(message)) => message,
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(message(Some(b"JWT abc")), "abc");
        assert_eq!(message(Some(b"bearer  abc ")), "abc");
        assert_eq!(message(None), "Authorization Required");
        for malformed in [&b"Bearer"[..], b"abc", b"Bearer \xff", b"   "] {
            assert_eq!(
                message(Some(malformed)),
                "Malformed Authorization header",
                "{malformed:?}"
            );
        }
        assert_eq!(
            message(Some(b"Basic abc")),
            "Unsupported authorization scheme; use JWT or Bearer"
        );
    }
}
