//! The first-admin, login and create-user forms: wrong input comes back
//! with errors next to the fields, and login leads back to the page asked
//! for, but only to a local one.

use crate::common::browser::{Browser, Page};
use crate::common::*;
use reqwest::StatusCode;

use super::{STAFF, STAFF_PASSWORD, app_with_admin, is_admin, user_exists};

#[tokio::test]
async fn init_creates_the_first_admin_once() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let token = browser.get("/init").await.csrf();
    let r = browser
        .post(
            "/init",
            &[
                ("csrf_token", &token),
                ("email", " Admin@Example.org "),
                ("password", ADMIN_PASSWORD),
                ("password2", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.contains("admin@example.org"));
    assert!(is_admin(&app, ADMIN).await);
    let again = browser
        .post_htmx(
            "/init",
            &token,
            &[
                ("email", "other@example.org"),
                ("password", ADMIN_PASSWORD),
                ("password2", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(!user_exists(&app, "other@example.org").await);
    let page = browser.get("/init").await;
    assert!(page.body.contains("An administrator exists"));
    assert!(!page.body.contains("<form id=\"init-form\""));
}

/// Checks a re-rendered form: 4xx, the typed value kept, the password
/// never echoed, the error shown and tied to its field.
fn assert_form_error(
    page: &Page,
    status: StatusCode,
    kept: &str,
    password: &str,
    error: &str,
    what: &str,
) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    assert!(
        page.body.contains(&format!("value=\"{kept}\"")),
        "{what}: typed value lost"
    );
    assert!(
        !page.body.contains(&format!("value=\"{password}\"")),
        "{what}: password echoed"
    );
    if password.len() >= 12 {
        assert!(!page.body.contains(password), "{what}: password echoed");
    }
    assert!(
        page.body.contains(error),
        "{what}: no {error:?} in {}",
        page.body
    );
}

#[tokio::test]
async fn wrong_input_on_init_rerenders_the_form() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let token = browser.get("/init").await.csrf();
    let cases = [
        (
            "not-an-email",
            "a long good passphrase",
            "a long good passphrase",
            "email",
            "aria-invalid",
        ),
        (
            "admin@example.org",
            "qwertyuiop",
            "qwertyuiop",
            "password",
            "common",
        ),
        (
            "admin@example.org",
            "a long good passphrase",
            "a long other passphrase",
            "password2",
            "do not match",
        ),
    ];
    for (email, password, password2, field, error) in cases {
        let form = [
            ("email", email),
            ("password", password),
            ("password2", password2),
        ];
        let mut plain = form.to_vec();
        plain.push(("csrf_token", &token));
        let page = browser.post("/init", &plain).await;
        assert_form_error(
            &page,
            StatusCode::BAD_REQUEST,
            email,
            password2,
            error,
            field,
        );
        assert!(
            page.body.contains(&format!("id=\"init-{field}-error\"")),
            "{field}: error not at its field"
        );
        assert!(page.body.starts_with("<!DOCTYPE html>"));
        let fragment = browser.post_htmx("/init", &token, &form).await;
        assert_form_error(
            &fragment,
            StatusCode::BAD_REQUEST,
            email,
            password2,
            error,
            field,
        );
        assert!(
            fragment.body.starts_with("<form"),
            "htmx gets the form only"
        );
    }
    assert!(!app.state.services.users.is_initialized().await.unwrap());
}

#[tokio::test]
async fn wrong_login_rerenders_the_form_without_the_password() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.get("/login?next=/users").await.csrf();
    let form = [
        ("username", ADMIN),
        ("password", "wrong password here"),
        ("next", "/users"),
    ];
    let mut plain = form.to_vec();
    plain.push(("csrf_token", &token));
    let page = browser.post("/login", &plain).await;
    assert_form_error(
        &page,
        StatusCode::UNAUTHORIZED,
        ADMIN,
        "wrong password here",
        "Wrong username or password",
        "plain",
    );
    assert!(page.body.contains("name=\"next\" value=\"/users\""));
    let fragment = browser.post_htmx("/login", &token, &form).await;
    assert_form_error(
        &fragment,
        StatusCode::UNAUTHORIZED,
        ADMIN,
        "wrong password here",
        "Wrong username or password",
        "htmx",
    );
    // htmx sign-in: a full page load to the target, so the new token is used.
    let ok = browser
        .post_htmx(
            "/login",
            &token,
            &[
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", "/users?q=admin"),
            ],
        )
        .await;
    assert_eq!(ok.headers["hx-redirect"], "/users?q=admin");
}

#[tokio::test]
async fn login_next_only_leads_to_local_pages() {
    let app = app_with_admin().await;
    for (next, expected) in [
        ("https://evil.example/", "/users"),
        ("//evil.example/", "/users"),
        ("/\\evil.example", "/users"),
        ("/home", "/home"),
    ] {
        let browser = Browser::new(&app);
        let login = browser
            .get(&format!("/login?next={}", urlencode(next)))
            .await;
        assert!(
            !login.body.contains("evil.example"),
            "{next} echoed into the form"
        );
        let r = browser
            .post(
                "/login",
                &[
                    ("csrf_token", &login.csrf()),
                    ("username", ADMIN),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.location(), expected, "next={next}");
    }
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn wrong_input_on_create_user_rerenders_the_form() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    // Each error is a sentence next to its field, not the API's message.
    let cases = [
        (
            "not-an-email",
            "a long good passphrase",
            StatusCode::BAD_REQUEST,
            "new-user-username-error",
            "Enter an email address like name@example.org.",
        ),
        (
            "new@example.org",
            "password1",
            StatusCode::BAD_REQUEST,
            "new-user-password-error",
            "This password is too common. Choose another one.",
        ),
        (
            "new@example.org",
            "short",
            StatusCode::BAD_REQUEST,
            "new-user-password-error",
            "Choose a password of at least 8 characters.",
        ),
        (
            STAFF,
            "a long good passphrase",
            StatusCode::CONFLICT,
            "new-user-username-error",
            "A user with this email address already exists.",
        ),
    ];
    for (username, password, status, error_id, sentence) in cases {
        let next_to_field = format!(r#"id="{error_id}">{sentence}</p>"#);
        let form = [
            ("username", username),
            ("password", password),
            ("admin", "true"),
        ];
        let mut plain = form.to_vec();
        plain.push(("csrf_token", &token));
        let page = browser.post("/users", &plain).await;
        assert_form_error(&page, status, username, password, &next_to_field, username);
        assert!(
            page.body.contains("<option value=\"admin\" selected>"),
            "admin role kept"
        );
        let fragment = browser.post_htmx("/users", &token, &form).await;
        assert_form_error(
            &fragment,
            status,
            username,
            password,
            &next_to_field,
            username,
        );
        assert!(fragment.body.starts_with("<div id=\"users-panel\""));
    }
    assert!(!user_exists(&app, "new@example.org").await);
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_login_and_back() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let r = browser.get("/users?q=adm").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fusers%3Fq%3Dadm");
    let login = browser.get(r.location()).await;
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", "/users?q=adm"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/users?q=adm");
}
