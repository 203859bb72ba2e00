//! Password recovery over real sockets: the server on port 0, a real SMTP
//! server on loopback (tests/integration/common/smtp.rs), real SQLite files.

mod by_admin;
mod flow;
mod iforgot;
mod key;
mod links;
mod logs;
mod mail;
mod messages;

use crate::common::browser::{Browser, Page};
use crate::common::smtp::{ReceivedMail, TestSmtp};
use crate::common::*;
use idm::Config;
use idm::config::{MailTransportKind, SmtpTls};
use reqwest::StatusCode;

const ALICE: &str = "alice@example.org";
const OLD_PASSWORD: &str = "old password of alice";
const NEW_PASSWORD: &str = "brand new password of alice";
const MAIL_FROM: &str = "C3-PRO IDM <idm@idm.test>";
const ADMIN_EMAIL: &str = "it-admin@idm.test";

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

fn outbox(app: &TestApp) -> Vec<ReceivedMail> {
    std::fs::read_dir(app.dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| ReceivedMail::parse(&std::fs::read(p).unwrap()))
        .collect()
}
