//! Failed logins: one answer for every failure, and the limits per
//! account, per address and account-wide, also under parallel attempts.

use std::collections::BTreeSet;

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{STAFF, STAFF_PASSWORD};

#[tokio::test]
async fn bad_logins_all_look_the_same() {
    let app = spawn_app().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let bodies = [
        json!({"username": STAFF, "password": "wrong password"}),
        json!({"username": "nobody@example.org", "password": "wrong password"}),
        json!({"username": "nobody@example.org", "password": STAFF_PASSWORD}),
        json!({"username": STAFF}),
        json!({"password": STAFF_PASSWORD}),
        json!({}),
        json!({"username": 5, "password": ["x"]}),
    ];
    let mut seen = BTreeSet::new();
    for body in bodies {
        let r = app.post_json("/auth", None, &body).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
        seen.insert(r.text().await.unwrap());
    }
    assert_eq!(seen.len(), 1, "different answers: {seen:?}");
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_but_not_others() {
    let app = spawn_app().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    app.create_user("colleague@example.org", STAFF_PASSWORD, false)
        .await;
    let wrong = json!({"username": STAFF, "password": "not the password"});
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(app.post_json("/auth", None, &wrong).await.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Now even the right password is refused for a while, with Retry-After.
    let right = json!({"username": STAFF, "password": STAFF_PASSWORD});
    let r = app.post_json("/auth", None, &right).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 300, "{retry_after}");
    expect_error(r, StatusCode::TOO_MANY_REQUESTS).await;

    // Another account from another address logs in meanwhile.
    let other_ip = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = other_ip
        .post(app.url("/auth"))
        .json(&json!({"username": "colleague@example.org", "password": STAFF_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The lockout is short: after the window the real user gets in again.
    app.clock.advance(Duration::seconds(301));
    assert_eq!(
        app.post_json("/auth", None, &right).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_cannot_spray_many_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.login_ip_limit = 5;
    let app = spawn_app_with(dir, config).await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    for i in 0..5 {
        let body = json!({"username": format!("user{i}@example.org"), "password": "guess guess"});
        expect_error(
            app.post_json("/auth", None, &body).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let body = json!({"username": STAFF, "password": STAFF_PASSWORD});
    expect_error(
        app.post_json("/auth", None, &body).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
}

/// A configuration that believes `X-Forwarded-For` from the test client
/// (127.0.0.1), so one test can log in from several client addresses.
fn behind_proxy(dir: &tempfile::TempDir) -> idm::Config {
    let mut config = test_config(dir);
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    config
}

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.7";

fn staff_login(password: &str) -> Value {
    json!({"username": STAFF, "password": password})
}

/// The audit found sending 200 wrong passwords at once got 73
/// answers other than 429 within a window whose limit is 10: the limit was
/// checked before hashing and the failure counted after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_for_one_account_get_at_most_the_limit() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let unknown_user = login_from(
        &app,
        None,
        &json!({"username": "nobody@example.org", "password": "wrong"}),
    )
    .await;
    assert_eq!(unknown_user.status, StatusCode::UNAUTHORIZED);

    let wrong = staff_login("not the password");
    let answers = logins_at_once(&vec![(&app, None, wrong); 200]).await;
    let limit = app.config.login_account_limit as usize;
    assert_eq!(count_status(&answers, StatusCode::UNAUTHORIZED), limit);
    assert_eq!(
        count_status(&answers, StatusCode::TOO_MANY_REQUESTS),
        200 - limit
    );
    for answer in &answers {
        match answer.status {
            // The same body as for an unknown user.
            StatusCode::UNAUTHORIZED => assert_eq!(answer.body, unknown_user.body),
            _ => {
                let retry_after = answer.retry_after.expect("429 has Retry-After");
                assert!((1..=300).contains(&retry_after), "{retry_after}");
            }
        }
    }
    let right = login_from(&app, None, &staff_login(STAFF_PASSWORD)).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);

    // Every failure that was checked is audited, the throttling once, all
    // with the client address and no actor (nobody signed in).
    let trail = account_trail(&app, &admin, STAFF).await;
    let failed = entries_with(&trail, "login failed");
    let throttled = entries_with(&trail, "login throttled");
    assert_eq!(failed.len(), limit, "{trail:?}");
    assert_eq!(throttled.len(), 1, "{trail:?}");
    for entry in failed.iter().chain(&throttled) {
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
        assert!(entry["actor"].is_null(), "{entry}");
    }
}

/// The same race let 163 logins with unknown usernames through an address
/// limit of 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_from_one_address_get_at_most_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.login_ip_limit = 20;
    let app = spawn_app_with(dir, config).await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let logins: Vec<_> = (0..200)
        .map(|i| {
            let body = json!({"username": format!("nobody{i}@example.org"), "password": "guess"});
            (&app, None, body)
        })
        .collect();
    let answers = logins_at_once(&logins).await;
    assert_eq!(count_status(&answers, StatusCode::UNAUTHORIZED), 20);
    assert_eq!(count_status(&answers, StatusCode::TOO_MANY_REQUESTS), 180);
    // The address is done for this window, whatever the account.
    let right = login_from(&app, None, &staff_login(STAFF_PASSWORD)).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.retry_after.is_some());
}

/// An attacker who used up an account's attempts from one address cannot
/// keep its owner out: the owner signs in from another address meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attacker_address_does_not_lock_the_owner_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = behind_proxy(&dir);
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;

    let wrong = staff_login("not the password");
    let answers = logins_at_once(&vec![(&app, Some(ATTACKER), wrong); 200]).await;
    let limit = app.config.login_account_limit as usize;
    assert_eq!(count_status(&answers, StatusCode::UNAUTHORIZED), limit);
    let right = staff_login(STAFF_PASSWORD);
    assert_eq!(
        login_from(&app, Some(ATTACKER), &right).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let owner = login_from(&app, Some(OWNER), &right).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    // The owner's login does not lift the attacker address's block.
    assert_eq!(
        login_from(&app, Some(ATTACKER), &right).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let trail = account_trail(&app, &admin, STAFF).await;
    let logins = entries_with(&trail, "login");
    assert_eq!(logins.len(), 1, "{trail:?}");
    assert_eq!(logins[0]["actor"], STAFF);
    assert_eq!(logins[0]["ip"], OWNER);
    let throttled = entries_with(&trail, "login throttled");
    assert_eq!(throttled.len(), 1, "{trail:?}");
    assert_eq!(throttled[0]["ip"], ATTACKER);
    assert!(
        entries_with(&trail, "login failed")
            .iter()
            .all(|e| e["ip"] == ATTACKER)
    );
}

/// Failures from many addresses add up to the account's ceiling; then every
/// address, the owner's too, gets 429 until the ceiling's window ends.
#[tokio::test]
async fn the_account_ceiling_turns_every_address_away_until_its_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = behind_proxy(&dir);
    config.login_account_limit = 2;
    config.login_account_ceiling = 5;
    config.login_account_ceiling_window_secs = 3600;
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;

    let wrong = staff_login("not the password");
    let mut statuses = Vec::new();
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..2 {
            statuses.push(login_from(&app, Some(address), &wrong).await.status);
        }
    }
    // Five failures are checked; the sixth is the ceiling's.
    assert_eq!(
        statuses,
        [
            [StatusCode::UNAUTHORIZED; 5].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS]
        ]
        .concat()
    );
    let right = staff_login(STAFF_PASSWORD);
    let owner = login_from(&app, Some(OWNER), &right).await;
    assert_eq!(owner.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(owner.retry_after, Some(3600));

    app.clock.advance(Duration::seconds(3599));
    let owner = login_from(&app, Some(OWNER), &right).await;
    assert_eq!(owner.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(owner.retry_after, Some(1));
    app.clock.advance(Duration::seconds(1));
    assert_eq!(
        login_from(&app, Some(OWNER), &right).await.status,
        StatusCode::OK
    );

    // Once per window, however many addresses were turned away.
    let trail = account_trail(&app, &admin, STAFF).await;
    let everywhere = entries_with(&trail, "login throttled for every address");
    assert_eq!(everywhere.len(), 1, "{trail:?}");
    assert_eq!(everywhere[0]["ip"], "203.0.113.3");
}

/// The more failures an account has seen, the longer each address waits
/// once it used up its attempts; the owner's login starts the count afresh.
#[tokio::test]
async fn an_address_waits_longer_the_more_the_account_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = behind_proxy(&dir);
    config.login_account_limit = 2;
    let app = spawn_app_with(dir, config).await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let wrong = staff_login("not the password");
    let use_up = |address: &'static str| {
        let app = &app;
        let wrong = &wrong;
        async move {
            for _ in 0..2 {
                let answer = login_from(app, Some(address), wrong).await;
                assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{address}");
            }
            let answer = login_from(app, Some(address), wrong).await;
            assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{address}");
            answer.retry_after.unwrap()
        }
    };
    // 300 s at first, doubled for every 2 failures of the account.
    assert_eq!(use_up(ATTACKER).await, 300);
    app.clock.advance(Duration::seconds(300));
    assert_eq!(use_up(ATTACKER).await, 600);
    assert_eq!(use_up("203.0.113.67").await, 1200);
    app.clock.advance(Duration::seconds(600));
    assert_eq!(use_up(ATTACKER).await, 2400);

    let right = staff_login(STAFF_PASSWORD);
    assert_eq!(
        login_from(&app, Some(OWNER), &right).await.status,
        StatusCode::OK
    );
    // The owner signed in: the account's failures start again from zero.
    assert_eq!(use_up("203.0.113.68").await, 300);
}
