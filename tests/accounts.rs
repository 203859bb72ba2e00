//! Staff accounts, tokens and the JSON error envelope (SPEC sections 1-3),
//! over real HTTP against a real server with a fresh SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap fails the test with its message

mod common;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use common::*;
use futures::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "another fine passphrase";

async fn new_user(app: &TestApp, token: &str, username: &str, admin: bool) -> reqwest::Response {
    app.post_json(
        "/user",
        Some(token),
        &json!({"username": username, "password": STAFF_PASSWORD, "admin": admin}),
    )
    .await
}

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
async fn admin_creates_reads_lists_and_deletes_users() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = new_user(&app, &token, "  New.Person@Example.ORG ", false).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["username"], "new.person@example.org");
    assert_eq!(body["data"]["admin"], false);

    let r = app.get("/user/new.person@example.org", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["data"]["username"], "new.person@example.org");
    assert_eq!(read["data"]["admin"], false);
    assert_eq!(read["data"]["last_login"], Value::Null, "never logged in");

    let r = app.get("/user?perpage=1", Some(&token)).await;
    assert_eq!(r.headers()["x-total-count"], "2");
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let r = app.get("/user?perpage=1&offset=1", Some(&token)).await;
    let rest: Value = r.json().await.unwrap();
    let mut listed: Vec<&str> = [&list, &rest]
        .iter()
        .map(|page| page["data"][0]["username"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [ADMIN, "new.person@example.org"],
        "both pages, each user once"
    );

    let r = app
        .delete_json(
            "/user",
            Some(&token),
            &json!({"username": "new.person@example.org"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get("/user/new.person@example.org", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    let r = app
        .delete_json(
            "/user",
            Some(&token),
            &json!({"username": "new.person@example.org"}),
        )
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}

/// A username with a line break could forge a line of the log or the
/// audit trail: refused with a message that says why, whatever breaks it.
#[tokio::test]
async fn usernames_with_line_breaks_or_controls_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for bad in [
        "new\r\nFAKE@example.org",
        "new\nperson@example.org",
        "new\u{2028}person@example.org",
        "new\u{2029}person@example.org",
        "new\u{85}person@example.org",
        "new\u{202E}person@example.org",
        "new\tperson@example.org",
    ] {
        let message = expect_error(
            new_user(&app, &token, bad, false).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            message.starts_with("username must not contain control characters, line breaks"),
            "{bad:?}: {message}"
        );
    }
    let r = app.get("/user", Some(&token)).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "only the admin");
}

#[tokio::test]
async fn user_json_never_contains_secrets() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = new_user(&app, &token, STAFF, false).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains("$argon2"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let keys: BTreeSet<_> = body["data"].as_object().unwrap().keys().cloned().collect();
    let expected: BTreeSet<_> = [
        "username",
        "admin",
        "role",
        "state",
        "mfa",
        "created",
        "changed",
        "last_login",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, expected);
    for path in [format!("/user/{STAFF}"), "/user".to_owned()] {
        let text = app.get(&path, Some(&token)).await.text().await.unwrap();
        assert!(
            !text.contains("$argon2") && !text.contains("password") && !text.contains("token"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn stored_hashes_are_argon2id_with_at_least_the_asvs_parameters() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    new_user(&app, &token, STAFF, false).await;
    let stored = app
        .state
        .services
        .deps
        .store
        .user_by_username(STAFF)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.password_hash
    );
}

#[tokio::test]
async fn duplicate_usernames_conflict_even_under_concurrency() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    assert_eq!(
        new_user(&app, &token, STAFF, false).await.status(),
        StatusCode::CREATED
    );
    let r = new_user(&app, &token, &STAFF.to_uppercase(), false).await;
    expect_error(r, StatusCode::CONFLICT).await;

    let name = "race@example.org";
    let attempts = (0..20).map(|_| new_user(&app, &token, name, false));
    let statuses: Vec<_> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "{statuses:?}");
}

#[tokio::test]
async fn bad_user_input_is_rejected_with_400() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cases = [
        json!({"username": STAFF, "password": STAFF_PASSWORD, "admin": "false"}),
        json!({"username": STAFF, "password": STAFF_PASSWORD, "admin": 0}),
        json!({"username": "not-an-email", "password": STAFF_PASSWORD}),
        json!({"username": STAFF, "password": "short"}),
        json!({"username": STAFF, "password": "password123"}),
        json!({"username": STAFF, "password": STAFF}),
        json!({"username": STAFF, "password": "x".repeat(1025)}),
        json!({"username": STAFF, "password": STAFF_PASSWORD, "role": "staff", "admin": true}),
        json!({"password": STAFF_PASSWORD}),
    ];
    for body in cases {
        let r = app.post_json("/user", Some(&token), &body).await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(!message.is_empty());
    }
    let r = app
        .post_json(
            "/user",
            Some(&token),
            &json!({"username": STAFF, "password": STAFF_PASSWORD, "role": "x"}),
        )
        .await;
    assert!(
        expect_error(r, StatusCode::BAD_REQUEST)
            .await
            .contains("role")
    );
    let r = app
        .post_json(
            "/user",
            Some(&token),
            &json!({"username": STAFF, "password": STAFF_PASSWORD, "admin": "false"}),
        )
        .await;
    assert!(
        expect_error(r, StatusCode::BAD_REQUEST)
            .await
            .contains("admin")
    );
    // Nothing was created by any of them.
    let r = app.get(&format!("/user/{STAFF}"), Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn staff_can_read_only_themselves_and_cannot_manage_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    new_user(&app, &admin, STAFF, false).await;
    let staff = app.login(STAFF, STAFF_PASSWORD).await;
    assert_eq!(
        app.get(&format!("/user/{STAFF}"), Some(&staff))
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        app.get(&format!("/user/{ADMIN}"), Some(&staff)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_error(app.get("/user", Some(&staff)).await, StatusCode::FORBIDDEN).await;
    expect_error(
        new_user(&app, &staff, "other@example.org", true).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = app
        .delete_json("/user", Some(&staff), &json!({"username": ADMIN}))
        .await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&staff),
            &json!({"admin": true}),
        )
        .await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    // The admin is untouched and the staff member still not an admin.
    let me: Value = app
        .get(&format!("/user/{STAFF}"), Some(&staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["admin"], false);
}

#[tokio::test]
async fn the_last_admin_can_be_neither_deleted_nor_demoted() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = app
        .delete_json("/user", Some(&token), &json!({"username": ADMIN}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .put_json(
            &format!("/user/{ADMIN}"),
            Some(&token),
            &json!({"admin": false}),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    // With a second admin, the first may step down.
    new_user(&app, &token, STAFF, true).await;
    let r = app
        .put_json(
            &format!("/user/{ADMIN}"),
            Some(&token),
            &json!({"admin": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let other = app.login(STAFF, STAFF_PASSWORD).await;
    let r = app
        .delete_json("/user", Some(&other), &json!({"username": STAFF}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn tokens_die_at_once_on_delete_demotion_and_password_change() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = format!("/user/{STAFF}");

    new_user(&app, &admin, STAFF, true).await;
    let token = app.login(STAFF, STAFF_PASSWORD).await;
    assert_eq!(app.get(&me, Some(&token)).await.status(), StatusCode::OK);
    let r = app
        .put_json(&me, Some(&admin), &json!({"admin": false}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;

    let token = app.login(STAFF, STAFF_PASSWORD).await;
    let r = app
        .put_json(
            &me,
            Some(&admin),
            &json!({"password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
    let r = app
        .post_json(
            "/auth",
            None,
            &json!({"username": STAFF, "password": STAFF_PASSWORD}),
        )
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;

    let token = app.login(STAFF, "a brand new passphrase").await;
    let r = app
        .delete_json("/user", Some(&admin), &json!({"username": STAFF}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
    // Re-creating the name does not revive the old token.
    new_user(&app, &admin, STAFF, false).await;
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
}

fn sign(claims: &Value, alg: Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_jwt_matrix_is_rejected() {
    let app = spawn_app().await;
    let good = app.admin_token().await;
    let key = app
        .config
        .token_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .as_bytes()
        .to_vec();
    let link_key = app
        .config
        .link_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .as_bytes()
        .to_vec();
    let me = format!("/user/{ADMIN}");
    let parts: Vec<&str> = good.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let now = app.clock.now_ts();

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        edit(&mut c);
        c
    };
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs512_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let rs256_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let edited_payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(&|c| c["exp"] = json!(now + 999_999))).unwrap());
    let cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "alg none with signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "HS512 token with our key",
            sign(&claims, Algorithm::HS512, &key),
        ),
        (
            "HS512 header on HS256 signature",
            format!("{hs512_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "RS256 header on HS256 signature",
            format!("{rs256_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "edited payload",
            format!("{}.{edited_payload}.{}", parts[0], parts[2]),
        ),
        (
            "expired",
            sign(
                &with(&|c| c["exp"] = json!(now - 1)),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "future nbf",
            sign(
                &with(&|c| c["nbf"] = json!(now + 3600)),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "missing exp",
            sign(
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "wrong key",
            sign(
                &claims,
                Algorithm::HS256,
                b"a different key of plenty of bytes!!",
            ),
        ),
        (
            "staff claims with the link secret",
            sign(&claims, Algorithm::HS256, &link_key),
        ),
        (
            "link-style token",
            sign(
                &json!({"jti": "abc", "iss": "http://idm.test", "aud": "http://idm.test",
                        "iat": now, "exp": now + 3600, "sub": "Jane", "birthdate": "1990-01-01"}),
                Algorithm::HS256,
                &link_key,
            ),
        ),
        ("not a jwt", "garbage".to_owned()),
    ];
    for (name, token) in cases {
        let r = app.get(&me, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name} was accepted");
        expect_error(r, StatusCode::UNAUTHORIZED).await;
    }
    // The same claims, properly signed, work: the cases above fail for the
    // reason they name.
    assert_eq!(
        app.get(&me, Some(&sign(&claims, Algorithm::HS256, &key)))
            .await
            .status(),
        StatusCode::OK
    );

    // Expiry follows the (injected) clock.
    app.clock
        .advance(Duration::hours(12) + Duration::seconds(1));
    expect_error(app.get(&me, Some(&good)).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn both_schemes_are_accepted_and_the_header_is_required() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let url = app.url(&format!("/user/{ADMIN}"));
    for scheme in ["JWT", "Bearer", "jwt", "bearer", "BEARER"] {
        let r = app
            .client
            .get(&url)
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme}");
    }
    let r = app.client.get(&url).send().await.unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        expect_error(r, StatusCode::UNAUTHORIZED).await,
        "Authorization Required"
    );
    for header in [
        format!("Basic {token}"),
        token.clone(),
        "JWT".to_owned(),
        "JWT ".to_owned(),
    ] {
        let r = app
            .client
            .get(&url)
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED).await;
    }
}

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
