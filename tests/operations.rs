//! Operations: client addresses behind proxies, metrics, graceful shutdown
//! and backups.

mod common;

use common::*;
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
