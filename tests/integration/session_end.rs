//! A console form or htmx request whose session ended meanwhile (idle or
//! absolute timeout, sign-out in another tab, an unknown cookie) leads to
//! the login page, which says so, and back to the page the visitor was on;
//! a cross-site request is still refused, whatever its session.

use crate::common::browser::{Browser, Page};
use crate::common::*;
use chrono::Duration;
use idm::service::Context;
use reqwest::StatusCode;

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "plain staff passphrase";
const SESSION_ENDED: &str = "Your session ended. Sign in again to continue.";
const FORM_NOT_KEPT: &str = "What you typed into the form could not be kept";

/// Ways a signed-in session ends behind the visitor's back.
#[derive(Debug, Clone, Copy)]
enum Ending {
    IdleTimeout,
    AbsoluteTimeout,
    SignedOutElsewhere,
}

const ENDINGS: [Ending; 3] = [
    Ending::IdleTimeout,
    Ending::AbsoluteTimeout,
    Ending::SignedOutElsewhere,
];

/// An app whose absolute timeout (1 hour) can be crossed without crossing
/// the idle timeout (30 minutes), with one subject and one staff member.
async fn study_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        session_idle_secs: 1800,
        session_absolute_secs: 3600,
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    app
}

/// A browser signed in as staff; returns the token its pages carry.
async fn signed_in(app: &TestApp) -> (Browser, String) {
    let browser = Browser::new(app);
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    (browser, csrf)
}

async fn end_session(app: &TestApp, browser: &Browser, csrf: &str, ending: Ending) {
    match ending {
        Ending::IdleTimeout => app.clock.advance(Duration::minutes(31)),
        Ending::AbsoluteTimeout => {
            // Active all along: only the absolute limit ends it.
            for _ in 0..2 {
                app.clock.advance(Duration::minutes(25));
                assert_eq!(browser.get("/home").await.status, StatusCode::OK);
            }
            app.clock.advance(Duration::minutes(11));
        }
        Ending::SignedOutElsewhere => {
            // Another tab shares the cookie: it signs out and shows the
            // login page (a new anonymous session with a new token).
            let r = browser.post("/logout", &[("csrf_token", csrf)]).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            assert_eq!(browser.get("/login").await.status, StatusCode::OK);
        }
    }
}

/// A plain form post from `page`, as a same-origin browser sends it.
async fn post_from(browser: &Browser, page: &str, path: &str, form: &[(&str, &str)]) -> Page {
    let r = browser
        .client
        .post(browser.url(path))
        .header("Origin", &browser.base)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Referer", browser.url(page))
        .form(form)
        .send()
        .await
        .unwrap();
    Page::from(r).await
}

/// The same post sent by htmx from `page`.
async fn post_htmx_from(
    browser: &Browser,
    page: &str,
    path: &str,
    csrf: &str,
    form: &[(&str, &str)],
) -> Page {
    let r = browser
        .client
        .post(browser.url(path))
        .header("Origin", &browser.base)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Referer", browser.url(page))
        .header("HX-Request", "true")
        .header("HX-Current-URL", browser.url(page))
        .header("HX-Target", "subject-panel")
        .header("X-CSRF-Token", csrf)
        .form(form)
        .send()
        .await
        .unwrap();
    Page::from(r).await
}

async fn subject_name(app: &TestApp, sssid: &str) -> String {
    app.state
        .services
        .subjects
        .get(&Context::system(), sssid)
        .await
        .unwrap()
        .name
}

async fn subject_exists(app: &TestApp, sssid: &str) -> bool {
    app.state
        .services
        .subjects
        .get(&Context::system(), sssid)
        .await
        .is_ok()
}

