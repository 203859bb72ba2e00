//! The reset key stays secret: the emailed link moves it out of the URL,
//! it never reaches the logs, and the store keeps only its hash.

use crate::common::browser::{Browser, Page};
use reqwest::StatusCode;
use reqwest::header::{REFERRER_POLICY, SET_COOKIE};
use sha2::{Digest, Sha256};

use super::logs::LogCapture;
use super::{ALICE, NEW_PASSWORD, TestAppExt, smtp_app};

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The `idm_reset` cookie a response sets, if any.
fn reset_cookie(page: &Page) -> Option<String> {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("idm_reset="))
        .map(str::to_owned)
}

/// The emailed link's key would leak from a page whose URL holds it (to
/// the history, and through Referer to whatever the page loads), so the
/// link only hands the key to a cookie of `/reset` and redirects.
#[tokio::test]
async fn the_emailed_link_moves_the_key_out_of_the_url() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    let browser = Browser::new(&app);

    let link = browser.get(&format!("/reset?k={key}")).await;
    assert_eq!(link.status, StatusCode::SEE_OTHER);
    assert_eq!(link.location(), "/reset", "the key is not in Location");
    assert_eq!(
        link.headers[REFERRER_POLICY], "no-referrer",
        "the answer whose URL holds the key sends no Referer"
    );
    let cookie = reset_cookie(&link).expect("the key goes into a cookie");
    assert!(cookie.starts_with(&format!("idm_reset={key};")), "{cookie}");
    for attribute in ["HttpOnly", "Path=/reset", "SameSite=Lax", "Max-Age=7200"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");

    let form = browser.get("/reset").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(ALICE), "{}", form.body);
    // The page keeps the site's policy, so the browser names our origin
    // when it posts the form (under no-referrer it sends `Origin: null`).
    assert_eq!(form.headers[REFERRER_POLICY], "same-origin");
    // The key is in the form's hidden field and nowhere else on the page:
    // not in the form's action, a link or a resource URL.
    assert!(form.body.contains("action=\"/reset\""), "{}", form.body);
    assert_eq!(form.body.matches(&key).count(), 1, "{}", form.body);
    assert!(
        form.body.contains(&format!(
            "<input type=\"hidden\" name=\"k\" value=\"{key}\">"
        )),
        "{}",
        form.body
    );

    let csrf = form.csrf();
    let done = browser
        .post(
            "/reset",
            &[
                ("csrf_token", &csrf),
                ("k", &key),
                ("password", NEW_PASSWORD),
                ("password2", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your password was changed."));
    let removal = reset_cookie(&done).expect("the spent key's cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");

    // Without the cookie, `/reset` says where the key comes from.
    let bare = browser.get("/reset").await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST);
    assert!(
        bare.body
            .contains("To choose a new password, open the link from your password reset email."),
        "{}",
        bare.body
    );
    assert!(bare.body.contains("href=\"/iforgot\""), "{}", bare.body);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn the_reset_key_never_reaches_the_logs_and_the_store_keeps_only_its_hash() {
    let logs = LogCapture::start();
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();

    // Through the store interface (either backend): found by its hash,
    // not by the key itself.
    let store = &app.state.services.deps.store;
    assert!(
        store
            .find_reset_token(&sha256_hex(&key))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.find_reset_token(&key).await.unwrap().is_none());
    if app.mongo.is_none() {
        let db = rusqlite::Connection::open(app.dir.path().join("idm.sqlite3")).unwrap();
        let stored: Vec<String> = db
            .prepare("SELECT token_hash FROM reset_tokens")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec![sha256_hex(&key)]);
    }

    // Use the key every way a client can, including failures.
    app.reset_page(&key).await;
    app.submit_reset(&key, "short", "short").await;
    app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    app.reset_page(&key).await;
    app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    app.settle().await;

    let logs = logs.text();
    assert!(
        logs.contains("/reset"),
        "the capture sees this test's requests"
    );
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(&key)).collect();
    assert!(leaks.is_empty(), "the key appears in log lines: {leaks:#?}");
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&key), "{} holds the key", path.display());
        }
    }
    for audit in app
        .state
        .services
        .deps
        .store
        .audits_for_user(ALICE)
        .await
        .unwrap()
    {
        assert!(!audit.action.contains(&key));
    }
}
