//! Erasure of a withdrawn subject's personal data: gone from the subject,
//! from every audit entry, from lists and searches and, on SQLite, from
//! every byte of the database file and its WAL; the sssid, dates and trail
//! remain and the trail still verifies. Through the API, the command line
//! and the console.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::*;

const NAME: &str = "Zebulon Quartermaine";
const NEW_NAME: &str = "Zebulon Q. Quartermaine";
const BDAY: &str = "1971-03-14";
const EMAIL: &str = "zq.private@example.org";
const REASON: &str = "request of the participant";

/// Everything that must not be found after the erasure, as bytes.
fn personal_traces() -> Vec<String> {
    vec![
        "Zebulon".into(),
        "zebulon".into(),
        "Quartermaine".into(),
        "quartermaine".into(),
        BDAY.into(),
        EMAIL.into(),
    ]
}

async fn json_of(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// A subject with a history: created, renamed, email changed, consented,
/// a link made, and (unless `withdraw` is false) withdrawn.
async fn subject_with_history(app: &TestApp, token: &str, sssid: &str, withdraw: bool) {
    let body = json!({"sssid": sssid, "name": NAME, "bday": BDAY, "email": "old@example.org"});
    let r = app.post_json("/subject", Some(token), &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for change in [
        json!({"name": NEW_NAME, "email": EMAIL}),
        json!({"date_consented": app.at(chrono::Duration::zero())}),
    ] {
        let r = app
            .put_json(&format!("/subject/{sssid}"), Some(token), &change)
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = app
        .post_json(&format!("/subject/{sssid}/links"), Some(token), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    if withdraw {
        let r = app
            .put_json(
                &format!("/subject/{sssid}"),
                Some(token),
                &json!({"date_withdrawn": app.at(chrono::Duration::minutes(1))}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// The SQLite database file and its WAL, as bytes.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["idm.sqlite3", "idm.sqlite3-wal"] {
        if let Ok(b) = std::fs::read(app.dir.path().join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn erasure_removes_personal_data_everywhere_and_the_trail_still_verifies() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("staff@example.org", "another fine passphrase", false)
        .await;
    let staff = app
        .login("staff@example.org", "another fine passphrase")
        .await;
    subject_with_history(&app, &staff, "S1", true).await;
    subject_with_history(&app, &staff, "S2", false).await;
    let before: Value = json_of(app.get("/subject/S1/audits", Some(&staff)).await).await;
    assert!(before.to_string().contains(NEW_NAME));
    if app.mongo.is_none() {
        let bytes = database_bytes(&app);
        for trace in personal_traces() {
            assert!(contains(&bytes, &trace), "{trace} is stored before");
        }
    }

    let erasure = json!({"reason": REASON});
    let r = app
        .post_json("/subject/S1/erasure", Some(&staff), &erasure)
        .await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post_json("/subject/S2/erasure", Some(&admin), &erasure)
        .await;
    let message = expect_error(r, StatusCode::CONFLICT).await;
    assert!(message.contains("withdrawn"), "{message}");
    let r = app
        .post_json("/subject/S1/erasure", Some(&admin), &json!({"reason": " "}))
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .post_json("/subject/S9/erasure", Some(&admin), &erasure)
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;

    // S2 keeps everything: only S1 is erased.
    let r = app
        .post_json("/subject/S1/erasure", Some(&admin), &erasure)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let subject = json_of(app.get("/subject/S1", Some(&staff)).await).await["data"].clone();
    assert_eq!(subject["sssid"], "S1");
    assert_eq!(subject["name"], "");
    assert_eq!(subject["bday"], Value::Null);
    assert_eq!(subject["email"], Value::Null);
    assert!(subject["date_consented"].is_string() && subject["date_withdrawn"].is_string());

    let trail = json_of(app.get("/subject/S1/audits", Some(&staff)).await).await;
    let actions: Vec<&str> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[1],
        "name: [erased] -> [erased]; email: [erased] -> [erased]"
    );
    assert_eq!(
        actions.last().unwrap(),
        &format!("erased personal data ({REASON})")
    );
    let list = json_of(app.get("/subject?perpage=500", Some(&staff)).await).await;
    let search = json_of(app.get("/subject?search=zebulon", Some(&staff)).await).await;
    assert_eq!(search["data"].as_array().unwrap().len(), 1, "only S2");
    let erased_s1 = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sssid"] == "S1")
        .unwrap()
        .to_string();
    for trace in personal_traces() {
        assert!(!trail.to_string().contains(&trace), "{trace} in the trail");
        assert!(!erased_s1.contains(&trace), "{trace} in the list");
    }

    let verdict = json_of(app.get("/audit/verify", Some(&admin)).await).await;
    assert_eq!(verdict["data"]["ok"], true, "{verdict}");

    // Personal data is not entered again; a second erasure adds nothing.
    let r = app
        .put_json("/subject/S1", Some(&staff), &json!({"name": NAME}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .post_json("/subject/S1/erasure", Some(&admin), &erasure)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let again = json_of(app.get("/subject/S1/audits", Some(&staff)).await).await;
    assert_eq!(again["data"].as_array().unwrap().len(), actions.len());

    if app.mongo.is_none() {
        // Erase S2 too (withdrawn now): then no byte of the database file
        // or its WAL holds any of the personal values.
        let r = app
            .put_json(
                "/subject/S2",
                Some(&staff),
                &json!({"date_withdrawn": app.at(chrono::Duration::minutes(2))}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = app
            .post_json("/subject/S2/erasure", Some(&admin), &erasure)
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let bytes = database_bytes(&app);
        assert!(contains(&bytes, "S2"), "the files were read");
        for trace in personal_traces() {
            assert!(
                !contains(&bytes, &trace),
                "{trace} is still in the database files"
            );
        }
    }
}

#[tokio::test]
async fn idm_subjects_erase_erases_a_withdrawn_subject() {
    let app = spawn_app().await;
    if app.mongo.is_some() {
        return; // The command line runs on the test's SQLite data folder.
    }
    let token = app.admin_token().await;
    subject_with_history(&app, &token, "S1", true).await;
    subject_with_history(&app, &token, "S2", false).await;
    let erase = |sssid: &str, reason: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idm"));
        cmd.env_clear()
            .env("RUST_LOG", "off")
            .env("IDM_DATA_DIR", app.dir.path())
            .args(["subjects", "erase", sssid]);
        if let Some(reason) = reason {
            cmd.args(["--reason", reason]);
        }
        cmd.output().unwrap()
    };
    let missing = erase("S1", None);
    assert_eq!(missing.status.code(), Some(2), "clap needs --reason");
    let not_withdrawn = erase("S2", Some(REASON));
    assert_eq!(not_withdrawn.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_withdrawn.stderr).contains("withdrawn"));
    let ok = erase("S1", Some(REASON));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "erased the personal data of S1\n"
    );
    let subject = json_of(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["data"]["name"], "");
    let trail = json_of(app.get("/subject/S1/audits", Some(&token)).await).await;
    let last = trail["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], format!("erased personal data ({REASON})"));
    assert_eq!(last["actor"], Value::Null, "the command line");
    let verdict = json_of(app.get("/audit/verify", Some(&token)).await).await;
    assert_eq!(verdict["data"]["ok"], true, "{verdict}");
}

#[tokio::test]
async fn admins_erase_on_the_subject_page_after_a_confirmation() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    subject_with_history(&app, &token, "S1", true).await;
    subject_with_history(&app, &token, "S2", false).await;
    let browser = Browser::new(&app).on_page("/subjects/S1");
    let csrf = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;

    let s2 = browser.get("/subjects/S2").await;
    assert!(!s2.body.contains("/subjects/S2/erasure"), "not withdrawn");
    assert!(
        s2.body.contains("once the subject&#39;s withdrawal")
            || s2.body.contains("once the subject's withdrawal")
    );
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Erase personal data…"));

    let confirm = browser
        .get_htmx("/subjects/S1/erasure", "erasure-confirm")
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("This cannot be undone."),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains(NEW_NAME), "names whom it erases");
    let subject = json_of(app.get("/subject/S1", Some(&token)).await).await;
    assert_eq!(subject["data"]["name"], NEW_NAME, "asking changes nothing");

    let bad = browser
        .post_htmx("/subjects/S1/erasure", &csrf, &[("reason", "")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.starts_with(r#"<div id="subject-panel">"#));
    assert!(
        bad.body.contains(r#"id="erase-reason-error""#),
        "{}",
        bad.body
    );

    let done = browser
        .post(
            "/subjects/S1/erasure",
            &[("csrf_token", &csrf), ("reason", REASON)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Personal data erased."), "the flash");
    assert!(
        page.body.contains("<h1>Personal data erased</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Name changed (erased)"));
    assert!(
        page.body
            .contains(&format!("Personal data erased ({REASON})"))
    );
    assert!(
        !page.body.contains(r#"id="edit-subject""#),
        "nothing to edit"
    );
    for trace in personal_traces() {
        assert!(!page.body.contains(&trace), "{trace} on the page");
    }
    let list = browser.get("/subjects").await;
    assert!(list.body.contains("personal data erased"));
}
