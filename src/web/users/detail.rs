//! `/users/<username>`: one account for admins. What it is (role, state,
//! created, last sign-in, second factor, failed sign-ins, sessions), its
//! audit trail, and every action on it, each a plain form post that comes
//! back to this page with a message.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{AccountState, Role};
use crate::error::Error;
use crate::service::accounts::{SessionView, ThrottleView};
use crate::service::users::{UserChanges, UserView};
use crate::store::AuditRecord;
use crate::web::error::{WebError, redirect};
use crate::web::layout::{Flash, Section, csrf_field, flash, page};
use crate::web::messages::sentence;
use crate::web::session::{Admin, Visitor};
use crate::web::subjects::moment;

use super::{role_badge, state_badge, user_url, when};

struct Facts {
    user: UserView,
    sessions: Vec<SessionView>,
    throttle: ThrottleView,
    trail: Vec<AuditRecord>,
}

async fn load(state: &AppState, visitor: &Visitor, username: &str) -> Result<Facts, Error> {
    let services = &state.services;
    let ctx = &visitor.ctx;
    Ok(Facts {
        user: services.users.get(ctx, username).await?,
        sessions: services.accounts.sessions(ctx, username, None).await?,
        throttle: services.accounts.throttle_state(ctx, username).await?,
        trail: services.users.audits(ctx, username).await?,
    })
}

/// One action button: a form posting to `/users/<u>/<action>`.
fn action(
    visitor: &Visitor,
    user: &str,
    name: &str,
    label: &str,
    extra: Markup,
    danger: bool,
) -> Markup {
    let url = format!("{}/{name}", user_url(user));
    html! {
        form.inline-form method="post" action=(url) {
            (csrf_field(&visitor.csrf))
            (extra)
            @if danger {
                button.small.danger type="submit" { (label) }
            } @else {
                button.small.secondary type="submit" { (label) }
            }
        }
    }
}

fn facts_card(f: &Facts) -> Markup {
    let u = &f.user;
    html! {
        section.card aria-labelledby="facts-heading" {
            h2 #facts-heading { "Account" }
            dl.details {
                div { dt { "Role" } dd { (role_badge(u.role)) } }
                div { dt { "State" } dd { (state_badge(u.state)) } }
                div { dt { "Created" } dd { (moment(u.created)) } }
                div { dt { "Last sign-in" } dd { (when(u.last_login)) } }
                div { dt { "Two-factor sign-in" } dd { @if u.mfa { "On" } @else { "Off" } } }
                div { dt { "Failed sign-ins" } dd {
                    (f.throttle.failures) " of " (f.throttle.ceiling)
                    @if let Some(until) = f.throttle.until { span.muted { " · counted until " (moment(until)) } }
                } }
            }
        }
    }
}

fn actions_card(visitor: &Visitor, f: &Facts) -> Markup {
    let u = &f.user;
    let name = u.username.as_str();
    let me = visitor
        .user()
        .is_some_and(|me| me.username.as_str() == name);
    html! {
        section.card aria-labelledby="actions-heading" {
            h2 #actions-heading { "Actions" }
            form.inline-form method="post" action=(format!("{}/role", user_url(name))) {
                (csrf_field(&visitor.csrf))
                label for="detail-role" { "Role " }
                select #detail-role name="role" {
                    @for role in [Role::Staff, Role::Monitor, Role::Admin] {
                        option value=(role.as_str()) selected[u.role == role] { (role.label()) }
                    }
                }
                " "
                button.small.secondary type="submit" { "Change role" }
            }
            div.actions {
                @if u.state == AccountState::Disabled {
                    (action(visitor, name, "enable", "Enable account", html! {}, false))
                } @else if !me {
                    (action(visitor, name, "disable", "Disable account", html! {}, true))
                }
                @if u.state == AccountState::Invited {
                    (action(visitor, name, "invitation", "Resend invitation", html! {}, false))
                }
                @if u.state == AccountState::Active {
                    (action(visitor, name, "reset", "Send reset email", html! {}, false))
                }
                @if u.mfa {
                    (action(visitor, name, "mfa", "Remove second factor", html! {}, true))
                }
                @if f.throttle.failures > 0 {
                    (action(visitor, name, "unlock", "Unlock sign-in", html! {}, false))
                }
                @if !me {
                    a.button.small.danger href=(format!("/users/delete?username={}", percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC))) { "Delete…" }
                }
            }
        }
    }
}

