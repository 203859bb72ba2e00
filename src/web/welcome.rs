//! `/welcome`: an invited person chooses their password. Built like
//! `/reset` (see `web::recovery`): `GET /welcome?k=KEY`, the emailed link,
//! checks the key and moves it into a cookie that only `/welcome`
//! receives (see `web::link_key`), so the key never stays in the address
//! bar, the history or a `Referer`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::Username;
use crate::error::Error;
use crate::web::error::{WebError, sentence};
use crate::web::layout::{self, Field, Section, csrf_field};
use crate::web::link_key::{LinkKey, without_referrer};
use crate::web::messages::FieldMessages;
use crate::web::session::Visitor;

/// The cookie that carries the key from the emailed link to the form.
pub const WELCOME_COOKIE: &str = "idm_welcome";
const WELCOME_PATH: &str = "/welcome";
/// Where the key waits between the emailed link and the form.
const WELCOME_KEY: LinkKey = LinkKey::new(WELCOME_COOKIE, WELCOME_PATH);
const TITLE: &str = "Welcome: choose your password";
const NO_KEY: &str = "To choose your password, open the link from your invitation email";

fn page(visitor: &Visitor, title: &str, card: Markup) -> Markup {
    layout::page(
        title,
        Some(&visitor.chrome(Section::Other)),
        true,
        html! {
            h1 { (title) }
            div.card { (card) }
        },
    )
}

fn welcome_form(
    csrf: &str,
    key: &str,
    username: &Username,
    rules: &str,
    errors: &FieldMessages,
) -> Markup {
    html! {
        p { "Your account " strong { (username.as_str()) } " is ready. Choose the password you will sign in with." }
        form #welcome-form method="post" action=(WELCOME_PATH) novalidate {
            (csrf_field(csrf))
            input type="hidden" name="k" value=(key);
            input type="hidden" name="username" value=(username.as_str()) autocomplete="username";
            (Field::new("password", "Password", "password")
                .autocomplete("new-password")
                .error(errors.get("password"))
                .hint(rules)
                .autofocus(true)
                .render("welcome"))
            (Field::new("password2", "Repeat the password", "password")
                .autocomplete("new-password")
                .error(errors.get("password2"))
                .render("welcome"))
            div.actions { button type="submit" { "Set password" } }
        }
    }
}

fn invalid(message: &str) -> Markup {
    html! {
        p role="alert" { (sentence(message)) }
        p { "Ask your administrator to send you a new invitation." }
    }
}

fn invalid_key_page(state: &AppState, visitor: &Visitor, message: &str) -> Response {
    let body = page(visitor, "This link does not work", invalid(message));
    WELCOME_KEY.refuse(state, body)
}

#[derive(Deserialize)]
pub struct WelcomeQuery {
    k: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(query): Query<WelcomeQuery>,
) -> Result<Response, WebError> {
    let accounts = &state.services.accounts;
    if let Some(key) = query.k {
        let response = match accounts.check_invitation(&key).await {
            Ok(valid) => WELCOME_KEY.move_to_cookie(&state, &key, valid.expires),
            Err(Error::Gone(msg)) => invalid_key_page(&state, &visitor, &msg),
            Err(other) => return Err(visitor.fail(other)),
        };
        return Ok(without_referrer(response));
    }
    let Some(key) = WELCOME_KEY.read(&headers) else {
        return Ok(invalid_key_page(&state, &visitor, NO_KEY));
    };
    match accounts.check_invitation(&key).await {
        Ok(valid) => Ok(page(
            &visitor,
            TITLE,
            welcome_form(
                &visitor.csrf,
                &key,
                &valid.username,
                &state.services.users.policy().description(),
                &FieldMessages::default(),
            ),
        )
        .into_response()),
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&state, &visitor, &msg)),
        Err(other) => Err(visitor.fail(other)),
    }
}

#[derive(Deserialize)]
pub struct WelcomeInput {
    #[serde(default)]
    k: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<WelcomeInput>,
) -> Result<Response, WebError> {
    let accounts = &state.services.accounts;
    let valid = match accounts
        .check_submitted_invitation(&visitor.ctx, &input.k)
        .await
    {
        Ok(valid) => valid,
        Err(Error::Gone(msg)) => return Ok(invalid_key_page(&state, &visitor, &msg)),
        Err(other) => return Err(visitor.fail(other)),
    };
    let policy = state.services.users.policy();
    let form_with = |errors: &FieldMessages| {
        let form = welcome_form(
            &visitor.csrf,
            &input.k,
            &valid.username,
            &policy.description(),
            errors,
        );
        (StatusCode::BAD_REQUEST, page(&visitor, TITLE, form)).into_response()
    };
    if input.password != input.password2 {
        let mut errors = policy
            .check(input.password.clone(), &valid.username)
            .err()
            .and_then(|e| FieldMessages::of(&e))
            .unwrap_or_default();
        errors.insert("password2", "The passwords do not match.");
        return Ok(form_with(&errors));
    }
    match accounts
        .accept_invitation(&visitor.ctx, &input.k, input.password)
        .await
    {
        Ok(()) => {
            let body = page(
                &visitor,
                "Your password is set",
                html! {
                    div.flash.flash-ok role="status" tabindex="-1" { "Your account is active." }
                    div.actions { a.button href="/login" { "Sign in" } }
                },
            );
            Ok(WELCOME_KEY.forget(&state, body.into_response()))
        }
        Err(error @ Error::Invalid(_)) => {
            Ok(form_with(&FieldMessages::of_or_at(&error, "password")))
        }
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&state, &visitor, &msg)),
        Err(other) => Err(visitor.fail(other)),
    }
}
