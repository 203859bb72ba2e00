//! The key of a mailed link (`/reset?k=`, `/welcome?k=`), moved out of
//! the address bar.
//!
//! A page whose URL holds the key keeps it in the history and, through
//! `Referer`, hands it to whatever the page loads or links to. So the
//! emailed link only checks the key, puts it in a short-lived HttpOnly
//! cookie that only the page's path receives, and redirects to the bare
//! path; that answer sends no Referer at all. The page then reads the key
//! from the cookie, and drops the cookie once the key is spent or useless.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::Markup;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::app::AppState;

/// Where one page's key lives between the mailed link and its form.
pub struct LinkKey {
    /// The cookie that carries the key from the emailed link to the form.
    cookie: &'static str,
    /// The page, and the only path the cookie is sent to.
    path: &'static str,
}

impl LinkKey {
    pub const fn new(cookie: &'static str, path: &'static str) -> Self {
        Self { cookie, path }
    }

    /// The answer to the emailed link with a usable `key`: a 303 to the
    /// bare path that leaves the key in the cookie.
    pub fn move_to_cookie(&self, state: &AppState, key: &str, expires: DateTime<Utc>) -> Response {
        let response = (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static(self.path))],
        )
            .into_response();
        with_cookie(response, &self.cookie(state, key, expires))
    }

    /// The key in the cookie, if the browser sent one.
    pub fn read(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == self.cookie)
            .map(|cookie| cookie.value().to_owned())
            .filter(|key| !key.is_empty())
    }

    /// Removes the cookie once the key is spent or useless.
    pub fn forget(&self, state: &AppState, response: Response) -> Response {
        let mut cookie = self.cookie(state, "", DateTime::<Utc>::MIN_UTC);
        cookie.make_removal();
        with_cookie(response, &cookie)
    }

    /// An unusable key: the page's `body` (why, and what to do instead) as
    /// a 400 that drops the cookie.
    pub fn refuse(&self, state: &AppState, body: Markup) -> Response {
        self.forget(state, (StatusCode::BAD_REQUEST, body).into_response())
    }

    /// The cookie holding `key` until the key expires: at least a minute,
    /// so it always survives the redirect (the key's expiry is checked
    /// anyway).
    fn cookie(&self, state: &AppState, key: &str, expires: DateTime<Utc>) -> Cookie<'static> {
        let remaining = (expires - state.services.deps.clock.now())
            .num_seconds()
            .max(60);
        Cookie::build((self.cookie, key.to_owned()))
            .path(self.path)
            .http_only(true)
            // Lax: sent on the top-level navigation from the mail (a site
            // of its own) through the redirect; never on another site's
            // posts.
            .same_site(SameSite::Lax)
            .secure(state.config.serves_https())
            .max_age(CookieDuration::seconds(remaining))
            .build()
    }
}

/// For the answers to a URL that holds the key: they must send no Referer
/// at all.
pub fn without_referrer(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn with_cookie(mut response: Response, cookie: &Cookie<'_>) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: LinkKey = LinkKey::new("idm_key", "/page");

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn the_key_is_found_among_other_cookies_in_any_cookie_header() {
        let sent = headers(&["idm_session=s; other=o", "idm_keyx=no; idm_key=abc"]);
        assert_eq!(KEY.read(&sent), Some("abc".to_owned()));
    }

    #[test]
    fn no_cookie_or_an_empty_one_is_no_key() {
        assert_eq!(KEY.read(&headers(&[])), None);
        assert_eq!(KEY.read(&headers(&["idm_session=s"])), None);
        assert_eq!(KEY.read(&headers(&["idm_key="])), None);
    }
}
