//! `/login` and `/logout`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::service::CurrentUser;
use crate::service::auth::{BAD_LOGIN, FirstStep};
use crate::web::error::{SignInReason, WebError, redirect, too_many_attempts};
use crate::web::layout::{Chrome, Field, Flash, Section, csrf_field, flash, page};
use crate::web::login_code::CODE_PAGE;
use crate::web::session::{ACCOUNT_PAGE, Visitor};

/// `next` only ever leads to a page of this site: an absolute path, not
/// `//host` or `/\host` (which browsers treat as another site), no control
/// characters.
pub fn local_path(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

/// Where a user goes after signing in when no (valid) `next` was given:
/// an account that must set up a second factor to its account page first.
pub fn landing(user: &CurrentUser) -> &'static str {
    if user.must_enrol {
        ACCOUNT_PAGE
    } else if user.admin {
        "/users"
    } else {
        "/home"
    }
}

/// Where a sign-in leads: `next`, unless the account must first set up
/// its second factor.
pub fn after_sign_in(user: &CurrentUser, next: Option<&str>) -> String {
    match next {
        Some(next) if !user.must_enrol => next.to_owned(),
        _ => landing(user).to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set when the visitor's session ended during work: `form` when a
    /// form was being sent (what was typed did not reach the server), any
    /// other value for a page or a search.
    ended: Option<String>,
    /// Set by the sign-out redirect: the page says so. A visitor who is
    /// not signed in has no session to hold a flash message.
    signed_out: Option<String>,
}

/// Where a sign-out leads.
const SIGNED_OUT_URL: &str = "/login?signed_out=1";

/// The sentence for a visitor whose session ended.
const SESSION_ENDED: &str = "Your session ended. Sign in again to continue.";

/// Said when a form was lost; static/app.js replaces it when it kept a
/// copy of what was typed in the browser tab.
const FORM_NOT_KEPT: &str = "What you typed into the form could not be kept: enter it again \
     after signing in.";

/// Why the visitor is here, when it is more than signing in. The
/// `data-session-ended` marker tells static/app.js that a kept copy of a
/// form may wait for this sign-in.
fn session_ended_notice(reason: SignInReason) -> Markup {
    html! {
        @if reason != SignInReason::NotSignedIn {
            div.flash.flash-error #session-ended role="alert" tabindex="-1" data-session-ended {
                (SESSION_ENDED)
                @if reason == SignInReason::SessionEndedWithForm {
                    " " span #unsaved-note { (FORM_NOT_KEPT) }
                }
            }
        }
    }
}

#[derive(Default)]
struct LoginForm<'a> {
    username: &'a str,
    next: Option<&'a str>,
    error: Option<&'a str>,
}

fn login_form(csrf: &str, form: &LoginForm<'_>) -> Markup {
    html! {
        form #login-form method="post" action="/login"
            hx-post="/login" hx-target="this" hx-swap="outerHTML" novalidate {
            (csrf_field(csrf))
            @if let Some(next) = form.next {
                input type="hidden" name="next" value=(next);
            }
            @if let Some(error) = form.error {
                div.flash.flash-error role="alert" id="login-error" { (error) }
            }
            (Field::new("username", "Email", "email")
                .value(form.username)
                .autocomplete("username")
                .autofocus(form.username.is_empty())
                .render("login"))
            (Field::new("password", "Password", "password")
                .autocomplete("current-password")
                .autofocus(!form.username.is_empty())
                .render("login"))
            div.actions {
                button type="submit" { "Sign in" }
                a href="/iforgot" { "Forgot your password?" }
            }
        }
    }
}

/// Sent here before anyone can sign in, a person learns where to start.
fn no_admin_yet() -> Markup {
    html! {
        div.card #no-admin {
            p { "No administrator exists yet, so nobody can sign in. Create the first administrator to set up C3-PRO IDM." }
            a.button href="/init" { "Create the first administrator" }
        }
    }
}

