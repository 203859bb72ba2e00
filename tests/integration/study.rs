//! The study side over real HTTP: subjects, links, link JWTs, `/establish`
//! and audits (SPEC sections 4-6).

use std::collections::HashSet;

use crate::common::*;
use chrono::Duration;
use idm::clock::{OsRandom, random_hex};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const PATIENT: &str = r#"{"resourceType":"Patient","identifier":[{"system":"urn:c3pro:app","value":"app-install-1"}]}"#;

async fn data(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK, "expected 200");
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn create_subject(app: &TestApp, token: &str, sssid: &str, name: &str) -> Value {
    let r = app
        .post_json(
            "/subject",
            Some(token),
            &json!({"sssid": sssid, "name": name, "bday": "1980-02-29", "email": "p@example.org"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["data"].clone()
}

async fn consent(app: &TestApp, token: &str, sssid: &str) {
    let r = app
        .put_json(
            &format!("/subject/{sssid}"),
            Some(token),
            &json!({"sssid": sssid, "date_consented": "2026-11-28T12:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// A consented subject with one link; returns the link id.
async fn consented_link(app: &TestApp, token: &str, sssid: &str) -> String {
    create_subject(app, token, sssid, "Ada Lovelace").await;
    consent(app, token, sssid).await;
    new_link(app, token, sssid).await
}

async fn new_link(app: &TestApp, token: &str, sssid: &str) -> String {
    let r = app
        .post_json(&format!("/subject/{sssid}/links"), Some(token), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    body["data"]["_id"].as_str().unwrap().to_owned()
}

async fn fetch_jwt(app: &TestApp, token: &str, link: &str) -> String {
    let r = app
        .client
        .get(app.url(&format!("/link/{link}/jwt")))
        .header("Authorization", format!("JWT {token}"))
        .header("Accept", "application/jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    r.text().await.unwrap()
}

async fn establish(app: &TestApp, authorization: Option<&str>, body: &str) -> Response {
    let mut req = app
        .client
        .post(app.url("/establish"))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    req.send().await.unwrap()
}

fn link_secret(app: &TestApp) -> String {
    app.config
        .link_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn staff_key(app: &TestApp) -> String {
    app.config
        .token_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn decode_unverified(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn audit_actions(app: &TestApp, token: &str, sssid: &str) -> Vec<(String, Value)> {
    let entries = data(
        app.get(&format!("/subject/{sssid}/audits"), Some(token))
            .await,
    )
    .await;
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor"].clone()))
        .collect()
}

// ---------------------------------------------------------------- the app path

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

// ---------------------------------------------------------------- /establish answers

/// A consented subject, a link and its issued JWT.
async fn issued_link(app: &TestApp) -> (String, String, String) {
    let token = app.admin_token().await;
    let link = consented_link(app, &token, "S1").await;
    let jwt = fetch_jwt(app, &token, &link).await;
    (token, link, jwt)
}

#[tokio::test]
async fn establish_without_authorization_is_401() {
    let app = spawn_app().await;
    issued_link(&app).await;
    let r = establish(&app, None, PATIENT).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn establish_with_another_scheme_is_406() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    for header in [format!("Basic {jwt}"), format!("Token {jwt}"), jwt.clone()] {
        let r = establish(&app, Some(&header), PATIENT).await;
        expect_error(r, StatusCode::NOT_ACCEPTABLE).await;
    }
}

#[tokio::test]
async fn establish_with_a_bad_signature_is_403() {
    let app = spawn_app().await;
    let (staff_token, _, jwt) = issued_link(&app).await;
    let claims = decode_unverified(&jwt);
    let with_staff_key = sign(&claims, &staff_key(&app));
    let with_other_key = sign(&claims, &random_hex(&OsRandom, 32));
    let mut tampered = jwt.clone();
    tampered.pop();
    tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        with_staff_key,
        with_other_key,
        tampered,
        staff_token,
        "garbage".into(),
    ] {
        let r = establish(&app, Some(&format!("Bearer {bad}")), PATIENT).await;
        expect_error(r, StatusCode::FORBIDDEN).await;
    }
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "the real token still works"
    );
}

#[tokio::test]
async fn establish_with_a_wrong_audience_or_issuer_is_403() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    let claims = decode_unverified(&jwt);
    for (field, value) in [
        ("aud", "https://evil.example"),
        ("iss", "https://evil.example"),
    ] {
        let mut forged = claims.clone();
        forged[field] = json!(value);
        let forged = sign(&forged, &link_secret(&app));
        let r = establish(&app, Some(&format!("Bearer {forged}")), PATIENT).await;
        expect_error(r, StatusCode::FORBIDDEN).await;
    }
}

#[tokio::test]
async fn establish_with_an_unknown_jti_is_403() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    let mut forged = decode_unverified(&jwt);
    forged["jti"] = json!(random_hex(&OsRandom, 16));
    let forged = sign(&forged, &link_secret(&app));
    let r = establish(&app, Some(&format!("Bearer {forged}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn establish_with_an_expired_token_is_403() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    app.clock.advance(Duration::hours(24));
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn establish_with_a_self_extended_expiry_is_403() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    app.clock.advance(Duration::hours(25));
    let mut forged = decode_unverified(&jwt);
    forged["exp"] = json!(forged["exp"].as_i64().unwrap() + 7 * 24 * 3600);
    let forged = sign(&forged, &link_secret(&app));
    let r = establish(&app, Some(&format!("Bearer {forged}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn establish_of_an_established_link_is_409_before_the_body_is_read() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    let bearer = format!("Bearer {jwt}");
    assert_eq!(
        establish(&app, Some(&bearer), PATIENT).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = establish(&app, Some(&bearer), "not even json").await;
    expect_error(r, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn establish_checks_the_token_before_the_body() {
    let app = spawn_app().await;
    issued_link(&app).await;
    let r = establish(&app, Some("Bearer garbage"), "not even json").await;
    expect_error(r, StatusCode::FORBIDDEN).await;
}

/// Each answer of SPEC section 5 wins over every later one, whatever else
/// is wrong with the request: the header, then the token and its link, and
/// only then the body.
#[tokio::test]
async fn establish_answers_the_first_problem_in_spec_order() {
    let app = spawn_app().await;
    let (staff_token, _, valid) = issued_link(&app).await;
    // A withdrawn link, of another subject.
    let withdrawn_link = consented_link(&app, &staff_token, "S2").await;
    let withdrawn = fetch_jwt(&app, &staff_token, &withdrawn_link).await;
    let r = app
        .put_json(
            &format!("/link/{withdrawn_link}"),
            Some(&staff_token),
            &json!({"withdrawn_on": "2026-11-28T13:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let established_link = new_link(&app, &staff_token, "S1").await;
    let established = fetch_jwt(&app, &staff_token, &established_link).await;
    let r = establish(&app, Some(&format!("Bearer {established}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut unknown = decode_unverified(&valid);
    unknown["jti"] = json!(random_hex(&OsRandom, 16));
    let unknown = sign(&unknown, &link_secret(&app));

    const NOT_A_PATIENT: &str = "not even json";
    const NO_IDENTIFIER: &str = r#"{"resourceType":"Patient"}"#;
    let bad_bodies = [
        NOT_A_PATIENT,
        "[]",
        r#"{"resourceType":"Observation","identifier":[{"value":"x"}]}"#,
        NO_IDENTIFIER,
        r#"{"resourceType":"Patient","identifier":[{"value":"  "}]}"#,
    ];
    let other_scheme = "use Authorization: Bearer <link token>";
    let invalid = "invalid or expired link token";
    let refusals: Vec<(Option<String>, StatusCode, &str)> = vec![
        (None, StatusCode::UNAUTHORIZED, "Authorization Required"),
        (
            Some(format!("Basic {valid}")),
            StatusCode::NOT_ACCEPTABLE,
            other_scheme,
        ),
        (
            Some(valid.clone()),
            StatusCode::NOT_ACCEPTABLE,
            other_scheme,
        ),
        (Some("Bearer".into()), StatusCode::FORBIDDEN, invalid),
        (
            Some("Bearer garbage".into()),
            StatusCode::FORBIDDEN,
            invalid,
        ),
        (
            Some(format!("Bearer {staff_token}")),
            StatusCode::FORBIDDEN,
            invalid,
        ),
        (
            Some(format!("Bearer {unknown}")),
            StatusCode::FORBIDDEN,
            invalid,
        ),
        (
            Some(format!("JWT {withdrawn}")),
            StatusCode::FORBIDDEN,
            "this link has been withdrawn",
        ),
        (
            Some(format!("Bearer {established}")),
            StatusCode::CONFLICT,
            "this link has already been established",
        ),
    ];
    for (header, status, message) in &refusals {
        for body in bad_bodies {
            let r = establish(&app, header.as_deref(), body).await;
            assert_eq!(
                expect_error(r, *status).await,
                *message,
                "{header:?} with {body}"
            );
        }
    }

    let unreadable = app
        .client
        .post(app.url("/establish"))
        .header(
            "Authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        )
        .body(NOT_A_PATIENT)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(unreadable, StatusCode::NOT_ACCEPTABLE).await,
        "malformed Authorization header"
    );

    // A good token reaches the body, whose two problems read differently.
    let bearer = format!("Bearer {valid}");
    let r = establish(&app, Some(&bearer), NOT_A_PATIENT).await;
    assert_eq!(
        expect_error(r, StatusCode::NOT_ACCEPTABLE).await,
        r#"the body must be a FHIR Patient: a JSON object with "resourceType":"Patient""#
    );
    let r = establish(&app, Some(&bearer), NO_IDENTIFIER).await;
    assert_eq!(
        expect_error(r, StatusCode::NOT_ACCEPTABLE).await,
        "the Patient needs an identifier[0].value"
    );

    // Once expired, the same token is refused before the body is looked at.
    app.clock.advance(Duration::hours(24));
    for body in bad_bodies {
        let r = establish(&app, Some(&bearer), body).await;
        assert_eq!(
            expect_error(r, StatusCode::FORBIDDEN).await,
            invalid,
            "{body}"
        );
    }
}

#[tokio::test]
async fn establish_with_a_non_patient_body_is_406() {
    let app = spawn_app().await;
    let (token, link, jwt) = issued_link(&app).await;
    let bearer = format!("Bearer {jwt}");
    for body in [
        "",
        "not json",
        "[]",
        r#"{"resourceType":"Observation","identifier":[{"value":"x"}]}"#,
        r#"{"identifier":[{"value":"x"}]}"#,
    ] {
        let r = establish(&app, Some(&bearer), body).await;
        expect_error(r, StatusCode::NOT_ACCEPTABLE).await;
    }
    let stored = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
    assert!(stored.get("linked_on").is_none(), "nothing was linked");
}

#[tokio::test]
async fn establish_without_an_identifier_value_is_406() {
    let app = spawn_app().await;
    let (_, _, jwt) = issued_link(&app).await;
    let bearer = format!("Bearer {jwt}");
    for body in [
        r#"{"resourceType":"Patient"}"#,
        r#"{"resourceType":"Patient","identifier":[]}"#,
        r#"{"resourceType":"Patient","identifier":[{"system":"urn:x"}]}"#,
        r#"{"resourceType":"Patient","identifier":[{"value":"  "}]}"#,
    ] {
        let r = establish(&app, Some(&bearer), body).await;
        expect_error(r, StatusCode::NOT_ACCEPTABLE).await;
    }
    let r = establish(&app, Some(&bearer), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn establish_of_a_withdrawn_link_is_refused() {
    let app = spawn_app().await;
    let (token, link, jwt) = issued_link(&app).await;
    let r = app
        .put_json(
            &format!("/link/{link}"),
            Some(&token),
            &json!({"withdrawn_on": "2026-11-28T13:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_establishes_exactly_one_wins() {
    let app = spawn_app().await;
    let (token, link, jwt) = issued_link(&app).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (client, url, start) = (app.client.clone(), app.url("/establish"), start.clone());
            let bearer = format!("Bearer {jwt}");
            let body = PATIENT.replace("app-install-1", &format!("install-{i}"));
            tokio::spawn(async move {
                start.wait().await;
                let r = client
                    .post(url)
                    .header("Authorization", bearer)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.status()
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
    assert_eq!((wins, conflicts), (1, 49), "{statuses:?}");
    let actions = audit_actions(&app, &token, "S1").await;
    let linked = actions
        .iter()
        .filter(|(a, _)| a.starts_with("[Link] link to"))
        .count();
    assert_eq!(linked, 1);
    let stored = data(app.get(&format!("/link/{link}"), Some(&token)).await).await;
    assert!(
        stored["linked_to"]
            .as_str()
            .unwrap()
            .starts_with("install-")
    );
}

// ---------------------------------------------------------------- subjects

#[tokio::test]
async fn set_once_dates_same_value_is_a_no_op_and_another_is_409() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    consent(&app, &token, "S1").await;
    let before = data(app.get("/subject/S1", Some(&token)).await).await;
    app.clock.advance(Duration::minutes(5));
    // The same instant, written differently, is the same value.
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "date_consented": "2026-11-28T13:00:00+01:00"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(after["changed"], before["changed"], "nothing was written");
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_consented": "2026-11-29T12:00:00Z"}),
        )
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "Subject has already been consented");
    for (field, word) in [
        ("date_invited", "invited"),
        ("date_enrolled", "enrolled"),
        ("date_withdrawn", "withdrawn"),
    ] {
        let set = json!({field: "2026-11-01"});
        let r = app.put_json("/subject/S1", Some(&token), &set).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{field}");
        let r = app.put_json("/subject/S1", Some(&token), &set).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{field} again");
        let other = json!({field: "2026-11-02"});
        let r = app.put_json("/subject/S1", Some(&token), &other).await;
        let message = expect_error(r, StatusCode::CONFLICT).await;
        assert_eq!(message, format!("Subject has already been {word}"));
    }
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(
        subject["date_invited"], "2026-11-01T00:00:00Z",
        "a bare date is midnight UTC"
    );
    let actions: Vec<String> = audit_actions(&app, &token, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "consented: 2026-11-28T12:00:00Z",
            "invited: 2026-11-01T00:00:00Z",
            "enrolled: 2026-11-01T00:00:00Z",
            "withdrawn: 2026-11-01T00:00:00Z",
        ],
        "no-ops and refusals are not audited"
    );
}

#[tokio::test]
async fn sssid_cannot_change_and_other_fields_can() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .put_json("/subject/S1", Some(&token), &json!({"sssid": "S2"}))
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "SSSID cannot be changed");
    let r = app
        .put_json("/subject/s1", Some(&token), &json!({"name": "x"}))
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "name": "Ada \"Countess\" Lovelace", "bday": "1815-12-10",
                    "email": "ada@example.org", "created": "1999-01-01", "changed": null}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("1900"), "{message}");
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "name": "Ada \"Countess\" Lovelace", "bday": "1915-12-10",
                    "email": null, "created": "1999-01-01", "changed": null}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["name"], "Ada \"Countess\" Lovelace");
    assert_eq!(subject["bday"], "1915-12-10");
    assert_eq!(subject["email"], Value::Null);
    assert_eq!(
        subject["created"],
        app.at(Duration::zero()),
        "created is server-owned"
    );
    let audits = audit_actions(&app, &token, "S1").await;
    assert_eq!(
        audits.last().unwrap().0,
        r#"name: "Ada \"Countess\" Lovelace"; bday: "1915-12-10"; email: """#
    );
}

#[tokio::test]
async fn subject_bodies_are_strict() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .put_json("/subject/S1", Some(&token), &json!({"nmae": "typo"}))
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("nmae"), "{message}");
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "S2", "name": "B", "bday": "1980-01-01", "admin": true}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("admin"), "{message}");
    for bday in [
        json!("1899-12-31"),
        json!("2101-01-01"),
        json!("not a date"),
        json!("1981-02-29"),
        json!(1980),
        json!(""),
    ] {
        let r = app
            .post_json(
                "/subject",
                Some(&token),
                &json!({"sssid": "S2", "name": "B", "bday": bday}),
            )
            .await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("bday"), "{bday}: {message}");
        let r = app
            .put_json("/subject/S1", Some(&token), &json!({"bday": bday}))
            .await;
        expect_error(r, StatusCode::BAD_REQUEST).await;
    }
    for missing in ["sssid", "name", "bday"] {
        let mut body = json!({"sssid": "S3", "name": "C", "bday": "1980-01-01"});
        body.as_object_mut().unwrap().remove(missing);
        let r = app.post_json("/subject", Some(&token), &body).await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(missing), "{message}");
    }
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_consented": "soon"}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("date_consented"), "{message}");
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "x".repeat(65), "name": "B", "bday": "1980-01-01"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn duplicate_sssid_is_409_and_sssids_are_case_sensitive() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "S1", "name": "Other", "bday": "1990-01-01"}),
        )
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "this SSSID is already taken");
    create_subject(&app, &token, "s1", "Lower").await;
    assert_eq!(
        data(app.get("/subject/s1", Some(&token)).await).await["name"],
        "Lower"
    );
    assert_eq!(
        data(app.get("/subject/S1", Some(&token)).await).await["name"],
        "Ada"
    );
    let r = app.get("/subject/S9", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn search_is_literal_and_case_insensitive_on_names() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (sssid, name) in [
        ("A1", "Anna (Smith)"),
        ("A2", "Regex .* Fan"),
        ("A3", "ANNA Jones"),
        ("A4", "Bob 100% Sure"),
        ("A5", "under_score"),
        ("B1", "Björn Ärger"),
    ] {
        create_subject(&app, &token, sssid, name).await;
    }
    let search = |q: &str| format!("search={}", urlencode(q));
    assert_eq!(
        app.list_subjects(&token, &search("(")).await,
        (vec!["A1".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search(".*")).await,
        (vec!["A2".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("%")).await,
        (vec!["A4".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("_")).await,
        (vec!["A5".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("[a-z]")).await,
        (vec![], 0)
    );
    assert_eq!(
        app.list_subjects(&token, &search("anna")).await.0,
        ["A1", "A3"],
        "case-insensitive"
    );
    assert_eq!(
        app.list_subjects(&token, &search("äRG")).await.0,
        ["B1"],
        "beyond ASCII"
    );
    assert_eq!(
        app.list_subjects(&token, &search("A")).await.0,
        ["A1", "A2", "A3", "A4", "A5"],
        "sssid prefix or name; \"Björn Ärger\" has no a"
    );
    assert_eq!(
        app.list_subjects(&token, &search("B")).await.0,
        ["A4", "B1"]
    );
    assert_eq!(
        app.list_subjects(&token, &search("1980-02")).await.1,
        6,
        "bday prefix"
    );
    assert_eq!(
        app.list_subjects(&token, &search("02-29")).await.1,
        0,
        "bday is a prefix"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn listing_pages_orders_and_filters_by_status() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (i, name) in ["delta", "Alpha", "charlie", "Bravo", "echo"]
        .iter()
        .enumerate()
    {
        create_subject(&app, &token, &format!("S{i}"), name).await;
        app.clock.advance(Duration::seconds(1));
    }
    let (all, total) = app.list_subjects(&token, "").await;
    assert_eq!((all.len(), total), (5, 5));
    assert_eq!(
        app.list_subjects(&token, "ordercol=name&orderdir=ASC")
            .await
            .0,
        ["S1", "S3", "S2", "S0", "S4"]
    );
    assert_eq!(
        app.list_subjects(&token, "ordercol=created&orderdir=DESC&offset=1&perpage=2")
            .await,
        (vec!["S3".into(), "S2".into()], 5)
    );
    let put = |sssid: &str, body: Value| {
        let path = format!("/subject/{sssid}");
        let app = &app;
        let token = &token;
        async move {
            let r = app.put_json(&path, Some(token), &body).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    };
    put("S0", json!({"date_invited": "2026-11-01"})).await;
    put(
        "S1",
        json!({"date_invited": "2026-11-01", "date_consented": "2026-11-02"}),
    )
    .await;
    put(
        "S2",
        json!({"date_consented": "2026-11-02", "date_enrolled": "2026-11-03"}),
    )
    .await;
    put(
        "S3",
        json!({"date_enrolled": "2026-11-03", "date_withdrawn": "2026-11-04"}),
    )
    .await;
    for (status, expected) in [
        // Nothing recorded yet (a consent without invitation is consented).
        ("not-invited", vec!["S4"]),
        ("invited", vec!["S0"]),
        ("CONSENTED", vec!["S1"]),
        ("enrolled", vec!["S2"]),
        ("withdrawn", vec!["S3"]),
    ] {
        let (sssids, total) = app.list_subjects(&token, &format!("status={status}")).await;
        assert_eq!(sssids, expected, "{status}");
        assert_eq!(total, 1);
    }
    assert_eq!(
        app.list_subjects(&token, "status=&ordercol=&orderdir=")
            .await
            .1,
        5
    );
    for bad in [
        "orderdir=up",
        "ordercol=password",
        "status=lost",
        "perpage=0",
        "offset=x",
    ] {
        let r = app.get(&format!("/subject?{bad}"), Some(&token)).await;
        expect_error(r, StatusCode::BAD_REQUEST).await;
    }
    let r = app.get("/subject?search=nobody", Some(&token)).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"data": []}));
}

// ---------------------------------------------------------------- links by staff

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

// ---------------------------------------------------------------- stored texts

/// Texts that would split or disguise a line of the log or the audit trail.
const LINE_BREAKERS: [&str; 7] = [
    "a\r\nFAKE",
    "a\nFAKE",
    "a\rFAKE",
    "a\u{2028}FAKE",
    "a\u{2029}FAKE",
    "a\u{85}FAKE",
    "a\u{202E}FAKE",
];

async fn expect_line_break_refused(r: Response, field: &str, sent: &str) {
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(
        message.starts_with(&format!("{field} must not contain control characters")),
        "{field} = {sent:?}: {message}"
    );
}

#[tokio::test]
async fn subject_texts_with_line_breaks_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada Lovelace").await;
    for bad in LINE_BREAKERS {
        let email = format!("{bad}@example.org");
        for (field, body) in [
            (
                "sssid",
                json!({"sssid": bad, "name": "Ada", "bday": "1980-02-29"}),
            ),
            (
                "name",
                json!({"sssid": "S2", "name": bad, "bday": "1980-02-29"}),
            ),
            (
                "email",
                json!({"sssid": "S2", "name": "Ada", "bday": "1980-02-29", "email": email}),
            ),
        ] {
            let r = app.post_json("/subject", Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
        for (field, body) in [
            ("name", json!({"name": bad})),
            ("email", json!({"email": email})),
        ] {
            let r = app.put_json("/subject/S1", Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
    }
    let (sssids, total) = app.list_subjects(&token, "").await;
    assert_eq!((sssids, total), (vec!["S1".to_owned()], 1));
    let actions = audit_actions(&app, &token, "S1").await;
    assert_eq!(actions, [("create".to_owned(), json!(ADMIN))]);
}

#[tokio::test]
async fn link_texts_with_line_breaks_are_refused_by_hand_and_at_establish() {
    let app = spawn_app().await;
    let (token, link, jwt) = issued_link(&app).await;
    let path = format!("/link/{link}");
    let bearer = format!("Bearer {jwt}");
    for bad in LINE_BREAKERS {
        for (field, body) in [
            ("linked_to", json!({"linked_to": bad})),
            (
                "linked_system",
                json!({"linked_to": "dev-7", "linked_system": bad}),
            ),
        ] {
            let r = app.put_json(&path, Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
        for (field, identifier) in [
            (
                "identifier[0].value",
                json!({"system": "urn:app", "value": bad}),
            ),
            (
                "identifier[0].system",
                json!({"system": bad, "value": "app-1"}),
            ),
        ] {
            let patient = json!({"resourceType": "Patient", "identifier": [identifier]});
            let r = establish(&app, Some(&bearer), &patient.to_string()).await;
            expect_line_break_refused(r, field, bad).await;
        }
    }
    let stored = data(app.get(&path, Some(&token)).await).await;
    assert!(stored.get("linked_on").is_none(), "nothing was linked");
    // The refusals left the link usable.
    let r = establish(&app, Some(&bearer), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let actions = audit_actions(&app, &token, "S1").await;
    assert!(
        actions.iter().all(|(action, _)| !action.contains("FAKE")),
        "{actions:?}"
    );
    assert!(actions.contains(&("[Link] link to app-install-1".into(), Value::Null)));
}

// ---------------------------------------------------------------- access

#[tokio::test]
async fn study_endpoints_need_a_staff_token() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;
    let routes = [
        ("GET", "/subject".to_owned()),
        ("POST", "/subject".to_owned()),
        ("GET", "/subject/S1".to_owned()),
        ("PUT", "/subject/S1".to_owned()),
        ("GET", "/subject/S1/audits".to_owned()),
        ("GET", "/subject/S1/links".to_owned()),
        ("POST", "/subject/S1/links".to_owned()),
        ("GET", format!("/link/{link}")),
        ("PUT", format!("/link/{link}")),
        ("GET", format!("/link/{link}/jwt")),
    ];
    for (method, path) in &routes {
        for auth in [
            None,
            Some(format!("Bearer {jwt}")),
            Some("JWT nonsense".into()),
        ] {
            let mut req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({"sssid": "S9", "name": "X", "bday": "1980-01-01"}));
            if let Some(value) = &auth {
                req = req.header("Authorization", value);
            }
            let r = req.send().await.unwrap();
            let message = expect_error(r, StatusCode::UNAUTHORIZED).await;
            if auth.is_none() {
                assert_eq!(message, "Authorization Required", "{method} {path}");
            }
        }
    }
    let r = app.get("/subject/S9", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
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

/// The derived enrolment date is stored and audited at a precision both
/// stores keep (milliseconds), whatever fraction the clock shows.
#[tokio::test]
async fn derived_enrolment_date_is_audited_as_stored() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;
    app.clock
        .advance(chrono::Duration::nanoseconds(123_456_789));
    let r = establish(&app, Some(&format!("Bearer {jwt}")), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    let enrolled = subject["date_enrolled"].as_str().unwrap().to_owned();
    assert_eq!(enrolled, app.at(Duration::milliseconds(123)));
    let audits = audit_actions(&app, &token, "S1").await;
    assert!(
        audits
            .iter()
            .any(|(a, _)| *a == format!("enrolled: {enrolled}")),
        "{audits:?}"
    );
}
