//! Cross-site request forgery protection for every state-changing page
//! route, signed in or not (login, init, reset forms included).
//!
//! Two independent checks, both must pass:
//! - the browser's own word: `Sec-Fetch-Site` must be `same-origin` and
//!   `Origin` must be this site, when the browser sends them;
//! - a per-session secret token, sent as the `csrf_token` form field or,
//!   for htmx requests, the `X-CSRF-Token` header (static/app.js copies it
//!   from the page's meta tag).
//!
//! GET and HEAD never change state, so they pass untouched.
//!
//! A post that passes the browser's check but carries no valid token, in a
//! session without a sign-in, is a console form whose session ended (idle
//! or absolute timeout, sign-out in another tab, an unknown cookie): it is
//! sent to the login page and back to its page, and never reaches a
//! handler. The browser's word is checked first, so a cross-site request
//! is refused before this; one without those headers (an old browser, a
//! script) gets at most the same redirect, which changes nothing.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::app::{AppState, MAX_BODY_BYTES};
use crate::error::Error;
use crate::web::error::error_page;
use crate::web::session::{CSRF_KEY, holds_sign_in, sign_in_required};

pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Forms for visitors who are not signed in: without a signed-in session
/// to lose, a stale token there is refused like any other.
const SIGNED_OUT_FORMS: [&str; 4] = ["/login", "/init", "/iforgot", "/reset"];

pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if let Err(why) = check_origin(&parts.headers, state.config.public_url()) {
        return refuse(why);
    }
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Error::PayloadTooLarge("the form is too large".into()).into_response();
    };
    let session = parts.extensions.get::<Session>();
    let expected = match session {
        Some(session) => session.get::<String>(CSRF_KEY).await.ok().flatten(),
        None => None,
    };
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_token(&parts.headers, &bytes));
    let valid = match (expected, sent) {
        (Some(expected), Some(sent)) => bool::from(expected.as_bytes().ct_eq(sent.as_bytes())),
        _ => false,
    };
    if !valid {
        let signed_in = match session {
            Some(session) => holds_sign_in(session).await,
            None => false,
        };
        if !signed_in && !SIGNED_OUT_FORMS.contains(&parts.uri.path()) {
            tracing::info!("a console form was sent after its session ended");
            return sign_in_required(&parts, &state).into_response();
        }
        return refuse("missing or wrong CSRF token");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(why: &str) -> Response {
    tracing::warn!(reason = why, "refused a state-changing page request");
    error_page(
        &Error::Forbidden(
            "This request was refused: it did not come from a form of this site, or the form \
             has expired. Reload the page and try again."
                .into(),
        ),
        None,
    )
}

/// The token in an url-encoded form body.
fn form_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            &url[..i + 3 + rest.find('/').unwrap_or(rest.len())]
        }
        None => url,
    }
}

/// The browser's statement of where the request came from. Requests
/// without these headers (old browsers, scripts) still need the token.
fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), &'static str> {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
    {
        return Err("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = text(header::ORIGIN)
        && !is_this_site(origin, headers, public_url)
    {
        return Err("Origin is another site");
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is this site: its public URL,
/// or the Host the browser connected to (a foreign page cannot make a
/// browser send our Host with its own Origin).
pub fn is_this_site(origin: &str, headers: &HeaderMap, public_url: &str) -> bool {
    let same_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| {
            !host.is_empty()
                && (origin.strip_prefix("http://") == Some(host)
                    || origin.strip_prefix("https://") == Some(host))
        });
    origin.eq_ignore_ascii_case(origin_of(public_url)) || same_host
}

/// The path and query of `url` if it is a page of this site.
pub fn own_page(url: &str, headers: &HeaderMap, public_url: &str) -> Option<String> {
    if !url.contains("://") {
        return None;
    }
    let origin = origin_of(url);
    if !is_this_site(origin, headers, public_url) {
        return None;
    }
    let rest = &url[origin.len()..];
    let page = rest.split('#').next().unwrap_or_default();
    Some(if page.is_empty() { "/" } else { page }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn origin_rules() {
        let public = "https://idm.example.org/base";
        assert_eq!(origin_of(public), "https://idm.example.org");
        assert!(check_origin(&headers(&[]), public).is_ok());
        assert!(check_origin(&headers(&[("origin", "https://idm.example.org")]), public).is_ok());
        assert!(
            check_origin(
                &headers(&[
                    ("origin", "http://127.0.0.1:9096"),
                    ("host", "127.0.0.1:9096")
                ]),
                public
            )
            .is_ok()
        );
        for bad in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "https://idm.example.org.evil.example")]),
            headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:9096"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(check_origin(&bad, public).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn own_page_takes_the_path_of_this_sites_urls_only() {
        let public = "https://idm.example.org/base";
        let host = headers(&[("host", "127.0.0.1:9096")]);
        for (url, page) in [
            (
                "https://idm.example.org/subjects?q=a#top",
                Some("/subjects?q=a"),
            ),
            ("https://idm.example.org", Some("/")),
            ("http://127.0.0.1:9096/subjects/new", Some("/subjects/new")),
            ("https://evil.example/subjects", None),
            ("https://idm.example.org.evil.example/subjects", None),
            ("http://127.0.0.1:9097/subjects", None),
            ("/subjects", None),
            ("", None),
        ] {
            assert_eq!(own_page(url, &host, public).as_deref(), page, "{url}");
        }
    }
}
