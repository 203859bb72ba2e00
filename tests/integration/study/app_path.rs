//! The mobile app's path: a consented subject gets a link, the app
//! establishes it with the link's JWT; link JSON and JWTs over time, and
//! versioned writes under concurrent consents.

use crate::common::*;
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    PATIENT, audit_actions, consent, consented_link, create_subject, data, establish, fetch_jwt,
    link_secret, new_link, staff_key,
};

#[tokio::test]
async fn mobile_app_path_end_to_end() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let subject = create_subject(&app, &token, "S1", "Ada Lovelace").await;
    assert_eq!(subject["bday"], "1980-02-29");
    assert_eq!(subject["date_consented"], Value::Null);
    consent(&app, &token, "S1").await;
    let link = new_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;

    // The app's check: link secret, iss and aud.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["http://idm.test"]);
    validation.set_audience(&["http://idm.test"]);
    let claims = jsonwebtoken::decode::<Value>(
        &jwt,
        &DecodingKey::from_secret(link_secret(&app).as_bytes()).unwrap(),
        &validation,
    )
    .expect("verifies with the link secret")
    .claims;
    assert_eq!(claims["jti"], link.as_str());
    assert_eq!(claims["sub"], "Ada Lovelace");
    assert_eq!(claims["birthdate"], "1980-02-29");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        24 * 3600
    );
    assert!(
        jsonwebtoken::decode::<Value>(
            &jwt,
            &DecodingKey::from_secret(staff_key(&app).as_bytes()).unwrap(),
            &validation,
        )
        .is_err(),
        "the staff key must not verify a link JWT"
    );
    let aud = claims["aud"].as_str().unwrap();
    assert_eq!(format!("{aud}/establish"), "http://idm.test/establish");

    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "this link has already been established");

    let stored = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
    assert_eq!(stored["linked_to"], "app-install-1");
    assert_eq!(stored["linked_system"], "urn:c3pro:app");
    assert_eq!(stored["linked_on"], app.at(Duration::zero()));
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(
        subject["date_enrolled"],
        app.at(Duration::zero()),
        "derived"
    );

    let audits = audit_actions(&app, &token, "S1").await;
    let actions: Vec<&str> = audits.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create",
            "consented: 2026-11-28T12:00:00Z", // as sent
            "[Link] create",
            "[Link] create JWT",
            "[Link] link to app-install-1",
            format!("enrolled: {}", app.at(Duration::zero())).as_str(),
        ]
    );
    for (action, actor) in &audits[..4] {
        assert_eq!(actor, ADMIN, "{action}");
    }
    assert_eq!(audits[4].1, Value::Null, "the app is no staff actor");
}

#[tokio::test]
async fn link_json_has_rfc3339_exp_and_no_secrets() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let before = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
    assert!(
        before.get("exp").is_none(),
        "no exp before the JWT is issued"
    );
    let jwt = fetch_jwt(&app, &token, &link).await;
    let listed = data(app.get("/subject/S1/links", Some(&token)).await).await;
    let after = &listed[0];
    assert_eq!(after["_id"], link.as_str());
    assert_eq!(after["sub"], "S1");
    assert_eq!(after["algorithm"], "HS256");
    assert_eq!(after["iss"], "http://idm.test");
    assert_eq!(after["exp"], app.at(Duration::days(1)));
    let text = after.to_string();
    assert!(!text.contains(&jwt) && !text.contains("secret") && !text.contains("jwt"));
    assert!(!text.contains(&link_secret(&app)));
}

#[tokio::test]
async fn link_jwt_is_stable_until_expiry_then_gone() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let first = fetch_jwt(&app, &token, &link).await;
    app.clock.advance(Duration::hours(23));
    // Staff tokens live 12 hours; log in again like staff would.
    let token = app.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(fetch_jwt(&app, &token, &link).await, first);
    app.clock.advance(Duration::hours(1));
    let r = app.get(&format!("/link/{link}/jwt"), Some(&token)).await;
    let message = expect_error(r, StatusCode::GONE).await;
    assert!(message.contains("create a new link"), "{message}");
    let actions = audit_actions(&app, &token, "S1").await;
    let issued = actions
        .iter()
        .filter(|(a, _)| a == "[Link] create JWT")
        .count();
    assert_eq!(issued, 1, "one token was created");
}

#[tokio::test]
async fn link_jwt_of_an_established_link_is_gone() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;
    let r = establish(&app, Some(&format!("JWT {jwt}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "JWT scheme works too");
    let r = app.get(&format!("/link/{link}/jwt"), Some(&token)).await;
    expect_error(r, StatusCode::GONE).await;
}

#[tokio::test]
async fn links_need_a_consented_subject() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    let message = expect_error(r, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(message, "Subject has not yet been consented");
    let r = app
        .post_json("/subject/nobody/links", Some(&token), &json!({}))
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    let r = app.get("/subject/nobody/links", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    consent(&app, &token, "S1").await;
    new_link(&app, &token, "S1").await;
    new_link(&app, &token, "S1").await;
    let links = data(app.get("/subject/S1/links", Some(&token)).await).await;
    assert_eq!(
        links.as_array().unwrap().len(),
        2,
        "several links per subject"
    );
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_withdrawn": "2026-11-28"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    expect_error(r, StatusCode::PRECONDITION_FAILED).await;
    let link = links[0]["_id"].as_str().unwrap();
    let r = app.get(&format!("/link/{link}/jwt"), Some(&token)).await;
    let message = expect_error(r, StatusCode::GONE).await;
    assert!(
        message.contains("withdrawn"),
        "no QR code after withdrawal: the link is void: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consents_with_different_dates_exactly_one_wins() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (client, url, start) = (app.client.clone(), app.url("/subject/S1"), start.clone());
            let auth = format!("JWT {token}");
            tokio::spawn(async move {
                start.wait().await;
                let body =
                    json!({"sssid": "S1", "date_consented": format!("2026-11-{:02}", i + 1)});
                let r = client
                    .put(url)
                    .header("Authorization", auth)
                    .json(&body)
                    .send();
                r.await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let wins = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((wins, conflicts), (1, 19), "{statuses:?}");
    let actions = audit_actions(&app, &token, "S1").await;
    let consents = actions
        .iter()
        .filter(|(a, _)| a.starts_with("consented"))
        .count();
    assert_eq!(consents, 1);
}

#[tokio::test]
async fn store_replaces_only_the_expected_version() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let store = app.state.services.deps.store.clone();
    let subject = store.subject("S1").await.unwrap().unwrap();
    let mut next = subject.clone();
    next.name = "Changed".into();
    next.version += 1;
    assert!(
        !store
            .replace_subject(&next, subject.version - 1)
            .await
            .unwrap(),
        "stale"
    );
    assert!(store.replace_subject(&next, subject.version).await.unwrap());
    assert!(
        !store.replace_subject(&next, subject.version).await.unwrap(),
        "used up"
    );
    assert_eq!(store.subject("S1").await.unwrap().unwrap().name, "Changed");
    let stored = store.link(&link).await.unwrap().unwrap();
    let mut next = stored.clone();
    next.linked_to = Some("x".into());
    next.version += 1;
    assert!(
        !store.replace_link(&next, stored.version + 1).await.unwrap(),
        "stale"
    );
    assert!(store.replace_link(&next, stored.version).await.unwrap());
    assert!(
        !store.replace_link(&next, stored.version).await.unwrap(),
        "used up"
    );
}
