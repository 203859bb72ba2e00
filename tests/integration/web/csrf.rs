//! Forged posts are refused and change nothing, on anonymous, signed-in
//! and recovery forms; GET requests change nothing; a refused form is a
//! console page, or for htmx a fragment.

use crate::common::browser::{Browser, Page, assert_no_inline_code, assert_security_headers};
use crate::common::*;
use reqwest::StatusCode;

use super::{
    STAFF, STAFF_PASSWORD, app_with_admin, is_admin, outbox_len, reset_key_from_outbox, user_exists,
};

/// Posts `form` (plus a token, unless `token` is None) in the ways a forged
/// request could arrive; every one must be refused with the 403 page.
async fn assert_forgeries_refused(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    token: &str,
    form: &[(&str, &str)],
) {
    let with_token: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf_token", token)])
        .collect();
    let wrong_token: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([(
            "csrf_token",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )])
        .collect();
    let attempts = [
        (
            "foreign Origin",
            Some("https://evil.example"),
            None,
            with_token.clone(),
        ),
        ("Origin null", Some("null"), None, with_token.clone()),
        (
            "cross-site fetch",
            None,
            Some("cross-site"),
            with_token.clone(),
        ),
        (
            "same-site fetch",
            None,
            Some("same-site"),
            with_token.clone(),
        ),
        (
            "no token",
            Some(app.base.as_str()),
            Some("same-origin"),
            form.to_vec(),
        ),
        (
            "wrong token",
            Some(app.base.as_str()),
            Some("same-origin"),
            wrong_token,
        ),
    ];
    for (what, origin, site, body) in attempts {
        let mut req = browser.client.post(browser.url(path)).form(&body);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        if let Some(site) = site {
            req = req.header("Sec-Fetch-Site", site);
        }
        let page = Page::from(req.send().await.unwrap()).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "{path}: {what} was accepted"
        );
        assert!(
            page.body.contains("This form could not be sent safely"),
            "{path}: {what}"
        );
    }
    // A token of another session is no token at all.
    let stranger = Browser::new(app);
    let stranger_token = stranger.get("/login").await.csrf();
    let body: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf_token", stranger_token.as_str())])
        .collect();
    assert_eq!(
        browser.post(path, &body).await.status,
        StatusCode::FORBIDDEN,
        "{path}: foreign token"
    );
    // Nor is a header token from another session.
    let r = browser.post_htmx(path, &stranger_token, form).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "{path}: foreign header token"
    );
}

#[tokio::test]
async fn forged_posts_to_anonymous_forms_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let token = browser.get("/init").await.csrf();
    let init = [
        ("email", ADMIN),
        ("password", ADMIN_PASSWORD),
        ("password2", ADMIN_PASSWORD),
    ];
    assert_forgeries_refused(&app, &browser, "/init", &token, &init).await;
    assert!(
        !app.state.services.users.is_initialized().await.unwrap(),
        "/init created an admin"
    );

    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let session_before = browser.session_cookie();
    let login = [("username", ADMIN), ("password", ADMIN_PASSWORD)];
    assert_forgeries_refused(&app, &browser, "/login", &token, &login).await;
    assert_eq!(
        browser.session_cookie(),
        session_before,
        "a forged login signed in"
    );
    assert_eq!(browser.get("/home").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forged_posts_to_signed_in_routes_are_refused_and_change_nothing() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;

    let create = [
        ("username", "new@example.org"),
        ("password", "a good long passphrase"),
        ("admin", "true"),
    ];
    assert_forgeries_refused(&app, &browser, "/users", &token, &create).await;
    assert!(!user_exists(&app, "new@example.org").await, "forged create");

    let promote = [("username", STAFF), ("admin", "true")];
    assert_forgeries_refused(&app, &browser, "/users/admin", &token, &promote).await;
    assert!(!is_admin(&app, STAFF).await, "forged promotion");

    let delete = [("username", STAFF)];
    assert_forgeries_refused(&app, &browser, "/users/delete", &token, &delete).await;
    assert!(user_exists(&app, STAFF).await, "forged delete");

    assert_forgeries_refused(&app, &browser, "/users/reset", &token, &delete).await;
    app.state.services.background.idle().await;
    assert_eq!(outbox_len(&app), 0, "forged reset email");

    assert_forgeries_refused(&app, &browser, "/logout", &token, &[]).await;
    assert_eq!(
        browser.get("/users").await.status,
        StatusCode::OK,
        "forged logout"
    );

    // The genuine requests work, as form field and as htmx header.
    let r = browser.post_htmx("/users/admin", &token, &promote).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(is_admin(&app, STAFF).await);
}

