//! Console sessions and their cookie: its flags, no session for
//! anonymous views, a new id at login, and the ways a session ends
//! (logout, timeouts, demotion, a password change); only hashes of ids are
//! stored.

use crate::common::browser::{Browser, Page};
use crate::common::*;
use chrono::Duration;
use idm::clock::Clock;
use reqwest::StatusCode;
use serde_json::json;

use super::{STAFF, STAFF_PASSWORD, app_with_admin};

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
