//! Roles (admin, staff, monitor) and account states (invited, active,
//! disabled) through the JSON API: user JSON, the read-only monitor, and
//! disabling with the last-active-admin rule. Runs on SQLite, and on
//! MongoDB with `IDM_TEST_BACKEND=mongodb`.
use crate::common::browser::Browser;
use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAFF: &str = "staff@example.org";
const MONITOR: &str = "monitor@example.org";
const PASSWORD: &str = "a long enough passphrase";

async fn create(app: &TestApp, admin: &str, body: Value) -> Value {
    let r = app.post_json("/user", Some(admin), &body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
    r.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test]
async fn user_json_keeps_admin_and_adds_role_state_and_mfa() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // An old client: `admin` only.
    let old = create(
        &app,
        &admin,
        json!({"username": STAFF, "password": PASSWORD, "admin": true}),
    )
    .await;
    assert_eq!(old["admin"], true);
    assert_eq!(old["role"], "admin");
    assert_eq!(old["state"], "active");
    assert_eq!(old["mfa"], false);
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&admin),
            &json!({"admin": false}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["data"]["admin"], &body["data"]["role"]),
        (&json!(false), &json!("staff"))
    );
    // A new client: `role`.
    let monitor = create(
        &app,
        &admin,
        json!({"username": MONITOR, "password": PASSWORD, "role": "monitor"}),
    )
    .await;
    assert_eq!(
        (&monitor["admin"], &monitor["role"]),
        (&json!(false), &json!("monitor"))
    );
    let r = app
        .put_json(
            &format!("/user/{MONITOR}"),
            Some(&admin),
            &json!({"role": "admin", "admin": false}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("contradicts"), "{message}");
    let r = app
        .put_json(
            &format!("/user/{MONITOR}"),
            Some(&admin),
            &json!({"role": "root"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .post_json(
            "/user",
            Some(&admin),
            &json!({"username": "x@example.org", "password": PASSWORD, "admin": "false"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let r = app.get("/user", Some(&admin)).await;
    let list: Value = r.json().await.unwrap();
    let roles: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "monitor", "staff"]);
    let trail = account_trail(&app, &admin, MONITOR).await;
    assert_eq!(entries_with(&trail, "create user (monitor)").len(), 1);
    assert_eq!(
        entries_with(&trail, "create user (monitor)")[0]["actor"],
        ADMIN
    );
}

#[tokio::test]
async fn a_monitor_reads_study_data_and_every_write_is_403() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_subject("S-1", "Ada Lovelace", "1980-12-10").await;
    let r = app
        .put_json(
            "/subject/S-1",
            Some(&admin),
            &json!({"date_invited": "2026-01-02T10:00:00Z"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .put_json(
            "/subject/S-1",
            Some(&admin),
            &json!({"date_consented": "2026-01-03T10:00:00Z"}),
        )
        .await;
    assert!(r.status().is_success());
    let r = app
        .post_json("/subject/S-1/links", Some(&admin), &json!({}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let link: Value = r.json().await.unwrap();
    let link_id = link["data"]["_id"].as_str().unwrap_or_default().to_owned();
    create(
        &app,
        &admin,
        json!({"username": MONITOR, "password": PASSWORD, "role": "monitor"}),
    )
    .await;
    let monitor = app.login(MONITOR, PASSWORD).await;
    for read in [
        "/subject".to_owned(),
        "/subject/S-1".to_owned(),
        "/subject/S-1/audits".to_owned(),
        "/subject/S-1/links".to_owned(),
        format!("/link/{link_id}"),
        format!("/user/{MONITOR}"),
    ] {
        let r = app.get(&read, Some(&monitor)).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {read}");
    }
    use reqwest::Method;
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/subject".into(),
            json!({"sssid": "S-2", "name": "B", "bday": "1990-01-01"}),
        ),
        (
            Method::PUT,
            "/subject/S-1".into(),
            json!({"name": "Changed"}),
        ),
        (Method::POST, "/subject/S-1/links".into(), json!({})),
        (
            Method::PUT,
            format!("/link/{link_id}"),
            json!({"withdrawn_on": "2026-01-04T10:00:00Z"}),
        ),
        (Method::GET, format!("/link/{link_id}/jwt"), json!({})),
        (
            Method::POST,
            "/user".into(),
            json!({"username": "n@example.org", "password": PASSWORD}),
        ),
        (
            Method::PUT,
            format!("/user/{ADMIN}"),
            json!({"role": "staff"}),
        ),
        (Method::DELETE, "/user".into(), json!({"username": ADMIN})),
        (Method::POST, format!("/user/{ADMIN}/reset"), json!({})),
        (Method::POST, format!("/user/{ADMIN}/invitation"), json!({})),
        (Method::DELETE, format!("/user/{ADMIN}/mfa"), json!({})),
        (
            Method::POST,
            format!("/user/{ADMIN}/sessions/revoke"),
            json!({}),
        ),
        (Method::POST, format!("/user/{ADMIN}/unlock"), json!({})),
    ];
    for (method, path, body) in writes {
        let r = app
            .send_json(method.clone(), &path, Some(&monitor), &body)
            .await;
        expect_error(r, StatusCode::FORBIDDEN).await;
    }
    let subject: Value = app
        .get("/subject/S-1", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subject["data"]["name"], "Ada Lovelace", "nothing changed");
}

#[tokio::test]
async fn disabling_ends_tokens_and_sessions_at_once_and_enabling_lets_back_in() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    create(
        &app,
        &admin,
        json!({"username": STAFF, "password": PASSWORD}),
    )
    .await;
    let token = app.login(STAFF, PASSWORD).await;
    let browser = Browser::new(&app);
    browser.sign_in(STAFF, PASSWORD).await;
    assert_eq!(browser.get("/home").await.status, StatusCode::OK);
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&admin),
            &json!({"disabled": true}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["state"], "disabled");
    let r = app.get("/subject", Some(&token)).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
    let page = browser.get("/home").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "signed out");
    assert!(page.location().starts_with("/login"), "{}", page.location());
    // A right password of a disabled account gets the same answer as a wrong one.
    let right = login_from(
        &app,
        None,
        &json!({"username": STAFF, "password": PASSWORD}),
    )
    .await;
    let wrong = login_from(
        &app,
        None,
        &json!({"username": STAFF, "password": "wrong wrong"}),
    )
    .await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert_eq!(right.body, wrong.body);
    let r = app
        .post_json(&format!("/user/{STAFF}/reset"), Some(&admin), &json!({}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&admin),
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["state"], "active");
    app.login(STAFF, PASSWORD).await;
    let trail = account_trail(&app, &admin, STAFF).await;
    // Both attempts while disabled are refused alike, the password unread.
    for (action, count) in [
        ("account disabled", 1),
        ("login refused: account disabled", 2),
        ("account enabled", 1),
    ] {
        let entries = entries_with(&trail, action);
        assert_eq!(entries.len(), count, "{action}: {trail:?}");
        assert!(entries[0]["ip"].is_string(), "{action} has an address");
    }
    assert_eq!(entries_with(&trail, "account disabled")[0]["actor"], ADMIN);
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_disabled_nor_demoted_nor_deleted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = format!("/user/{ADMIN}");
    for change in [
        json!({"disabled": true}),
        json!({"role": "monitor"}),
        json!({"admin": false}),
    ] {
        let r = app.put_json(&me, Some(&admin), &change).await;
        let message = expect_error(r, StatusCode::CONFLICT).await;
        assert!(message.contains("last admin"), "{message}");
    }
    // A second admin who is disabled does not count.
    create(
        &app,
        &admin,
        json!({"username": STAFF, "password": PASSWORD, "role": "admin"}),
    )
    .await;
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&admin),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .put_json(&me, Some(&admin), &json!({"disabled": true}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .delete_json("/user", Some(&admin), &json!({"username": ADMIN}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    // Active again, it does: the first admin may step down.
    app.put_json(
        &format!("/user/{STAFF}"),
        Some(&admin),
        &json!({"disabled": false}),
    )
    .await;
    let r = app
        .put_json(&me, Some(&admin), &json!({"role": "staff"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/user", Some(&admin)).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
}
