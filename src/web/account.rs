//! `/account`: every signed-in person's own account. Change the password
//! (needs the current one; ends the other sessions and all tokens), set
//! up or remove two-factor sign-in, see the own browser sessions and sign
//! out everywhere else. An account that must set up a second factor
//! reaches only this page until it has.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::service::accounts::{EnrolmentView, SessionView};
use crate::service::users::UserView;
use crate::web::error::{WebError, redirect};
use crate::web::invitations::qr_image;
use crate::web::layout::{Field, Flash, Section, csrf_field, flash, form_problems, page};
use crate::web::messages::{FieldMessages, sentence};
use crate::web::session::{ACCOUNT_PAGE, SignedIn, Visitor};
use crate::web::subjects::moment;
use crate::web::users::{role_badge, state_badge};

/// What the page shows besides the account: a message, a form's errors.
#[derive(Default)]
struct Shown {
    message: Option<Flash>,
    password_errors: FieldMessages,
    mfa_errors: FieldMessages,
}

/// The signed-in account's username: every action of this page is on
/// the visitor's own account.
fn own_username(visitor: &Visitor) -> Result<String, Error> {
    Ok(visitor.ctx.require_staff()?.username.to_string())
}

async fn load(
    state: &AppState,
    visitor: &Visitor,
) -> Result<(UserView, Vec<SessionView>, u64), Error> {
    let me = own_username(visitor)?;
    let accounts = &state.services.accounts;
    let user = state.services.users.get(&visitor.ctx, &me).await?;
    let current = visitor.stored_session_id();
    let sessions = accounts
        .sessions(&visitor.ctx, &me, current.as_deref())
        .await?;
    let codes = accounts.recovery_codes_left(&visitor.ctx, &me).await?;
    Ok((user, sessions, codes))
}

fn password_card(visitor: &Visitor, errors: &FieldMessages, rules: &str) -> Markup {
    html! {
        section.card aria-labelledby="password-heading" {
            h2 #password-heading { "Change your password" }
            form #password-form method="post" action="/account/password" novalidate {
                (csrf_field(&visitor.csrf))
                (form_problems(&errors.others(&["current_password", "password", "password2"])))
                input type="hidden" name="username" autocomplete="username"
                    value=(visitor.user().map(|u| u.username.to_string()).unwrap_or_default());
                (Field::new("current_password", "Current password", "password")
                    .autocomplete("current-password")
                    .error(errors.get("current_password"))
                    .render("account"))
                (Field::new("password", "New password", "password")
                    .autocomplete("new-password")
                    .error(errors.get("password"))
                    .hint(rules)
                    .render("account"))
                (Field::new("password2", "Repeat the new password", "password")
                    .autocomplete("new-password")
                    .error(errors.get("password2"))
                    .render("account"))
                p.muted { "Changing it signs you out everywhere else and ends every access token of your account." }
                button type="submit" { "Change password" }
            }
        }
    }
}

fn mfa_card(visitor: &Visitor, user: &UserView, codes: u64, errors: &FieldMessages) -> Markup {
    let must = visitor.user().is_some_and(|u| u.must_enrol);
    html! {
        section.card #mfa aria-labelledby="mfa-heading" {
            h2 #mfa-heading { "Two-factor sign-in" }
            @if must {
                div.flash.flash-error role="alert" {
                    "Your organisation requires two-factor sign-in for your account. Set it up to continue."
                }
            }
            (form_problems(&errors.others(&["password"])))
            @if user.mfa {
                p { strong { "On." } " You sign in with your password and a code from your authenticator app. "
                    (codes) " recovery code" @if codes != 1 { "s" } " left." }
                form #mfa-remove method="post" action="/account/mfa/remove" novalidate {
                    (csrf_field(&visitor.csrf))
                    (Field::new("password", "Password", "password")
                        .autocomplete("current-password")
                        .error(errors.get("password"))
                        .render("mfa-remove"))
                    button.danger type="submit" { "Turn off two-factor sign-in" }
                }
            } @else {
                p { "Off. With it on, signing in needs a code from an authenticator app on your phone as well as your password." }
                form #mfa-start method="post" action="/account/mfa" novalidate {
                    (csrf_field(&visitor.csrf))
                    (Field::new("password", "Password", "password")
                        .autocomplete("current-password")
                        .error(errors.get("password"))
                        .hint("To set it up, confirm it is you.")
                        .render("mfa-start"))
                    button type="submit" { "Set up two-factor sign-in" }
                }
            }
        }
    }
}

