//! `/init`: creates the first admin while none exists. The rule (exactly
//! one first admin, even under concurrent posts) is the service's.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::Username;
use crate::error::Error;
use crate::service::users::FirstAdmin;
use crate::web::error::WebError;
use crate::web::layout::{Field, Section, csrf_field, page};
use crate::web::messages::sentence;
use crate::web::session::Visitor;

#[derive(Default)]
struct InitErrors {
    email: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

fn init_form(csrf: &str, email: &str, errors: &InitErrors) -> Markup {
    html! {
        form #init-form method="post" action="/init"
            hx-post="/init" hx-target="this" hx-swap="outerHTML" novalidate {
            (csrf_field(csrf))
            (Field::new("email", "Email", "email")
                .value(email)
                .autocomplete("username")
                .error(errors.email.as_deref())
                .autofocus(true)
                .render("init"))
            (Field::new("password", "Password", "password")
                .autocomplete("new-password")
                .error(errors.password.as_deref())
                .hint("At least 8 characters; a long phrase is best. Common passwords are refused.")
                .render("init"))
            (Field::new("password2", "Repeat password", "password")
                .autocomplete("new-password")
                .error(errors.password2.as_deref())
                .render("init"))
            button type="submit" { "Create administrator" }
        }
    }
}

fn ready() -> Markup {
    html! {
        div.card #init-done {
            p { "An administrator exists, so this page creates no one. Sign in to manage users." }
            a.button href="/login" { "Go to sign in" }
        }
    }
}

fn created(username: &str) -> Markup {
    html! {
        div.card #init-done {
            div.flash.flash-ok role="status" tabindex="-1" {
                "The administrator " strong { (username) } " was created."
            }
            a.button href="/login" { "Sign in" }
        }
    }
}

fn init_page(visitor: &Visitor, content: Markup) -> Markup {
    page(
        "Set up C3-PRO IDM",
        Some(&visitor.chrome(Section::Other)),
        true,
        html! {
            h1 { "Set up C3-PRO IDM" }
            p.muted { "Create the first administrator. Further users are added from the user list." }
            (content)
        },
    )
}

/// A full page, or only `content` for htmx.
fn respond(visitor: &Visitor, status: StatusCode, content: Markup) -> Response {
    if visitor.htmx {
        (status, content).into_response()
    } else {
        (status, init_page(visitor, content)).into_response()
    }
}

pub async fn show(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let content = if state.services.users.is_initialized().await? {
        ready()
    } else {
        init_form(&visitor.csrf, "", &InitErrors::default())
    };
    Ok((StatusCode::OK, init_page(&visitor, content)).into_response())
}

#[derive(Deserialize)]
pub struct InitInput {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<InitInput>,
) -> Result<Response, WebError> {
    let users = &state.services.users;
    if users.is_initialized().await? {
        return Ok(respond(&visitor, StatusCode::CONFLICT, ready()));
    }
    // Checked here too so each message lands next to its field; the
    // service checks again and stays the authority.
    let mut errors = InitErrors::default();
    let mut status = StatusCode::BAD_REQUEST;
    match Username::parse(&input.email) {
        Err(e) => errors.email = Some(sentence(&e)),
        Ok(username) => {
            if let Err(e) = users.policy().check(input.password.clone(), &username) {
                errors.password = Some(sentence(&e));
            }
        }
    }
    if input.password != input.password2 {
        errors.password2 = Some("The passwords do not match.".into());
    }
    if errors.email.is_none() && errors.password.is_none() && errors.password2.is_none() {
        match users
            .create_first_admin(&visitor.ctx, &input.email, input.password)
            .await
        {
            Ok(FirstAdmin::Created(user)) => {
                return Ok(respond(
                    &visitor,
                    StatusCode::CREATED,
                    created(&user.username),
                ));
            }
            Ok(FirstAdmin::AlreadyInitialized) => {
                return Ok(respond(&visitor, StatusCode::CONFLICT, ready()));
            }
            Err(error @ Error::Conflict(_)) => {
                status = StatusCode::CONFLICT;
                errors.email = Some(sentence(&error));
            }
            Err(error @ Error::BadRequest(_)) => errors.password = Some(sentence(&error)),
            Err(other) => return Err(visitor.fail(other)),
        }
    }
    Ok(respond(
        &visitor,
        status,
        init_form(&visitor.csrf, &input.email, &errors),
    ))
}
