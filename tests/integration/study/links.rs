//! Links managed by staff: withdrawal and revocation (also racing
//! establishes), fields that cannot change, linking by hand, and ids drawn
//! from the random source.

use std::collections::HashSet;

use crate::common::*;
use chrono::Duration;
use idm::clock::OsRandom;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    PATIENT, audit_actions, consent, consented_link, create_subject, data, establish, fetch_jwt,
    new_link,
};

#[tokio::test]
async fn withdrawing_an_established_link_is_set_once_and_withdraws_the_subject() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let open = new_link(&app, &token, "S1").await;
    let path = format!("/link/{link}");
    let withdraw = json!({"withdrawn_on": "2026-11-28T15:00:00Z"});
    let r = app.put_json(&path, Some(&token), &withdraw).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.put_json(&path, Some(&token), &withdraw).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "same value again");
    let r = app
        .put_json(&path, Some(&token), &json!({"withdrawn_on": "2026-11-29"}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let stored = data(app.get(&path, Some(&token)).await).await;
    assert_eq!(stored["withdrawn_on"], "2026-11-28T15:00:00Z");
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["date_withdrawn"], "2026-11-28T15:00:00Z", "derived");
    let open = data(app.get(&format!("/link/{open}"), Some(&token)).await).await;
    assert_eq!(open["withdrawn_on"], "2026-11-28T15:00:00Z", "voided");
    let actions: Vec<String> = audit_actions(&app, &token, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        &actions[actions.len() - 3..],
        [
            "[Link] withdrawn: 2026-11-28T15:00:00Z",
            "withdrawn: 2026-11-28T15:00:00Z",
            "[Link] withdrawn: 2026-11-28T15:00:00Z",
        ]
    );
}