fn sessions_card(visitor: &Visitor, f: &Facts) -> Markup {
    html! {
        section.card aria-labelledby="sessions-heading" {
            h2 #sessions-heading { "Sessions" }
            @if f.sessions.is_empty() {
                p.muted { "Not signed in anywhere in the console." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Started" } th scope="col" { "Last seen" } th scope="col" { "Address" } th scope="col" { "Browser" } } }
                    tbody { @for s in &f.sessions { tr {
                        td data-label="Started" { @if let Some(t) = s.started { (moment(t)) } @else { "—" } }
                        td data-label="Last seen" { (moment(s.last_seen)) }
                        td data-label="Address" { (s.client_ip.as_deref().unwrap_or("—")) }
                        td data-label="Browser" { span.small-text { (s.browser.as_deref().unwrap_or("—")) } }
                    } } }
                } }
            }
            (action(visitor, &f.user.username, "sessions", "Sign out everywhere", html! {}, false))
            p.muted { "Ends every browser session and access token of the account." }
        }
    }
}

fn trail_card(f: &Facts) -> Markup {
    html! {
        section.card aria-labelledby="trail-heading" {
            h2 #trail-heading { "Audit trail" }
            @if f.trail.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                div.table-wrap { table #account-trail {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "By" } th scope="col" { "Address" } } }
                    tbody { @for e in f.trail.iter().rev() { tr {
                        td data-label="When" { (moment(e.datetime)) }
                        td data-label="Event" { (e.action) }
                        td data-label="By" { (e.actor.as_deref().unwrap_or("—")) }
                        td data-label="Address" { (e.client_ip.as_deref().unwrap_or("—")) }
                    } } }
                } }
            }
        }
    }
}

async fn respond(
    state: &AppState,
    visitor: &Visitor,
    username: &str,
    status: StatusCode,
    message: Option<Flash>,
) -> Result<Response, WebError> {
    let facts = load(state, visitor, username)
        .await
        .map_err(|e| visitor.fail(e))?;
    let body = html! {
        p { a href="/users" { "← All users" } }
        div.title-row { h1 { (facts.user.username) } }
        (flash(message.as_ref()))
        (facts_card(&facts))
        (actions_card(visitor, &facts))
        (sessions_card(visitor, &facts))
        (trail_card(&facts))
    };
    Ok((
        status,
        page(
            &facts.user.username,
            Some(&visitor.chrome(Section::Users)),
            false,
            body,
        ),
    )
        .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Path(username): Path<String>,
) -> Result<Response, WebError> {
    let message = visitor.take_flash().await?;
    respond(&state, &visitor, &username, StatusCode::OK, message).await
}

#[derive(Deserialize)]
pub struct ActionInput {
    #[serde(default)]
    role: String,
}

pub async fn act(
    State(state): State<AppState>,
    Admin(visitor): Admin,
    Path((username, name)): Path<(String, String)>,
    Form(input): Form<ActionInput>,
) -> Result<Response, WebError> {
    let services = &state.services;
    let ctx = &visitor.ctx;
    let who = username.trim().to_lowercase();
    let change = |changes: UserChanges| services.users.update(ctx, &username, changes);
    let result: Result<String, Error> = match name.as_str() {
        "role" => match Role::parse(&input.role) {
            Ok(role) => change(UserChanges {
                role: Some(role),
                ..UserChanges::default()
            })
            .await
            .map(|u| format!("{} is now {}.", u.username, u.role.label().to_lowercase())),
            Err(e) => Err(e),
        },
        "disable" => change(UserChanges {
            disabled: Some(true),
            ..UserChanges::default()
        })
        .await
        .map(|_| format!("{who} is disabled: their sessions and tokens have ended.")),
        "enable" => change(UserChanges {
            disabled: Some(false),
            ..UserChanges::default()
        })
        .await
        .map(|_| format!("{who} is enabled again.")),
        "invitation" => services
            .accounts
            .resend_invitation(ctx, &username)
            .await
            .map(|()| format!("A new invitation was sent to {who}.")),
        "reset" => services
            .recovery
            .send_reset_by_admin(ctx, &username)
            .await
            .map(|()| format!("A password reset link was sent to {who}.")),
        "mfa" => services
            .accounts
            .remove_second_factor(ctx, &username, None)
            .await
            .map(|()| format!("{who} signs in with the password alone now.")),
        "unlock" => services
            .accounts
            .unlock(ctx, &username)
            .await
            .map(|()| format!("The failed sign-ins of {who} are forgotten.")),
        "sessions" => services
            .accounts
            .revoke_sessions(ctx, &username, None)
            .await
            .map(|_| format!("{who} is signed out everywhere.")),
        _ => Err(Error::NotFound("no such action".into())),
    };
    match result {
        Ok(done) => {
            visitor.set_flash(Flash::ok(done)).await?;
            Ok(redirect(&user_url(&who), false))
        }
        Err(
            error @ (Error::BadRequest(_)
            | Error::Invalid(_)
            | Error::Conflict(_)
            | Error::Unavailable(_)),
        ) => {
            let status = error.status();
            respond(
                &state,
                &visitor,
                &username,
                status,
                Some(Flash::error(sentence(&error))),
            )
            .await
        }
        Err(other) => Err(visitor.fail(other)),
    }
}
