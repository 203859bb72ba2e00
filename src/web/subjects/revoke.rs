//! Revoking one unused link (its QR code) from the subject page: the
//! question first (a box with htmx, a page of its own without), then the
//! POST that revokes it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::detail::outcome;
use super::steps::confirmation_page;
use super::subject_url;
use crate::app::AppState;
use crate::error::Error;
use crate::service::links::LinkView;
use crate::web::error::WebError;
use crate::web::layout::csrf_field;
use crate::web::session::{Visitor, Writer};

fn revoke_url(link: &LinkView) -> String {
    format!("{}/links/{}/revoke", subject_url(&link.sub), link.id)
}

/// "Revoke this link" for a link that was never used: asks first (in the
/// links card with htmx, on a page of its own without).
pub(super) fn revoke_link_button(link: &LinkView) -> Markup {
    if link.linked_on.is_some() || link.withdrawn_on.is_some() {
        return html! {};
    }
    let url = revoke_url(link);
    html! {
        a.button.small.secondary.danger-outline href=(url)
            hx-get=(url) hx-target="#link-confirm-area" hx-swap="innerHTML" { "Revoke this link…" }
    }
}

/// The question before revoking one link, with the POST form that does it.
fn revoke_confirmation(visitor: &Visitor, link: &LinkView) -> Markup {
    let action = revoke_url(link);
    let back = subject_url(&link.sub);
    let panel_target = visitor.htmx.then_some("#subject-panel");
    let swap = visitor.htmx.then_some("outerHTML");
    html! {
        div.confirm-box role="alertdialog" aria-labelledby="revoke-question" {
            p #revoke-question {
                "Revoke the link " code.small-text { (link.id) } "? Its QR code stops working, also where it was already shown or printed. "
                "The subject is not withdrawn and other links stay as they are; a new QR code can be shown."
            }
            form method="post" action=(action)
                hx-post=[visitor.htmx.then_some(&action)] hx-target=[panel_target] hx-swap=[swap] {
                (csrf_field(&visitor.csrf))
                div.actions {
                    button.small.danger type="submit" { "Revoke this link" }
                    a.button.small.secondary href=(back) hx-get=[visitor.htmx.then_some(&back)] hx-target=[panel_target] hx-swap=[swap] { "Cancel" }
                }
            }
        }
    }
}

/// Asks before revoking a link: a box for htmx, a page otherwise. Changes
/// nothing.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path((sssid, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let services = &state.services;
    let subject = services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let link = services
        .links
        .get(&visitor.ctx, &id)
        .await
        .ok()
        .filter(|link| link.sub == sssid)
        .ok_or_else(|| visitor.fail(Error::NotFound("no such link".into())))?;
    let confirmation = revoke_confirmation(&visitor, &link);
    if visitor.htmx {
        return Ok(confirmation.into_response());
    }
    Ok(confirmation_page(&visitor, &subject, confirmation).into_response())
}

pub async fn revoke_link(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path((sssid, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let result = state
        .services
        .links
        .revoke(&visitor.ctx, &sssid, &id)
        .await
        .map(|()| "Link revoked: its QR code no longer works.".to_owned());
    outcome(&state, &visitor, &sssid, result).await
}
