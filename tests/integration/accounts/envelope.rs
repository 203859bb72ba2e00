//! The probes, the JSON error envelope for every malformed request and
//! framework error, and the security headers on every response.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::STAFF;

#[tokio::test]
async fn root_status_and_probes_answer() {
    let app = spawn_app().await;
    let root: Value = app.get("/", None).await.json().await.unwrap();
    assert_eq!(root, json!({"status": "ready"}));
    let status: Value = app.get("/status", None).await.json().await.unwrap();
    assert_eq!(status, json!({"data": {"db": "ok", "mail": "ok"}}));
    let healthz = app.get("/healthz", None).await;
    assert_eq!(healthz.status(), StatusCode::OK);
    assert_eq!(
        healthz.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let readyz = app.get("/readyz", None).await;
    assert_eq!(readyz.status(), StatusCode::OK);
    assert_eq!(readyz.json::<Value>().await.unwrap()["data"]["db"], "ok");
}

#[tokio::test]
async fn malformed_requests_get_json_4xx_never_500() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let auth = format!("JWT {token}");
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(app.url("/user"))
            .header("Authorization", auth.clone())
            .header("Content-Type", content_type)
            .body(body)
    };
    let big_password = json!({"username": STAFF, "password": "p".repeat(100 * 1024)}).to_string();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "malformed",
            post(b"{\"username\": ".to_vec(), "application/json"),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "wrong content type",
            post(b"username=a".to_vec(), "application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            "non-object",
            post(b"[1, 2]".to_vec(), "application/json"),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            "empty",
            post(Vec::new(), "application/json"),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            "1 MB body",
            post(vec![b' '; 1024 * 1024], "application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too large",
        ),
        (
            "100 KB password",
            post(big_password.into_bytes(), "application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too large",
        ),
    ];
    for (name, request, status, needle) in cases {
        let r = request.send().await.unwrap();
        let message = expect_error(r, status).await;
        assert!(message.contains(needle), "{name}: {message}");
    }
    // A 60 KB password fits the body limit and is refused by the policy.
    let r = app
        .post_json(
            "/user",
            Some(&token),
            &json!({"username": STAFF, "password": "p".repeat(60 * 1024)}),
        )
        .await;
    assert!(
        expect_error(r, StatusCode::BAD_REQUEST)
            .await
            .contains("1024 bytes")
    );
    let r = app
        .post_json(
            "/auth",
            None,
            &json!({"username": ADMIN, "password": "p".repeat(60 * 1024)}),
        )
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn framework_errors_use_the_envelope() {
    let app = spawn_app().await;
    expect_error(app.get("/no/such/path", None).await, StatusCode::NOT_FOUND).await;
    let r = app.client.patch(app.url("/user")).send().await.unwrap();
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    assert!(
        allow.contains("GET") && allow.contains("POST") && allow.contains("DELETE"),
        "{allow}"
    );
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED).await;
    let r = app.client.get(app.url("/auth")).send().await.unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED).await;
    // Page routes answer a wrong method like the API, Allow included.
    let r = app
        .client
        .get(app.url("/users/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED).await;
    // An unsafe method a page does not take is a 405 too, not a form post
    // judged by the CSRF check (which would send it to the sign-in page).
    for (path, allowed) in [("/", "GET,HEAD"), ("/login", "GET,HEAD,POST")] {
        let r = app.client.put(app.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["allow"], allowed, "PUT {path}");
        expect_error(r, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    let r = app
        .client
        .get(app.url("/user?offset=minus-one"))
        .header("Authorization", "JWT x")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in ["/", "/init", "/nope"] {
        let r = app.get(path, None).await;
        let h = r.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("object-src 'none'")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.contains_key("referrer-policy"));
        assert!(!h["x-request-id"].is_empty());
    }
}

/// With an https `public_url` every response (API, page, static file,
/// error, oversized body) tells browsers to use https only; over plain
/// http none does.
#[tokio::test]
async fn hsts_on_every_response_exactly_when_served_over_https() {
    let requests = |app: &TestApp| {
        let big = "x".repeat(100 * 1024);
        vec![
            app.client.get(app.url("/")),
            app.client.get(app.url("/init")),
            app.client.get(app.url("/static/app.js")),
            app.client.get(app.url("/nope")),
            app.client
                .post(app.url("/auth"))
                .json(&json!({"username": "x@example.org", "password": "wrong"})),
            app.client
                .post(app.url("/auth"))
                .header("content-type", "application/json")
                .body(big),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.public_url = "https://idm.test".into();
    let app = spawn_app_with(dir, config).await;
    for request in requests(&app) {
        let r = request.send().await.unwrap();
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{} {}",
            r.url(),
            r.status()
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.public_url = "https://idm.test".into();
    config.hsts_max_age_secs = 63_072_000;
    config.hsts_include_subdomains = false;
    let app = spawn_app_with(dir, config).await;
    let r = app.get("/", None).await;
    assert_eq!(r.headers()["strict-transport-security"], "max-age=63072000");

    for (public_url, max_age) in [("http://idm.test", 31_536_000), ("https://idm.test", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir);
        config.public_url = public_url.into();
        config.hsts_max_age_secs = max_age;
        let app = spawn_app_with(dir, config).await;
        for request in requests(&app) {
            let r = request.send().await.unwrap();
            assert!(
                !r.headers().contains_key("strict-transport-security"),
                "{public_url} max-age {max_age}: {} {}",
                r.url(),
                r.status()
            );
        }
    }
}
