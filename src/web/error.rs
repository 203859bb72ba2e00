//! Errors of page routes: an HTML page with the right status, never the
//! JSON envelope. For htmx requests the page replaces the whole body, so an
//! unexpected failure in a small swap is not hidden in a corner.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::error::Error;
use crate::http::error_log::log_internal;
use crate::web::layout::{Chrome, page};

pub enum WebError {
    /// An error page, with the visitor's header when known.
    Page {
        error: Error,
        chrome: Option<Chrome>,
    },
    /// Not signed in (or the session ended): off to the login page, then
    /// back to `next`.
    SignIn {
        next: Option<String>,
        htmx: bool,
        reason: SignInReason,
    },
    /// Somewhere else first (an account that must set up its second
    /// factor is sent to its account page).
    Redirect { to: String, htmx: bool },
}

/// Why a visitor is sent to the login page, which tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInReason {
    /// A page was opened without a session (a bookmark, a typed URL, or a
    /// link after the session ended): nothing to explain.
    NotSignedIn,
    /// The session ended while the visitor worked on a page (an htmx
    /// request from a console page).
    SessionEnded,
    /// The session ended while a form was being sent: what was typed never
    /// reached a handler.
    SessionEndedWithForm,
}

impl SignInReason {
    /// The `ended` query parameter of the login page.
    fn query_value(self) -> Option<&'static str> {
        match self {
            SignInReason::NotSignedIn => None,
            SignInReason::SessionEnded => Some("1"),
            SignInReason::SessionEndedWithForm => Some("form"),
        }
    }

    /// Read back from the login page's `ended` parameter.
    pub fn from_query(ended: Option<&str>) -> Self {
        match ended {
            None => SignInReason::NotSignedIn,
            Some("form") => SignInReason::SessionEndedWithForm,
            Some(_) => SignInReason::SessionEnded,
        }
    }
}

impl From<Error> for WebError {
    fn from(error: Error) -> Self {
        WebError::Page {
            error,
            chrome: None,
        }
    }
}

impl WebError {
    pub fn with_chrome(error: Error, chrome: &Chrome) -> Self {
        WebError::Page {
            error,
            chrome: Some(chrome.clone()),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Error::internal(err).into()
    }
}

/// `/login`, with the page to come back to and why the visitor is there.
pub fn login_url(next: Option<&str>, reason: SignInReason) -> String {
    let mut query = Vec::new();
    if let Some(next) = next {
        query.push(("next", next));
    }
    if let Some(ended) = reason.query_value() {
        query.push(("ended", ended));
    }
    if query.is_empty() {
        return "/login".to_owned();
    }
    format!(
        "/login?{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    )
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Redirect { to, htmx } => redirect(&to, htmx),
            WebError::SignIn { next, htmx, reason } => {
                redirect(&login_url(next.as_deref(), reason), htmx)
            }
            WebError::Page { error, chrome } => error_page(&error, chrome.as_ref()),
        }
    }
}

/// A redirect to `target`; for htmx a full page load.
pub fn redirect(target: &str, htmx: bool) -> Response {
    if !htmx {
        return Redirect::to(target).into_response();
    }
    // htmx follows this with a full page load instead of swapping the
    // target page into a fragment. No 4xx: the browser would log an error
    // for a planned redirect.
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(target) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

/// A service message as a sentence for a page: the JSON API's messages
/// ("password must be at least 8 characters") start in lower case and end
/// without a full stop.
pub fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// What a throttled person reads: a wait in minutes or hours, not the
/// exact number of seconds the API's `Retry-After` gives.
pub fn too_many_attempts(retry_after_secs: u64) -> String {
    let minutes = retry_after_secs.div_ceil(60).max(1);
    let wait = match minutes {
        1 => "a minute".to_owned(),
        2..=90 => format!("{minutes} minutes"),
        // Beyond an hour and a half, to the nearest hour (at least 2).
        _ => format!("about {} hours", (minutes + 30) / 60),
    };
    format!("Too many attempts. Try again in {wait}.")
}

pub fn error_page(error: &Error, chrome: Option<&Chrome>) -> Response {
    let status = error.status();
    let message = match error {
        Error::Internal(_) => log_internal(error),
        Error::TooManyRequests { retry_after_secs } => too_many_attempts(*retry_after_secs),
        other => other.public_message(),
    };
    let title = match status {
        StatusCode::FORBIDDEN => "Access denied",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "Request refused",
    };
    let signed_in = chrome.is_some_and(|c| c.user.is_some());
    let body = page(
        title,
        chrome,
        true,
        html! {
            h1 { (title) }
            div.card {
                p { (message) }
                p {
                    @if signed_in {
                        a.button.secondary href="/home" { "Back to the start page" }
                    } @else {
                        a.button.secondary href="/login" { "Go to sign in" }
                    }
                }
            }
        },
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("hx-retarget", HeaderValue::from_static("body"));
    headers.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    if let Error::TooManyRequests { retry_after_secs } = error {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_waits_read_as_minutes_or_hours() {
        assert_eq!(
            too_many_attempts(0),
            "Too many attempts. Try again in a minute."
        );
        assert_eq!(
            too_many_attempts(59),
            "Too many attempts. Try again in a minute."
        );
        assert_eq!(
            too_many_attempts(61),
            "Too many attempts. Try again in 2 minutes."
        );
        assert_eq!(
            too_many_attempts(291),
            "Too many attempts. Try again in 5 minutes."
        );
        assert_eq!(
            too_many_attempts(3600),
            "Too many attempts. Try again in 60 minutes."
        );
        assert_eq!(
            too_many_attempts(5500),
            "Too many attempts. Try again in about 2 hours."
        );
        assert_eq!(
            too_many_attempts(5400),
            "Too many attempts. Try again in 90 minutes."
        );
    }

    #[test]
    fn api_messages_become_sentences() {
        assert_eq!(
            sentence("password must be at least 8 characters"),
            "Password must be at least 8 characters."
        );
        assert_eq!(
            sentence("The passwords do not match."),
            "The passwords do not match."
        );
        assert_eq!(sentence("  "), "");
    }
}
