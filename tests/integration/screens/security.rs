//! The study screens' defences: security headers and no inline code,
//! signed-out visitors sent to sign in, forged posts refused, and GET
//! requests that change nothing.

use crate::common::browser::{Browser, Page, assert_no_inline_code, assert_security_headers};
use crate::common::*;
use idm::service::Context;
use reqwest::StatusCode;

use super::{audit_actions, consent, links_of, staff_app, subject};

#[tokio::test]
async fn subject_screens_send_security_headers_and_have_no_inline_code() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    let qr = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(qr.status, StatusCode::SEE_OTHER);
    let pages = vec![
        ("home", browser.get("/home").await),
        ("list", browser.get("/subjects").await),
        (
            "list fragment",
            browser.get_htmx("/subjects?q=ada", "subjects-list").await,
        ),
        ("new", browser.get("/subjects/new").await),
        (
            "new error",
            browser.post("/subjects", &[("csrf_token", &csrf)]).await,
        ),
        ("subject", browser.get("/subjects/S1").await),
        (
            "confirm",
            browser.get("/subjects/S1/record?step=withdrawn").await,
        ),
        (
            "overlay",
            browser
                .post_htmx("/subjects/S1/invitation", &csrf, &[])
                .await,
        ),
        ("printable", browser.get(qr.location()).await),
        ("unknown subject", browser.get("/subjects/nobody").await),
    ];
    for (what, page) in &pages {
        assert_security_headers(page, what);
        assert_no_inline_code(page, what);
    }
    assert_eq!(pages[9].1.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_login_and_change_nothing() {
    let app = spawn_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let anon = Browser::new(&app).on_page("/subjects");
    for path in [
        "/subjects",
        "/subjects/new",
        "/subjects/S1",
        "/subjects/S1/record?step=consented",
    ] {
        let page = anon.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login?next="), "{path}");
    }
    // With a valid CSRF token of an anonymous session, posts still need a
    // signed-in staff member.
    let csrf = anon.get("/login").await.csrf();
    for (path, form) in [
        ("/subjects/S1/record", vec![("step", "consented")]),
        ("/subjects/S1/invitation", vec![]),
        (
            "/subjects/S1",
            vec![("name", "Mallory"), ("bday", "1980-01-01")],
        ),
        (
            "/subjects",
            vec![("sssid", "S2"), ("name", "Eve"), ("bday", "1980-01-01")],
        ),
    ] {
        let mut body = form.clone();
        body.push(("csrf_token", &csrf));
        let page = anon.post(path, &body).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login"), "{path}");
    }
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.name.as_str(), s1.date_consented),
        ("Ada Lovelace", None)
    );
    assert!(links_of(&app, "S1").await.is_empty());
    assert!(
        app.state
            .services
            .subjects
            .get(&Context::system(), "S2")
            .await
            .is_err()
    );
}

/// Posts `form` with the forged variants a cross-site attacker could send;
/// each must be refused with the 403 page.
async fn assert_forgeries_refused(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    form: &[(&str, &str)],
) {
    let stranger_token = Browser::new(app)
        .on_page("/subjects")
        .get("/login")
        .await
        .csrf();
    let wrong: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf_token", stranger_token.as_str())])
        .collect();
    let attempts = [
        (
            "no token",
            Some(app.base.as_str()),
            Some("same-origin"),
            form.to_vec(),
        ),
        (
            "another session's token",
            Some(app.base.as_str()),
            Some("same-origin"),
            wrong,
        ),
        (
            "foreign Origin",
            Some("https://evil.example"),
            None,
            form.to_vec(),
        ),
        ("cross-site fetch", None, Some("cross-site"), form.to_vec()),
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
}

#[tokio::test]
async fn forged_posts_to_subject_screens_are_refused_and_change_nothing() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects",
        &[("sssid", "S2"), ("name", "Eve"), ("bday", "1980-01-01")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1",
        &[("name", "Mallory"), ("bday", "1980-01-01")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1/record",
        &[("step", "consented")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1/record",
        &[("step", "withdrawn")],
    )
    .await;
    let s1 = subject(&app, "S1").await;
    assert_eq!(s1.name, "Ada Lovelace", "forged edit");
    assert_eq!(
        (s1.date_consented, s1.date_withdrawn),
        (None, None),
        "forged step"
    );
    assert!(
        app.state
            .services
            .subjects
            .get(&Context::system(), "S2")
            .await
            .is_err(),
        "forged create"
    );
    consent(&app, "S1").await;
    assert_forgeries_refused(&app, &browser, "/subjects/S1/invitation", &[]).await;
    assert!(
        links_of(&app, "S1").await.is_empty(),
        "forged QR code made a link"
    );
    // The genuine post works, as form field and as htmx header.
    let r = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn get_requests_change_nothing() {
    let (app, browser, _) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    for step in ["invited", "consented", "withdrawn"] {
        let page = browser
            .get(&format!("/subjects/S1/record?step={step}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{step}");
        assert!(page.body.contains("Record that"), "{step}");
    }
    assert_eq!(
        browser.get("/subjects/S1/invitation").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.date_invited, s1.date_consented, s1.date_withdrawn),
        (None, None, None)
    );
    assert_eq!(audit_actions(&app, "S1").await.len(), 1, "only the create");
}
