//! One subject's page: editing, recording journey steps after a
//! confirmation, withdrawal, and revoking an unused link.

use chrono::Duration;
use idm::clock::Clock;
use idm::service::Context;
use reqwest::StatusCode;
use serde_json::json;

use super::{
    STAFF, audit_actions, consent, field_error, input_value, links_of, staff_app, subject,
};

#[tokio::test]
async fn editing_goes_through_the_service_with_errors_next_to_fields() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let bad = browser
        .post_htmx(
            "/subjects/S1",
            &csrf,
            &[("name", "Ada King"), ("bday", "29.02.1980"), ("email", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.starts_with(r#"<div id="subject-panel">"#));
    assert!(
        field_error(&bad, "edit-subject", "bday")
            .unwrap()
            .contains("Enter a birth date like 1980-12-31.")
    );
    assert_eq!(
        input_value(&bad, "edit-subject-name").as_deref(),
        Some("Ada King")
    );
    assert_eq!(subject(&app, "S1").await.name, "Ada Lovelace");

    let ok = browser
        .post(
            "/subjects/S1",
            &[
                ("csrf_token", &csrf),
                ("name", "Ada King"),
                ("bday", "1980-02-29"),
                ("email", "ada@example.org"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.name.as_str(), s1.email.as_deref()),
        ("Ada King", Some("ada@example.org"))
    );
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Changes saved."));
    assert!(
        page.body
            .contains("Name changed to “Ada King”. Email address changed to “ada@example.org” — by staff@example.org"),
        "activity: {}",
        page.body
    );
    assert_eq!(
        audit_actions(&app, "S1").await[1],
        (
            r#"name: "Ada Lovelace" -> "Ada King"; email: "" -> "ada@example.org""#.to_owned(),
            Some(STAFF.to_owned())
        )
    );
}

#[tokio::test]
async fn recording_steps_asks_first_and_audits_like_the_api() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let confirm = browser
        .get_htmx("/subjects/S1/record?step=consented", "confirm-area")
        .await;
    assert!(confirm.body.contains("gave consent?"));
    assert!(confirm.body.contains(r#"name="step" value="consented""#));
    assert!(
        subject(&app, "S1").await.date_consented.is_none(),
        "asking changed something"
    );

    let done = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "consented")])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("Consent recorded."));
    let s1 = subject(&app, "S1").await;
    assert_eq!(s1.date_consented, Some(app.clock.now()));
    assert_eq!(
        audit_actions(&app, "S1").await.last().unwrap(),
        &(
            format!("consented: {}", app.at(Duration::zero())),
            Some(STAFF.to_owned())
        )
    );
    // A second consent is refused and said so.
    app.clock.advance(Duration::minutes(5));
    let again = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "consented")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .body
            .contains("Consent was already recorded; nothing was changed."),
        "{}",
        again.body
    );
    assert_eq!(subject(&app, "S1").await.date_consented, s1.date_consented);
    let bad = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "enrolled")],
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "enrolment comes from the app"
    );
}

#[tokio::test]
async fn withdrawal_is_recorded_once_and_a_second_attempt_shows_the_conflict() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let first = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "withdrawn")],
        )
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Withdrawal recorded."));
    assert!(page.body.contains("status-withdrawn"));
    // The same instant (a double click, a stale second tab): still refused,
    // not silently absorbed.
    let second = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "withdrawn")],
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.body.contains("flash-error"));
    assert!(
        second
            .body
            .contains("The withdrawal was already recorded; nothing was changed."),
        "{}",
        second.body
    );
    app.clock.advance(Duration::minutes(10));
    let later = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "withdrawn")])
        .await;
    assert_eq!(later.status, StatusCode::CONFLICT);
    assert!(later.body.contains("withdrawal was already recorded"));
    let withdrawals = audit_actions(&app, "S1")
        .await
        .into_iter()
        .filter(|(a, _)| a.starts_with("withdrawn:"))
        .count();
    assert_eq!(withdrawals, 1);
    // Concurrent attempts: exactly one is recorded.
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let form = [("csrf_token", csrf.as_str()), ("step", "withdrawn")];
    let attempts = (0..8).map(|_| browser.post("/subjects/S2/record", &form));
    let statuses: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|p| p.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::CONFLICT)
    );
    let withdrawals = audit_actions(&app, "S2")
        .await
        .into_iter()
        .filter(|(a, _)| a.starts_with("withdrawn:"))
        .count();
    assert_eq!(withdrawals, 1);
    // No QR code for a withdrawn subject.
    let qr = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(qr.status, StatusCode::PRECONDITION_FAILED);
    assert!(
        qr.body.contains("Subject has not yet been consented") || qr.body.contains("withdrawn")
    );
}

/// The withdrawal question says what it does to the links; one unused
/// link can be revoked on its own, after a question, with a plain POST.
#[tokio::test]
async fn one_unused_link_can_be_revoked_and_the_withdrawal_says_what_it_does() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    let staff = Context::system();
    let links = &app.state.services.links;
    let revoked = links.invitation(&staff, "S1").await.unwrap();
    let kept = links.create(&staff, "S1").await.unwrap();
    let revoke_path = format!("/subjects/S1/links/{}/revoke", revoked.link.id);

    let page = browser.get("/subjects/S1").await;
    assert!(
        page.body.contains(&format!(r#"href="{revoke_path}""#)),
        "{}",
        page.body
    );
    let question = browser.get(&revoke_path).await;
    assert_eq!(question.status, StatusCode::OK);
    assert!(question.body.contains("Its QR code stops working"));
    assert!(question.body.contains("The subject is not withdrawn"));
    assert!(
        links_of(&app, "S1")
            .await
            .iter()
            .all(|l| l.withdrawn_on.is_none()),
        "asking changes nothing"
    );

    let done = browser.post(&revoke_path, &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Link revoked"), "{}", page.body);
    assert!(!page.body.contains(&format!(r#"href="{revoke_path}""#)));
    let stored = links.get(&staff, &revoked.link.id).await.unwrap();
    assert!(stored.withdrawn_on.is_some());
    assert!(subject(&app, "S1").await.date_withdrawn.is_none());
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {}", revoked.token))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let again = browser.post_htmx(&revoke_path, &csrf, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("already been withdrawn"));
    // Another subject's path to the link: not found, nothing changes.
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let other = format!("/subjects/S2/links/{}/revoke", kept.id);
    assert_eq!(
        browser.post(&other, &[("csrf_token", &csrf)]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        links
            .get(&staff, &kept.id)
            .await
            .unwrap()
            .withdrawn_on
            .is_none()
    );

    let confirm = browser.get("/subjects/S1/record?step=withdrawn").await;
    for said in [
        "QR codes that were not used yet stop working",
        "Links the app already made stay in the subject&#39;s history",
        "Nothing is deleted.",
    ] {
        assert!(
            confirm.body.contains(said) || confirm.body.contains(&said.replace("&#39;", "'")),
            "{said}: {}",
            confirm.body
        );
    }
}
