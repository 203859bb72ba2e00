//! `POST /subject/import`: a dry run that names every bad row and writes
//! nothing, then all rows or none (`mode=all`) or the valid ones
//! (`mode=valid`), each subject with its `create` audit; and the round
//! trip export → import into an empty store → export, byte for byte.

use super::*;
use idm::service::Context;
use idm::service::subjects::SubjectFields;
use serde_json::{Value, json};

const HEADER: &str =
    "sssid,name,bday,email,date_invited,date_consented,date_enrolled,date_withdrawn";

async fn post_csv(
    app: &TestApp,
    token: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/subject/import{query}")))
        .header("Authorization", format!("JWT {token}"))
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn report(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn total(app: &TestApp, token: &str) -> u64 {
    app.list_subjects(token, "perpage=1").await.1
}

/// 10,000 rows, 37 of them bad in seven ways; the bad rows' numbers and
/// reasons.
fn file_with_bad_rows() -> (String, Vec<(u64, String)>) {
    let mut text = format!("{HEADER}\r\n");
    let mut bad = Vec::new();
    let bad_at: Vec<usize> = (0..37).map(|k| 100 + k * 263).collect();
    for i in 0..10_000 {
        let row = i as u64 + 2;
        let (sssid, name, bday, email, consented) = (
            format!("B-{i:05}"),
            format!("Name {i}"),
            "1980-01-01",
            format!("p{i}@example.org"),
            "2026-01-02",
        );
        let line = match bad_at.iter().position(|&at| at == i).map(|k| k % 7) {
            None => format!("{sssid},{name},{bday},{email},,{consented},,"),
            Some(0) => {
                bad.push((
                    row,
                    "bday must be a date like 1980-12-31, got \"1980-13-01\"".to_owned(),
                ));
                format!("{sssid},{name},1980-13-01,{email},,,,")
            }
            Some(1) => {
                bad.push((row, "name is required".to_owned()));
                format!("{sssid},,{bday},{email},,,,")
            }
            Some(2) => {
                bad.push((
                    row,
                    "sssid \"B-00000\" is already in row 2 of the file".to_owned(),
                ));
                format!("B-00000,{name},{bday},{email},,,,")
            }
            Some(3) => {
                bad.push((
                    row,
                    "sssid \"STORED-1\" is already taken by a stored subject".to_owned(),
                ));
                format!("STORED-1,{name},{bday},{email},,,,")
            }
            Some(4) => {
                bad.push((
                    row,
                    "email must be an email address like name@example.org".to_owned(),
                ));
                format!("{sssid},{name},{bday},not-an-address,,,,")
            }
            Some(5) => {
                bad.push((row, "date_consented must be an RFC 3339 timestamp like 2024-05-01T09:30:00Z or a date like 2024-05-01, got \"yesterday\"".to_owned()));
                format!("{sssid},{name},{bday},{email},,yesterday,,")
            }
            Some(_) => {
                bad.push((row, "the row has 3 cells, the header row 8".to_owned()));
                format!("{sssid},{name},{bday}")
            }
        };
        text.push_str(&line);
        text.push_str("\r\n");
    }
    (text, bad)
}

#[tokio::test]
async fn a_dry_run_names_exactly_the_bad_rows_then_all_or_the_valid_ones_are_imported() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.add_subject("STORED-1", "Stored", "1970-01-01").await;
    let (file, bad) = file_with_bad_rows();
    assert!(file.len() > 64 * 1024, "larger than a JSON body may be");

    let dry = report(post_csv(&app, &token, "?dry_run=true&mode=valid", file.clone()).await).await;
    let errors: Vec<(u64, String)> = dry["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors, bad);
    assert_eq!(
        (
            dry["rows"].clone(),
            dry["valid"].clone(),
            dry["imported"].clone()
        ),
        (json!(10_000), json!(9_963), json!(0))
    );
    assert_eq!(total(&app, &token).await, 1, "a dry run writes nothing");

    let all = report(post_csv(&app, &token, "", file.clone()).await).await;
    assert_eq!(
        (all["valid"].clone(), all["imported"].clone()),
        (json!(9_963), json!(0))
    );
    assert_eq!(all["errors"].as_array().unwrap().len(), 37);
    assert_eq!(
        total(&app, &token).await,
        1,
        "mode=all writes nothing when a row is bad"
    );

    let valid = report(post_csv(&app, &token, "?mode=VALID&dry_run=false", file).await).await;
    assert_eq!(
        (valid["valid"].clone(), valid["imported"].clone()),
        (json!(9_963), json!(9_963))
    );
    assert_eq!(total(&app, &token).await, 9_964);
    let trail: Value = app
        .get("/subject/B-00001/audits", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("create", ADMIN),
            ("consented: 2026-01-02T00:00:00Z", ADMIN)
        ]
    );
    let imports = study_level_actions(&study_trail(&app, &token).await);
    assert_eq!(
        imports,
        [
            "import subjects from CSV (mode all): 10000 rows, 9963 valid, 0 imported",
            "import subjects from CSV (mode valid): 10000 rows, 9963 valid, 9963 imported",
        ],
        "real imports are audited, dry runs are not"
    );
}

/// Subjects with every column filled in a way that could go wrong.
async fn tricky_subjects(app: &TestApp, count: usize) {
    let names = [
        "=1+1",
        "O'Brien, \"Bob\"",
        "'t Hooft",
        "''=x",
        "محمد علي",
        "张伟",
        "Zoë Ångström",
        "-Minus @at +plus",
    ];
    for i in 0..count {
        let date = |days: i64| {
            Some(app.at(chrono::Duration::microseconds(
                days * 86_400_000_123 + i as i64,
            )))
        };
        let fields = SubjectFields {
            sssid: Some(format!("{}{i:05}", ["S-", "=", "'", "+"][i % 4])),
            name: Some(names[i % names.len()].to_owned()),
            bday: Some(format!("19{:02}-0{}-1{}", i % 100, 1 + i % 9, i % 10)),
            email: Some((i % 3 != 0).then(|| format!("p{i}@example.org"))),
            date_invited: (i % 2 == 0).then(|| date(-3)).flatten(),
            date_consented: (i % 4 == 0).then(|| date(-2)).flatten(),
            date_enrolled: (i % 8 == 0).then(|| date(-1)).flatten(),
            date_withdrawn: (i % 16 == 0).then(|| "2026-03-04".to_owned()),
        };
        app.state
            .services
            .subjects
            .create(&Context::system(), fields)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn export_import_into_an_empty_store_and_export_again_is_byte_identical() {
    let first = spawn_app().await;
    let token = first.admin_token().await;
    tricky_subjects(&first, 1_100).await;
    let exported = get_csv(&first, "/subject?format=csv", &token).await;
    assert_eq!(rows(&exported).len(), 1_101);

    let second = spawn_app().await;
    let token2 = second.admin_token().await;
    let imported = report(post_csv(&second, &token2, "", exported.clone()).await).await;
    assert_eq!(imported["errors"], json!([]));
    assert_eq!(imported["imported"], 1_100);
    let again = get_csv(&second, "/subject?format=csv", &token2).await;
    assert!(
        again == exported,
        "the second export differs from the first"
    );
}

#[tokio::test]
async fn a_file_is_read_as_spreadsheets_write_it_or_refused_as_a_whole() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // A byte order mark, columns in another order and letter case, only
    // the required ones and a blank line.
    let file = "\u{feff}Name,BDAY,sssid\r\n\"Lovelace, Ada\",1915-12-10,A-1\r\n,,\r\n'=Grace,1906-12-09,A-2\n";
    let done = report(post_csv(&app, &token, "?dry_run=false", file).await).await;
    assert_eq!(
        (done["rows"].clone(), done["imported"].clone()),
        (json!(2), json!(2))
    );
    let ada: Value = app
        .get("/subject/A-1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ada["data"]["name"], "Lovelace, Ada");
    let grace: Value = app
        .get("/subject/A-2", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grace["data"]["name"], "=Grace");

    for (body, message) in [
        (
            "sssid,name\r\nX,Y\r\n",
            "the header row must name the columns sssid, name and bday; missing: bday",
        ),
        (
            "sssid,name,bday,status\r\n",
            "unknown column \"status\"; the columns are sssid, name, bday, email, date_invited, date_consented, date_enrolled, date_withdrawn",
        ),
        ("sssid,name,bday,name\r\n", "column \"name\" appears twice"),
        ("", "the file is empty; its first row must name the columns"),
    ] {
        let got = expect_error(
            post_csv(&app, &token, "", body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(got, message);
    }
    let latin1 = b"sssid,name,bday\r\nL-1,Zo\xeb,1980-01-01\r\n".to_vec();
    let got = expect_error(
        post_csv(&app, &token, "", latin1).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, "the file must be UTF-8 text (byte 24 is not)");
    let got = expect_error(
        post_csv(&app, &token, "?mode=some", "sssid,name,bday\r\n").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, "mode must be all or valid, got \"some\"");
    let got = expect_error(
        post_csv(&app, &token, "?dry_run=maybe", "sssid,name,bday\r\n").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, "dry_run must be true or false, got \"maybe\"");
    let json_body = app
        .post_json("/subject/import", Some(&token), &json!({"sssid": "X"}))
        .await;
    let got = expect_error(json_body, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(got, "expected a CSV file with Content-Type: text/csv");
    let anonymous = app
        .client
        .post(app.url("/subject/import"))
        .header("Content-Type", "text/csv")
        .body("sssid,name,bday\r\n")
        .send()
        .await
        .unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;
    assert_eq!(total(&app, &token).await, 2, "nothing else was written");
}

#[tokio::test]
async fn the_subject_called_import_keeps_its_path() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"sssid": "import", "name": "Ima Port", "bday": "1980-01-01"});
    assert_eq!(
        app.post_json("/subject", Some(&token), &body)
            .await
            .status(),
        StatusCode::CREATED
    );
    let read: Value = app
        .get("/subject/import", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["name"], "Ima Port");
    let change = json!({"name": "Ima Changed"});
    let r = app.put_json("/subject/import", Some(&token), &change).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let trail: Value = app
        .get("/subject/import/audits", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trail["data"][1]["action"],
        "name: \"Ima Port\" -> \"Ima Changed\""
    );
}
