//! Invitations: an admin creates an account without a password, the
//! person chooses one through the emailed `/welcome?k=` link. The key
//! follows the rules of reset links: single use, expires, replaced by a
//! newer one, stored only as a hash, moved out of the URL into a cookie.
use crate::common::browser::Browser;
use crate::common::smtp::{ReceivedMail, TestSmtp};
use crate::common::*;
use chrono::Duration;
use idm::config::{MailTransportKind, SmtpTls};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NEWBIE: &str = "newbie@example.org";
const PASSWORD: &str = "my very own passphrase";

async fn smtp_app() -> (TestApp, TestSmtp) {
    let smtp = TestSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.mail_transport = MailTransportKind::Smtp;
    config.smtp_host = Some("127.0.0.1".into());
    config.smtp_port = Some(smtp.addr.port());
    config.smtp_tls = SmtpTls::None;
    config.mail_from = Some("C3-PRO IDM <idm@idm.test>".into());
    (spawn_app_with(dir, config).await, smtp)
}

fn welcome_key(mail: &ReceivedMail) -> String {
    let link = mail
        .text
        .split_whitespace()
        .find(|w| w.contains("/welcome?k="))
        .unwrap_or_else(|| panic!("no welcome link in:\n{}", mail.text));
    assert!(link.starts_with("http://idm.test/welcome?k="), "{link}");
    link.split_once("?k=").unwrap().1.to_owned()
}

/// Opens the emailed link in `browser` and returns the form page.
async fn open_link(browser: &Browser, key: &str) -> crate::common::browser::Page {
    let r = browser.get(&format!("/welcome?k={key}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/welcome");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    let cookie = r.set_cookie_named("idm_welcome").expect("the key cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/welcome"),
        "{cookie}"
    );
    let page = browser.get("/welcome").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("k=") || !page.body.contains(&format!("?k={key}")));
    page
}

async fn choose(
    browser: &Browser,
    page: &crate::common::browser::Page,
    key: &str,
    a: &str,
    b: &str,
) -> crate::common::browser::Page {
    browser
        .post(
            "/welcome",
            &[
                ("csrf_token", &page.csrf()),
                ("k", key),
                ("password", a),
                ("password2", b),
            ],
        )
        .await
}

