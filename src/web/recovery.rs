//! `/iforgot` and `/reset`: plain forms that work without JavaScript. The
//! page bodies are separate functions so the shared layout can wrap them.
//!
//! The reset key travels in the query of the emailed link and then in a
//! hidden form field, never in a log line (the request log records paths
//! only) and never in a Referer header (`Referrer-Policy: no-referrer`).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::web::error::WebError;
use crate::web::layout::{self, Section, csrf_field};
use crate::web::session::Visitor;

/// The shared layout around a page body.
fn page(visitor: &Visitor, title: &str, body: Markup) -> Markup {
    layout::page(
        title,
        Some(&visitor.chrome(Section::Other)),
        true,
        html! { h1 { (title) } div.card { (body) } },
    )
}

// ------------------------------------------------------------ /iforgot

/// The request form; keeps what was typed and shows an error beside it.
pub fn iforgot_form(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        p { "Enter the email address you sign in with. If it belongs to an account, we send a link to choose a new password." }
        form method="post" action="/iforgot" {
            (csrf_field(csrf))
            label for="username" { "Email" }
            input id="username" name="username" type="email" required autocomplete="username"
                value=(username)
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "username-error")];
            @if let Some(error) = error { p id="username-error" role="alert" { (error) } }
            button type="submit" { "Send reset link" }
        }
    }
}

/// The one answer for every accepted request, known account or not.
pub fn iforgot_sent(lifetime: &str) -> Markup {
    html! {
        p { "If an account exists for this email address, a link to reset its password is on its way. It works once and expires in " (lifetime) "." }
        p { "No mail after a few minutes? Check your spam folder, or " a href="/iforgot" { "ask again" } "." }
    }
}

pub async fn iforgot_show(visitor: Visitor) -> Markup {
    page(
        &visitor,
        "Forgot your password?",
        iforgot_form(&visitor.csrf, "", None),
    )
}

#[derive(Deserialize)]
pub struct IforgotInput {
    #[serde(default)]
    username: String,
}

pub async fn iforgot_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<IforgotInput>,
) -> Result<Response, WebError> {
    let recovery = &state.services.recovery;
    let title = "Forgot your password?";
    match recovery.request_reset(&visitor.ctx, &input.username).await {
        Ok(()) => Ok(page(
            &visitor,
            "Check your email",
            iforgot_sent(&recovery.lifetime_text()),
        )
        .into_response()),
        Err(Error::BadRequest(msg)) => Ok((
            StatusCode::BAD_REQUEST,
            page(
                &visitor,
                title,
                iforgot_form(&visitor.csrf, &input.username, Some(&msg)),
            ),
        )
            .into_response()),
        Err(err @ Error::TooManyRequests { retry_after_secs }) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                page(
                    &visitor,
                    title,
                    iforgot_form(&visitor.csrf, &input.username, Some(&err.public_message())),
                ),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Ok(response)
        }
        Err(other) => Err(visitor.fail(other)),
    }
}

// ------------------------------------------------------------ /reset

/// The new-password form. The key rides along in a hidden field.
pub fn reset_form(csrf: &str, key: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        p { "Choose a new password for " strong { (username) } "." }
        form method="post" action="/reset" {
            (csrf_field(csrf))
            input type="hidden" name="k" value=(key);
            input type="hidden" name="username" value=(username) autocomplete="username";
            label for="password" { "New password" }
            input id="password" name="password" type="password" required autocomplete="new-password"
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "password-error")];
            label for="password2" { "Repeat new password" }
            input id="password2" name="password2" type="password" required autocomplete="new-password";
            @if let Some(error) = error { p id="password-error" role="alert" { (error) } }
            button type="submit" { "Set new password" }
        }
    }
}

/// For unknown, used, superseded and expired keys alike.
pub fn reset_invalid(message: &str) -> Markup {
    html! {
        p role="alert" { (message) }
        p { a href="/iforgot" { "Request a new reset link" } }
    }
}

pub fn reset_done() -> Markup {
    html! {
        p { "Your password was changed. Every session and access token of your account has ended, and we sent you a confirmation email." }
        p { a href="/login" { "Sign in with your new password" } }
    }
}

/// Sends no Referer from the reset page, so the key in its URL cannot leak
/// to another site through a link or a loaded resource.
fn no_referrer(status: StatusCode, body: Markup) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn invalid_key_page(visitor: &Visitor, message: &str) -> Response {
    no_referrer(
        StatusCode::BAD_REQUEST,
        page(visitor, "Reset link not valid", reset_invalid(message)),
    )
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    k: String,
}

pub async fn reset_show(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<ResetQuery>,
) -> Result<Response, WebError> {
    match state.services.recovery.check_key(&query.k).await {
        Ok(key) => Ok(no_referrer(
            StatusCode::OK,
            page(
                &visitor,
                "Choose a new password",
                reset_form(&visitor.csrf, &query.k, key.username.as_str(), None),
            ),
        )),
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&visitor, &msg)),
        Err(other) => Err(visitor.fail(other)),
    }
}

#[derive(Deserialize)]
pub struct ResetInput {
    #[serde(default)]
    k: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<ResetInput>,
) -> Result<Response, WebError> {
    let recovery = &state.services.recovery;
    let title = "Choose a new password";
    let key = match recovery.check_key(&input.k).await {
        Ok(key) => key,
        Err(Error::Gone(msg)) => return Ok(invalid_key_page(&visitor, &msg)),
        Err(other) => return Err(visitor.fail(other)),
    };
    let form_error = |msg: &str| {
        no_referrer(
            StatusCode::BAD_REQUEST,
            page(
                &visitor,
                title,
                reset_form(&visitor.csrf, &input.k, key.username.as_str(), Some(msg)),
            ),
        )
    };
    if input.password != input.password2 {
        return Ok(form_error("The passwords do not match."));
    }
    match recovery
        .complete_reset(&visitor.ctx, &input.k, input.password)
        .await
    {
        Ok(()) => Ok(no_referrer(
            StatusCode::OK,
            page(&visitor, "Password changed", reset_done()),
        )),
        Err(Error::BadRequest(msg)) => Ok(form_error(&msg)),
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&visitor, &msg)),
        Err(other) => Err(visitor.fail(other)),
    }
}
