//! `/iforgot` and `/reset`: plain forms that work without JavaScript, in
//! the console's layout and form components.
//!
//! The reset key arrives in the query of the emailed link, and must not
//! stay in the address bar: `GET /reset?k=KEY` moves it into a cookie that
//! only `/reset` receives (see `web::link_key`). The form there carries the
//! key on in a hidden field, so two reset pages open in two tabs each set
//! the password of the account they show.
//!
//! The form page itself keeps the site's `same-origin` Referrer-Policy:
//! under `no-referrer` browsers post its form with `Origin: null`, which
//! the CSRF check rightly refuses. The key is never in a log line either
//! (the request log records paths only).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::Username;
use crate::error::Error;
use crate::web::error::{WebError, sentence, too_many_attempts};
use crate::web::layout::{self, Field, Flash, Section, csrf_field, flash};
use crate::web::link_key::{LinkKey, without_referrer};
use crate::web::session::Visitor;

/// The cookie that carries the key from the emailed link to the form.
pub const RESET_COOKIE: &str = "idm_reset";
/// The only path the cookie is sent to.
const RESET_PATH: &str = "/reset";
/// Where the key waits between the emailed link and the form.
const RESET_KEY: LinkKey = LinkKey::new(RESET_COOKIE, RESET_PATH);

/// The shared layout around a page body: title, an optional line of
/// explanation, then the card.
fn page(visitor: &Visitor, title: &str, intro: Option<&str>, card: Markup) -> Markup {
    layout::page(
        title,
        Some(&visitor.chrome(Section::Other)),
        true,
        html! {
            h1 { (title) }
            @if let Some(intro) = intro { p.muted { (intro) } }
            div.card { (card) }
        },
    )
}

// ------------------------------------------------------------ /iforgot

const IFORGOT_TITLE: &str = "Forgot your password?";
const IFORGOT_INTRO: &str = "Enter the email address you sign in with. If it belongs to an \
     account, we send it a link to choose a new password.";

const NOT_AN_EMAIL: &str = "Enter the email address you sign in with, like name@example.org.";

/// The request form; keeps what was typed. A malformed address is shown
/// below the field, a refusal that is not about the field above the form.
fn iforgot_form(
    csrf: &str,
    username: &str,
    field_error: Option<&str>,
    alert: Option<&Flash>,
) -> Markup {
    html! {
        form #iforgot-form method="post" action="/iforgot" novalidate {
            (csrf_field(csrf))
            (flash(alert))
            (Field::new("username", "Email", "email")
                .value(username)
                .autocomplete("username")
                .error(field_error)
                .autofocus(true)
                .render("iforgot"))
            div.actions {
                button type="submit" { "Send reset link" }
                a href="/login" { "Back to sign in" }
            }
        }
    }
}

/// The one answer for every accepted request, known account or not.
fn iforgot_sent(lifetime: &str) -> Markup {
    html! {
        p { "If an account exists for this email address, a link to choose a new password is on its way. It works once and expires in " (lifetime) "." }
        p { "No email after a few minutes? Check your spam folder, or " a href="/iforgot" { "ask again" } "." }
    }
}

pub async fn iforgot_show(visitor: Visitor) -> Markup {
    page(
        &visitor,
        IFORGOT_TITLE,
        Some(IFORGOT_INTRO),
        iforgot_form(&visitor.csrf, "", None, None),
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
    let form = |field_error: Option<&str>, alert: Option<&Flash>| {
        page(
            &visitor,
            IFORGOT_TITLE,
            Some(IFORGOT_INTRO),
            iforgot_form(&visitor.csrf, &input.username, field_error, alert),
        )
    };
    match recovery.request_reset(&visitor.ctx, &input.username).await {
        Ok(()) => Ok(page(
            &visitor,
            "Check your email",
            None,
            iforgot_sent(&recovery.lifetime_text()),
        )
        .into_response()),
        // Only the address can be malformed (empty, too long, no email);
        // the service's wording speaks of a "username", the page of email.
        Err(Error::Invalid(_)) => {
            Ok((StatusCode::BAD_REQUEST, form(Some(NOT_AN_EMAIL), None)).into_response())
        }
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let alert = Flash::error(too_many_attempts(retry_after_secs));
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, form(None, Some(&alert))).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Ok(response)
        }
        Err(other) => Err(visitor.fail(other)),
    }
}

// ------------------------------------------------------------ /reset

const RESET_TITLE: &str = "Choose a new password";

#[derive(Default)]
struct ResetErrors {
    password: Option<String>,
    password2: Option<String>,
}

