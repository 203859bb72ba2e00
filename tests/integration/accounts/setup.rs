//! First start: exactly one first admin, and the secrets the service
//! refuses, generates and keeps.

use crate::common::*;
use futures::future::join_all;
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use super::STAFF_PASSWORD;

/// The CSRF token a page carries in its meta tag.
fn csrf_token(page: &str) -> String {
    let marker = r#"name="csrf-token" content=""#;
    let start = page.find(marker).expect("page has a csrf meta tag") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

#[tokio::test]
async fn init_creates_exactly_one_first_admin_under_concurrency() {
    let app = spawn_app().await;
    // One browser session, so every form carries a valid CSRF token: the
    // race is decided by the first-admin rule alone.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = browser
        .get(app.url("/init"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_token(&page);
    let url = app.url("/init");
    let attempts = (0..20).map(|i| {
        let (browser, url, token) = (browser.clone(), url.clone(), token.clone());
        async move {
            let form = [
                ("csrf_token", token),
                ("email", format!("first{i}@example.org")),
                ("password", STAFF_PASSWORD.to_owned()),
                ("password2", STAFF_PASSWORD.to_owned()),
            ];
            browser.post(url).form(&form).send().await.unwrap().status()
        }
    });
    let statuses = join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let all = app
        .state
        .services
        .users
        .list(
            &idm::service::Context::system(),
            idm::service::listing::UserListQuery {
                search: None,
                paging: idm::service::listing::Paging::new(0, 100),
            },
        )
        .await
        .unwrap();
    assert_eq!(all.total, 1);
    assert!(all.items[0].admin);
}

#[tokio::test]
async fn weak_or_shared_secrets_refuse_to_start() {
    for (token, link, dev) in [
        (
            "secret",
            "a-long-enough-link-secret-0123456789abcdef",
            false,
        ),
        (
            "short-but-not-listed",
            "a-long-enough-link-secret-0123456789abcdef",
            false,
        ),
        (
            "same-secret-for-both-0123456789abcdef0123",
            "same-secret-for-both-0123456789abcdef0123",
            false,
        ),
        (
            "same-secret-for-both-0123456789abcdef0123",
            "same-secret-for-both-0123456789abcdef0123",
            true,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir);
        config.token_secret = Some(token.into());
        config.link_secret = Some(link.into());
        config.dev_mode = dev;
        assert!(
            idm::Application::build(config).await.is_err(),
            "{token}/{link}/{dev} started"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.token_secret = Some("secret".into());
    config.dev_mode = true;
    assert!(
        idm::Application::build(config).await.is_ok(),
        "dev mode allows weak secrets"
    );
}

#[tokio::test]
async fn generated_secrets_are_private_and_stable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    // Secrets are generated only for the embedded store, whatever backend
    // the suite runs on.
    config.database_url.clear();
    config.token_secret = None;
    config.link_secret = None;
    let first = config.resolve_secrets().unwrap();
    let path = dir.path().join("secrets/token_secret");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = config.resolve_secrets().unwrap();
    assert_eq!(
        first.token_key.expose_secret(),
        again.token_key.expose_secret()
    );
    assert_ne!(
        first.token_key.expose_secret(),
        first.link_secret.expose_secret()
    );
    assert!(first.token_key.expose_secret().len() >= 64);
}
