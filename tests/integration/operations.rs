//! Operations: client addresses behind proxies, metrics, graceful shutdown
//! and backups.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn failed_login_from(app: &TestApp, forwarded_for: &str) -> StatusCode {
    app.client
        .post(app.url("/auth"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"username": "nobody@example.org", "password": "wrong wrong"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.login_ip_limit = 3;
    let app = spawn_app_with(dir, config).await;
    for i in 0..3 {
        assert_eq!(
            failed_login_from(&app, &format!("198.51.100.{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Every request came from 127.0.0.1, whatever the header claimed.
    assert_eq!(
        failed_login_from(&app, "198.51.100.99").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_real_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.login_ip_limit = 3;
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn_app_with(dir, config).await;
    for i in 0..3 {
        assert_eq!(
            failed_login_from(&app, "198.51.100.1").await,
            StatusCode::UNAUTHORIZED,
            "attempt {i}"
        );
    }
    assert_eq!(
        failed_login_from(&app, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is counted on its own; a fake
    // address it prepends is skipped.
    assert_eq!(
        failed_login_from(&app, "6.6.6.6, 198.51.100.2").await,
        StatusCode::UNAUTHORIZED
    );
}

/// The value of one sample line of the Prometheus text, 0 if absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_and_logins() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let before = app.get("/metrics", None).await.text().await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/user/{ADMIN}"), Some(&token))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let wrong = json!({"username": ADMIN, "password": "wrong password"});
    app.post_json("/auth", None, &wrong).await;
    app.get("/no/such/page", None).await;

    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let after = r.text().await.unwrap();
    let user_reads =
        r#"idm_http_requests_total{method="GET",route="/user/{username}",status="200"}"#;
    assert_eq!(
        sample(&after, user_reads) - sample(&before, user_reads),
        3.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, r#"idm_logins_total{result="ok"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(sample(&after, r#"idm_logins_total{result="failed"}"#), 1.0);
    assert!(
        sample(
            &after,
            r#"idm_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ) >= 1.0
    );
    assert!(after.contains("idm_http_request_duration_seconds_bucket"));
    // Paths with ids never become labels (no per-user series).
    assert!(!after.contains(ADMIN), "{after}");
}

#[tokio::test]
async fn metrics_can_be_restricted_or_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.metrics_allow = vec!["10.0.0.0/8".parse().unwrap()];
    let app = spawn_app_with(dir, config).await;
    expect_error(app.get("/metrics", None).await, StatusCode::FORBIDDEN).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.metrics_enabled = false;
    let app = spawn_app_with(dir, config).await;
    expect_error(app.get("/metrics", None).await, StatusCode::NOT_FOUND).await;
}
