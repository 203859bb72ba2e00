//! The whole reset: asked for, mailed, used once; the new password works
//! and old credentials end. Same-origin forms only, a mail that says who
//! asked, and a link the Host header cannot change.

use crate::common::browser::Browser;
use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

use super::{
    ADMIN_EMAIL, ALICE, NEW_PASSWORD, OLD_PASSWORD, TestAppExt, assert_invalid_link_page,
    open_link_in_browser, smtp_app,
};

#[tokio::test]
async fn reset_by_mail_sets_a_new_password_and_revokes_old_credentials() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let old_token = app.login(ALICE, OLD_PASSWORD).await;

    let (status, page) = app.iforgot(ALICE).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("If an account exists"), "{page}");

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec![ALICE.to_owned()]);
    assert_eq!(mail.from, "idm@idm.test");
    assert_eq!(mail.reply_to.as_deref(), Some(ADMIN_EMAIL));
    assert!(mail.subject.contains("C3-PRO IDM"), "{}", mail.subject);
    assert!(mail.text.contains("C3-PRO IDM") && mail.text.contains("2 hours"));
    let html = mail.html.as_deref().expect("an HTML part");
    assert!(html.contains(&mail.reset_link().replace('&', "&amp;")));
    assert!(mail.reset_link().starts_with("http://idm.test/reset?k="));
    let key = mail.reset_key();
    assert!(key.len() >= 32, "at least 128 bits as hex");

    // The link opens the form (through a redirect that takes the key out
    // of the URL: the_emailed_link_moves_the_key_out_of_the_url).
    let r = app.reset_page(&key).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.url().path(), "/reset");
    assert_eq!(r.url().query(), None);
    let form = r.text().await.unwrap();
    assert!(form.contains(ALICE) && form.contains("name=\"password2\""));

    // Mistakes keep the key usable and say what is wrong next to the field.
    let r = app.submit_reset(&key, NEW_PASSWORD, "something else").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("do not match"));
    let r = app.submit_reset(&key, "password", "password").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("too common"),
        "shared password policy: {body}"
    );
    assert!(
        !body.contains("value=\"password\""),
        "passwords are never echoed"
    );

    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Password changed"));
    // A reset does not sign the browser in: the console still asks for a login.
    let home = app.get("/home", None).await;
    assert!(
        home.url().path() == "/login" || home.status() == StatusCode::UNAUTHORIZED,
        "a reset does not log in: {} {}",
        home.status(),
        home.url()
    );

    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    let r = app.get(&format!("/user/{ALICE}"), Some(&old_token)).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;

    // Single use: the page and the form both refuse the spent key.
    let r = app.reset_page(&key).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    let r = app
        .submit_reset(&key, "another new password", "another new password")
        .await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);

    // The "password changed" notice, which carries no link with a key.
    let notice = smtp.wait_for(2).await.remove(1);
    assert_eq!(notice.to, vec![ALICE.to_owned()]);
    assert!(notice.subject.contains("changed"), "{}", notice.subject);
    assert!(!notice.raw.contains("/reset?k="));

    let actions = app.audit_actions(ALICE).await;
    assert!(actions.contains(&"password reset requested".to_owned()));
    assert!(actions.contains(&"password reset completed".to_owned()));
}

/// The post a browser sends from the reset page (its Origin, same-origin
/// fetch metadata) is accepted; a post from another site, or with the
/// `Origin: null` a no-referrer page would cause, is still refused.
#[tokio::test]
async fn the_reset_form_takes_same_origin_posts_and_refuses_cross_site_ones() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let (browser, form, key) = open_link_in_browser(&app, &smtp).await;
    let csrf = form.csrf();
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("k", key.as_str()),
        ("password", NEW_PASSWORD),
        ("password2", NEW_PASSWORD),
    ];
    for (what, origin, site) in [
        ("another site", Some("https://evil.example"), "cross-site"),
        ("an opaque origin", Some("null"), "cross-site"),
        ("Origin null", Some("null"), "same-origin"),
        ("a cross-site fetch", None, "cross-site"),
    ] {
        let mut request = browser
            .client
            .post(browser.url("/reset"))
            .header("Sec-Fetch-Site", site)
            .form(&fields);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} was accepted");
    }
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::OK,
        "no refused post changed the password"
    );

    let r = browser.post("/reset", &fields).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

/// The self-service mail says someone asked; the one an administrator
/// sends (API or users page) says an administrator sent it.
#[tokio::test]
async fn the_reset_mail_says_who_asked_for_it() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let own = smtp.wait_for(1).await.remove(0);
    assert_eq!(own.subject, "Reset your C3-PRO IDM password");
    assert!(
        own.text
            .contains("We received a request to reset the password of your C3-PRO IDM"),
        "{}",
        own.text
    );

    let admin = app.admin_token().await;
    let r = app
        .post_json(&format!("/user/{ALICE}/reset"), Some(&admin), &Value::Null)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "the API is unchanged");
    let browser = Browser::new(&app);
    let csrf = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = browser
        .post(
            "/users/reset",
            &[("csrf_token", &csrf), ("username", ALICE)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let mails = smtp.wait_for(3).await;
    for sent in &mails[1..] {
        assert_eq!(
            sent.subject,
            "Set a new password for your C3-PRO IDM account"
        );
        let text = sent.text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains(
                "An administrator of C3-PRO IDM has sent you a link to set a new password for \
                 your account alice@example.org."
            ),
            "{text}"
        );
        let html = sent.html.as_deref().unwrap();
        assert!(html.contains("An administrator of C3-PRO IDM has sent you"));
        for wording in [&sent.text, html] {
            assert!(!wording.contains("We received a request"), "{wording}");
            assert!(!wording.contains("hopefully you"), "{wording}");
        }
        assert!(sent.reset_link().starts_with("http://idm.test/reset?k="));
    }
    assert!(!own.text.contains("administrator of"), "{}", own.text);
}

#[tokio::test]
async fn the_host_header_does_not_change_the_link() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let csrf = app.csrf().await;
    let r = app
        .client
        .post(app.url("/iforgot"))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .header("Forwarded", "host=evil.example;proto=https")
        .form(&[("csrf_token", csrf.as_str()), ("username", ALICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(
        mail.reset_link().starts_with("http://idm.test/reset?k="),
        "{}",
        mail.reset_link()
    );
    assert!(!mail.raw.contains("evil.example"));
}
