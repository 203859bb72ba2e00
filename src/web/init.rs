//! `/init`: creates the first admin while none exists. The rule (exactly
//! one first admin, even under concurrent posts) is the service's.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::service::users::FirstAdmin;
use crate::web::error::WebError;
use crate::web::layout::{Field, Section, csrf_field, form_problems, page};
use crate::web::messages::FieldMessages;
use crate::web::session::Visitor;

fn init_form(csrf: &str, email: &str, errors: &FieldMessages) -> Markup {
    html! {
        form #init-form method="post" action="/init"
            hx-post="/init" hx-target="this" hx-swap="outerHTML" novalidate {
            (csrf_field(csrf))
            (form_problems(&errors.others(&["username", "password", "password2"])))
            (Field::new("email", "Email", "email")
                .value(email)
                .autocomplete("username")
                .error(errors.get("username"))
                .autofocus(true)
                .render("init"))
            (Field::new("password", "Password", "password")
                .autocomplete("new-password")
                .error(errors.get("password"))
                .hint("At least 8 characters; a long phrase is best. Common passwords are refused.")
                .render("init"))
            (Field::new("password2", "Repeat password", "password")
                .autocomplete("new-password")
                .error(errors.get("password2"))
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
        init_form(&visitor.csrf, "", &FieldMessages::default())
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
    // The repeated password is the page's own field; the service checks
    // the others and reports each problem by its field.
    let (status, errors) = if input.password != input.password2 {
        let mut errors = match users.check_new_user(&input.email, &input.password) {
            Ok(()) => FieldMessages::default(),
            Err(error) => FieldMessages::of_or_at(&error, "username"),
        };
        errors.insert("password2", "The passwords do not match.");
        (StatusCode::BAD_REQUEST, errors)
    } else {
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
            Err(error @ Error::Conflict(_)) => (
                StatusCode::CONFLICT,
                FieldMessages::of_or_at(&error, "username"),
            ),
            Err(error @ Error::Invalid(_)) => (
                StatusCode::BAD_REQUEST,
                FieldMessages::of_or_at(&error, "username"),
            ),
            Err(other) => return Err(visitor.fail(other)),
        }
    };
    Ok(respond(
        &visitor,
        status,
        init_form(&visitor.csrf, &input.email, &errors),
    ))
}
