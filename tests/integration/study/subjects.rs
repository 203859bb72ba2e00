//! The subject API: set-once dates, which fields may change, strict
//! bodies, unique case-sensitive ids, literal search, and listing with
//! pages, order and status filters.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{audit_actions, consent, create_subject, data};

#[tokio::test]
async fn set_once_dates_same_value_is_a_no_op_and_another_is_409() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    consent(&app, &token, "S1").await;
    let before = data(app.get("/subject/S1", Some(&token)).await).await;
    app.clock.advance(Duration::minutes(5));
    // The same instant, written differently, is the same value.
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "date_consented": "2026-11-28T13:00:00+01:00"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(after["changed"], before["changed"], "nothing was written");
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_consented": "2026-11-29T12:00:00Z"}),
        )
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "Subject has already been consented");
    for (field, word) in [
        ("date_invited", "invited"),
        ("date_enrolled", "enrolled"),
        ("date_withdrawn", "withdrawn"),
    ] {
        let set = json!({field: "2026-11-01"});
        let r = app.put_json("/subject/S1", Some(&token), &set).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{field}");
        let r = app.put_json("/subject/S1", Some(&token), &set).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{field} again");
        let other = json!({field: "2026-11-02"});
        let r = app.put_json("/subject/S1", Some(&token), &other).await;
        let message = expect_error(r, StatusCode::CONFLICT).await;
        assert_eq!(message, format!("Subject has already been {word}"));
    }
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(
        subject["date_invited"], "2026-11-01T00:00:00Z",
        "a bare date is midnight UTC"
    );
    let actions: Vec<String> = audit_actions(&app, &token, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "consented: 2026-11-28T12:00:00Z",
            "invited: 2026-11-01T00:00:00Z",
            "enrolled: 2026-11-01T00:00:00Z",
            "withdrawn: 2026-11-01T00:00:00Z",
        ],
        "no-ops and refusals are not audited"
    );
}

#[tokio::test]
async fn sssid_cannot_change_and_other_fields_can() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .put_json("/subject/S1", Some(&token), &json!({"sssid": "S2"}))
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "SSSID cannot be changed");
    let r = app
        .put_json("/subject/s1", Some(&token), &json!({"name": "x"}))
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "name": "Ada \"Countess\" Lovelace", "bday": "1815-12-10",
                    "email": "ada@example.org", "created": "1999-01-01", "changed": null}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("1900"), "{message}");
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"sssid": "S1", "name": "Ada \"Countess\" Lovelace", "bday": "1915-12-10",
                    "email": null, "created": "1999-01-01", "changed": null}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let subject = data(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["name"], "Ada \"Countess\" Lovelace");
    assert_eq!(subject["bday"], "1915-12-10");
    assert_eq!(subject["email"], Value::Null);
    assert_eq!(
        subject["created"],
        app.at(Duration::zero()),
        "created is server-owned"
    );
    let audits = audit_actions(&app, &token, "S1").await;
    assert_eq!(
        audits.last().unwrap().0,
        r#"name: "Ada" -> "Ada \"Countess\" Lovelace"; bday: "1980-02-29" -> "1915-12-10"; email: "p@example.org" -> """#
    );
}

