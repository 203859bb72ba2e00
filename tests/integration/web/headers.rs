//! Every console page sends the security headers and has no inline code.

use crate::common::browser::{Browser, Page, assert_no_inline_code, assert_security_headers};
use crate::common::*;
use reqwest::StatusCode;

use super::{STAFF, STAFF_PASSWORD};

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
