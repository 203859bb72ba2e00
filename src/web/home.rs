//! `/home`: the start page after signing in, with the most recently
//! changed subjects.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::app::AppState;
use crate::domain::Role;
use crate::web::error::WebError;
use crate::web::layout::{Section, flash, page};
use crate::web::session::SignedIn;
use crate::web::subjects;

pub async fn show(
    State(state): State<AppState>,
    SignedIn(visitor): SignedIn,
) -> Result<Response, WebError> {
    let message = visitor.take_flash().await?;
    let admin = visitor.user().is_some_and(|u| u.admin);
    let writable = visitor.can_write();
    let role = visitor.user().map_or("study staff", |u| match u.role {
        Role::Admin => "administrator",
        Role::Staff => "study staff",
        Role::Monitor => "monitor, read only",
    });
    let username = visitor
        .user()
        .map(|u| u.username.to_string())
        .unwrap_or_default();
    let recent = subjects::recent(&state, &visitor)
        .await
        .map_err(|e| visitor.fail(e))?;
    Ok(page(
        "Start",
        Some(&visitor.chrome(Section::Home)),
        false,
        html! {
            h1 { "Welcome" }
            (flash(message.as_ref()))
            div.card {
                p {
                    "You are signed in as " strong { (username) }
                    " (" (role) ")."
                }
                div.actions {
                    @if writable { a.button href="/subjects/new" { "New subject" } }
                    a.button.secondary href="/subjects" { "All subjects" }
                    @if admin {
                        a.button.secondary href="/users" { "Manage users" }
                    }
                }
            }
            section.card aria-labelledby="recent-heading" {
                h2 #recent-heading { "Recent subjects" }
                @if recent.items.is_empty() {
                    p.empty {
                        "No subjects yet."
                        @if writable { " " a href="/subjects/new" { "Add the first one" } "." }
                    }
                } @else {
                    (subjects::subjects_table(&visitor, &recent.items, None))
                    p.muted {
                        "The " (recent.items.len()) " most recently changed of " (recent.total.value()) ". "
                        a href="/subjects" { "See all subjects" }
                    }
                }
            }
            div #qr-overlay {}
        },
    )
    .into_response())
}
