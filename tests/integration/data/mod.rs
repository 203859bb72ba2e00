//! Study data in and out (SPEC section 12): the subject list and the audit
//! trails as CSV, the bulk import of subjects, and what the console offers
//! for both.

mod audit_export;
mod console_import;
mod export;
mod import;
mod roles;

use crate::common::*;
use reqwest::StatusCode;

/// A CSV text's rows, header included, read as a spreadsheet program or
/// a statistics tool reads RFC 4180.
fn rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// `GET path` as staff, expecting CSV: the text.
async fn get_csv(app: &TestApp, path: &str, token: &str) -> String {
    let r = app.get(path, Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename="),
    );
    r.text().await.unwrap()
}

/// The whole study trail as an admin sees it, as rows without the header.
async fn study_trail(app: &TestApp, token: &str) -> Vec<Vec<String>> {
    let text = get_csv(app, "/audit?format=csv", token).await;
    rows(&text).into_iter().skip(1).collect()
}

/// The actions of the trail's entries that are about no subject, link or
/// account: the exports and imports.
fn study_level_actions(trail: &[Vec<String>]) -> Vec<String> {
    trail
        .iter()
        .filter(|row| row[3].is_empty() && row[4].is_empty() && row[5].is_empty())
        .map(|row| row[2].clone())
        .collect()
}
