//! `/subjects/import` in the console: a file input posted as a plain
//! multipart form, the check's page with every problem and a preview,
//! then the import of every row (once the file is fixed) or of the valid
//! ones.

use super::*;
use crate::common::browser::{Browser, Page};
use reqwest::multipart::{Form, Part};

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "plain staff passphrase";

async fn signed_in() -> (TestApp, Browser, String) {
    let app = spawn_app().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    (app, browser, csrf)
}

/// A multipart post as the browser sends the upload form: the token and
/// the action first, then the file.
pub(super) async fn upload(
    browser: &Browser,
    csrf: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
) -> Page {
    let mut form = Form::new().text("csrf_token", csrf.to_owned());
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "file",
            Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str("text/csv")
                .unwrap(),
        );
    }
    let r = browser
        .client
        .post(browser.url("/subjects/import"))
        .header("Origin", &browser.base)
        .header("Sec-Fetch-Site", "same-origin")
        .multipart(form)
        .send()
        .await
        .unwrap();
    Page::from(r).await
}

/// The value of the hidden `checked` field: the file as it was checked.
fn checked_file(page: &Page) -> String {
    let marker = r#"name="checked" value=""#;
    let start = page.body.find(marker).expect("an import form") + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end]
        .replace("&#13;", "\r")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The first 500 sssids, read through the service.
async fn sssids(app: &TestApp) -> Vec<String> {
    let query = idm::service::listing::SubjectListQuery {
        paging: idm::service::listing::Paging::new(0, 500),
        ..Default::default()
    };
    let page = app
        .state
        .services
        .subjects
        .list(&idm::service::Context::system(), query)
        .await
        .unwrap();
    page.items.into_iter().map(|s| s.sssid).collect()
}

#[tokio::test]
async fn a_file_with_problems_is_shown_then_fixed_and_imported() {
    let (app, browser, csrf) = signed_in().await;
    let list = browser.get("/subjects").await;
    assert!(
        list.body.contains(r#"href="/subjects/import""#),
        "the list offers the import"
    );
    let form = browser.get("/subjects/import").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"enctype="multipart/form-data""#));
    assert!(form.body.contains(r#"type="file" name="file""#));

    let bad = "sssid,name,bday\r\nN-1,Ada,1980-01-01\r\nN-2,Bob,1980-02-30\r\nN-3,\"O'Hara, Cy\",1980-03-03\r\n";
    let check = upload(
        &browser,
        &csrf,
        &[("action", "check")],
        Some(("recruits.csv", bad.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(check.status, StatusCode::OK);
    assert!(check.body.contains("Check of “recruits.csv”"));
    assert!(
        check.body.contains("3 rows: 2 valid, 1 with problems."),
        "{}",
        check.body
    );
    let problems_start = check.body.find(r#"id="import-problems""#).unwrap();
    let problems = &check.body
        [problems_start..check.body[problems_start..].find("</table>").unwrap() + problems_start];
    assert!(
        problems.contains("<td data-label=\"Row\">3</td><td data-label=\"SSSID\">N-2</td>"),
        "{problems}"
    );
    assert!(
        problems.contains("bday must be a date like 1980-12-31, got &quot;1980-02-30&quot;"),
        "{problems}"
    );
    assert!(
        check.body.contains("O&#39;Hara, Cy") || check.body.contains("O'Hara, Cy"),
        "the preview"
    );
    assert!(check.body.contains("Import only the 2 valid rows"));
    assert!(sssids(&app).await.is_empty(), "a check writes nothing");

    // Fixed and checked again: every row is valid, the import takes all.
    let fixed = bad.replace("1980-02-30", "1980-02-28");
    let check = upload(
        &browser,
        &csrf,
        &[("action", "check")],
        Some(("recruits.csv", fixed.into_bytes())),
    )
    .await;
    assert!(check.body.contains("3 rows: 3 valid, 0 with problems."));
    assert!(!check.body.contains(r#"id="import-problems""#));
    let file = checked_file(&check);
    let done = upload(
        &browser,
        &csrf,
        &[
            ("action", "import"),
            ("mode", "all"),
            ("file_name", "recruits.csv"),
            ("checked", &file),
        ],
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/subjects/import");
    let after = browser.get("/subjects/import").await;
    assert!(
        after
            .body
            .contains("Imported 3 subjects of “recruits.csv”."),
        "{}",
        after.body
    );
    assert_eq!(sssids(&app).await, ["N-1", "N-2", "N-3"]);
}

#[tokio::test]
async fn the_valid_rows_alone_can_be_imported_and_large_files_pass_the_form_check() {
    let (app, browser, csrf) = signed_in().await;
    let mut file = String::from("sssid,name,bday\r\n");
    for i in 0..2_000 {
        let bday = if i % 500 == 7 {
            "someday"
        } else {
            "1990-05-06"
        };
        file.push_str(&format!("V-{i:04},Person number {i},{bday}\r\n"));
    }
    assert!(file.len() > 64 * 1024);
    let check = upload(
        &browser,
        &csrf,
        &[("action", "check")],
        Some(("big.csv", file.into_bytes())),
    )
    .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert!(
        check
            .body
            .contains("2000 rows: 1996 valid, 4 with problems.")
    );
    assert!(check.body.contains("Preview (first 20 rows)"));
    let checked = checked_file(&check);
    let done = upload(
        &browser,
        &csrf,
        &[
            ("action", "import"),
            ("mode", "valid"),
            ("file_name", "big.csv"),
            ("checked", &checked),
        ],
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let after = browser.get("/subjects/import").await;
    assert!(
        after
            .body
            .contains("Imported 1996 subjects of “big.csv”; left out 4 rows with problems.")
    );
    assert_eq!(sssids(&app).await.len(), 500, "the first page of 1996");

    // All-or-nothing with a bad row imports nothing and shows the rows.
    let again = "sssid,name,bday\r\nW-1,Ada,1980-01-01\r\nV-0001,Taken,1980-01-01\r\n";
    let refused = upload(
        &browser,
        &csrf,
        &[("action", "import"), ("mode", "all"), ("checked", again)],
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        refused
            .body
            .contains("sssid &quot;V-0001&quot; is already taken by a stored subject")
    );
    let token = app.admin_token().await;
    expect_error(
        app.get("/subject/W-1", Some(&token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn uploads_need_the_token_and_a_readable_file() {
    let (_app, browser, csrf) = signed_in().await;
    let refused = upload(
        &browser,
        "not-the-token",
        &[("action", "check")],
        Some(("a.csv", b"sssid,name,bday\r\n".to_vec())),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let unreadable = upload(
        &browser,
        &csrf,
        &[("action", "check")],
        Some(("a.csv", b"id;name\r\n".to_vec())),
    )
    .await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    assert!(
        unreadable
            .body
            .contains("“a.csv” could not be read: unknown column &quot;id;name&quot;"),
        "{}",
        unreadable.body
    );
    assert!(
        unreadable.body.contains(r#"type="file" name="file""#),
        "another try"
    );
}

#[tokio::test]
async fn a_subject_called_import_keeps_its_page() {
    let (app, browser, _csrf) = signed_in().await;
    app.add_subject("import", "Ima Port", "1980-01-01").await;
    let list = browser.get("/subjects").await;
    assert!(list.body.contains(r#"href="/subjects/%69mport""#));
    let page = browser.get("/subjects/%69mport").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ima Port"));
}
