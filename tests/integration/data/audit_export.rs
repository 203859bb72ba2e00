//! Audit trails as CSV: one subject's (`GET /subject/<sssid>/audits?format=csv`)
//! and the whole study's between two dates (`GET /audit?format=csv`), and
//! the console's downloads of both.

use super::*;
use crate::common::browser::Browser;
use chrono::Duration;
use idm::service::csv::AUDIT_COLUMNS;
use serde_json::{Value, json};

#[tokio::test]
async fn a_subjects_trail_as_csv_holds_the_entries_of_the_json_trail() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"sssid": "S-1", "name": "Ada", "bday": "1980-02-29"});
    app.post_json("/subject", Some(&token), &body).await;
    let change = json!({"name": "Ada, \"the\" Countess", "date_consented": "2026-01-02"});
    app.put_json("/subject/S-1", Some(&token), &change).await;

    let json_trail: Value = app
        .get("/subject/S-1/audits", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let json_trail = json_trail["data"].as_array().unwrap().clone();
    let text = get_csv(&app, "/subject/S-1/audits?format=csv", &token).await;
    let rows = rows(&text);
    assert_eq!(rows[0], AUDIT_COLUMNS);
    assert_eq!(rows.len() - 1, json_trail.len());
    for (row, entry) in rows[1..].iter().zip(&json_trail) {
        assert_eq!(row[0], entry["datetime"].as_str().unwrap());
        assert_eq!(row[1], entry["actor"].as_str().unwrap());
        assert_eq!(row[2], entry["action"].as_str().unwrap());
        assert_eq!(row[3], "S-1", "about the subject");
        assert_eq!(row[9].len(), 64, "the chain hash: {row:?}");
        assert!(row[9].chars().all(|c| c.is_ascii_hexdigit()));
    }
    // The chain's sequence numbers, rising through the trail.
    let seqs: Vec<u64> = rows[1..].iter().map(|r| r[8].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(
        rows[2][2],
        "name: \"Ada\" -> \"Ada, \\\"the\\\" Countess\"; consented: 2026-01-02T00:00:00Z"
    );

    // The export is itself in the subject's trail, with who and how many.
    let after: Value = app
        .get("/subject/S-1/audits", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let last = after["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "export audit trail as CSV: 2 rows");
    assert_eq!(last["actor"], ADMIN);

    let r = app
        .client
        .get(app.url("/subject/S-1/audits"))
        .header("Authorization", format!("JWT {token}"))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"audit-trail-S-1.csv\""
    );
    expect_error(
        app.get("/subject/nobody/audits?format=csv", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn the_study_trail_is_exported_between_two_days_staff_without_account_entries() {
    let app = spawn_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app.create_user("staff@example.org", "plain staff passphrase", false)
        .await;
    let day = |days: i64| {
        (app.start + Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    // Day 0: S-0; day 2: S-2 and S-3; day 5: S-5.
    app.add_subject("S-0", "Zero", "1980-01-01").await;
    app.clock.advance(Duration::days(2));
    app.add_subject("S-2", "Two", "1980-01-01").await;
    app.add_subject("S-3", "Three", "1980-01-01").await;
    app.clock.advance(Duration::days(3));
    app.add_subject("S-5", "Five", "1980-01-01").await;
    let admin = app.login(ADMIN, ADMIN_PASSWORD).await;
    let staff = app
        .login("staff@example.org", "plain staff passphrase")
        .await;

    let subjects_of = |rows: &[Vec<String>]| -> Vec<String> {
        rows.iter()
            .skip(1)
            .filter(|r| r[2] == "create")
            .map(|r| r[3].clone())
            .collect()
    };
    let path = format!("/audit?format=csv&from={}&to={}", day(1), day(2));
    let rows = rows(&get_csv(&app, &path, &staff).await);
    assert_eq!(rows[0], AUDIT_COLUMNS);
    assert_eq!(subjects_of(&rows), ["S-2", "S-3"], "the days included");
    let rows_all = super::rows(&get_csv(&app, "/audit?format=csv", &staff).await);
    assert_eq!(subjects_of(&rows_all), ["S-0", "S-2", "S-3", "S-5"]);
    let times: Vec<&str> = rows_all[1..].iter().map(|r| r[0].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    assert!(
        rows_all[1..].iter().all(|r| r[5].is_empty()),
        "staff do not see staff-account entries"
    );
    let from_noon = format!("/audit?format=csv&from={}", app.at(Duration::days(5)));
    let rows = super::rows(&get_csv(&app, &from_noon, &staff).await);
    assert_eq!(subjects_of(&rows), ["S-5"], "from an instant");

    let admin_rows = super::rows(&get_csv(&app, "/audit?format=csv", &admin).await);
    assert!(
        admin_rows
            .iter()
            .any(|r| r[5] == "staff@example.org" && r[1] == "staff@example.org"),
        "admins see the account entries (the staff member's login)"
    );
    let exports = study_level_actions(&admin_rows[1..]);
    assert_eq!(
        exports,
        [
            format!(
                "export study audit trail as CSV (from {}T00:00:00Z to {}T00:00:00Z): 2 rows",
                day(1),
                day(3)
            ),
            // The four subjects and the first export.
            "export study audit trail as CSV (from the start to now): 5 rows".to_owned(),
            // S-5 and the two exports before.
            format!(
                "export study audit trail as CSV (from {} to now): 3 rows",
                app.at(Duration::days(5))
            ),
        ]
    );

    let message = expect_error(
        app.get(
            "/audit?format=csv&from=2026-02-01&to=2026-01-01",
            Some(&staff),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(message, "to must not be before from");
    let message = expect_error(
        app.get("/audit?format=csv&from=yesterday", Some(&staff))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.starts_with("from must be an RFC 3339"), "{message}");
    expect_error(
        app.get("/audit", Some(&staff)).await,
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    expect_error(
        app.get("/audit?format=csv", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn the_study_trail_of_many_pages_is_exported_whole() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for n in 0..1_100 {
        app.add_subject(&format!("S-{n:04}"), "Someone", "1980-01-01")
            .await;
    }
    let trail = study_trail(&app, &token).await;
    let created: Vec<&str> = trail
        .iter()
        .filter(|r| r[2] == "create")
        .map(|r| r[3].as_str())
        .collect();
    let expected: Vec<String> = (0..1_100).map(|n| format!("S-{n:04}")).collect();
    assert_eq!(created, expected);
}

#[tokio::test]
async fn the_console_downloads_a_subjects_activity_and_the_study_trail() {
    let app = spawn_app().await;
    app.create_user("staff@example.org", "plain staff passphrase", false)
        .await;
    app.add_subject("S 1/x", "Ada", "1980-02-29").await;
    let browser = Browser::new(&app).on_page("/subjects");
    browser
        .sign_in("staff@example.org", "plain staff passphrase")
        .await;

    let page = browser.get("/subjects/S%201%2Fx").await;
    assert!(
        page.body
            .contains(r#"href="/subjects/S%201%2Fx/activity.csv""#)
    );
    let download = browser.get("/subjects/S%201%2Fx/activity.csv").await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(
        download.headers["content-disposition"],
        "attachment; filename=\"audit-trail-S_1_x.csv\""
    );
    let rows = super::rows(&download.body);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1][2].as_str(), rows[1][3].as_str()),
        ("create", "S 1/x")
    );

    let list = browser.get("/subjects").await;
    assert!(
        list.body.contains(r#"action="/audit.csv""#),
        "the study trail form"
    );
    let today = app.start.format("%Y-%m-%d").to_string();
    let download = browser
        .get(&format!("/audit.csv?from={today}&to={today}"))
        .await;
    assert_eq!(download.status, StatusCode::OK);
    let rows = super::rows(&download.body);
    assert!(
        rows[1..]
            .iter()
            .any(|r| r[2] == "create" && r[3] == "S 1/x")
    );
    let bad = browser
        .get("/audit.csv?from=2026-02-01&to=2026-01-01")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("to must not be before from"));
}
