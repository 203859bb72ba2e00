//! What `/iforgot` reveals (nothing about who exists) and how often it
//! mails or takes requests, also under parallel requests.

use std::time::Duration;

use crate::common::*;
use chrono::Duration as ChronoDuration;
use idm::clock::{OsRandom, random_hex};
use reqwest::StatusCode;

use super::{ALICE, NEW_PASSWORD, TestAppExt, smtp_app};

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
