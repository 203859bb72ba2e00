//! `/home`: the start page after signing in.

use axum::response::{IntoResponse, Response};
use maud::html;

use crate::web::error::WebError;
use crate::web::layout::{Section, flash, page};
use crate::web::session::SignedIn;

pub async fn show(SignedIn(visitor): SignedIn) -> Result<Response, WebError> {
    let message = visitor.take_flash().await?;
    let admin = visitor.user().is_some_and(|u| u.admin);
    let username = visitor
        .user()
        .map(|u| u.username.to_string())
        .unwrap_or_default();
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
                    @if admin { " (administrator)." } @else { " (study staff)." }
                }
                @if admin {
                    p { "Add staff accounts, grant or remove admin rights, and remove accounts that are no longer needed." }
                    a.button href="/users" { "Manage users" }
                } @else {
                    p.muted { "Study participants are managed in the IDM frontend with your staff account." }
                }
            }
        },
    )
    .into_response())
}
