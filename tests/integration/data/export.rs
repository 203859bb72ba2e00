//! The subject list as CSV: `GET /subject?format=csv` (or `Accept:
//! text/csv`) with the filter, search and order of the JSON list, cells a
//! spreadsheet cannot run as formulas, every page streamed, every export
//! audited; and the console's download of the list as it shows it.

use super::*;
use crate::common::browser::Browser;
use idm::service::csv::{SUBJECT_COLUMNS, restore};
use serde_json::{Value, json};

fn sssids(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter()
        .skip(1)
        .map(|r| restore(&r[0]).to_owned())
        .collect()
}

#[tokio::test]
async fn the_csv_list_has_the_filter_search_and_order_of_the_json_list() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (sssid, name) in [
        ("S-1", "Ada Lovelace"),
        ("S-2", "Grace Hopper"),
        ("S-3", "Ada Yonath"),
        ("T-1", "Alan Turing"),
    ] {
        app.add_subject(sssid, name, "1980-02-29").await;
    }
    let consent = json!({"date_consented": "2026-01-02T03:04:05.5Z"});
    let r = app.put_json("/subject/S-3", Some(&token), &consent).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    for query in [
        "",
        "search=Ada&ordercol=name&orderdir=DESC",
        "status=consented",
        "search=S-&orderdir=desc",
        "ordercol=changed&orderdir=asc",
    ] {
        let (listed, total) = app
            .list_subjects(&token, &format!("{query}&perpage=500"))
            .await;
        let text = get_csv(&app, &format!("/subject?format=csv&{query}"), &token).await;
        let rows = rows(&text);
        assert_eq!(rows[0], SUBJECT_COLUMNS, "the header row");
        assert_eq!(sssids(&rows), listed, "{query}");
        assert_eq!(rows.len() as u64 - 1, total, "{query}");
        assert!(text.ends_with("\r\n"), "RFC 4180 lines end in CRLF");
    }
    let text = get_csv(&app, "/subject?format=csv&status=consented", &token).await;
    assert_eq!(
        text,
        "sssid,name,bday,email,date_invited,date_consented,date_enrolled,date_withdrawn\r\n\
         S-3,Ada Yonath,1980-02-29,,,2026-01-02T03:04:05.500Z,,\r\n"
    );

    // Accept: text/csv chooses CSV too; format wins over it.
    let r = app
        .client
        .get(app.url("/subject?search=T-"))
        .header("Authorization", format!("JWT {token}"))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(sssids(&rows(&r.text().await.unwrap())), ["T-1"]);
    let r = app
        .client
        .get(app.url("/subject?format=json"))
        .header("Authorization", format!("JWT {token}"))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");

    // An offset or perpage exports that page only.
    let text = get_csv(&app, "/subject?format=csv&offset=1&perpage=2", &token).await;
    assert_eq!(sssids(&rows(&text)), ["S-2", "S-3"]);

    // Refusals are the JSON envelope, before anything is sent.
    let message = expect_error(
        app.get("/subject?format=xml", Some(&token)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(message, "format must be json or csv, got \"xml\"");
    let message = expect_error(
        app.get("/subject?format=csv&ordercol=password", Some(&token))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.starts_with("ordercol must be one of"), "{message}");
    expect_error(
        app.get("/subject?format=csv", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn cells_that_look_like_formulas_open_as_text_and_every_value_survives() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let people = [
        ("=1+1", "=HYPERLINK(\"http://evil.example\",\"click\")"),
        ("+49", "+1 Jones"),
        ("-5", "-Minus"),
        ("@x", "@SUM(A1:A9)"),
        ("S,1", "O'Brien, \"Bob\""),
        ("S'2", "'t Hooft"),
        ("'=3", "'=tricky"),
        ("S-4", "محمد علي"),
        ("S-5", "张伟"),
        ("S-6", "Zoë Ångström-Ødegård"),
    ];
    for (sssid, name) in people {
        let body =
            json!({"sssid": sssid, "name": name, "bday": "1975-12-31", "email": "=x@example.org"});
        let r = app.post_json("/subject", Some(&token), &body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{sssid}");
    }
    let text = get_csv(&app, "/subject?format=csv", &token).await;
    let rows = rows(&text);
    assert_eq!(rows.len(), people.len() + 1);
    for row in &rows[1..] {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} would run as a formula"
            );
        }
        assert_eq!(row[3], "'=x@example.org");
    }
    let (listed, _) = app.list_subjects(&token, "perpage=500").await;
    for (row, sssid) in rows[1..].iter().zip(&listed) {
        let r = app
            .get(&format!("/subject/{}", urlencode(sssid)), Some(&token))
            .await;
        let subject: Value = r.json().await.unwrap();
        assert_eq!(restore(&row[0]), subject["data"]["sssid"]);
        assert_eq!(restore(&row[1]), subject["data"]["name"]);
    }
    let names: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    for (exported, value) in [
        (
            "'=HYPERLINK(\"http://evil.example\",\"click\")",
            "=HYPERLINK",
        ),
        ("'+1 Jones", "+1"),
        ("''=tricky", "'="),
        ("'t Hooft", "'t"),
        ("O'Brien, \"Bob\"", "O'Brien"),
        ("محمد علي", "محمد"),
    ] {
        assert!(names.contains(&exported), "{value}: {names:?}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
}

#[tokio::test]
async fn a_list_of_several_pages_is_exported_whole_and_the_export_is_audited() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for n in 0..1_234 {
        app.add_subject(
            &format!("P-{n:05}"),
            &format!("Person {}", 1_234 - n),
            "1990-01-01",
        )
        .await;
    }
    let r = app
        .get(
            "/subject?format=csv&ordercol=name&orderdir=desc",
            Some(&token),
        )
        .await;
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not assembled first"
    );
    let rows = rows(&r.text().await.unwrap());
    assert_eq!(rows.len(), 1_235);
    let mut by_name = Vec::new();
    for page in 0..3 {
        let query = format!(
            "ordercol=name&orderdir=desc&perpage=500&offset={}",
            page * 500
        );
        by_name.extend(app.list_subjects(&token, &query).await.0);
    }
    assert_eq!(sssids(&rows), by_name);

    get_csv(
        &app,
        "/subject?format=csv&search=P-0000&status=not-invited",
        &token,
    )
    .await;
    let trail = study_trail(&app, &token).await;
    let exports = study_level_actions(&trail);
    assert_eq!(
        exports,
        [
            "export subjects as CSV (by name desc): 1234 rows",
            "export subjects as CSV (search \"P-0000\", status not-invited, by sssid asc): 10 rows",
        ]
    );
    let entry = trail
        .iter()
        .find(|row| row[2].starts_with("export subjects"))
        .unwrap();
    assert_eq!(entry[1], ADMIN, "the actor");
}

#[tokio::test]
async fn the_console_downloads_the_list_as_it_shows_it() {
    let app = spawn_app().await;
    app.create_user("staff@example.org", "plain staff passphrase", false)
        .await;
    for (sssid, name) in [
        ("A-1", "Ada Lovelace"),
        ("A-2", "Ada Yonath"),
        ("B-1", "Bob Builder"),
    ] {
        app.add_subject(sssid, name, "1980-02-29").await;
    }
    let browser = Browser::new(&app).on_page("/subjects");
    let signed_out = browser.get("/subjects.csv").await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER, "to the login");

    browser
        .sign_in("staff@example.org", "plain staff passphrase")
        .await;
    let list = browser.get("/subjects?q=ada&sort=name&dir=desc").await;
    let href = "/subjects.csv?q=ada&amp;sort=name&amp;dir=desc";
    assert!(list.body.contains(href), "the download link: {}", list.body);
    let fragment = browser
        .get_htmx("/subjects?q=bob&sort=sssid&dir=asc", "subjects-list")
        .await;
    assert!(
        fragment
            .body
            .contains("/subjects.csv?q=bob&amp;sort=sssid&amp;dir=asc"),
        "the link follows the list"
    );

    let download = browser.get("/subjects.csv?q=ada&sort=name&dir=desc").await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.headers["content-type"], "text/csv; charset=utf-8");
    let rows = rows(&download.body);
    assert_eq!(sssids(&rows), ["A-2", "A-1"]);
    let token = app.admin_token().await;
    let exports = study_level_actions(&study_trail(&app, &token).await);
    assert_eq!(
        exports,
        ["export subjects as CSV (search \"ada\", by name desc): 2 rows"]
    );
}