fn login_page(
    chrome: &Chrome,
    message: Option<&Flash>,
    reason: SignInReason,
    form: &LoginForm<'_>,
    setup_needed: bool,
) -> Markup {
    page(
        "Sign in",
        Some(chrome),
        true,
        html! {
            h1 { "Sign in" }
            (session_ended_notice(reason))
            (flash(message))
            @if setup_needed { (no_admin_yet()) }
            div.card { (login_form(&chrome.csrf, form)) }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let next = local_path(query.next.as_deref());
    if let Some(user) = visitor.user() {
        return Ok(Redirect::to(&after_sign_in(user, next)).into_response());
    }
    let message = query
        .signed_out
        .is_some()
        .then(|| Flash::ok("You have signed out."));
    let setup_needed = !state.services.users.is_initialized().await?;
    Ok(login_page(
        &visitor.chrome(Section::Other),
        message.as_ref(),
        SignInReason::from_query(query.ended.as_deref()),
        &LoginForm {
            next,
            ..LoginForm::default()
        },
        setup_needed,
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    mut visitor: Visitor,
    Form(input): Form<LoginInput>,
) -> Result<Response, WebError> {
    let next = local_path(input.next.as_deref());
    let result = state
        .services
        .auth
        .check_password(&visitor.ctx, Some(&input.username), Some(input.password))
        .await;
    let (status, error, retry_after) = match result {
        Ok(FirstStep::SecondFactor(pending)) => {
            visitor
                .await_code(&state, pending, next.map(str::to_owned))
                .await?;
            return Ok(redirect(CODE_PAGE, visitor.htmx));
        }
        Ok(FirstStep::SignedIn(user)) => {
            let target = after_sign_in(&user, next);
            visitor.sign_in(&state, user).await?;
            // For htmx a full page load, so the page picks up the new
            // CSRF token.
            return Ok(redirect(&target, visitor.htmx));
        }
        Err(Error::Unauthorized(_)) => (StatusCode::UNAUTHORIZED, BAD_LOGIN.to_owned(), None),
        Err(Error::TooManyRequests { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            too_many_attempts(retry_after_secs),
            Some(retry_after_secs),
        ),
        Err(other) => return Err(visitor.fail(other)),
    };
    let form = LoginForm {
        username: &input.username,
        next,
        error: Some(&error),
    };
    let body = if visitor.htmx {
        login_form(&visitor.csrf, &form)
    } else {
        let setup_needed = !state.services.users.is_initialized().await?;
        login_page(
            &visitor.chrome(Section::Other),
            None,
            SignInReason::NotSignedIn,
            &form,
            setup_needed,
        )
    };
    let mut response = (status, body).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(response)
}

/// A typed or bookmarked `/logout` asks first: GET never changes state.
pub async fn confirm_logout(visitor: Visitor) -> Result<Response, WebError> {
    if visitor.user().is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(page(
        "Sign out",
        Some(&visitor.chrome(Section::Other)),
        true,
        html! {
            h1 { "Sign out?" }
            div.card {
                form method="post" action="/logout" {
                    (csrf_field(&visitor.csrf))
                    div.actions {
                        button type="submit" { "Sign out" }
                        a.button.secondary href="/home" { "Stay signed in" }
                    }
                }
            }
        },
    )
    .into_response())
}

pub async fn logout(visitor: Visitor) -> Result<Response, WebError> {
    let was_signed_in = visitor.user().is_some();
    visitor.sign_out().await?;
    Ok(Redirect::to(if was_signed_in {
        SIGNED_OUT_URL
    } else {
        "/login"
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn next_only_allows_local_paths() {
        for good in ["/users", "/users?q=a%40b&page=2", "/"] {
            assert_eq!(local_path(Some(good)), Some(good));
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "/users\\..",
            "users",
            "",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?} accepted");
        }
    }
}