/// Signs in on the login page at `login_url` (as the form does, with its
/// hidden `next`) and returns where the browser is sent.
async fn sign_in_at(browser: &Browser, login_url: &str) -> String {
    let login = browser.get(login_url).await;
    assert_eq!(login.status, StatusCode::OK, "{login_url}");
    let next_marker = "name=\"next\" value=\"";
    let start = login.body.find(next_marker).expect("a next field") + next_marker.len();
    let end = login.body[start..].find('"').unwrap() + start;
    let next = login.body[start..end].replace("&amp;", "&");
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", STAFF),
                ("password", STAFF_PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    r.location().to_owned()
}

#[tokio::test]
async fn a_plain_post_after_the_session_ended_goes_to_login_and_back_to_the_form() {
    for ending in ENDINGS {
        let app = study_app().await;
        let (browser, csrf) = signed_in(&app).await;
        assert_eq!(browser.get("/subjects/new").await.status, StatusCode::OK);
        end_session(&app, &browser, &csrf, ending).await;
        let form = [
            ("csrf_token", csrf.as_str()),
            ("sssid", "S2"),
            ("name", "Grace Hopper"),
            ("bday", "1906-12-09"),
        ];
        let r = post_from(&browser, "/subjects/new", "/subjects", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{ending:?}: {}", r.body);
        assert_eq!(
            r.location(),
            "/login?next=%2Fsubjects%2Fnew&ended=form",
            "{ending:?}"
        );
        assert!(!subject_exists(&app, "S2").await, "{ending:?}: created");

        let login = browser.get(r.location()).await;
        assert!(login.body.contains(SESSION_ENDED), "{ending:?}");
        assert!(login.body.contains(FORM_NOT_KEPT), "{ending:?}");
        assert_eq!(
            sign_in_at(&browser, r.location()).await,
            "/subjects/new",
            "{ending:?}"
        );
    }
}

#[tokio::test]
async fn an_htmx_post_after_the_session_ended_gets_a_full_page_redirect() {
    for ending in ENDINGS {
        let app = study_app().await;
        let (browser, csrf) = signed_in(&app).await;
        end_session(&app, &browser, &csrf, ending).await;
        let r = post_htmx_from(
            &browser,
            "/subjects/S1",
            "/subjects/S1",
            &csrf,
            &[("name", "Ada King"), ("bday", "1980-02-29")],
        )
        .await;
        // Not the login page swapped into the panel: htmx loads it whole.
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{ending:?}: {}", r.body);
        assert_eq!(
            r.headers["hx-redirect"], "/login?next=%2Fsubjects%2FS1&ended=form",
            "{ending:?}"
        );
        assert!(r.body.is_empty(), "{ending:?}");
        assert_eq!(subject_name(&app, "S1").await, "Ada Lovelace", "{ending:?}");
    }
}

#[tokio::test]
async fn an_htmx_search_after_the_session_ended_comes_back_with_the_search() {
    for ending in ENDINGS {
        let app = study_app().await;
        let (browser, csrf) = signed_in(&app).await;
        end_session(&app, &browser, &csrf, ending).await;
        // What htmx asks for while typing: the list URL it would push.
        let search = "/subjects?sort=name&dir=asc&q=Ada&status=";
        let r = Page::from(
            browser
                .client
                .get(browser.url(search))
                .header("HX-Request", "true")
                .header("HX-Target", "subjects-list")
                .header("HX-Current-URL", browser.url("/subjects?sort=name&dir=asc"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{ending:?}");
        let target = r.headers["hx-redirect"].to_str().unwrap().to_owned();
        assert_eq!(
            target,
            "/login?next=%2Fsubjects%3Fsort%3Dname%26dir%3Dasc%26q%3DAda%26status%3D&ended=1",
            "{ending:?}"
        );
        let login = browser.get(&target).await;
        assert!(login.body.contains(SESSION_ENDED), "{ending:?}");
        // Nothing typed was lost: the search is in the way back.
        assert!(!login.body.contains(FORM_NOT_KEPT), "{ending:?}");
        assert_eq!(sign_in_at(&browser, &target).await, search, "{ending:?}");
        let list = browser.get(search).await;
        assert!(list.body.contains("Ada Lovelace"), "{ending:?}");
    }
}

#[tokio::test]
async fn an_unknown_cookie_is_an_ended_session() {
    let app = study_app().await;
    // Well-formed, but no session has this id.
    let cookie = "idm_session=AAAAAAAAAAAAAAAAAAAAAA";
    let browser = Browser::new(&app);
    let r = browser
        .client
        .post(app.url("/subjects/S1"))
        .header("Cookie", cookie)
        .header("Origin", &app.base)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Referer", app.url("/subjects/S1"))
        .form(&[
            ("csrf_token", "f".repeat(64).as_str()),
            ("name", "Mallory"),
            ("bday", "1980-02-29"),
        ])
        .send()
        .await
        .unwrap();
    let r = Page::from(r).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/login?next=%2Fsubjects%2FS1&ended=form");
    assert_eq!(subject_name(&app, "S1").await, "Ada Lovelace");
}

#[tokio::test]
async fn the_way_back_keeps_the_query_of_the_page_the_form_was_on() {
    let app = study_app().await;
    let (browser, csrf) = signed_in(&app).await;
    end_session(&app, &browser, &csrf, Ending::IdleTimeout).await;
    let page = "/subjects?q=Ada%20L&status=consented&sort=name&dir=asc&page=2";
    let r = post_from(
        &browser,
        page,
        "/subjects/S1/invitation",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location(),
        format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", page), ("ended", "form")]).unwrap()
        )
    );
    assert_eq!(sign_in_at(&browser, r.location()).await, page);
}

#[tokio::test]
async fn a_foreign_or_missing_referer_gives_no_way_back() {
    let app = study_app().await;
    let (browser, csrf) = signed_in(&app).await;
    end_session(&app, &browser, &csrf, Ending::IdleTimeout).await;
    let form = [
        ("csrf_token", csrf.as_str()),
        ("name", "Ada King"),
        ("bday", "1980-02-29"),
    ];
    for referer in [
        Some("https://evil.example/subjects/S1"),
        Some("http://idm.test.evil.example/subjects/S1"),
        None,
    ] {
        let mut req = browser
            .client
            .post(browser.url("/subjects/S1"))
            .header("Origin", &browser.base)
            .header("Sec-Fetch-Site", "same-origin")
            .form(&form);
        if let Some(referer) = referer {
            req = req.header("Referer", referer);
        }
        let r = Page::from(req.send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{referer:?}");
        assert_eq!(r.location(), "/login?ended=form", "{referer:?}");
    }
    assert_eq!(subject_name(&app, "S1").await, "Ada Lovelace");
}

#[tokio::test]
async fn cross_site_posts_are_refused_whatever_the_session() {
    let app = study_app().await;
    let (ended, csrf) = signed_in(&app).await;
    end_session(&app, &ended, &csrf, Ending::SignedOutElsewhere).await;
    let never_signed_in = Browser::new(&app);
    let anonymous_token = never_signed_in.get("/login").await.csrf();
    let (live, live_csrf) = signed_in(&app).await;
    for (who, browser, token) in [
        ("ended session", &ended, csrf.as_str()),
        ("no session", &Browser::new(&app), ""),
        (
            "anonymous session",
            &never_signed_in,
            anonymous_token.as_str(),
        ),
        ("signed-in session", &live, live_csrf.as_str()),
    ] {
        for (origin, site) in [
            (Some("https://evil.example"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("null"), Some("cross-site")),
        ] {
            for htmx in [false, true] {
                let mut req = browser
                    .client
                    .post(browser.url("/subjects"))
                    .header("Referer", browser.url("/subjects/new"))
                    .form(&[
                        ("csrf_token", token),
                        ("sssid", "EVIL"),
                        ("name", "Mallory"),
                        ("bday", "1980-01-01"),
                    ]);
                if let Some(origin) = origin {
                    req = req.header("Origin", origin);
                }
                if let Some(site) = site {
                    req = req.header("Sec-Fetch-Site", site);
                }
                if htmx {
                    req = req
                        .header("HX-Request", "true")
                        .header("X-CSRF-Token", token);
                }
                let r = Page::from(req.send().await.unwrap()).await;
                let what = format!("{who}, {origin:?}, {site:?}, htmx {htmx}");
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
                assert!(
                    r.body.contains("This form could not be sent safely"),
                    "{what}"
                );
                assert!(!r.headers.contains_key("hx-redirect"), "{what}");
                assert!(!r.headers.contains_key("location"), "{what}");
            }
        }
    }
    assert!(!subject_exists(&app, "EVIL").await);
}

#[tokio::test]
async fn a_wrong_token_in_a_signed_in_session_is_still_refused() {
    let app = study_app().await;
    let (browser, _csrf) = signed_in(&app).await;
    let r = post_from(
        &browser,
        "/subjects/new",
        "/subjects",
        &[
            ("csrf_token", &"0".repeat(64)),
            ("sssid", "S2"),
            ("name", "Grace Hopper"),
            ("bday", "1906-12-09"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!subject_exists(&app, "S2").await);
}

#[tokio::test]
async fn forms_for_signed_out_visitors_keep_refusing_a_stale_token() {
    let app = study_app().await;
    let browser = Browser::new(&app);
    browser.get("/login").await;
    let r = post_from(
        &browser,
        "/login",
        "/login",
        &[
            ("csrf_token", &"0".repeat(64)),
            ("username", STAFF),
            ("password", STAFF_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn signing_out_of_an_ended_session_just_shows_the_login_page() {
    let app = study_app().await;
    let (browser, csrf) = signed_in(&app).await;
    end_session(&app, &browser, &csrf, Ending::IdleTimeout).await;
    let r = post_from(
        &browser,
        "/subjects/S1",
        "/logout",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?ended=1");
}

#[tokio::test]
async fn the_login_page_says_why_only_when_a_session_ended() {
    let app = study_app().await;
    let browser = Browser::new(&app);
    let plain = browser.get("/login?next=%2Fsubjects").await;
    assert!(!plain.body.contains(SESSION_ENDED));
    let ended = browser.get("/login?next=%2Fsubjects&ended=1").await;
    assert!(ended.body.contains(SESSION_ENDED));
    assert!(!ended.body.contains(FORM_NOT_KEPT));
    let lost = browser.get("/login?next=%2Fsubjects&ended=form").await;
    assert!(lost.body.contains(SESSION_ENDED));
    assert!(lost.body.contains(FORM_NOT_KEPT));
    // A page opened without a session is no ended session.
    let r = browser.get("/subjects/S1").await;
    assert_eq!(r.location(), "/login?next=%2Fsubjects%2FS1");
}
