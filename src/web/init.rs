//! `/init`: creates the first admin while none exists.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::api::extract::Anonymous;
use crate::app::AppState;
use crate::error::Error;
use crate::service::users::FirstAdmin;

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · C3-PRO IDM" }
            }
            body { main { h1 { (title) } (body) } }
        }
    }
}

fn ready_page() -> Markup {
    page(
        "System is ready",
        html! {
            p { "An administrator exists. Sign in to manage users." }
        },
    )
}

fn form(email: &str, error: Option<&str>) -> Markup {
    page(
        "Create the first administrator",
        html! {
            form method="post" action="/init" {
                @if let Some(error) = error { p role="alert" { (error) } }
                label for="email" { "Email" }
                input id="email" name="email" type="email" required value=(email) autocomplete="username";
                label for="password" { "Password" }
                input id="password" name="password" type="password" required autocomplete="new-password";
                label for="password2" { "Repeat password" }
                input id="password2" name="password2" type="password" required autocomplete="new-password";
                button type="submit" { "Create administrator" }
            }
        },
    )
}

pub async fn show(State(state): State<AppState>) -> Result<Markup, Error> {
    Ok(if state.services.users.is_initialized().await? {
        ready_page()
    } else {
        form("", None)
    })
}

#[derive(Deserialize)]
pub struct InitForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Anonymous(ctx): Anonymous,
    Form(input): Form<InitForm>,
) -> Result<Response, Error> {
    if input.password != input.password2 {
        return Ok((
            StatusCode::BAD_REQUEST,
            form(&input.email, Some("The passwords do not match.")),
        )
            .into_response());
    }
    match state
        .services
        .users
        .create_first_admin(&ctx, &input.email, input.password)
        .await
    {
        Ok(FirstAdmin::Created(user)) => Ok(page("Administrator created", html! {
            p { "The administrator " strong { (user.username) } " was created. You can now sign in." }
        })
        .into_response()),
        Ok(FirstAdmin::AlreadyInitialized) => Ok((StatusCode::CONFLICT, ready_page()).into_response()),
        Err(Error::BadRequest(msg) | Error::Conflict(msg)) => {
            Ok((StatusCode::BAD_REQUEST, form(&input.email, Some(&msg))).into_response())
        }
        Err(other) => Err(other),
    }
}