#[tokio::test]
async fn get_requests_change_nothing() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let confirm = browser
        .get(&format!("/users/delete?username={STAFF}"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("cannot be undone"));
    assert!(user_exists(&app, STAFF).await);
    let htmx_confirm = browser
        .get_htmx(&format!("/users/delete?username={STAFF}"), "")
        .await;
    assert!(
        htmx_confirm.body.starts_with("<tr"),
        "{}",
        htmx_confirm.body
    );
    assert!(user_exists(&app, STAFF).await);
    for path in [
        format!("/users/admin?username={STAFF}&admin=true"),
        "/logout".to_owned(),
        format!("/init?email={STAFF}&password=x&password2=x"),
    ] {
        let status = browser.get(&path).await.status;
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::OK,
            "{path}: {status}"
        );
    }
    assert!(!is_admin(&app, STAFF).await);
    assert_eq!(
        browser.get("/users").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn forged_posts_to_recovery_forms_are_refused_and_change_nothing() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.get("/iforgot").await.csrf();
    assert_forgeries_refused(&app, &browser, "/iforgot", &token, &[("username", ADMIN)]).await;
    app.state.services.background.idle().await;
    assert_eq!(outbox_len(&app), 0, "a forged /iforgot sent mail");

    // A real key, then forged attempts to spend it.
    let sent = browser
        .post("/iforgot", &[("csrf_token", &token), ("username", ADMIN)])
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    let key = reset_key_from_outbox(&app).await;
    let new_password = "a forged new passphrase";
    let form = [
        ("k", key.as_str()),
        ("password", new_password),
        ("password2", new_password),
    ];
    assert_forgeries_refused(&app, &browser, "/reset", &token, &form).await;
    let link = browser.get(&format!("/reset?k={key}")).await;
    assert_eq!(link.location(), "/reset", "the key is still unspent");
    assert_eq!(browser.get("/reset").await.status, StatusCode::OK);
    let old = app
        .post_json(
            "/auth",
            None,
            &serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), StatusCode::OK, "the password is unchanged");
}

#[tokio::test]
async fn a_refused_form_is_a_console_page_or_for_htmx_a_fragment() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    browser.get("/login").await;
    let wrong = "0".repeat(64);
    let form = [("csrf_token", wrong.as_str()), ("username", ADMIN)];
    let page = browser.post("/login", &form).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.starts_with("<!DOCTYPE html>"), "{}", page.body);
    assert!(page.body.contains("site-header"), "the console layout");
    assert!(
        page.body
            .contains("This form could not be sent safely. Reload the page and try again.")
    );
    assert_security_headers(&page, "refusal");
    assert_no_inline_code(&page, "refusal");
    let fragment = browser.post_htmx("/login", &wrong, &form).await;
    assert_eq!(fragment.status, StatusCode::FORBIDDEN);
    assert!(!fragment.body.contains("<html"), "{}", fragment.body);
    assert!(
        fragment
            .body
            .contains("This form could not be sent safely.")
    );
    assert_eq!(fragment.headers["hx-retarget"], "#main");
    assert_eq!(fragment.headers["hx-reswap"], "innerHTML");
}
