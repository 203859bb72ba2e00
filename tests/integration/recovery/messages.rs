//! What the recovery pages say: errors next to their fields, sentences,
//! and waits in minutes.

use crate::common::browser::Browser;
use reqwest::StatusCode;

use super::{ALICE, NEW_PASSWORD, OLD_PASSWORD, TestAppExt, open_link_in_browser, smtp_app};

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

#[tokio::test]
async fn a_malformed_username_is_shown_next_to_the_field() {
    let (app, _smtp) = smtp_app(|_| {}).await;
    let (status, body) = app.iforgot("not an email").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("value=\"not an email\""));
    assert!(body.contains("email address"), "{body}");
}
