//! Mail delivery: a broken SMTP server shows in the status but not to
//! the user, the file transport, and the TLS settings.

use crate::common::smtp::TestSmtp;
use crate::common::*;
use idm::config::{MailTransportKind, SmtpTls};
use reqwest::StatusCode;
use serde_json::Value;

use super::logs::LogCapture;
use super::{ALICE, NEW_PASSWORD, OLD_PASSWORD, TestAppExt, outbox, smtp_app};

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
