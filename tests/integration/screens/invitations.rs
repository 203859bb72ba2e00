//! QR invitations: shown again with the same link while it can still be
//! established, and a printable page that changes nothing.

use crate::common::*;
use chrono::Duration;
use idm::service::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    STAFF, STAFF_PASSWORD, audit_actions, consent, link_id_of, links_of, record_step, staff_app,
};

#[tokio::test]
async fn showing_the_qr_twice_reuses_the_same_unexpired_link() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let early = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(early.status, StatusCode::PRECONDITION_FAILED);
    assert!(early.body.contains("Subject has not yet been consented"));
    consent(&app, "S1").await;

    let first = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("<dialog") && first.body.contains("Invitation for Ada Lovelace"));
    let expiry = (app.start + Duration::days(1))
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(first.body.contains(&expiry), "expiry shown");
    // Sessions end long before links expire: sign in again.
    app.clock.advance(Duration::hours(23));
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let second = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(first.qr_svg(), second.qr_svg(), "the same token");
    let plain = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    let links = links_of(&app, "S1").await;
    assert_eq!(links.len(), 1, "one link for three views");
    assert_eq!(
        plain.location(),
        format!("/subjects/S1/invitations/{}", links[0].id)
    );
    let actions: Vec<_> = audit_actions(&app, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "[Link] create").count(), 1);
    assert_eq!(
        actions.iter().filter(|a| *a == "[Link] create JWT").count(),
        1
    );

    // Once it expired, the next view makes a new link.
    app.clock.advance(Duration::hours(1));
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let third = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_ne!(first.qr_svg(), third.qr_svg());
    assert_eq!(links_of(&app, "S1").await.len(), 2);
}

#[tokio::test]
async fn invitation_reuses_only_links_that_can_still_be_established() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let staff = Context::system();
    let links = &app.state.services.links;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    // A link made through the API and never shown is reused and issued.
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    let made: Value = r.json().await.unwrap();
    let made_id = made["data"]["_id"].as_str().unwrap().to_owned();
    let first = links.invitation(&staff, "S1").await.unwrap();
    assert_eq!(first.link.id, made_id);
    assert!(first.link.exp.is_some());
    // An established link is not reused.
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {}", first.token))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let second = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(second.link.id, made_id);
    let again = links.invitation(&staff, "S1").await.unwrap();
    assert_eq!(
        (&again.link.id, &again.token),
        (&second.link.id, &second.token)
    );
    // Nor an expired one.
    app.clock.advance(Duration::hours(24));
    let third = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(third.link.id, second.link.id);
    assert_eq!(links_of(&app, "S1").await.len(), 3);
    // Nor a revoked one; revoking it is no withdrawal.
    links
        .update(
            &staff,
            &third.link.id,
            idm::service::links::LinkFields {
                withdrawn_on: Some("2026-11-29T12:00:00Z".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let fourth = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(fourth.link.id, third.link.id);
    // The subject's withdrawal: no more invitations.
    record_step(&app, "S1", idm::service::subjects::JourneyDate::Withdrawn).await;
    assert!(matches!(
        links.invitation(&staff, "S1").await,
        Err(idm::error::Error::PreconditionFailed(_))
    ));
    // Unknown subject, anonymous caller.
    assert!(matches!(
        links.invitation(&staff, "nobody").await,
        Err(idm::error::Error::NotFound(_))
    ));
    assert!(matches!(
        links
            .invitation(&Context::anonymous(None, None), "S1")
            .await,
        Err(idm::error::Error::Unauthorized(_))
    ));
}

#[tokio::test]
async fn printable_invitation_shows_the_token_and_changes_nothing() {
    let (app, browser, csrf) = staff_app().await;
    let token = {
        app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
        app.login(ADMIN, ADMIN_PASSWORD).await
    };
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    consent(&app, "S1").await;
    consent(&app, "S2").await;
    // A link never shown as a QR code is not issued by reading a page.
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    let unissued: Value = r.json().await.unwrap();
    let unissued = unissued["data"]["_id"].as_str().unwrap().to_owned();
    let page = browser
        .get(&format!("/subjects/S1/invitations/{unissued}"))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        links_of(&app, "S1").await[0].exp.is_none(),
        "a GET issued the JWT"
    );

    let shown = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    let link_id = link_id_of(shown.location());
    let printable = browser.get(shown.location()).await;
    assert_eq!(printable.status, StatusCode::OK);
    for text in [
        "Your invitation to the study",
        "Ada Lovelace",
        "1980-02-29",
        &(app.start + Duration::days(1))
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        "data-print",
    ] {
        assert!(printable.body.contains(text), "{text}");
    }
    let jwt = app
        .get(&format!("/link/{link_id}/jwt"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    assert!(printable.qr_svg().starts_with("<?xml"), "an SVG QR code");
    // Another subject's path does not show this link.
    assert_eq!(
        browser
            .get(&format!("/subjects/S2/invitations/{link_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Once used, the page says it is gone.
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {jwt}"))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let gone = browser.get(shown.location()).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert!(gone.body.contains("already been established"));
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("status-enrolled") && page.body.contains("Linked "));
    assert!(
        page.body.contains("App linked (phone-1)</td>"),
        "the app's entry names no staff member"
    );
}
