//! `/login/code`: the second step of signing in to an account with
//! two-factor sign-in. The session holds the account whose password was
//! right, for a few minutes, and is not signed in before a code from the
//! authenticator app (or a recovery code) is right too.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::service::auth::BAD_LOGIN;
use crate::web::error::{WebError, redirect, too_many_attempts};
use crate::web::layout::{Field, Section, csrf_field, page};
use crate::web::login::after_sign_in;
use crate::web::session::Visitor;

pub const CODE_PAGE: &str = "/login/code";

/// What a wrong code is told: as little as a wrong password.
const WRONG_CODE: &str = "Wrong code. Enter the 6 digits your app shows now, or a recovery code.";

fn code_form(csrf: &str, error: Option<&str>) -> Markup {
    html! {
        form #code-form method="post" action=(CODE_PAGE) novalidate {
            (csrf_field(csrf))
            @if let Some(error) = error {
                div.flash.flash-error role="alert" id="code-error" { (error) }
            }
            (Field::new("code", "Code", "text")
                .autocomplete("one-time-code")
                .hint("The 6-digit code of your authenticator app. Without your phone, one of your recovery codes works once.")
                .autofocus(true)
                .render("login"))
            div.actions {
                button type="submit" { "Verify" }
                a href="/login" { "Start again" }
            }
        }
    }
}

fn code_page(visitor: &Visitor, error: Option<&str>) -> Markup {
    page(
        "Two-factor sign-in",
        Some(&visitor.chrome(Section::Other)),
        true,
        html! {
            h1 { "Two-factor sign-in" }
            p.muted { "Your password was right. One more step: the code from your authenticator app." }
            div.card { (code_form(&visitor.csrf, error)) }
        },
    )
}

pub async fn show(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    if visitor.awaiting_code(&state).await?.is_none() {
        return Ok(redirect("/login", false));
    }
    Ok(code_page(&visitor, None).into_response())
}

#[derive(Deserialize)]
pub struct CodeInput {
    #[serde(default)]
    code: String,
}

pub async fn submit(
    State(state): State<AppState>,
    mut visitor: Visitor,
    Form(input): Form<CodeInput>,
) -> Result<Response, WebError> {
    let Some((pending, next)) = visitor.awaiting_code(&state).await? else {
        return Ok(redirect("/login", visitor.htmx));
    };
    match state
        .services
        .auth
        .check_second_factor(&visitor.ctx, &pending, &input.code)
        .await
    {
        Ok(user) => {
            let target = after_sign_in(&user, next.as_deref());
            visitor.sign_in(&state, user).await?;
            Ok(redirect(&target, visitor.htmx))
        }
        Err(Error::Unauthorized(message)) => {
            let message = if message == BAD_LOGIN {
                WRONG_CODE
            } else {
                message.as_str()
            };
            Ok((StatusCode::UNAUTHORIZED, code_page(&visitor, Some(message))).into_response())
        }
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                code_page(&visitor, Some(&too_many_attempts(retry_after_secs))),
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