#[tokio::test]
async fn subject_bodies_are_strict() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .put_json("/subject/S1", Some(&token), &json!({"nmae": "typo"}))
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("nmae"), "{message}");
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "S2", "name": "B", "bday": "1980-01-01", "admin": true}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("admin"), "{message}");
    for bday in [
        json!("1899-12-31"),
        json!("2101-01-01"),
        json!("not a date"),
        json!("1981-02-29"),
        json!(1980),
        json!(""),
    ] {
        let r = app
            .post_json(
                "/subject",
                Some(&token),
                &json!({"sssid": "S2", "name": "B", "bday": bday}),
            )
            .await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("bday"), "{bday}: {message}");
        let r = app
            .put_json("/subject/S1", Some(&token), &json!({"bday": bday}))
            .await;
        expect_error(r, StatusCode::BAD_REQUEST).await;
    }
    for missing in ["sssid", "name", "bday"] {
        let mut body = json!({"sssid": "S3", "name": "C", "bday": "1980-01-01"});
        body.as_object_mut().unwrap().remove(missing);
        let r = app.post_json("/subject", Some(&token), &body).await;
        let message = expect_error(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(missing), "{message}");
    }
    let r = app
        .put_json(
            "/subject/S1",
            Some(&token),
            &json!({"date_consented": "soon"}),
        )
        .await;
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("date_consented"), "{message}");
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "x".repeat(65), "name": "B", "bday": "1980-01-01"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn duplicate_sssid_is_409_and_sssids_are_case_sensitive() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada").await;
    let r = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "S1", "name": "Other", "bday": "1990-01-01"}),
        )
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert_eq!(message, "this SSSID is already taken");
    create_subject(&app, &token, "s1", "Lower").await;
    assert_eq!(
        data(app.get("/subject/s1", Some(&token)).await).await["name"],
        "Lower"
    );
    assert_eq!(
        data(app.get("/subject/S1", Some(&token)).await).await["name"],
        "Ada"
    );
    let r = app.get("/subject/S9", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn search_is_literal_and_case_insensitive_on_names() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (sssid, name) in [
        ("A1", "Anna (Smith)"),
        ("A2", "Regex .* Fan"),
        ("A3", "ANNA Jones"),
        ("A4", "Bob 100% Sure"),
        ("A5", "under_score"),
        ("B1", "Björn Ärger"),
    ] {
        create_subject(&app, &token, sssid, name).await;
    }
    let search = |q: &str| format!("search={}", urlencode(q));
    assert_eq!(
        app.list_subjects(&token, &search("(")).await,
        (vec!["A1".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search(".*")).await,
        (vec!["A2".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("%")).await,
        (vec!["A4".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("_")).await,
        (vec!["A5".into()], 1)
    );
    assert_eq!(
        app.list_subjects(&token, &search("[a-z]")).await,
        (vec![], 0)
    );
    assert_eq!(
        app.list_subjects(&token, &search("anna")).await.0,
        ["A1", "A3"],
        "case-insensitive"
    );
    assert_eq!(
        app.list_subjects(&token, &search("äRG")).await.0,
        ["B1"],
        "beyond ASCII"
    );
    assert_eq!(
        app.list_subjects(&token, &search("A")).await.0,
        ["A1", "A2", "A3", "A4", "A5"],
        "sssid prefix or name; \"Björn Ärger\" has no a"
    );
    assert_eq!(
        app.list_subjects(&token, &search("B")).await.0,
        ["A4", "B1"]
    );
    assert_eq!(
        app.list_subjects(&token, &search("1980-02")).await.1,
        6,
        "bday prefix"
    );
    assert_eq!(
        app.list_subjects(&token, &search("02-29")).await.1,
        0,
        "bday is a prefix"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn listing_pages_orders_and_filters_by_status() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (i, name) in ["delta", "Alpha", "charlie", "Bravo", "echo"]
        .iter()
        .enumerate()
    {
        create_subject(&app, &token, &format!("S{i}"), name).await;
        app.clock.advance(Duration::seconds(1));
    }
    let (all, total) = app.list_subjects(&token, "").await;
    assert_eq!((all.len(), total), (5, 5));
    assert_eq!(
        app.list_subjects(&token, "ordercol=name&orderdir=ASC")
            .await
            .0,
        ["S1", "S3", "S2", "S0", "S4"]
    );
    assert_eq!(
        app.list_subjects(&token, "ordercol=created&orderdir=DESC&offset=1&perpage=2")
            .await,
        (vec!["S3".into(), "S2".into()], 5)
    );
    let put = |sssid: &str, body: Value| {
        let path = format!("/subject/{sssid}");
        let app = &app;
        let token = &token;
        async move {
            let r = app.put_json(&path, Some(token), &body).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    };
    put("S0", json!({"date_invited": "2026-11-01"})).await;
    put(
        "S1",
        json!({"date_invited": "2026-11-01", "date_consented": "2026-11-02"}),
    )
    .await;
    put(
        "S2",
        json!({"date_consented": "2026-11-02", "date_enrolled": "2026-11-03"}),
    )
    .await;
    put(
        "S3",
        json!({"date_enrolled": "2026-11-03", "date_withdrawn": "2026-11-04"}),
    )
    .await;
    for (status, expected) in [
        // Nothing recorded yet (a consent without invitation is consented).
        ("not-invited", vec!["S4"]),
        ("invited", vec!["S0"]),
        ("CONSENTED", vec!["S1"]),
        ("enrolled", vec!["S2"]),
        ("withdrawn", vec!["S3"]),
    ] {
        let (sssids, total) = app.list_subjects(&token, &format!("status={status}")).await;
        assert_eq!(sssids, expected, "{status}");
        assert_eq!(total, 1);
    }
    assert_eq!(
        app.list_subjects(&token, "status=&ordercol=&orderdir=")
            .await
            .1,
        5
    );
    for bad in [
        "orderdir=up",
        "ordercol=password",
        "status=lost",
        "perpage=0",
        "offset=x",
    ] {
        let r = app.get(&format!("/subject?{bad}"), Some(&token)).await;
        expect_error(r, StatusCode::BAD_REQUEST).await;
    }
    let r = app.get("/subject?search=nobody", Some(&token)).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"data": []}));
}
