//! Who may move study data in and out: monitors (read-only staff) export
//! the list and the trails, in the API and the console, but never import,
//! not even as a dry run; anonymous callers do neither.

use super::console_import::upload;
use super::*;
use crate::common::browser::Browser;
use serde_json::json;

const MONITOR: &str = "monitor@example.org";
const PASSWORD: &str = "a monitor's passphrase";
const FILE: &str = "sssid,name,bday\nS-9,Grace Hopper,1906-12-09\n";

/// An app with one subject and a monitor: the app, the admin's token and
/// the monitor's.
async fn with_monitor() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_subject("S-1", "Ada Lovelace", "1980-12-10").await;
    let r = app
        .post_json(
            "/user",
            Some(&admin),
            &json!({"username": MONITOR, "password": PASSWORD, "role": "monitor"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = app.login(MONITOR, PASSWORD).await;
    (app, admin, token)
}

async fn post_import(app: &TestApp, token: Option<&str>, query: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/subject/import{query}")))
        .header("Content-Type", "text/csv")
        .body(FILE);
    if let Some(token) = token {
        request = request.header("Authorization", format!("JWT {token}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_monitor_exports_through_the_api_but_never_imports() {
    let (app, admin, monitor) = with_monitor().await;
    let list = rows(&get_csv(&app, "/subject?format=csv", &monitor).await);
    assert_eq!(list.len(), 2, "header and S-1: {list:?}");
    assert_eq!(list[1][0], "S-1");
    let trail = rows(&get_csv(&app, "/subject/S-1/audits?format=csv", &monitor).await);
    assert!(trail.len() > 1, "{trail:?}");
    get_csv(&app, "/audit?format=csv", &monitor).await;

    for query in ["", "?dry_run=true", "?mode=valid"] {
        let r = post_import(&app, Some(&monitor), query).await;
        let message = expect_error(r, StatusCode::FORBIDDEN).await;
        assert!(message.contains("monitors"), "{query}: {message}");
    }
    let r = post_import(&app, None, "?dry_run=true").await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
    let r = app.get("/subject?format=csv", None).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;

    // Nothing was imported, and the refusals wrote no import entry.
    assert_eq!(app.get("/subject/S-9", Some(&admin)).await.status(), 404);
    let study = study_trail(&app, &admin).await;
    assert!(
        study_level_actions(&study)
            .iter()
            .all(|action| !action.starts_with("import")),
        "{study:?}"
    );
}

#[tokio::test]
async fn the_console_offers_a_monitor_downloads_and_no_import() {
    let (app, _, _) = with_monitor().await;
    let browser = Browser::new(&app);
    browser.sign_in(MONITOR, PASSWORD).await;
    let list = browser.get("/subjects").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Download CSV"), "{}", list.body);
    assert!(!list.body.contains("Import CSV"), "{}", list.body);
    let download = browser.get("/subjects.csv").await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(download.body.contains("S-1,Ada Lovelace,1980-12-10"));
    let import = browser.get("/subjects/import").await;
    assert_eq!(import.status, StatusCode::FORBIDDEN);
    // The upload itself, posted as the form would be: refused too.
    let csrf = list.csrf();
    let refused = upload(
        &browser,
        &csrf,
        &[("action", "check")],
        Some(("subjects.csv", FILE.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
