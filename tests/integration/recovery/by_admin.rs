//! Reset links sent by an admin, through the API and from the command
//! line.

use std::io::Write;

use crate::common::smtp::ReceivedMail;
use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

use super::{ALICE, NEW_PASSWORD, OLD_PASSWORD, TestAppExt, smtp_app};

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
