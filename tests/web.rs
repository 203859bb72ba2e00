//! The browser console over real HTTP: sessions, CSRF, security headers,
//! forms and user management. Clients keep cookies like a browser and do
//! not follow redirects, so every 303 and Set-Cookie can be checked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap fails the test with its message

mod common;

use chrono::Duration;
use common::browser::{Browser, Page, assert_no_inline_code, assert_security_headers};
use common::*;
use idm::clock::Clock;
use reqwest::StatusCode;
use serde_json::json;

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "plain staff passphrase";

async fn app_with_admin() -> TestApp {
    let app = spawn_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app
}

async fn user_exists(app: &TestApp, username: &str) -> bool {
    app.state
        .services
        .users
        .get(&idm::service::Context::system(), username)
        .await
        .is_ok()
}

async fn is_admin(app: &TestApp, username: &str) -> bool {
    app.state
        .services
        .users
        .get(&idm::service::Context::system(), username)
        .await
        .unwrap()
        .admin
}

// ------------------------------------------------------------ headers

#[tokio::test]
async fn every_page_sends_security_headers_and_has_no_inline_code() {
    let app = spawn_app().await;
    let anon = Browser::new(&app);
    let mut pages = vec![
        ("init form", anon.get("/init").await),
        ("login", anon.get("/login").await),
        ("login redirect", anon.get("/users").await),
    ];
    let csrf = pages[0].1.csrf();
    pages.push((
        "init error",
        anon.post("/init", &[("csrf_token", &csrf), ("email", "x")])
            .await,
    ));
    pages.push((
        "csrf refusal",
        anon.post("/init", &[("email", ADMIN)]).await,
    ));
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    pages.push(("init ready", anon.get("/init").await));
    let admin = Browser::new(&app);
    admin.sign_in(ADMIN, ADMIN_PASSWORD).await;
    pages.push(("home", admin.get("/home").await));
    pages.push(("logout question", admin.get("/logout").await));
    pages.push(("users", admin.get("/users").await));
    pages.push((
        "users search",
        admin.get_htmx("/users?q=staff", "users-list").await,
    ));
    pages.push((
        "delete confirmation",
        admin.get(&format!("/users/delete?username={STAFF}")).await,
    ));
    pages.push((
        "unknown user",
        admin.get("/users/delete?username=nobody@example.org").await,
    ));
    let staff = Browser::new(&app);
    staff.sign_in(STAFF, STAFF_PASSWORD).await;
    pages.push(("403", staff.get("/users").await));
    for (what, page) in &pages {
        assert_security_headers(page, what);
        assert_no_inline_code(page, what);
    }
    let static_file = Page::from(
        app.client
            .get(app.url("/static/htmx/htmx.min.js"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(static_file.status, StatusCode::OK);
    assert!(static_file.body.contains("htmx"));
    let css = app
        .client
        .get(app.url("/static/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

// ------------------------------------------------------------ cookies and sessions

/// Sign-in through a browser that has just opened the login page: the
/// answer to the login form.
async fn signing_in(browser: &Browser) -> Page {
    let login = browser.get("/login").await;
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.body);
    r
}

#[tokio::test]
async fn session_cookie_is_http_only_and_same_site() {
    let app = app_with_admin().await;
    let signed_in = signing_in(&Browser::new(&app)).await;
    let cookie = signed_in.set_cookie().expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
}

#[tokio::test]
async fn session_cookie_is_secure_when_the_public_url_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        public_url: "https://idm.example.org".into(),
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let browser = Browser::new(&app);
    // The nonce cookie is __Host- prefixed and Secure, which a client on
    // plain http keeps no more than a browser would: sign in by hand.
    let login = browser.get("/login").await;
    let nonce = login
        .set_cookie_named("__Host-idm_csrf")
        .expect("a CSRF nonce cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(nonce.contains(attribute), "{nonce}");
    }
    assert!(!nonce.contains("Domain"), "{nonce}");
    assert!(login.set_cookie_named("idm_csrf").is_none());
    let nonce_pair = nonce.split(';').next().unwrap().to_owned();
    let r = browser
        .client
        .post(browser.url("/login"))
        .header("Origin", &browser.base)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Cookie", nonce_pair)
        .form(&[
            ("csrf_token", login.csrf().as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let signed_in = Page::from(r).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let cookie = signed_in.set_cookie().expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn signed_out_pages_keep_no_session_and_their_nonce_cookie_is_strict() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let login = browser.get("/login").await;
    assert!(login.set_cookie().is_none(), "a session for a visitor");
    let nonce = login
        .set_cookie_named("idm_csrf")
        .expect("a CSRF nonce cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(nonce.contains(attribute), "{nonce}");
    }
    // Once set, the cookie is not set again; the token stays the same.
    let again = browser.get("/iforgot").await;
    assert!(again.set_cookie_named("idm_csrf").is_none());
    assert_eq!(again.csrf(), login.csrf());
    assert_eq!(browser.session_cookie(), None);
    // The token is bound to the cookie: without it, it is refused.
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = cookieless
        .post(browser.url("/login"))
        .header("Origin", &browser.base)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[
            ("csrf_token", login.csrf().as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()
            .get("set-cookie")
            .is_some_and(|c| !c.to_str().unwrap().starts_with("idm_session="))
    );
}

/// How many session rows the store holds: every row expires before the
/// far future, so housekeeping at that time removes (and counts) them all.
async fn count_and_drop_sessions(app: &TestApp) -> u64 {
    app.state
        .services
        .deps
        .store
        .delete_expired_sessions(app.clock.now() + Duration::days(365_000))
        .await
        .unwrap()
}

#[tokio::test]
async fn anonymous_page_views_add_no_session_rows() {
    use futures::StreamExt;
    let app = app_with_admin().await;
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paths = ["/login", "/iforgot", "/reset"];
    let statuses: Vec<StatusCode> = futures::stream::iter(0..10_000)
        .map(|i| {
            let request = cookieless.get(app.url(paths[i % paths.len()])).send();
            async move { request.await.unwrap().status() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // `/reset` without a key answers 400 with its "open the link" page.
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert_eq!(count_and_drop_sessions(&app).await, 0);
    // The count sees the one row a sign-in makes.
    signing_in(&Browser::new(&app)).await;
    assert_eq!(count_and_drop_sessions(&app).await, 1);
}

#[tokio::test]
async fn login_gives_a_new_session_id_and_the_old_one_is_dead() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let first = signing_in(&browser).await;
    assert_eq!(first.location(), "/users");
    let before = browser.session_cookie().expect("a session at login");
    // Signing in again from within a session (the login form of another
    // tab) starts a new one too.
    let csrf = browser.get("/home").await.csrf();
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = browser.session_cookie().expect("a session after login");
    assert_ne!(before, after, "the session id must change at login");
    assert_eq!(browser.get("/users").await.status, StatusCode::OK);
    // Someone holding the earlier id (planted or sniffed) gets nothing.
    let r = app
        .client
        .get(app.url("/users"))
        .header("Cookie", format!("idm_session={before}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/login", "redirected to the login page");
}

#[tokio::test]
async fn logout_ends_the_session_and_the_old_cookie_is_rejected() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let csrf = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let cookie = browser.session_cookie().unwrap();
    // GET never logs out: it asks.
    let ask = browser.get("/logout").await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Sign out?"));
    assert_eq!(browser.get("/users").await.status, StatusCode::OK);
    let r = browser.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?signed_out=1");
    let login = browser.get(r.location()).await;
    assert!(login.body.contains("You have signed out."));
    assert_ne!(browser.session_cookie(), Some(cookie.clone()));
    let replay = Page::from(
        app.client
            .get(app.url("/users"))
            .header("Cookie", format!("idm_session={cookie}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !replay.body.contains("User management"),
        "old cookie still works"
    );
    let mut replay = app
        .client
        .get(app.url("/home"))
        .header("Cookie", format!("idm_session={cookie}"))
        .header("HX-Request", "true");
    replay = replay.header("HX-Current-URL", app.url("/home"));
    let r = replay.send().await.unwrap();
    // reqwest follows no HX-Redirect: htmx sees it and loads the login
    // page, which says the session ended.
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["hx-redirect"], "/login?next=%2Fhome&ended=1");
}

#[tokio::test]
async fn idle_timeout_ends_the_session_on_the_service_clock() {
    let app = app_with_admin().await;
    let idle = app.config.session_idle_secs as i64;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    // Activity keeps the session alive well past one idle period...
    for _ in 0..3 {
        app.clock.advance(Duration::seconds(idle - 60));
        assert_eq!(browser.get("/users").await.status, StatusCode::OK);
    }
    // ...but a pause longer than the idle timeout ends it.
    app.clock.advance(Duration::seconds(idle + 1));
    let r = browser.get("/users").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fusers");
}

#[tokio::test]
async fn absolute_timeout_ends_even_an_active_session() {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        session_idle_secs: 1800,
        session_absolute_secs: 3600,
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(25));
        assert_eq!(browser.get("/users").await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::minutes(11));
    let r = browser.get("/users").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "61 minutes after login");
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn demotion_and_password_change_end_sessions_at_once() {
    let app = app_with_admin().await;
    app.create_user("second@example.org", ADMIN_PASSWORD, true)
        .await;
    let second = Browser::new(&app);
    second.sign_in("second@example.org", ADMIN_PASSWORD).await;
    let staff_browser = {
        app.create_user(STAFF, STAFF_PASSWORD, false).await;
        let b = Browser::new(&app);
        b.sign_in(STAFF, STAFF_PASSWORD).await;
        b
    };
    let token = app.login(ADMIN, ADMIN_PASSWORD).await;
    let r = app
        .put_json(
            "/user/second@example.org",
            Some(&token),
            &json!({"admin": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = second.get("/users").await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "demoted admin keeps no session"
    );
    let r = app
        .put_json(
            &format!("/user/{STAFF}"),
            Some(&token),
            &json!({"password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        staff_browser.get("/home").await.status,
        StatusCode::SEE_OTHER
    );
}

// ------------------------------------------------------------ CSRF

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

// ------------------------------------------------------------ forms

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

/// Buttons and links named by `aria-label`: each name holds the visible
/// text, so people who use speech input can say what they see.
fn assert_names_hold_visible_text(page: &Page, what: &str) {
    let mut rest = page.body.as_str();
    let mut checked = 0;
    while let Some(at) = rest.find("aria-label=\"") {
        let tag_start = rest[..at].rfind('<').unwrap();
        let label_start = at + "aria-label=\"".len();
        let label_end = label_start + rest[label_start..].find('"').unwrap();
        let label = &rest[label_start..label_end];
        let tag = &rest[tag_start + 1..];
        let name = &tag[..tag.find([' ', '>']).unwrap()];
        let content_start = label_end + rest[label_end..].find('>').unwrap() + 1;
        let content_end = content_start + rest[content_start..].find("</").unwrap();
        let visible = rest[content_start..content_end]
            .trim()
            .trim_end_matches('…');
        if matches!(name, "button" | "a") && !visible.is_empty() {
            assert!(
                label.to_lowercase().contains(&visible.to_lowercase()),
                "{what}: the {name} showing {visible:?} is named {label:?}"
            );
            checked += 1;
        }
        rest = &rest[label_end..];
    }
    assert!(checked > 0, "{what}: no named buttons or links");
}

#[tokio::test]
async fn user_actions_are_named_with_their_visible_text() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = browser.get("/users").await;
    assert!(page.body.contains(&format!(
        r#"aria-label="Send reset email to {STAFF}">Send reset email</button>"#
    )));
    assert_names_hold_visible_text(&page, "users");
}

// ------------------------------------------------------------ user management

#[tokio::test]
async fn admin_manages_users_with_plain_forms() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = browser
        .post(
            "/users",
            &[
                ("csrf_token", &token),
                ("username", "New@Example.org"),
                ("password", "a good long passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let list = browser.get(r.location()).await;
    assert!(
        list.body
            .contains("Created new@example.org as staff member.")
    );
    assert!(list.body.contains("new@example.org"));
    assert!(!is_admin(&app, "new@example.org").await);

    let r = browser
        .post(
            "/users/admin",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("admin", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(is_admin(&app, "new@example.org").await);
    let r = browser
        .post(
            "/users/admin",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("admin", "false"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!is_admin(&app, "new@example.org").await);

    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", "new@example.org")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        browser
            .get("/users")
            .await
            .body
            .contains("Deleted new@example.org.")
    );
    assert!(!user_exists(&app, "new@example.org").await);

    // The rules of the service hold here too.
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", ADMIN)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("last admin"));
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", "nobody@example.org")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_manages_users_with_htmx_fragments() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = browser
        .post_htmx(
            "/users",
            &token,
            &[
                ("username", "new@example.org"),
                ("password", "a good long passphrase"),
                ("admin", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("<div id=\"users-panel\""));
    assert!(r.body.contains("Created new@example.org as administrator."));
    assert!(is_admin(&app, "new@example.org").await);
    let r = browser
        .post_htmx(
            "/users/admin",
            &token,
            &[("username", "new@example.org"), ("admin", "false")],
        )
        .await;
    assert!(r.body.contains("is no longer an administrator"));
    let r = browser
        .post_htmx("/users/delete", &token, &[("username", "new@example.org")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Deleted new@example.org."));
    assert!(!user_exists(&app, "new@example.org").await);
    let r = browser
        .post_htmx("/users/delete", &token, &[("username", ADMIN)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.starts_with("<div id=\"users-panel\"") && r.body.contains("last admin"));
}

#[tokio::test]
async fn user_list_searches_literally_and_pages() {
    let app = app_with_admin().await;
    for i in 0..23 {
        app.create_user(
            &format!("person{i:02}@study.example"),
            STAFF_PASSWORD,
            false,
        )
        .await;
    }
    app.create_user("x_y@other.example", STAFF_PASSWORD, false)
        .await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let first = browser.get("/users?q=study").await;
    assert!(
        first.body.contains("23 users · page 1 of 2"),
        "{}",
        first.body
    );
    assert!(first.body.contains("person00@study.example"));
    assert!(!first.body.contains("person20@study.example"));
    assert!(first.body.contains("href=\"/users?q=study&amp;page=2\""));
    let second = browser
        .get_htmx("/users?q=study&page=2", "users-list")
        .await;
    assert!(second.body.starts_with("<div id=\"users-list\""));
    assert!(second.body.contains("person22@study.example"));
    assert!(!second.body.contains("person00@study.example"));
    // `_` is a literal underscore, not a wildcard.
    let literal = browser.get_htmx("/users?q=x_y", "users-list").await;
    assert!(
        literal.body.contains("1 user · page 1 of 1"),
        "{}",
        literal.body
    );
    let none = browser.get_htmx("/users?q=%25", "users-list").await;
    assert!(none.body.contains("No user matches"));
}

#[tokio::test]
async fn staff_get_the_403_page_for_user_management() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let home = browser.get("/home").await;
    assert!(
        !home.body.contains("href=\"/users\""),
        "no link to user management"
    );
    let page = browser.get("/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Access denied"));
    assert!(page.body.contains("Signed in as"));
    let r = browser
        .post(
            "/users",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("password", "a good long passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!user_exists(&app, "new@example.org").await);
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", ADMIN)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(user_exists(&app, ADMIN).await);
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

#[tokio::test]
async fn the_database_holds_only_hashes_of_session_ids() {
    use sha2::{Digest, Sha256};
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let cookie = browser.session_cookie().unwrap();
    let store = &app.state.services.deps.store;
    let now = app.clock.now();
    assert!(store.load_session(&cookie, now).await.unwrap().is_none());
    let hashed = hex::encode(Sha256::digest(cookie.as_bytes()));
    let row = store
        .load_session(&hashed, now)
        .await
        .unwrap()
        .expect("stored under the hash");
    assert!(!row.data.contains(&cookie));
    assert_eq!(
        row.expires,
        now + Duration::seconds(app.config.session_idle_secs as i64)
    );
}

/// The reset key in the newest mail of the file transport's outbox.
async fn reset_key_from_outbox(app: &TestApp) -> String {
    app.state.services.background.idle().await;
    let outbox = app.dir.path().join("outbox");
    let mut mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    mails.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let raw = std::fs::read(mails.last().expect("a mail in the outbox")).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let start = text.find("/reset?k=").expect("a reset link") + "/reset?k=".len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

fn outbox_len(app: &TestApp) -> usize {
    std::fs::read_dir(app.dir.path().join("outbox")).map_or(0, |d| d.count())
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
async fn admins_send_reset_emails_from_the_users_page() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let list = browser.get("/users").await;
    assert!(
        list.body.contains("action=\"/users/reset\""),
        "the button is there"
    );

    let r = browser
        .post_htmx("/users/reset", &token, &[("username", STAFF)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("reset link was sent"), "{}", r.body);
    let key = reset_key_from_outbox(&app).await;
    assert_eq!(key.len(), 64);
    let link = browser.get(&format!("/reset?k={key}")).await;
    let page = browser.get(link.location()).await;
    assert!(
        page.body.contains(STAFF),
        "the link is for the staff member"
    );

    // Plain form post: redirect with a flash message.
    let r = browser
        .post(
            "/users/reset",
            &[("csrf_token", &token), ("username", STAFF)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = browser
        .post_htmx("/users/reset", &token, &[("username", "ghost@example.org")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Staff may not.
    let staff = Browser::new(&app);
    let staff_token = staff.sign_in(STAFF, STAFF_PASSWORD).await;
    let before = outbox_len(&app);
    let r = staff
        .post_htmx("/users/reset", &staff_token, &[("username", ADMIN)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.state.services.background.idle().await;
    assert_eq!(outbox_len(&app), before);
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
