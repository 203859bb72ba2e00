//! Password recovery over real sockets: the server on port 0, a real SMTP
//! server on loopback (tests/integration/common/smtp.rs), real SQLite files.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::common::browser::{Browser, Page};
use crate::common::smtp::{ReceivedMail, TestSmtp};
use crate::common::*;
use chrono::Duration as ChronoDuration;
use idm::Config;
use idm::clock::{OsRandom, random_hex};
use idm::config::{MailTransportKind, SmtpTls};
use reqwest::StatusCode;
use reqwest::header::{REFERRER_POLICY, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, dynamic_filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const ALICE: &str = "alice@example.org";
const OLD_PASSWORD: &str = "old password of alice";
const NEW_PASSWORD: &str = "brand new password of alice";
const MAIL_FROM: &str = "C3-PRO IDM <idm@idm.test>";
const ADMIN_EMAIL: &str = "it-admin@idm.test";

// ------------------------------------------------------------ harness

/// How many tests are capturing logs right now.
static CAPTURING: AtomicUsize = AtomicUsize::new(0);

/// Log lines at TRACE level while it lives, from every test running
/// meanwhile. The subscriber is global to the test binary, which every area
/// shares, so it records only while a test holds a capture.
struct LogCapture {
    /// Where this capture's lines begin in the shared buffer.
    from: usize,
}

impl LogCapture {
    fn start() -> Self {
        let logs = captured_logs().lock().unwrap();
        CAPTURING.fetch_add(1, Ordering::SeqCst);
        Self { from: logs.len() }
    }

    /// The lines logged since the capture started.
    fn text(&self) -> String {
        String::from_utf8_lossy(&captured_logs().lock().unwrap()[self.from..]).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The lines captured so far; installs the binary's one subscriber.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        // The test client's own logs are not the server's.
        let server_logs = EnvFilter::new("trace,reqwest=off,cookie_store=off");
        // Asked at every event, not once per call site: the answer changes.
        let while_capturing = dynamic_filter_fn(|_, _| CAPTURING.load(Ordering::SeqCst) > 0);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || LogWriter(logs))
                    .with_ansi(false)
                    .with_filter(server_logs.and(while_capturing)),
            )
            .try_init()
            .expect("the only subscriber of this test binary");
        logs
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The app mailing through a fresh test SMTP server, with alice created.
async fn smtp_app(adjust: impl FnOnce(&mut Config)) -> (TestApp, TestSmtp) {
    let smtp = TestSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.mail_transport = MailTransportKind::Smtp;
    config.smtp_host = Some("127.0.0.1".into());
    config.smtp_port = Some(smtp.addr.port());
    config.smtp_tls = SmtpTls::None;
    config.smtp_timeout_secs = 5;
    config.mail_from = Some(MAIL_FROM.into());
    config.admin_email = Some(ADMIN_EMAIL.into());
    adjust(&mut config);
    let app = spawn_app_with(dir, config).await;
    app.create_user(ALICE, OLD_PASSWORD, false).await;
    (app, smtp)
}

impl TestAppExt for TestApp {
    async fn iforgot(&self, username: &str) -> (StatusCode, String) {
        let csrf = self.csrf().await;
        let r = self
            .client
            .post(self.url("/iforgot"))
            .form(&[("csrf_token", csrf.as_str()), ("username", username)])
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn reset_page(&self, key: &str) -> reqwest::Response {
        self.client
            .get(self.url("/reset"))
            .query(&[("k", key)])
            .send()
            .await
            .unwrap()
    }

    async fn submit_reset(&self, key: &str, password: &str, repeat: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.client
            .post(self.url("/reset"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("k", key),
                ("password", password),
                ("password2", repeat),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn try_login(&self, username: &str, password: &str) -> StatusCode {
        self.post_json(
            "/auth",
            None,
            &serde_json::json!({"username": username, "password": password}),
        )
        .await
        .status()
    }

    async fn settle(&self) {
        self.state.services.background.idle().await;
    }

    async fn audit_actions(&self, username: &str) -> Vec<String> {
        self.state
            .services
            .deps
            .store
            .audits_for_user(username)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect()
    }
}

trait TestAppExt {
    async fn iforgot(&self, username: &str) -> (StatusCode, String);
    async fn reset_page(&self, key: &str) -> reqwest::Response;
    async fn submit_reset(&self, key: &str, password: &str, repeat: &str) -> reqwest::Response;
    async fn try_login(&self, username: &str, password: &str) -> StatusCode;
    /// Waits until background work (mail delivery) has finished.
    async fn settle(&self);
    async fn audit_actions(&self, username: &str) -> Vec<String>;
}

fn assert_invalid_link_page(status: StatusCode, body: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains(
            "This reset link is invalid, was already used, was replaced by a newer one or \
             has expired."
        ),
        "{body}"
    );
    assert!(
        body.contains("You can <a href=\"/iforgot\">ask for a new link</a>"),
        "offers a new link in a sentence: {body}"
    );
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

// ------------------------------------------------------------ the whole flow

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

// ------------------------------------------------------------ the key leaves the URL

/// The `idm_reset` cookie a response sets, if any.
fn reset_cookie(page: &Page) -> Option<String> {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("idm_reset="))
        .map(str::to_owned)
}

/// A browser-like client (no redirects followed) that opened the emailed
/// link and now shows the reset form: the form page and the key.
async fn open_link_in_browser(app: &TestApp, smtp: &TestSmtp) -> (Browser, Page, String) {
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    let browser = Browser::new(app);
    let link = browser.get(&format!("/reset?k={key}")).await;
    assert_eq!(link.status, StatusCode::SEE_OTHER, "{}", link.body);
    let form = browser.get(link.location()).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    (browser, form, key)
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

/// Each message stands next to the field it is about, as a sentence, and
/// the password rules (with the configured minimum) are there beforehand.
#[tokio::test]
async fn reset_errors_stand_next_to_their_fields() {
    let (app, smtp) = smtp_app(|c| c.password_min_chars = 12).await;
    let (browser, form, key) = open_link_in_browser(&app, &smtp).await;
    assert!(
        form.body.contains(
            "<p class=\"hint\" id=\"reset-password-hint\">At least 12 characters; a phrase of \
             several words is easiest to remember. Your email address and common passwords are \
             not accepted.</p>"
        ),
        "{}",
        form.body
    );
    let csrf = form.csrf();
    let submit = |password: &'static str, repeat: &'static str| {
        let (csrf, key, browser) = (csrf.clone(), key.clone(), &browser);
        async move {
            let page = browser
                .post(
                    "/reset",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("k", key.as_str()),
                        ("password", password),
                        ("password2", repeat),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
            page.body
        }
    };
    let marked_invalid = |field: &str| {
        format!(
            "name=\"{field}\" type=\"password\" required autocomplete=\"new-password\" \
             aria-invalid=\"true\""
        )
    };

    // A mismatch is the confirmation's error, not the password's.
    let body = submit(NEW_PASSWORD, "something else").await;
    assert!(
        body.contains(
            "<p class=\"error\" id=\"reset-password2-error\">The passwords do not match.</p>"
        ),
        "{body}"
    );
    assert!(body.contains("aria-describedby=\"reset-password2-error\""));
    assert!(!body.contains("reset-password-error"), "{body}");
    assert!(body.contains(&marked_invalid("password2")), "{body}");
    assert!(!body.contains(&marked_invalid("password")), "{body}");

    // A password the policy refuses is the password's error, as a sentence.
    let body = submit("password1234", "password1234").await;
    assert!(
        body.contains(
            "<p class=\"error\" id=\"reset-password-error\">This password is too common; choose \
             another one.</p>"
        ),
        "{body}"
    );
    assert!(!body.contains("reset-password2-error"), "{body}");
    assert!(body.contains(&marked_invalid("password")), "{body}");
    assert!(
        !body.contains("value=\"password1234\""),
        "passwords are never echoed"
    );

    // Both at once.
    let body = submit("short", "shorter").await;
    assert!(
        body.contains("id=\"reset-password-error\">Password must be at least 12 characters.</p>"),
        "{body}"
    );
    assert!(body.contains("id=\"reset-password2-error\">The passwords do not match.</p>"));
    assert_eq!(app.try_login(ALICE, OLD_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn iforgot_messages_are_sentences_and_waits_are_in_minutes() {
    let (app, _smtp) = smtp_app(|c| c.reset_ip_limit = 1).await;
    let (status, body) = app.iforgot("not an email").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(
            "<p class=\"error\" id=\"iforgot-username-error\">Enter the email address you sign \
             in with, like name@example.org.</p>"
        ),
        "{body}"
    );
    assert!(body.contains("aria-describedby=\"iforgot-username-error\""));

    assert_eq!(app.iforgot(ALICE).await.0, StatusCode::OK);
    let (status, body) = app.iforgot(ALICE).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The window is an hour, and the test clock has not moved.
    assert!(
        body.contains("Too many attempts. Try again in 60 minutes."),
        "{body}"
    );
    assert!(!body.contains("seconds"), "{body}");
}

/// The sign-in page, where a locked-out person is sent back to, tells the
/// wait in minutes like `/iforgot` (the API keeps its seconds).
#[tokio::test]
async fn the_sign_in_page_tells_a_locked_out_person_the_wait_in_minutes() {
    let (app, _smtp) = smtp_app(|c| c.login_account_limit = 1).await;
    let browser = Browser::new(&app);
    let csrf = browser.get("/login").await.csrf();
    let mistyped = [
        ("csrf_token", csrf.as_str()),
        ("username", ALICE),
        ("password", "mistyped password"),
    ];
    let first = browser.post("/login", &mistyped).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let page = browser.post("/login", &mistyped).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // The window is 5 minutes, and the test clock has not moved.
    assert!(
        page.body
            .contains("Too many attempts. Try again in 5 minutes."),
        "{}",
        page.body
    );
    assert_eq!(page.headers["retry-after"], "300");
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

/// A user who locked their account by mistyping, then reset the password
/// through the mailed link, can log in with the new one at once; the
/// lockout stays for anyone still guessing before that.
#[tokio::test]
async fn a_completed_reset_lifts_the_login_lockout_of_the_account() {
    let (app, smtp) = smtp_app(|config| config.login_account_limit = 3).await;
    for _ in 0..3 {
        assert_eq!(
            app.try_login(ALICE, "mistyped password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked out, even with the right password"
    );

    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "asking for a link alone lifts nothing"
    );
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

/// The reset lifts the account's lockout everywhere: the blocks of every
/// address that used up its attempts, and the account-wide ceiling.
#[tokio::test]
async fn a_completed_reset_lifts_the_lockout_on_every_address() {
    let (app, smtp) = smtp_app(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.login_account_limit = 2;
        config.login_account_ceiling = 4;
    })
    .await;
    let login = |password: &str| serde_json::json!({"username": ALICE, "password": password});
    let addresses = ["203.0.113.1", "203.0.113.2"];
    for address in addresses {
        for _ in 0..2 {
            let answer = login_from(&app, Some(address), &login("mistyped password")).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
    }
    // Both addresses used up their attempts, and together the ceiling.
    for address in addresses.into_iter().chain(["198.51.100.7"]) {
        let answer = login_from(&app, Some(address), &login(OLD_PASSWORD)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{address}");
    }

    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await.remove(0).reset_key();
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Each address in turn: a login on one does not clear the others.
    for address in addresses {
        let answer = login_from(&app, Some(address), &login(NEW_PASSWORD)).await;
        assert_eq!(answer.status, StatusCode::OK, "{address}");
    }
}

#[tokio::test]
async fn malformed_and_missing_keys_get_the_invalid_link_page() {
    let (app, _smtp) = smtp_app(|_| {}).await;
    for key in ["", "abc", &"g".repeat(64), &"0".repeat(64)] {
        let r = app.reset_page(key).await;
        let status = r.status();
        assert_invalid_link_page(status, &r.text().await.unwrap());
        let r = app.submit_reset(key, NEW_PASSWORD, NEW_PASSWORD).await;
        let status = r.status();
        assert_invalid_link_page(status, &r.text().await.unwrap());
    }
}

#[tokio::test]
async fn an_expired_link_fails() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();

    app.clock
        .advance(ChronoDuration::hours(2) - ChronoDuration::seconds(1));
    assert_eq!(app.reset_page(&key).await.status(), StatusCode::OK);
    app.clock.advance(ChronoDuration::seconds(1));
    let r = app.reset_page(&key).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    assert_eq!(app.try_login(ALICE, OLD_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn a_newer_request_invalidates_the_older_link() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    smtp.wait_for(1).await;
    app.iforgot(ALICE).await;
    let mails = smtp.wait_for(2).await;
    let (older, newer) = (mails[0].reset_key(), mails[1].reset_key());
    assert_ne!(older, newer);

    let r = app.submit_reset(&older, NEW_PASSWORD, NEW_PASSWORD).await;
    let status = r.status();
    assert_invalid_link_page(status, &r.text().await.unwrap());
    let r = app.submit_reset(&newer, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.try_login(ALICE, NEW_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_submissions_of_one_link_succeed_once() {
    let (app, smtp) = smtp_app(|_| {}).await;
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();
    let csrf = app.csrf().await;
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let password = format!("{NEW_PASSWORD} {i}");
            let request = app.client.post(app.url("/reset")).form(&[
                ("csrf_token", csrf.as_str()),
                ("k", key.as_str()),
                ("password", &password),
                ("password2", &password),
            ]);
            tokio::spawn(async move { (password, request.send().await.unwrap().status()) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let succeeded: Vec<&String> = outcomes
        .iter()
        .filter(|(_, status)| *status == StatusCode::OK)
        .map(|(password, _)| password)
        .collect();
    assert_eq!(succeeded.len(), 1, "{outcomes:?}");
    // The one that was answered OK is the password that took effect.
    for (password, _) in &outcomes {
        let expected = if password == succeeded[0] {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(app.try_login(ALICE, password).await, expected, "{password}");
    }
    assert_eq!(
        app.try_login(ALICE, OLD_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
}

// ------------------------------------------------------------ what /iforgot reveals

#[tokio::test]
async fn unknown_usernames_get_the_same_answer_and_no_mail_but_an_audit_entry() {
    let (app, smtp) = smtp_app(|c| c.reset_ip_limit = 1000).await;
    let unknown = "nobody@example.org";
    let known_answer = app.iforgot(ALICE).await;
    let unknown_answer = app.iforgot(unknown).await;
    assert_eq!(known_answer.0, StatusCode::OK);
    assert_eq!(
        known_answer, unknown_answer,
        "status and body are identical"
    );
    app.settle().await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "only the known account gets a mail");
    assert_eq!(mails[0].to, vec![ALICE.to_owned()]);
    assert_eq!(
        app.audit_actions(unknown).await,
        vec!["password reset requested for unknown account".to_owned()]
    );
    assert!(
        app.audit_actions(ALICE)
            .await
            .contains(&"password reset requested".to_owned())
    );

    // Equal timing is by construction, not measured here: the answer is sent
    // after the same per-address count for both, and the lookup, token and
    // mail happen after it (`iforgot_answers_before_the_mail_is_delivered`).
}

#[tokio::test]
async fn iforgot_answers_before_the_mail_is_delivered() {
    let (app, smtp) = smtp_app(|_| {}).await;
    smtp.pause();
    // If the answer waited for the mail, it could not arrive while the
    // SMTP server holds back its greeting.
    let answer = tokio::time::timeout(Duration::from_secs(5), app.iforgot(ALICE))
        .await
        .expect("/iforgot answered without waiting for the SMTP server");
    assert_eq!(answer.0, StatusCode::OK);
    assert!(smtp.mails().is_empty());
    smtp.resume();
    assert_eq!(smtp.wait_for(1).await[0].to, vec![ALICE.to_owned()]);
}

#[tokio::test]
async fn fifty_requests_for_one_account_send_at_most_three_mails() {
    let (app, smtp) = smtp_app(|c| c.reset_ip_limit = 1000).await;
    for _ in 0..50 {
        let (status, _) = app.iforgot(ALICE).await;
        assert_eq!(status, StatusCode::OK, "the account limit is silent");
    }
    app.settle().await;
    assert_eq!(smtp.mails().len(), 3);
    let throttled = app
        .audit_actions(ALICE)
        .await
        .into_iter()
        .filter(|a| a.contains("rate limited"))
        .count();
    assert_eq!(throttled, 47);

    // Another window, another mail.
    app.clock.advance(ChronoDuration::hours(1));
    app.iforgot(ALICE).await;
    smtp.wait_for(4).await;
}

#[tokio::test]
async fn requests_from_one_ip_are_limited_across_accounts() {
    let (app, smtp) = smtp_app(|c| c.reset_ip_limit = 5).await;
    for i in 0..5 {
        let (status, _) = app.iforgot(&format!("user{i}@example.org")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let csrf = app.csrf().await;
    let r = app
        .client
        .post(app.url("/iforgot"))
        .form(&[("csrf_token", csrf.as_str()), ("username", ALICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("value=\"{ALICE}\"")),
        "keeps what was typed"
    );
    app.settle().await;
    assert!(smtp.mails().is_empty());
}

/// Sends `count` copies of the POST that `form` builds at once, and answers
/// how many were not turned away with 429.
async fn not_throttled_of_parallel_posts(
    app: &TestApp,
    path: &str,
    count: usize,
    form: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> usize {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let posts: Vec<_> = (0..count)
        .map(|i| {
            let request = app.client.post(app.url(path)).form(&form(i));
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                request.send().await.unwrap().status()
            })
        })
        .collect();
    let mut passed = 0;
    for post in posts {
        let status = post.await.unwrap();
        if status != StatusCode::TOO_MANY_REQUESTS {
            passed += 1;
        }
    }
    passed
}

/// Checking the address's count first and counting afterwards let a burst
/// of parallel requests through before any of them was counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_iforgot_requests_from_one_address_get_at_most_the_limit_through() {
    let (app, _smtp) = smtp_app(|c| c.reset_ip_limit = 5).await;
    let csrf = app.csrf().await;
    let passed = not_throttled_of_parallel_posts(&app, "/iforgot", 200, |i| {
        vec![
            ("csrf_token", csrf.clone()),
            ("username", format!("nobody{i}@example.org")),
        ]
    })
    .await;
    assert_eq!(passed, 5);
    app.settle().await;
}

/// `/reset` guesses are counted per client address before the key is
/// looked at, in one atomic step, however many arrive at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reset_submissions_from_one_address_get_at_most_the_limit_through() {
    let (app, smtp) = smtp_app(|c| c.reset_submit_ip_limit = 7).await;
    let csrf = app.csrf().await;
    let passed = not_throttled_of_parallel_posts(&app, "/reset", 200, |_| {
        let key = random_hex(&OsRandom, 32);
        vec![
            ("csrf_token", csrf.clone()),
            ("k", key),
            ("password", NEW_PASSWORD.to_owned()),
            ("password2", NEW_PASSWORD.to_owned()),
        ]
    })
    .await;
    assert_eq!(passed, 7);

    // The address's window is used up, for a good key too, until it ends.
    app.iforgot(ALICE).await;
    let key = smtp.wait_for(1).await[0].reset_key();
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    app.clock.advance(ChronoDuration::hours(1));
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_username_is_shown_next_to_the_field() {
    let (app, _smtp) = smtp_app(|_| {}).await;
    let (status, body) = app.iforgot("not an email").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("value=\"not an email\""));
    assert!(body.contains("email address"), "{body}");
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

// ------------------------------------------------------------ secrecy of the key

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

// ------------------------------------------------------------ broken mail

#[tokio::test]
async fn with_smtp_down_the_user_sees_the_same_page_and_status_shows_the_problem() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let smtp_password = "smtp-password-that-must-not-leak";
    let logs = LogCapture::start();
    let (app, _unused) = smtp_app(|c| {
        c.smtp_port = Some(closed_port);
        c.smtp_username = Some("mailer-account".into());
        c.smtp_password = Some(smtp_password.to_owned().into());
    })
    .await;
    let known = app.iforgot(ALICE).await;
    let unknown = app.iforgot("nobody@example.org").await;
    assert_eq!(known.0, StatusCode::OK);
    assert_eq!(known, unknown);
    app.settle().await;

    assert!(logs.text().contains("mail delivery failed"));
    let r = app.get("/status", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let status: Value = r.json().await.unwrap();
    let mail = status["data"]["mail"].as_str().unwrap();
    assert_ne!(mail, "ok");
    assert!(mail.contains("SMTP"), "{mail}");
    let raw = status.to_string();
    assert!(!raw.contains(smtp_password) && !raw.contains("mailer-account"));

    // An admin who sends a reset learns that it failed.
    let admin = app.admin_token().await;
    let r = app
        .post_json(&format!("/user/{ALICE}/reset"), Some(&admin), &Value::Null)
        .await;
    expect_error(r, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn status_reports_a_failed_delivery_until_one_succeeds() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let status = || async {
        let body: Value = app.get("/status", None).await.json().await.unwrap();
        body["data"]["mail"].as_str().unwrap().to_owned()
    };
    assert_eq!(status().await, "ok");
    // A recipient the server cannot take: the mail is refused.
    app.create_user("bounce@example.org", OLD_PASSWORD, false)
        .await;
    smtp.reject_recipient("bounce@example.org");
    app.iforgot("bounce@example.org").await;
    app.settle().await;
    let problem = status().await;
    assert!(problem.contains("could not be delivered"), "{problem}");
    app.iforgot(ALICE).await;
    app.settle().await;
    assert_eq!(status().await, "ok");
}

#[tokio::test]
async fn the_file_transport_writes_every_mail_as_a_readable_eml_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.mail_transport = MailTransportKind::File;
    let app = spawn_app_with(dir, config).await;
    app.create_user(ALICE, OLD_PASSWORD, false).await;

    app.iforgot(ALICE).await;
    app.settle().await;
    let mails = outbox(&app);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec![ALICE.to_owned()]);
    let key = mails[0].reset_key();
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.settle().await;
    let mails = outbox(&app);
    assert_eq!(mails.len(), 2, "the reset mail and the notice");
    assert!(mails.iter().any(|m| m.subject.contains("changed")));
}

fn outbox(app: &TestApp) -> Vec<ReceivedMail> {
    std::fs::read_dir(app.dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| ReceivedMail::parse(&std::fs::read(p).unwrap()))
        .collect()
}

// ------------------------------------------------------------ admin and CLI

#[tokio::test]
async fn an_admin_can_send_a_reset_link_and_nobody_else_can() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let admin = app.admin_token().await;
    let path = format!("/user/{ALICE}/reset");

    let r = app.post_json(&path, None, &Value::Null).await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;
    let staff = app.login(ALICE, OLD_PASSWORD).await;
    let r = app.post_json(&path, Some(&staff), &Value::Null).await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post_json("/user/nobody@example.org/reset", Some(&admin), &Value::Null)
        .await;
    expect_error(r, StatusCode::NOT_FOUND).await;
    app.settle().await;
    assert!(smtp.mails().is_empty());

    let r = app.post_json(&path, Some(&admin), &Value::Null).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let key = smtp.wait_for(1).await[0].reset_key();
    let r = app.submit_reset(&key, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    let audits = app
        .state
        .services
        .deps
        .store
        .audits_for_user(ALICE)
        .await
        .unwrap();
    let sent = audits
        .iter()
        .find(|a| a.action.contains("administrator"))
        .expect("audited");
    assert_eq!(sent.actor.as_deref(), Some(ADMIN));
}

#[tokio::test]
async fn the_command_line_sends_a_reset_link() {
    let dir = tempfile::tempdir().unwrap();
    let idm = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_idm"))
            .args(args)
            .env("IDM_DATA_DIR", dir.path())
            .env("IDM_MAIL_TRANSPORT", "file")
            .env("IDM_PUBLIC_URL", "https://idm.example.org")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = idm(&["user", "add", ALICE, "--password-stdin"], OLD_PASSWORD);
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = idm(&["user", "send-reset", ALICE], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(ALICE), "{out}");
    let mails: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| ReceivedMail::parse(&std::fs::read(e.unwrap().path()).unwrap()))
        .collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject, "Set a new password for your C3-PRO IDM account",
        "the administrator's wording"
    );
    assert!(
        mails[0]
            .reset_link()
            .starts_with("https://idm.example.org/reset?k=")
    );

    let (code, _, err) = idm(&["user", "send-reset", "nobody@example.org"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("no such user"), "{err}");
}

// ------------------------------------------------------------ TLS settings

/// Mail status after one reset request, and how many mails arrived.
async fn status_after_one_request(app: &TestApp, smtp: &TestSmtp) -> (String, usize) {
    let (status, _) = app.iforgot(ALICE).await;
    assert_eq!(status, StatusCode::OK);
    app.settle().await;
    let body: Value = app.get("/status", None).await.json().await.unwrap();
    (
        body["data"]["mail"].as_str().unwrap().to_owned(),
        smtp.mails().len(),
    )
}

#[tokio::test]
async fn starttls_mode_never_falls_back_to_plain_text() {
    // The test server offers no STARTTLS.
    let (app, smtp) = smtp_app(|c| c.smtp_tls = SmtpTls::Starttls).await;
    let (mail_status, delivered) = status_after_one_request(&app, &smtp).await;
    assert_eq!(delivered, 0, "the mail went out unencrypted");
    assert!(mail_status.contains("STARTTLS"), "{mail_status}");
}

#[tokio::test]
async fn implicit_tls_mode_needs_a_tls_server() {
    let (app, smtp) = smtp_app(|c| c.smtp_tls = SmtpTls::Tls).await;
    let (mail_status, delivered) = status_after_one_request(&app, &smtp).await;
    assert_eq!(delivered, 0, "the mail went out unencrypted");
    assert!(mail_status.contains("TLS mode"), "{mail_status}");
}

#[tokio::test]
async fn idm_check_verifies_the_smtp_connection() {
    let smtp = TestSmtp::start().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // The test server offers no login, so only the unreachable one gets
    // credentials (which must not be printed).
    for (port, login, expected_code, expected_line) in [
        (smtp.addr.port(), false, 0, "mail: ok"),
        (
            closed_port,
            true,
            1,
            "mail: the SMTP server is not reachable",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut check = tokio::process::Command::new(env!("CARGO_BIN_EXE_idm"));
        check
            .arg("check")
            .env("IDM_DATA_DIR", dir.path())
            .env("IDM_MAIL_TRANSPORT", "smtp")
            .env("IDM_SMTP_HOST", "127.0.0.1")
            .env("IDM_SMTP_PORT", port.to_string())
            .env("IDM_SMTP_TLS", "none");
        if login {
            check
                .env("IDM_SMTP_USERNAME", "mailer")
                .env("IDM_SMTP_PASSWORD", "check-must-not-print-this");
        }
        let out = check.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expected_code), "{stdout}{stderr}");
        assert!(stdout.contains(expected_line), "{stdout}");
        assert!(
            !stdout.contains("check-must-not-print-this")
                && !stderr.contains("check-must-not-print-this")
        );
    }
}

#[tokio::test]
async fn polling_status_does_not_flood_the_smtp_server() {
    let (app, smtp) = smtp_app(|_| {}).await;
    let polls: Vec<_> = (0..20)
        .map(|_| tokio::spawn(app.client.get(app.url("/status")).send()))
        .collect();
    for poll in polls {
        let r = poll.await.unwrap().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"]["mail"], "ok");
    }
    assert_eq!(smtp.connections(), 1, "one probe serves all polls");
}