#[tokio::test]
async fn an_invited_person_chooses_a_password_through_the_emailed_link() {
    let (app, smtp) = smtp_app().await;
    let admin = app.admin_token().await;
    let r = app
        .post_json(
            "/user",
            Some(&admin),
            &json!({"username": NEWBIE, "role": "monitor"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["data"]["state"], "invited");
    assert_eq!(user["data"]["role"], "monitor");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, [NEWBIE]);
    assert!(mail.text.contains("monitor (read only)"), "{}", mail.text);
    let key = welcome_key(&mail);
    // Only a hash of the key is stored, and it is not the reset hash.
    let store = &app.state.services.deps.store;
    let sha = |text: String| hex::encode(Sha256::digest(text.as_bytes()));
    assert!(
        store
            .find_reset_token(&sha(key.clone()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_reset_token(&sha(format!("invite:{key}")))
            .await
            .unwrap()
            .is_some()
    );
    // Not yet: the invited account cannot sign in.
    let before = login_from(
        &app,
        None,
        &json!({"username": NEWBIE, "password": PASSWORD}),
    )
    .await;
    assert_eq!(before.status, StatusCode::UNAUTHORIZED);
    let browser = Browser::new(&app);
    let page = open_link(&browser, &key).await;
    assert!(page.body.contains(NEWBIE));
    let mismatch = choose(&browser, &page, &key, PASSWORD, "something else entirely").await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.body.contains("The passwords do not match."));
    let common = choose(&browser, &page, &key, "password123", "password123").await;
    assert_eq!(common.status, StatusCode::BAD_REQUEST);
    assert!(common.body.contains("too common"), "{}", common.body);
    let done = choose(&browser, &page, &key, PASSWORD, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your account is active."));
    assert!(
        done.set_cookie_named("idm_welcome")
            .unwrap()
            .contains("Max-Age=0")
    );
    let token = app.login(NEWBIE, PASSWORD).await;
    let me: Value = app
        .get(&format!("/user/{NEWBIE}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["state"], "active");
    // The link worked once.
    let again = Browser::new(&app).get(&format!("/welcome?k={key}")).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("This link does not work"));
    let trail = account_trail(&app, &admin, NEWBIE).await;
    let invited = entries_with(&trail, "invited (monitor)");
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0]["actor"], ADMIN);
    let accepted = entries_with(&trail, "invitation accepted: account activated");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["actor"], NEWBIE);
    assert!(accepted[0]["ip"].is_string());
    assert!(!trail.iter().any(|e| e.to_string().contains(&key)));
}

#[tokio::test]
async fn a_resent_invitation_replaces_the_old_link_and_links_expire() {
    let (app, smtp) = smtp_app().await;
    let admin = app.admin_token().await;
    app.post_json("/user", Some(&admin), &json!({"username": NEWBIE}))
        .await;
    let first = welcome_key(&smtp.wait_for(1).await[0]);
    // An invited account gets no reset link, from anyone.
    let r = app
        .post_json(&format!("/user/{NEWBIE}/reset"), Some(&admin), &json!({}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .post_json(
            &format!("/user/{NEWBIE}/invitation"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let second = welcome_key(&smtp.wait_for(2).await[1]);
    assert_ne!(first, second);
    let old = Browser::new(&app).get(&format!("/welcome?k={first}")).await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST, "replaced");
    // Past its lifetime (72 hours by default) the new one is gone too.
    app.clock
        .advance(Duration::hours(72) + Duration::seconds(1));
    let late = Browser::new(&app)
        .get(&format!("/welcome?k={second}"))
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "expired");
    // Resending works only while the invitation is open (a new token:
    // the old one is past its 12 hours too).
    let admin = app.login(ADMIN, ADMIN_PASSWORD).await;
    let r = app
        .post_json(
            &format!("/user/{NEWBIE}/invitation"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let third = welcome_key(&smtp.wait_for(3).await[2]);
    let browser = Browser::new(&app);
    let page = open_link(&browser, &third).await;
    choose(&browser, &page, &third, PASSWORD, PASSWORD).await;
    let r = app
        .post_json(
            &format!("/user/{NEWBIE}/invitation"),
            Some(&admin),
            &json!({}),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let r = app
        .post_json(
            &format!("/user/{ADMIN}/invitation"),
            Some(&admin),
            &json!({}),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
    let trail = account_trail(&app, &admin, NEWBIE).await;
    assert_eq!(entries_with(&trail, "invitation resent").len(), 2);
}

#[tokio::test]
async fn the_users_page_invites_by_default_and_a_disabled_invitation_does_not_open() {
    let (app, smtp) = smtp_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let admin = Browser::new(&app);
    let csrf = admin.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let form = admin.get("/users").await;
    assert!(form.body.contains(r#"name="role""#), "a role to choose");
    let r = admin
        .post(
            "/users",
            &[
                ("csrf_token", &csrf),
                ("username", NEWBIE),
                ("role", "staff"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = admin.get("/users").await;
    assert!(
        list.body
            .contains(&format!("Invited {NEWBIE} as staff member.")),
        "{}",
        list.body
    );
    assert!(list.body.contains("Invited</span>"));
    let key = welcome_key(&smtp.wait_for(1).await[0]);
    let token = app.login(ADMIN, ADMIN_PASSWORD).await;
    app.put_json(
        &format!("/user/{NEWBIE}"),
        Some(&token),
        &json!({"disabled": true}),
    )
    .await;
    let page = Browser::new(&app).get(&format!("/welcome?k={key}")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "a disabled account");
    // Enabled again, it is invited again, and the link works.
    let r = app
        .put_json(
            &format!("/user/{NEWBIE}"),
            Some(&token),
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["state"], "invited");
    let browser = Browser::new(&app);
    let page = open_link(&browser, &key).await;
    let done = choose(&browser, &page, &key, PASSWORD, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK);
}
