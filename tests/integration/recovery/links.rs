//! Which links work: malformed, expired, replaced and raced links fail,
//! and a completed reset lifts the account's login lockouts.

use crate::common::*;
use chrono::Duration as ChronoDuration;
use reqwest::StatusCode;

use super::{ALICE, NEW_PASSWORD, OLD_PASSWORD, TestAppExt, assert_invalid_link_page, smtp_app};

/// A user who locked their account by mistyping, then reset the password
/// through the mailed link, can log in with the new one at once; the
/// lockout stays for anyone still guessing before that.
#[tokio::test]
async fn a_completed_reset_lifts_the_login_lockout_of_the_account() {
    let (app, smtp) = smtp_app(|config| config.login_account_limit = 3).await;
    for _ in 0..3 {
        assert_eq!(
            app.try_login(ALICE, "mistyped password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked out, even with the right password"
    );

    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "asking for a link alone lifts nothing"
    );
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

/// The reset lifts the account's lockout everywhere: the blocks of every
/// address that used up its attempts, and the account-wide ceiling.
#[tokio::test]
async fn a_completed_reset_lifts_the_lockout_on_every_address() {
    let (app, smtp) = smtp_app(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.login_account_limit = 2;
        config.login_account_ceiling = 4;
    })
    .await;
    let login = |password: &str| serde_json::json!({"username": ALICE, "password": password});
    let addresses = ["203.0.113.1", "203.0.113.2"];
    for address in addresses {
        for _ in 0..2 {
            let answer = login_from(&app, Some(address), &login("mistyped password")).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
    }
    // Both addresses used up their attempts, and together the ceiling.
    for address in addresses.into_iter().chain(["198.51.100.7"]) {
        let answer = login_from(&app, Some(address), &login(OLD_PASSWORD)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{address}");
    }

    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Each address in turn: a login on one does not clear the others.
    for address in addresses {
        let answer = login_from(&app, Some(address), &login(NEW_PASSWORD)).await;
        assert_eq!(answer.status, StatusCode::OK, "{address}");
    }
}

#[tokio::test]
async fn malformed_and_missing_keys_get_the_invalid_link_page() {
    let (app, _smtp) = smtp_app(|_| {}).await;
    for key in ["", "abc", &"g".repeat(64), &"0".repeat(64)] {
        let r = app.reset_page(key).await;
        let status = r.status();
        assert_invalid_link_page(status, &r.text().await.unwrap());
        let r = app.submit_reset(key, NEW_PASSWORD, NEW_PASSWORD).await;
        let status = r.status();
        assert_invalid_link_page(status, &r.text().await.unwrap());
    }
}

#[tokio::test]
async fn an_expired_link_fails() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();

    app.clock
        .advance(ChronoDuration::hours(2) - ChronoDuration::seconds(1));
    assert_eq!(app.reset_page(&key).await.status(), StatusCode::OK);
    app.clock.advance(ChronoDuration::seconds(1));
    let r = app.reset_page(&key).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    assert_eq!(app.try_login(ALICE, OLD_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn a_newer_request_invalidates_the_older_link() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    smtp.wait_for(1).await;
    app.iforgot(ALICE).await;
    let mails = smtp.wait_for(2).await;
    let (older, newer) = (mails[0].reset_key(), mails[1].reset_key());
    assert_ne!(older, newer);

    let r = app.submit_reset(&older, NEW_PASSWORD, NEW_PASSWORD).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    let r = app.submit_reset(&newer, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_submissions_of_one_link_succeed_once() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();
    let csrf = app.csrf().await;
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let password = format!("{NEW_PASSWORD} {i}");
            let request = app.client.post(app.url("/reset")).form(&[
                ("csrf_token", csrf.as_str()),
                ("k", key.as_str()),
                ("password", &password),
                ("password2", &password),
            ]);
            tokio::spawn(async move { (password, request.send().await.unwrap().status()) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let succeeded: Vec<&String> = outcomes
        .iter()
        .filter(|(_, status)| *status == StatusCode::OK)
        .map(|(password, _)| password)
        .collect();
    assert_eq!(succeeded.len(), 1, "{outcomes:?}");
    // The one that was answered OK is the password that took effect.
    for (password, _) in &outcomes {
        let expected = if password == succeeded[0] {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(app.try_login(ALICE, password).await, expected, "{password}");
    }
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
}