/// Revoking one QR code that was never used is not a withdrawal from the
/// study: the subject and its other links stay as they are.
#[tokio::test]
async fn revoking_an_unestablished_link_revokes_only_that_link() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let revoked = consented_link(&app, &token, "S1").await;
    let other = new_link(&app, &token, "S1").await;
    let revoked_jwt = fetch_jwt(&app, &token, &revoked).await;
    let other_jwt = fetch_jwt(&app, &token, &other).await;
    let path = format!("/link/{revoked}");
    let r = app
        .put_json(
            &path,
            Some(&token),
            &json!({"withdrawn_on": "2026-11-28T15:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get(&format!("{path}/jwt"), Some(&token)).await;
    expect_error(r, StatusCode::GONE).await;
    let r = establish(&app, Some(&format!("Bearer {revoked_jwt}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["date_withdrawn"], Value::Null, "not a withdrawal");
    let r = establish(&app, Some(&format!("Bearer {other_jwt}")), PATIENT).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "the other link still works"
    );
    let actions: Vec<String> = audit_actions(&app, &token, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert!(actions.contains(&"[Link] withdrawn: 2026-11-28T15:00:00Z".to_owned()));
    assert!(
        !actions.iter().any(|a| a.starts_with("withdrawn:")),
        "{actions:?}"
    );
}

/// The QR code shown before a withdrawal must not pair the app afterwards
/// (it used to establish with 204, leaving a subject Withdrawn and Enrolled).
#[tokio::test]
async fn withdrawal_voids_every_unestablished_link_of_the_subject() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let established = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &established).await;
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let shown = new_link(&app, &token, "S1").await;
    let shown_jwt = fetch_jwt(&app, &token, &shown).await;
    let never_shown = new_link(&app, &token, "S1").await;
    let revoked = new_link(&app, &token, "S1").await;
    let r = app
        .put_json(
            &format!("/link/{revoked}"),
            Some(&token),
            &json!({"withdrawn_on": "2026-11-27T10:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Another subject's link is not touched.
    let elsewhere = consented_link(&app, &token, "S2").await;

    let withdrawn = "2026-11-28T15:00:00Z";
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "date_withdrawn": withdrawn}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let link = |id: String| {
        let app = &app;
        let token = &token;
        async move { data(app.get(&format!("/link/{id}"), Some(token)).await).await }
    };
    let kept = link(established.clone()).await;
    assert!(kept.get("withdrawn_on").is_none(), "history stays: {kept}");
    assert!(kept["linked_on"].is_string());
    for id in [&shown, &never_shown] {
        let voided = link(id.clone()).await;
        assert_eq!(voided["withdrawn_on"], withdrawn, "{voided}");
        assert!(voided.get("linked_on").is_none());
        let r = app.get(&format!("/link/{id}/jwt"), Some(&token)).await;
        expect_error(r, StatusCode::GONE).await;
    }
    assert_eq!(link(revoked).await["withdrawn_on"], "2026-11-27T10:00:00Z");
    assert!(link(elsewhere).await.get("withdrawn_on").is_none());

    let r = establish(&app, Some(&format!("Bearer {shown_jwt}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["date_withdrawn"], withdrawn);
    let actions: Vec<String> = audit_actions(&app, &token, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        &actions[actions.len() - 3..],
        [
            format!("withdrawn: {withdrawn}"),
            format!("[Link] withdrawn: {withdrawn}"),
            format!("[Link] withdrawn: {withdrawn}"),
        ]
    );
    // Sending the withdrawal again changes nothing.
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_withdrawn": withdrawn}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(audit_actions(&app, &token, "S1").await.len(), actions.len());
}

/// A withdrawal racing the app's establishes ends in one story per link:
/// established before it was voided (the subject is then Enrolled and
/// Withdrawn), or voided and the establish refused with 403. Once the
/// withdrawal is acknowledged, no link of the subject establishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_racing_establishes_leaves_each_link_established_or_void() {
    const LINKS: usize = 8;
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for round in 0..4 {
        let sssid = format!("R{round}");
        let first = consented_link(&app, &token, &sssid).await;
        let mut links = vec![first];
        for _ in 1..LINKS {
            links.push(new_link(&app, &token, &sssid).await);
        }
        let mut jwts = Vec::new();
        for link in &links {
            jwts.push(fetch_jwt(&app, &token, link).await);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(LINKS + 1));
        let establishes: Vec<_> = jwts
            .iter()
            .enumerate()
            .map(|(i, jwt)| {
                let (client, url, start) =
                    (app.client.clone(), app.url("/establish"), start.clone());
                let bearer = format!("Bearer {jwt}");
                let body = PATIENT.replace("app-install-1", &format!("install-{i}"));
                tokio::spawn(async move {
                    start.wait().await;
                    client
                        .post(url)
                        .header("Authorization", bearer)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect();
        let withdrawal = {
            let (client, url, start) = (
                app.client.clone(),
                app.url(&format!("/subject/{sssid}")),
                start.clone(),
            );
            let auth = format!("JWT {token}");
            tokio::spawn(async move {
                start.wait().await;
                client
                    .put(url)
                    .header("Authorization", auth)
                    .json(&json!({"date_withdrawn": "2026-11-28T15:00:00Z"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        };
        assert_eq!(withdrawal.await.unwrap(), StatusCode::NO_CONTENT);
        // Acknowledged: from now on every link is established or void.
        for (jwt, link) in jwts.iter().zip(&links) {
            let stored = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
            let established = stored.get("linked_on").is_some();
            let voided = stored.get("withdrawn_on").is_some();
            assert!(established != voided, "round {round}: {stored}");
            let again = PATIENT.replace("app-install-1", "late-install");
            let r = establish(&app, Some(&format!("Bearer {jwt}")), &again).await;
            let expected = if established {
                StatusCode::CONFLICT
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(r.status(), expected, "round {round}: {stored}");
        }
        let mut won = 0;
        for (task, link) in establishes.into_iter().zip(&links) {
            let status = task.await.unwrap();
            let stored = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
            match status {
                StatusCode::NO_CONTENT => {
                    won += 1;
                    assert!(stored.get("linked_on").is_some(), "{stored}");
                }
                StatusCode::FORBIDDEN => {
                    assert!(stored.get("linked_on").is_none(), "{stored}");
                    assert_eq!(stored["withdrawn_on"], "2026-11-28T15:00:00Z");
                }
                other => panic!("round {round}: establish answered {other}"),
            }
        }
        let subject = data(app.get(&format!("/subject/{sssid}"), Some(&token)).await).await;
        assert_eq!(subject["date_withdrawn"], "2026-11-28T15:00:00Z");
        assert_eq!(subject["date_enrolled"].is_string(), won > 0, "{subject}");
    }
}

#[tokio::test]
async fn link_identity_fields_cannot_change() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    fetch_jwt(&app, &token, &link).await;
    let path = format!("/link/{link}");
    let stored = data(app.get(&path, Some(&token)).await).await;
    let r = app.put_json(&path, Some(&token), &stored).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "sending the link back unchanged"
    );
    for (field, value) in [
        ("sub", json!("S2")),
        ("iss", json!("https://evil.example")),
        ("aud", json!("https://evil.example")),
        ("exp", json!("2030-01-01T00:00:00Z")),
        ("algorithm", json!("none")),
        ("_id", json!("0123")),
    ] {
        let r = app
            .put_json(&path, Some(&token), &json!({field: value}))
            .await;
        let message = expect_error(r, StatusCode::CONFLICT).await;
        assert!(message.contains(field), "{message}");
    }
    let r = app
        .put_json(&path, Some(&token), &json!({"secret": "x"}))
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .put_json("/link/unknown", Some(&token), &json!({}))
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn staff_can_link_by_hand_only_while_unlinked() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let path = format!("/link/{link}");
    let r = app
        .put_json(
            &path,
            Some(&token),
            &json!({"linked_to": "dev-7", "linked_system": "urn:x"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let stored = data(app.get(&path, Some(&token)).await).await;
    assert_eq!(stored["linked_to"], "dev-7");
    assert_eq!(stored["linked_on"], app.at(Duration::zero()));
    let r = app
        .put_json(&path, Some(&token), &json!({"linked_to": "dev-8"}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .put_json(&path, Some(&token), &json!({"linked_to": "dev-7"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let actions = audit_actions(&app, &token, "S1").await;
    assert!(actions.contains(&("[Link] link to dev-7".into(), json!(ADMIN))));
}

/// Hands out the operating system's random bytes and keeps a copy of each
/// fill, so a test can see exactly what the service drew.
#[derive(Default)]
struct RecordingRandom {
    fills: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl idm::clock::RandomSource for RecordingRandom {
    fn fill(&self, buf: &mut [u8]) {
        OsRandom.fill(buf);
        self.fills.lock().unwrap().push(buf.to_vec());
    }
}

#[tokio::test]
async fn link_ids_are_exactly_128_bits_drawn_from_the_random_source() {
    let random = std::sync::Arc::new(RecordingRandom::default());
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    let app = spawn_app_with_random(dir, config, random.clone()).await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    consent(&app, &token, "S1").await;
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let drawn_before = random.fills.lock().unwrap().len();
        let r = app
            .post_json("/subject/S1/links", Some(&token), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        let id = body["data"]["_id"].as_str().unwrap().to_owned();
        // The id is the hex of one fresh 16-byte draw: no counter, time or
        // fixed part is mixed in (the statistics of the source itself are
        // a unit test of src/clock.rs).
        let fills = random.fills.lock().unwrap();
        let drawn: Vec<String> = fills[drawn_before..]
            .iter()
            .filter(|f| f.len() == 16)
            .map(hex::encode)
            .collect();
        assert_eq!(
            drawn,
            std::slice::from_ref(&id),
            "the id is one 128-bit draw"
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), 20);
    // And they work over HTTP like any link.
    let some = ids.iter().next().unwrap();
    data(app.get(&format!("/link/{some}"), Some(&token)).await).await;
}
