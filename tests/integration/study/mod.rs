//! The study side over real HTTP: subjects, links, link JWTs, `/establish`
//! and audits (SPEC sections 4-6).

mod access;
mod app_path;
mod establish;
mod links;
mod subjects;
mod texts;

use crate::common::*;
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

/// A consented subject, a link and its issued JWT.
async fn issued_link(app: &TestApp) -> (String, String, String) {
    let token = app.admin_token().await;
    let link = consented_link(app, &token, "S1").await;
    let jwt = fetch_jwt(app, &token, &link).await;
    (token, link, jwt)
}