/// The new-password form, with the password rules shown before anyone
/// types. The key rides along in a hidden field.
fn reset_form(
    csrf: &str,
    key: &str,
    username: &Username,
    rules: &str,
    errors: &ResetErrors,
) -> Markup {
    html! {
        p { "This link sets the password of the account " strong { (username.as_str()) } "." }
        form #reset-form method="post" action=(RESET_PATH) novalidate {
            (csrf_field(csrf))
            input type="hidden" name="k" value=(key);
            // For password managers: whose password this is.
            input type="hidden" name="username" value=(username.as_str()) autocomplete="username";
            (Field::new("password", "New password", "password")
                .autocomplete("new-password")
                .error(errors.password.as_deref())
                .hint(rules)
                .autofocus(true)
                .render("reset"))
            (Field::new("password2", "Repeat the new password", "password")
                .autocomplete("new-password")
                .error(errors.password2.as_deref())
                .render("reset"))
            div.actions {
                button type="submit" { "Set new password" }
            }
        }
    }
}

/// For unknown, used, superseded and expired keys alike, and for a
/// `/reset` reached without one.
fn reset_invalid(message: &str) -> Markup {
    html! {
        p role="alert" { (sentence(message)) }
        p { "You can " a href="/iforgot" { "ask for a new link" } " to choose a new password." }
    }
}

fn reset_done() -> Markup {
    html! {
        div.flash.flash-ok role="status" tabindex="-1" { "Your password was changed." }
        p { "Every session and access token of your account has ended, and we sent you a confirmation email." }
        div.actions { a.button href="/login" { "Sign in with your new password" } }
    }
}

/// What a `/reset` reached without a key (a bookmark, a reload after the
/// cookie ended) is told.
const NO_KEY: &str = "To choose a new password, open the link from your password reset email";

/// An unusable key: says why, offers a new link, and drops the cookie.
fn invalid_key_page(state: &AppState, visitor: &Visitor, message: &str) -> Response {
    let body = page(
        visitor,
        "This link does not work",
        None,
        reset_invalid(message),
    );
    RESET_KEY.refuse(state, body)
}

#[derive(Deserialize)]
pub struct ResetQuery {
    k: Option<String>,
}

/// `GET /reset?k=KEY` (the emailed link) moves the key out of the URL;
/// `GET /reset` shows the form for the key in the cookie.
pub async fn reset_show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(query): Query<ResetQuery>,
) -> Result<Response, WebError> {
    let recovery = &state.services.recovery;
    if let Some(key) = query.k {
        let response = match recovery.check_key(&key).await {
            Ok(valid) => RESET_KEY.move_to_cookie(&state, &key, valid.expires),
            Err(Error::Gone(msg)) => invalid_key_page(&state, &visitor, &msg),
            Err(other) => return Err(visitor.fail(other)),
        };
        // This answer's URL holds the key.
        return Ok(without_referrer(response));
    }
    let Some(key) = RESET_KEY.read(&headers) else {
        return Ok(invalid_key_page(&state, &visitor, NO_KEY));
    };
    match recovery.check_key(&key).await {
        Ok(valid) => Ok(page(
            &visitor,
            RESET_TITLE,
            None,
            reset_form(
                &visitor.csrf,
                &key,
                &valid.username,
                &state.services.users.policy().description(),
                &ResetErrors::default(),
            ),
        )
        .into_response()),
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&state, &visitor, &msg)),
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
    let key = match recovery.check_submitted_key(&visitor.ctx, &input.k).await {
        Ok(key) => key,
        Err(Error::Gone(msg)) => return Ok(invalid_key_page(&state, &visitor, &msg)),
        Err(other) => return Err(visitor.fail(other)),
    };
    let policy = state.services.users.policy();
    let form_with = |errors: &ResetErrors| {
        let form = reset_form(
            &visitor.csrf,
            &input.k,
            &key.username,
            &policy.description(),
            errors,
        );
        (
            StatusCode::BAD_REQUEST,
            page(&visitor, RESET_TITLE, None, form),
        )
            .into_response()
    };
    // The repeated password is this page's own field. When it differs,
    // the policy's verdict on the first is shown beside it too.
    if input.password != input.password2 {
        let password = policy
            .check(input.password.clone(), &key.username)
            .err()
            .map(|e| sentence(&e.to_string()));
        return Ok(form_with(&ResetErrors {
            password,
            password2: Some("The passwords do not match.".to_owned()),
        }));
    }
    match recovery
        .complete_reset(&visitor.ctx, &input.k, input.password)
        .await
    {
        Ok(()) => {
            let body = page(&visitor, "Password changed", None, reset_done());
            Ok(RESET_KEY.forget(&state, body.into_response()))
        }
        Err(error @ Error::Invalid(_)) => Ok(form_with(&ResetErrors {
            password: Some(sentence(&error.to_string())),
            password2: None,
        })),
        Err(Error::Gone(msg)) => Ok(invalid_key_page(&state, &visitor, &msg)),
        Err(other) => Err(visitor.fail(other)),
    }
}
