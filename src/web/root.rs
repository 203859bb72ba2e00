//! `/`: a browser is sent to where it can start; every other client gets
//! the API's `{"status":"ready"}`, which `crate::app` passes in (the pages
//! do not import the API).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::web::error::WebError;
use crate::web::session::Visitor;

/// The answer for a client that is not a browser.
pub type OtherClients = fn() -> Response;

pub async fn show(
    State(state): State<AppState>,
    other_clients: OtherClients,
    request: Request,
) -> Result<Response, WebError> {
    let mut response = if accepts_html(request.headers()) {
        let (mut parts, _) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, &state).await?;
        let start = if visitor.user().is_some() {
            "/home"
        } else if state.services.users.is_initialized().await? {
            "/login"
        } else {
            "/init"
        };
        Redirect::to(start).into_response()
    } else {
        other_clients()
    };
    // The answer depends on Accept; caches must not mix the two.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

/// Whether `Accept` names `text/html` (as browsers do for a page), not
/// refused with `q=0`. `*/*` alone (curl, scripts) is not a browser.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut params = item.split(';');
            let media_type = params.next().unwrap_or("").trim();
            let refused = params.any(|param| {
                param
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media_type.eq_ignore_ascii_case("text/html") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_an_accept_naming_html_is_a_browser() {
        for browser in [
            &["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"][..],
            &["TEXT/HTML"],
            &["application/json", "text/html; q=0.5"],
        ] {
            assert!(accepts_html(&accept(browser)), "{browser:?}");
        }
        for client in [
            &[][..],
            &["*/*"],
            &["application/json"],
            &["text/*"],
            &["text/html;q=0, application/json"],
            &["text/html-fragment"],
        ] {
            assert!(!accepts_html(&accept(client)), "{client:?}");
        }
    }
}
