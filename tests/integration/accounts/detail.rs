//! The admin's page of one account (`/users/<username>`): its facts,
//! sessions and audit trail, and each action as a plain form post.
use crate::common::browser::Browser;
use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAFF: &str = "someone@example.org";
const PASSWORD: &str = "a long enough passphrase";
const PAGE: &str = "/users/someone%40example%2Eorg";

#[tokio::test]
async fn an_admin_sees_the_account_and_acts_on_it() {
    let app = spawn_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app.create_user(STAFF, PASSWORD, false).await;
    let staff = Browser::new(&app);
    staff.sign_in(STAFF, PASSWORD).await;
    for _ in 0..2 {
        login_from(
            &app,
            None,
            &json!({"username": STAFF, "password": "wrong guess"}),
        )
        .await;
    }
    let admin = Browser::new(&app);
    let csrf = admin.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let list = admin.get("/users").await;
    assert!(
        list.body.contains(&format!(r#"href="{PAGE}""#)),
        "the list links the page"
    );
    let page = admin.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for fact in [
        "Staff",
        "Active",
        "2 of 100",
        "Two-factor sign-in",
        "login failed",
        "Sign out everywhere",
    ] {
        assert!(page.body.contains(fact), "{fact}");
    }
    assert_eq!(page.body.matches("login failed").count(), 2);
    let act = |action: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let (admin, csrf) = (&admin, csrf.clone());
        async move {
            let mut form = vec![("csrf_token", csrf.as_str())];
            form.extend(extra);
            let r = admin.post(&format!("{PAGE}/{action}"), &form).await;
            assert_eq!(
                (r.status, r.location()),
                (StatusCode::SEE_OTHER, PAGE),
                "{action}: {}",
                r.body
            );
            admin.get(PAGE).await.body
        }
    };
    let body = act("unlock", vec![]).await;
    assert!(body.contains("0 of 100"));
    let body = act("role", vec![("role", "monitor")]).await;
    assert!(body.contains("is now monitor (read only)."), "{body}");
    assert_eq!(
        staff.get("/home").await.status,
        StatusCode::OK,
        "a new role keeps the session"
    );
    let body = act("sessions", vec![]).await;
    assert!(body.contains("Not signed in anywhere"));
    assert_eq!(staff.get("/home").await.status, StatusCode::SEE_OTHER);
    let body = act("disable", vec![]).await;
    assert!(body.contains("Disabled</span>"));
    assert!(body.contains("Enable account"));
    let body = act("enable", vec![]).await;
    assert!(body.contains("Disable account"));
    // A refused action says why on the page.
    let me = admin
        .post(
            &format!("/users/{ADMIN}/role"),
            &[("csrf_token", &csrf), ("role", "staff")],
        )
        .await;
    assert_eq!(me.status, StatusCode::CONFLICT);
    assert!(
        me.body.contains("This is the last administrator."),
        "{}",
        me.body
    );
    let token = app.login(ADMIN, ADMIN_PASSWORD).await;
    let trail: Vec<Value> = account_trail(&app, &token, STAFF).await;
    for action in [
        "login throttle cleared",
        "role change: monitor",
        "sessions revoked",
        "account disabled",
        "account enabled",
    ] {
        let entries = entries_with(&trail, action);
        assert_eq!(entries.len(), 1, "{action}");
        assert_eq!(entries[0]["actor"], ADMIN);
    }
    // Staff do not see the page.
    let monitor = Browser::new(&app);
    monitor.sign_in(STAFF, PASSWORD).await;
    assert_eq!(monitor.get(PAGE).await.status, StatusCode::FORBIDDEN);
}
