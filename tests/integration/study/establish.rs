//! `POST /establish`: every refusal with its status in the order the
//! spec checks them, exactly one winner among concurrent attempts, and
//! the enrolment date it derives.

use crate::common::*;
use chrono::Duration;
use idm::clock::{OsRandom, random_hex};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    PATIENT, audit_actions, consented_link, data, establish, fetch_jwt, issued_link, link_secret,
    new_link, staff_key,
};

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
