//! Cross-site request forgery protection for every state-changing page
//! route, signed in or not (login, init, reset forms included).
//!
//! Two independent checks, both must pass:
//! - the browser's own word: `Sec-Fetch-Site` must be `same-origin` and
//!   `Origin` must be this site, when the browser sends them;
//! - a secret token, sent as the `csrf_token` form field or, for htmx
//!   requests, the `X-CSRF-Token` header (static/app.js copies it from the
//!   page's meta tag).
//!
//! Where the token lives depends on the visitor. A signed-in session keeps
//! its own random token (made at sign-in). A visitor who is not signed in
//! has no session at all: keeping one per anonymous page view would let
//! anyone grow the session table without bound. Their forms (login, init,
//! reset) carry a signed double-submit token instead: a random nonce in a
//! SameSite=Strict, HttpOnly cookie (`__Host-` prefixed over https, so a
//! neighbouring subdomain cannot plant one), and in the form the
//! HMAC-SHA256 of that nonce under a key derived from the token secret. A
//! foreign page can neither read the cookie nor compute the form value, and
//! the server keeps nothing.
//!
//! GET and HEAD never change state, so they pass untouched (they only get
//! the nonce cookie when the browser has none yet).
//!
//! A post that passes the browser's check but carries no valid token, in a
//! session without a sign-in, is a console form whose session ended (idle
//! or absolute timeout, sign-out in another tab, an unknown cookie): it is
//! sent to the login page and back to its page, and never reaches a
//! handler. The browser's word is checked first, so a cross-site request
//! is refused before this; one without those headers (an old browser, a
//! script) gets at most the same redirect, which changes nothing.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::{Markup, html};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};
use url::Url;

use crate::app::{AppState, MAX_BODY_BYTES};
use crate::clock::random_hex;
use crate::config::Config;
use crate::error::Error;
use crate::service::csv::MAX_IMPORT_BYTES;
use crate::web::error::error_page;
use crate::web::layout::page;
use crate::web::session::{CSRF_KEY, holds_sign_in, sign_in_required};

pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The nonce cookie over plain http (development, tests on loopback):
/// browsers only accept `__Host-` cookies marked Secure.
const NONCE_COOKIE: &str = "idm_csrf";
/// The nonce cookie over https: host-only, path `/`, Secure, enforced by
/// the browser.
const NONCE_COOKIE_HTTPS: &str = "__Host-idm_csrf";
/// Random bytes in a nonce.
const NONCE_BYTES: usize = 32;
/// Separates the key for form tokens from every other use of the token
/// secret (the staff tokens sign with the secret itself).
const FORM_KEY_LABEL: &[u8] = b"idm console: signed-out form tokens v1";

/// Forms for visitors who are not signed in: they accept the signed
/// double-submit token, and without a signed-in session to lose, a stale
/// token there is refused like any other.
const SIGNED_OUT_FORMS: [&str; 6] = [
    "/login",
    "/login/code",
    "/init",
    "/iforgot",
    "/reset",
    "/welcome",
];

/// Forms that upload a file, and may be larger than other forms.
const UPLOAD_FORMS: [&str; 1] = [crate::web::subjects::IMPORT_PATH];

/// What a refused form is told: nothing about headers or tokens, only
/// what to do.
const REFUSED: &str = "This form could not be sent safely. Reload the page and try again.";

type HmacSha256 = Hmac<Sha256>;

/// The key that signs the nonces of signed-out forms, derived from the
/// token secret so every instance of a deployment agrees on it.
pub struct FormKey(SecretString);

impl FormKey {
    pub fn derive(token_secret: &SecretString) -> Self {
        let key = sign(token_secret.expose_secret().as_bytes(), FORM_KEY_LABEL);
        Self(SecretString::from(key))
    }

    /// The form token that goes with `nonce`.
    fn token(&self, nonce: &str) -> String {
        sign(self.0.expose_secret().as_bytes(), nonce.as_bytes())
    }
}

#[allow(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; new_from_slice cannot fail for it"
)]
fn sign(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(***)")
    }
}

/// The token for the forms of a visitor who is not signed in; the
/// middleware puts it into every page request.
#[derive(Clone)]
pub struct SignedOutToken(pub String);

fn nonce_cookie_name(config: &Config) -> &'static str {
    if config.serves_https() {
        NONCE_COOKIE_HTTPS
    } else {
        NONCE_COOKIE
    }
}