fn sessions_card(visitor: &Visitor, sessions: &[SessionView]) -> Markup {
    html! {
        section.card aria-labelledby="sessions-heading" {
            h2 #sessions-heading { "Where you are signed in" }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Last seen" }
                        th scope="col" { "Address" } th scope="col" { "Browser" }
                    } }
                    tbody {
                        @for s in sessions {
                            tr {
                                td data-label="Started" {
                                    @if let Some(t) = s.started { (moment(t)) } @else { "—" }
                                    @if s.current { " " span.badge { "This session" } }
                                }
                                td data-label="Last seen" { (moment(s.last_seen)) }
                                td data-label="Address" { (s.client_ip.as_deref().unwrap_or("—")) }
                                td data-label="Browser" { span.small-text { (s.browser.as_deref().unwrap_or("—")) } }
                            }
                        }
                    }
                }
            }
            form method="post" action="/account/sessions/revoke" {
                (csrf_field(&visitor.csrf))
                p.muted { "Ends every other session and every access token of your account; this one stays." }
                button.secondary type="submit" { "Sign out everywhere else" }
            }
        }
    }
}

async fn respond(
    state: &AppState,
    visitor: &Visitor,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, WebError> {
    let (user, sessions, codes) = load(state, visitor).await.map_err(|e| visitor.fail(e))?;
    let rules = state.services.users.policy().description();
    let body = html! {
        div.title-row {
            h1 { "Your account" }
        }
        (flash(shown.message.as_ref()))
        section.card aria-labelledby="me-heading" {
            h2 #me-heading { (user.username) }
            p { (role_badge(user.role)) " " (state_badge(user.state)) }
        }
        (mfa_card(visitor, &user, codes, &shown.mfa_errors))
        (password_card(visitor, &shown.password_errors, &rules))
        (sessions_card(visitor, &sessions))
    };
    Ok((
        status,
        page(
            "Your account",
            Some(&visitor.chrome(Section::Account)),
            false,
            body,
        ),
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
) -> Result<Response, WebError> {
    let message = visitor.take_flash().await?;
    respond(
        &state,
        &visitor,
        StatusCode::OK,
        Shown {
            message,
            ..Shown::default()
        },
    )
    .await
}

/// Success: back to the page with a message (a reload repeats nothing).
async fn done(visitor: &Visitor, message: &str) -> Result<Response, WebError> {
    visitor.set_flash(Flash::ok(message)).await?;
    Ok(redirect(ACCOUNT_PAGE, false))
}

#[derive(Deserialize)]
pub struct PasswordInput {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    SignedIn(mut visitor): SignedIn,
    Form(input): Form<PasswordInput>,
) -> Result<Response, WebError> {
    let mut errors = FieldMessages::default();
    if input.password != input.password2 {
        errors.insert("password2", "The passwords do not match.");
    }
    let keep = visitor.stored_session_id();
    let result = if errors.is_empty() {
        state
            .services
            .accounts
            .change_password(
                &visitor.ctx,
                &input.current_password,
                input.password,
                keep.as_deref(),
            )
            .await
    } else {
        Err(Error::invalid("password2", "The passwords do not match."))
    };
    match result {
        Ok(user) => {
            visitor.renew(user).await?;
            done(&visitor, "Your password was changed. Every other session and every access token of your account has ended.").await
        }
        Err(error @ Error::Invalid(_)) => {
            let shown = Shown {
                password_errors: FieldMessages::of_or_at(&error, "current_password"),
                ..Shown::default()
            };
            respond(&state, &visitor, StatusCode::BAD_REQUEST, shown).await
        }
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let mut shown = Shown::default();
            shown.password_errors.insert(
                "current_password",
                crate::web::error::too_many_attempts(retry_after_secs),
            );
            respond(&state, &visitor, StatusCode::TOO_MANY_REQUESTS, shown).await
        }
        Err(other) => Err(visitor.fail(other)),
    }
}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    SignedIn(mut visitor): SignedIn,
) -> Result<Response, WebError> {
    let me = own_username(&visitor).map_err(|e| visitor.fail(e))?;
    let keep = visitor.stored_session_id();
    let user = state
        .services
        .accounts
        .revoke_sessions(&visitor.ctx, &me, keep.as_deref())
        .await
        .map_err(|e| visitor.fail(e))?;
    visitor.renew(user).await?;
    done(
        &visitor,
        "You are signed out everywhere else, and every access token of your account has ended.",
    )
    .await
}

#[derive(Deserialize)]
pub struct MfaInput {
    #[serde(default)]
    password: String,
}

/// An error of a two-factor form: next to its field, else as a message.
async fn mfa_failed(
    state: &AppState,
    visitor: &Visitor,
    error: Error,
) -> Result<Response, WebError> {
    match error {
        Error::Invalid(_) | Error::Conflict(_) | Error::TooManyRequests { .. } => {
            let status = error.status();
            let shown = Shown {
                mfa_errors: FieldMessages::of_or_at(&error, "mfa"),
                ..Shown::default()
            };
            respond(state, visitor, status, shown).await
        }
        other => Err(visitor.fail(other)),
    }
}

/// Starts the set-up: the QR code, the secret as text and the recovery
/// codes, shown on this answer only, with the form for the first code.
pub async fn start_mfa(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Form(input): Form<MfaInput>,
) -> Result<Response, WebError> {
    let me = own_username(&visitor).map_err(|e| visitor.fail(e))?;
    match state
        .services
        .accounts
        .start_enrolment(&visitor.ctx, &me, &input.password)
        .await
    {
        Ok(enrolment) => Ok(enrolment_page(&visitor, &enrolment)),
        Err(error) => mfa_failed(&state, &visitor, error).await,
    }
}

fn confirm_form(visitor: &Visitor, error: Option<&str>) -> Markup {
    html! {
        form #mfa-confirm method="post" action="/account/mfa/confirm" novalidate
            hx-post="/account/mfa/confirm" hx-target="this" hx-swap="outerHTML" {
            (csrf_field(&visitor.csrf))
            (Field::new("otp", "Code from the app", "text")
                .autocomplete("one-time-code")
                .error(error)
                .hint("The 6 digits your app shows now.")
                .render("mfa"))
            button type="submit" { "Turn on two-factor sign-in" }
        }
    }
}

fn enrolment_page(visitor: &Visitor, enrolment: &EnrolmentView) -> Response {
    let qr = match qr_image(&enrolment.otpauth_uri, "QR code for your authenticator app") {
        Ok(qr) => qr,
        Err(error) => return visitor.fail(error).into_response(),
    };
    let body = html! {
        h1 { "Set up two-factor sign-in" }
        section.card aria-labelledby="scan-heading" {
            h2 #scan-heading { "1. Add the account to your authenticator app" }
            p { "Scan this QR code with an authenticator app (such as FreeOTP, Aegis, Google Authenticator or 1Password):" }
            div.qr-svg { (qr) }
            p { "Or type this key into the app:" }
            p.secret #totp-secret { (enrolment.secret) }
        }
        section.card aria-labelledby="codes-heading" {
            h2 #codes-heading { "2. Keep your recovery codes" }
            p { "Each code signs you in once when your phone is not at hand. Print them or keep them in a password manager: they are shown only now." }
            ul.codes #recovery-codes {
                @for code in &enrolment.recovery_codes { li.secret { (code) } }
            }
        }
        section.card aria-labelledby="confirm-heading" {
            h2 #confirm-heading { "3. Enter a code from the app" }
            (confirm_form(visitor, None))
        }
    };
    page(
        "Set up two-factor sign-in",
        Some(&visitor.chrome(Section::Account)),
        false,
        body,
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct ConfirmInput {
    #[serde(default)]
    otp: String,
}

pub async fn confirm_mfa(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Form(input): Form<ConfirmInput>,
) -> Result<Response, WebError> {
    let me = own_username(&visitor).map_err(|e| visitor.fail(e))?;
    match state
        .services
        .accounts
        .confirm_enrolment(&visitor.ctx, &me, &input.otp)
        .await
    {
        Ok(()) => {
            visitor
                .set_flash(Flash::ok("Two-factor sign-in is on. From now on, signing in asks for a code from your app."))
                .await?;
            // The account may have been held on this page until now.
            Ok(redirect(ACCOUNT_PAGE, visitor.htmx))
        }
        Err(error @ (Error::Invalid(_) | Error::TooManyRequests { .. })) => {
            let status = error.status();
            let message = sentence(&error);
            if visitor.htmx {
                return Ok((status, confirm_form(&visitor, Some(&message))).into_response());
            }
            let body = html! {
                h1 { "Set up two-factor sign-in" }
                section.card {
                    p { "The QR code and key were on the previous page. If you no longer have them, "
                        a href="/account#mfa" { "start again" } "." }
                    (confirm_form(&visitor, Some(&message)))
                }
            };
            Ok((
                status,
                page(
                    "Set up two-factor sign-in",
                    Some(&visitor.chrome(Section::Account)),
                    false,
                    body,
                ),
            )
                .into_response())
        }
        Err(error) => mfa_failed(&state, &visitor, error).await,
    }
}

pub async fn remove_mfa(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
    Form(input): Form<MfaInput>,
) -> Result<Response, WebError> {
    let me = own_username(&visitor).map_err(|e| visitor.fail(e))?;
    match state
        .services
        .accounts
        .remove_second_factor(&visitor.ctx, &me, Some(&input.password))
        .await
    {
        Ok(()) => done(&visitor, "Two-factor sign-in is off.").await,
        Err(error) => mfa_failed(&state, &visitor, error).await,
    }
}
