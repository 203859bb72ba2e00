//! Corrections of journey dates: admins only, with a reason, audited with
//! the old and the new date; `PUT /subject` stays set-once. The console's
//! correction form does the same.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::*;

async fn actions(app: &TestApp, token: &str, sssid: &str) -> Vec<String> {
    let body: Value = app
        .get(&format!("/subject/{sssid}/audits"), Some(token))
        .await
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn staff_and_admin(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    app.create_user("staff@example.org", "another fine passphrase", false)
        .await;
    let staff = app
        .login("staff@example.org", "another fine passphrase")
        .await;
    (staff, admin)
}

#[tokio::test]
async fn admins_correct_a_journey_date_with_a_reason() {
    let app = spawn_app().await;
    let (staff, admin) = staff_and_admin(&app).await;
    app.add_subject("S1", "Ada Lovelace", "1971-03-14").await;
    let wrong = app.at(Duration::days(-2));
    let right = app.at(Duration::days(-3));
    // The Node frontend's consent: set once.
    let r = app
        .put_json(
            "/subject/S1",
            Some(&staff),
            &json!({"sssid": "S1", "date_consented": wrong}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let refused = app
        .put_json(
            "/subject/S1",
            Some(&staff),
            &json!({"date_consented": right}),
        )
        .await;
    expect_error(refused, StatusCode::CONFLICT).await;
    let again = app
        .put_json(
            "/subject/S1",
            Some(&staff),
            &json!({"date_consented": wrong}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "same value: no-op");

    let correction =
        json!({"field": "date_consented", "value": right, "reason": "form dated a day later"});
    let r = app
        .post_json("/subject/S1/corrections", Some(&staff), &correction)
        .await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post_json("/subject/S1/corrections", None, &correction)
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
    let r = app
        .post_json("/subject/S1/corrections", Some(&admin), &correction)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let subject: Value = app
        .get("/subject/S1", Some(&staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subject["data"]["date_consented"], right);
    assert_eq!(
        actions(&app, &staff, "S1").await.last().unwrap(),
        &format!("corrected date_consented: {wrong} -> {right} (form dated a day later)")
    );
    // The same correction again changes nothing and is refused.
    let r = app
        .post_json("/subject/S1/corrections", Some(&admin), &correction)
        .await;
    expect_error(r, StatusCode::CONFLICT).await;

    // null clears a date; a cleared date can be set once again by PUT.
    let r = app
        .post_json(
            "/subject/S1/corrections",
            Some(&admin),
            &json!({"field": "date_consented", "value": null, "reason": "consent was not given"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        actions(&app, &staff, "S1").await.last().unwrap(),
        &format!("corrected date_consented: {right} -> none (consent was not given)")
    );
    let r = app
        .put_json(
            "/subject/S1",
            Some(&staff),
            &json!({"date_consented": wrong}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let verdict: Value = app
        .get("/audit/verify", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["data"]["ok"], true, "{verdict}");
}

#[tokio::test]
async fn a_correction_needs_a_known_field_a_date_and_a_reason() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_subject("S1", "Ada Lovelace", "1971-03-14").await;
    for (body, names) in [
        (
            json!({"field": "date_consented", "value": "2026-01-01"}),
            "reason",
        ),
        (
            json!({"field": "date_consented", "value": "2026-01-01", "reason": "  "}),
            "reason",
        ),
        (
            json!({"field": "date_consented", "value": "2026-01-01", "reason": "a\nb"}),
            "reason",
        ),
        (
            json!({"field": "date_consented", "value": "2026-01-01", "reason": "x".repeat(501)}),
            "reason",
        ),
        (
            json!({"field": "name", "value": "2026-01-01", "reason": "typo"}),
            "field",
        ),
        (
            json!({"field": "date_consented", "value": "yesterday", "reason": "typo"}),
            "value",
        ),
        (
            json!({"field": "date_consented", "reason": "typo"}),
            "value",
        ),
    ] {
        let r = app
            .post_json("/subject/S1/corrections", Some(&admin), &body)
            .await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(names), "{body}: {message}");
    }
    let r = app
        .post_json(
            "/subject/S1/corrections",
            Some(&admin),
            &json!({"field": "date_consented", "value": null, "reason": "typo", "extra": 1}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .post_json(
            "/subject/S9/corrections",
            Some(&admin),
            &json!({"field": "date_consented", "value": "2026-01-01", "reason": "typo"}),
        )
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    assert_eq!(actions(&app, &admin, "S1").await, ["create"]);
}

#[tokio::test]
async fn admins_correct_dates_on_the_subject_page_and_staff_see_no_form() {
    let app = spawn_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app.create_user("staff@example.org", "another fine passphrase", false)
        .await;
    app.add_subject("S1", "Ada Lovelace", "1971-03-14").await;

    let staff = Browser::new(&app).on_page("/subjects/S1");
    staff
        .sign_in("staff@example.org", "another fine passphrase")
        .await;
    let page = staff.get("/subjects/S1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("correct-date"), "no form for staff");
    let csrf = page.csrf();
    let refused = staff
        .post(
            "/subjects/S1/corrections",
            &[
                ("csrf_token", &csrf),
                ("field", "date_invited"),
                ("date", "2026-01-01"),
                ("reason", "typo"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = Browser::new(&app).on_page("/subjects/S1");
    let csrf = admin.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = admin.get("/subjects/S1").await;
    assert!(
        page.body.contains(r#"id="correct-date""#),
        "the admin's form"
    );

    let bad = admin
        .post_htmx(
            "/subjects/S1/corrections",
            &csrf,
            &[
                ("field", "date_invited"),
                ("date", "2026-01-01"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.starts_with(r#"<div id="subject-panel">"#));
    assert!(
        bad.body.contains(r#"id="correct-date-reason-error""#),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains(r#"value="2026-01-01""#),
        "what was typed is kept"
    );

    let ok = admin
        .post(
            "/subjects/S1/corrections",
            &[
                ("csrf_token", &csrf),
                ("field", "date_invited"),
                ("date", "2026-01-01"),
                ("reason", "invited by phone on new year's day"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let page = admin.get("/subjects/S1").await;
    assert!(page.body.contains("Correction saved."), "{}", page.body);
    assert!(
        page.body
            .contains("Invitation date corrected from none to ")
            && page
                .body
                .contains("(invited by phone on new year's day) — by admin@example.org"),
        "{}",
        page.body
    );
}