/// The nonce the browser sent, if it looks like one of ours.
fn nonce_from_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .filter(|nonce| {
            nonce.len() == 2 * NONCE_BYTES && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// A browser-session cookie (no Max-Age): it lives as long as the tab
/// could still show a form signed with it.
fn nonce_cookie(config: &Config, nonce: String) -> Cookie<'static> {
    Cookie::build((nonce_cookie_name(config), nonce))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(config.serves_https())
        .build()
}

pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = &state.config;
    let sent_nonce = nonce_from_cookie(request.headers(), nonce_cookie_name(config));
    let new_nonce = sent_nonce
        .is_none()
        .then(|| random_hex(state.services.deps.random.as_ref(), NONCE_BYTES));
    let nonce = sent_nonce
        .as_deref()
        .or(new_nonce.as_deref())
        .unwrap_or_default();
    let signed_out = SignedOutToken(state.form_key.token(nonce));

    let mut response = if request.method().is_safe() {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(signed_out);
        next.run(Request::from_parts(parts, body)).await
    } else {
        // A post without the cookie cannot match a signed-out token.
        let cookie_sent = sent_nonce.is_some();
        check_post(&state, request, next, signed_out, cookie_sent).await
    };
    if let Some(nonce) = new_nonce
        && let Ok(value) = HeaderValue::from_str(&nonce_cookie(config, nonce).to_string())
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn check_post(
    state: &AppState,
    request: Request,
    next: Next,
    signed_out: SignedOutToken,
    cookie_sent: bool,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let htmx = parts.headers.contains_key("hx-request");
    if let Err(why) = check_origin(&parts.headers, state.config.public_url()) {
        return refuse(why, htmx);
    }
    let limit = if UPLOAD_FORMS.contains(&parts.uri.path()) {
        MAX_IMPORT_BYTES
    } else {
        MAX_BODY_BYTES
    };
    let Ok(bytes) = to_bytes(body, limit).await else {
        return error_page(
            &Error::PayloadTooLarge("The form is too large to be sent.".into()),
            None,
        );
    };
    let session = parts.extensions.get::<Session>();
    let session_token = match session {
        Some(session) => session.get::<String>(CSRF_KEY).await.ok().flatten(),
        None => None,
    };
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_token(&parts.headers, &bytes));
    let sent = match sent {
        Some(sent) => Some(sent),
        None => multipart_token(&parts.headers, &bytes).await,
    };
    let matches = |expected: &str| {
        sent.as_deref()
            .is_some_and(|sent| bool::from(expected.as_bytes().ct_eq(sent.as_bytes())))
    };
    let signed_out_form = SIGNED_OUT_FORMS.contains(&parts.uri.path());
    let valid = session_token.as_deref().is_some_and(matches)
        || (signed_out_form && cookie_sent && matches(&signed_out.0));
    if !valid {
        let signed_in = match session {
            Some(session) => holds_sign_in(session).await,
            None => false,
        };
        if !signed_in && !signed_out_form {
            tracing::info!("a console form was sent after its session ended");
            return sign_in_required(&parts, state).into_response();
        }
        return refuse("missing or wrong CSRF token", htmx);
    }
    parts.extensions.insert(signed_out);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The refusal as a page, or for htmx as the content of `main`.
fn refuse(why: &str, htmx: bool) -> Response {
    tracing::warn!(reason = why, "refused a state-changing page request");
    let title = "Form not sent";
    let content = refusal(title);
    if !htmx {
        return (StatusCode::FORBIDDEN, page(title, None, true, content)).into_response();
    }
    let mut response = (StatusCode::FORBIDDEN, content).into_response();
    let headers = response.headers_mut();
    headers.insert("hx-retarget", HeaderValue::from_static("#main"));
    headers.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    response
}

fn refusal(title: &str) -> Markup {
    html! {
        h1 { (title) }
        div.card #form-refused {
            p role="alert" { (REFUSED) }
            p { a.button.secondary href="/login" { "Go to sign in" } }
        }
    }
}

/// The token in a `multipart/form-data` body (a file upload form), which
/// the form sends before the file.
async fn multipart_token(headers: &HeaderMap, body: &axum::body::Bytes) -> Option<String> {
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        return None;
    }
    // The token comes first: the start of the body is enough, and keeps
    // the parser within the limit of an ordinary form.
    let start = body.slice(..body.len().min(MAX_BODY_BYTES));
    let mut request = axum::http::Request::new(Body::from(start));
    request.headers_mut().extend(
        headers
            .iter()
            .filter(|(name, _)| *name == header::CONTENT_TYPE)
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    let mut multipart = axum::extract::Multipart::from_request(request, &())
        .await
        .ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(CSRF_FIELD) {
            return field.text().await.ok();
        }
    }
    None
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
        && !Url::parse(origin).is_ok_and(|origin| is_this_site(&origin, headers, public_url))
    {
        return Err("Origin is another site");
    }
    Ok(())
}

/// Whether `url`'s origin is this site: its public URL, or the Host the
/// browser connected to (a foreign page cannot make a browser send our
/// Host with its own Origin). An opaque origin (`null`) is no site.
fn is_this_site(url: &Url, headers: &HeaderMap, public_url: &str) -> bool {
    let origin = url.origin();
    if !matches!(url.scheme(), "http" | "https") || !origin.is_tuple() {
        return false;
    }
    let public = Url::parse(public_url).is_ok_and(|public| public.origin() == origin);
    let same_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| !host.is_empty())
        .is_some_and(|host| {
            Url::parse(&format!("{}://{host}/", url.scheme()))
                .is_ok_and(|connected| connected.origin() == origin)
        });
    public || same_host
}

/// The path and query of `url` if it is a page of this site.
pub fn own_page(url: &str, headers: &HeaderMap, public_url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    if !is_this_site(&url, headers, public_url) {
        return None;
    }
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
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
