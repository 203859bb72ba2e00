//! QR-code invitations in the console: the overlay that shows a subject's
//! link JWT as a QR code, and a printable invitation page. The QR code is
//! drawn on the server as SVG and embedded as a `data:` image (the CSP
//! allows `img-src data:`); no third-party service sees the token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::app::AppState;
use crate::error::Error;
use crate::service::links::LinkView;
use crate::service::subjects::SubjectView;
use crate::web::error::WebError;
use crate::web::layout::{Section, page};
use crate::web::session::{Visitor, Writer};
use crate::web::subjects::{moment, subject_url};

/// The QR code of `token` as an `<img>`. Medium error correction survives
/// a smudged print while keeping a ~300-character JWT at a size phones
/// read easily.
pub(crate) fn qr_image(token: &str, alt: &str) -> Result<Markup, Error> {
    let code = QrCode::with_error_correction_level(token.as_bytes(), EcLevel::M)
        .map_err(|e| Error::internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<svg::Color>()
        .module_dimensions(1, 1)
        .quiet_zone(true)
        .build();
    let src = format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg));
    Ok(html! { img.qr src=(src) alt=(alt); })
}

fn invitation_url(sssid: &str, link_id: &str) -> String {
    format!("{}/invitations/{link_id}", subject_url(sssid))
}

fn until(exp: Option<DateTime<Utc>>) -> Markup {
    html! {
        @if let Some(exp) = exp { (moment(exp)) } @else { "—" }
    }
}

/// The birth date; an erased subject (withdrawn, so never invited again)
/// has none.
fn birth(subject: &SubjectView) -> String {
    subject
        .bday
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The overlay: a `<dialog>` that works without script (shown open, closed
/// by its `method="dialog"` form); app.js makes it modal.
fn overlay(subject: &SubjectView, link: &LinkView, token: &str) -> Result<Markup, Error> {
    let alt = format!("QR code of the study invitation for {}", subject.name);
    Ok(html! {
        dialog #qr-dialog .qr-dialog open aria-labelledby="qr-title" data-modal {
            h2 #qr-title { "Invitation for " (subject.name) }
            (qr_image(token, &alt)?)
            p { "Born " (birth(subject)) " · SSSID " (subject.sssid) }
            p { "Valid until " strong { (until(link.exp)) } ". It can be used once." }
            div.actions {
                a.button href=(invitation_url(&subject.sssid, &link.id)) { "Printable invitation" }
                form method="dialog" {
                    button.secondary type="submit" { "Close" }
                }
            }
        }
    })
}

fn refusal(message: &str) -> Markup {
    html! {
        dialog #qr-dialog .qr-dialog open aria-labelledby="qr-title" data-modal {
            h2 #qr-title { "No QR code" }
            div.flash.flash-error role="alert" { (message) }
            form method="dialog" {
                button.secondary type="submit" { "Close" }
            }
        }
    }
}

/// Creates or reuses the subject's invitation link (a change, hence a
/// post) and shows it: the overlay for htmx, else the printable page.
pub async fn show_qr(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path(sssid): Path<String>,
) -> Result<Response, WebError> {
    let services = &state.services;
    let invitation = match services.links.invitation(&visitor.ctx, &sssid).await {
        Ok(invitation) => invitation,
        Err(error @ (Error::PreconditionFailed(_) | Error::Gone(_))) if visitor.htmx => {
            return Ok((error.status(), refusal(&error.to_string())).into_response());
        }
        Err(other) => return Err(visitor.fail(other)),
    };
    if !visitor.htmx {
        return Ok(Redirect::to(&invitation_url(&sssid, &invitation.link.id)).into_response());
    }
    let subject = services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let body =
        overlay(&subject, &invitation.link, &invitation.token).map_err(|e| visitor.fail(e))?;
    Ok(body.into_response())
}

fn printable(
    visitor: &Visitor,
    subject: &SubjectView,
    link: &LinkView,
    token: &str,
) -> Result<Markup, Error> {
    let alt = format!("QR code of the study invitation for {}", subject.name);
    Ok(page(
        &format!("Invitation for {}", subject.name),
        Some(&visitor.chrome(Section::Subjects)),
        false,
        html! {
            p.breadcrumb.no-print {
                a href="/subjects" { "Subjects" } " / "
                a href=(subject_url(&subject.sssid)) { (subject.sssid) } " / Invitation"
            }
            article.invitation {
                h1 { "Your invitation to the study" }
                p.invitee {
                    "For " strong { (subject.name) } ", born " (birth(subject))
                }
                (qr_image(token, &alt)?)
                h2 { "How to join" }
                ol {
                    li { "Install and open the study app on your phone." }
                    li { "Choose to scan an invitation and point the camera at the code above." }
                    li { "Check that the app shows your name and birth date, then confirm." }
                }
                p {
                    "This code is valid until " strong { (until(link.exp)) }
                    " and can be used once. If it has expired, ask the study team for a new one."
                }
                p.muted.small-text { "Keep this page private: the code links a phone to you." }
            }
            div.actions.no-print {
                button type="button" data-print { "Print" }
                a.button.secondary href=(subject_url(&subject.sssid)) { "Back to the subject" }
            }
        },
    ))
}

/// The printable invitation of a link whose QR code was already shown.
/// Reading it changes nothing: a link that was never issued is not issued
/// here (that is the post's job), and a used or expired one gets 410.
pub async fn show_invitation(
    State(state): State<AppState>,
    Writer(visitor): Writer,
    Path((sssid, link_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let services = &state.services;
    let not_found = || visitor.fail(Error::NotFound("no such invitation".into()));
    let link = match services.links.get(&visitor.ctx, &link_id).await {
        Ok(link) => link,
        Err(Error::NotFound(_)) => return Err(not_found()),
        Err(other) => return Err(visitor.fail(other)),
    };
    if link.sub != sssid || link.exp.is_none() {
        return Err(not_found());
    }
    let token = services
        .links
        .jwt(&visitor.ctx, &link.id)
        .await
        .map_err(|e| visitor.fail(e))?;
    let subject = services
        .subjects
        .get(&visitor.ctx, &sssid)
        .await
        .map_err(|e| visitor.fail(e))?;
    let body = printable(&visitor, &subject, &link, &token).map_err(|e| visitor.fail(e))?;
    Ok((StatusCode::OK, body).into_response())
}
