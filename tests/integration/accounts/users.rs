//! Staff accounts through `/user`: create, read, list, delete, the
//! rules on usernames and passwords, and who may manage whom.

use std::collections::BTreeSet;

use crate::common::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{STAFF, STAFF_PASSWORD, new_user};

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
