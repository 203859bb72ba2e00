//! Two-factor sign-in (TOTP with recovery codes): enrolment through the
//! API, `otp` on `POST /auth`, the console's second step, admin removal,
//! `mfa_required`, and what a database dump holds.
use crate::common::browser::Browser;
use crate::common::*;
use idm::config::MfaRequired;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAFF: &str = "two-factor@example.org";
const PASSWORD: &str = "a long enough passphrase";

/// The code of `secret` (base32) for time step `step`.
fn code_at(secret: &str, step: i64) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    totp.generate(u64::try_from(step * 30).unwrap()).to_string()
}

fn step_now(app: &TestApp) -> i64 {
    use idm::clock::Clock;
    app.clock.now().timestamp() / 30
}

/// Enrols `username` through the API; returns the secret and the codes.
async fn enrol(app: &TestApp, token: &str, username: &str) -> (String, Vec<String>) {
    let r = app
        .post_json(
            &format!("/user/{username}/mfa"),
            Some(token),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let data = &body["data"];
    let secret = data["secret"].as_str().unwrap().to_owned();
    assert!(
        data["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let codes: Vec<String> = data["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let r = app
        .post_json(
            &format!("/user/{username}/mfa/confirm"),
            Some(token),
            &json!({"otp": "000000"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let otp = code_at(&secret, step_now(app) - 1);
    let r = app
        .post_json(
            &format!("/user/{username}/mfa/confirm"),
            Some(token),
            &json!({"otp": otp}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    (secret, codes)
}

async fn auth(app: &TestApp, body: Value) -> LoginAnswer {
    login_from(app, None, &body).await
}

#[tokio::test]
async fn otp_on_auth_each_code_once_and_the_same_401_for_every_failure() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user(STAFF, PASSWORD, false).await;
    let token = app.login(STAFF, PASSWORD).await;
    // Someone else's account, or without the password: no.
    let r = app
        .post_json(
            &format!("/user/{ADMIN}/mfa"),
            Some(&token),
            &json!({"password": PASSWORD}),
        )
        .await;
    expect_error(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post_json(
            &format!("/user/{STAFF}/mfa"),
            Some(&token),
            &json!({"password": "wrong one"}),
        )
        .await;
    expect_error(r, StatusCode::BAD_REQUEST).await;
    let (secret, codes) = enrol(&app, &token, STAFF).await;
    let user: Value = app
        .get(&format!("/user/{STAFF}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["data"]["mfa"], true);
    assert!(!user.to_string().contains(&secret));
    // Never shown again.
    let r = app
        .post_json(
            &format!("/user/{STAFF}/mfa"),
            Some(&token),
            &json!({"password": PASSWORD}),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT).await;

    let wrong_password = auth(
        &app,
        json!({"username": STAFF, "password": "not it at all"}),
    )
    .await;
    let no_code = auth(&app, json!({"username": STAFF, "password": PASSWORD})).await;
    let wrong_code = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": "123456"}),
    )
    .await;
    let not_a_string = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": 123456}),
    )
    .await;
    for failure in [&no_code, &wrong_code, &not_a_string] {
        assert_eq!(failure.status, StatusCode::UNAUTHORIZED);
        assert_eq!(failure.body, wrong_password.body);
    }
    let otp = code_at(&secret, step_now(&app));
    let ok = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": otp}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let again = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": otp}),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a code works once");
    let recovery = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": codes[3]}),
    )
    .await;
    assert_eq!(recovery.status, StatusCode::OK);
    let reused = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": codes[3]}),
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
    // Accounts without a second factor ignore `otp`; old clients send none.
    let r = auth(
        &app,
        json!({"username": ADMIN, "password": ADMIN_PASSWORD, "otp": "nonsense"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let trail = account_trail(&app, &admin, STAFF).await;
    for action in [
        "second factor added",
        "login failed: second-factor code missing",
        "second factor: recovery code used",
    ] {
        assert_eq!(entries_with(&trail, action).len(), 1, "{action}: {trail:?}");
    }
    assert!(!entries_with(&trail, "login failed: wrong second-factor code").is_empty());
    let used = entries_with(&trail, "second factor: recovery code used");
    assert_eq!(used[0]["actor"], STAFF, "the account that proved itself");
    // An admin removes it; the password alone works again.
    let r = app
        .delete_json(&format!("/user/{STAFF}/mfa"), Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.login(STAFF, PASSWORD).await;
    let trail = account_trail(&app, &admin, STAFF).await;
    let removed = entries_with(&trail, "second factor removed");
    assert_eq!(removed[0]["actor"], ADMIN);
    let r = app
        .delete_json(&format!("/user/{STAFF}/mfa"), Some(&admin), &json!({}))
        .await;
    expect_error(r, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn codes_are_throttled_like_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.login_account_limit = 3;
    let app = spawn_app_with(dir, config).await;
    app.create_user(STAFF, PASSWORD, false).await;
    let token = app.login(STAFF, PASSWORD).await;
    let (secret, _) = enrol(&app, &token, STAFF).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = auth(
            &app,
            json!({"username": STAFF, "password": PASSWORD, "otp": "999999"}),
        )
        .await;
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let otp = code_at(&secret, step_now(&app) + 1);
    let r = auth(
        &app,
        json!({"username": STAFF, "password": PASSWORD, "otp": otp}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even a right code waits"
    );
}

#[tokio::test]
async fn no_secret_or_recovery_code_is_in_the_database_file() {
    let app = spawn_app().await;
    app.create_user(STAFF, PASSWORD, false).await;
    let token = app.login(STAFF, PASSWORD).await;
    let (secret, codes) = enrol(&app, &token, STAFF).await;
    if app.mongo.is_some() {
        return; // The SQLite file is what this test reads.
    }
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("idm.sqlite3") {
            dump.extend(std::fs::read(path).unwrap());
        }
    }
    let dump = String::from_utf8_lossy(&dump).to_lowercase();
    assert!(dump.contains("v1:"), "the sealed secret is there");
    assert!(!dump.contains(&secret.to_lowercase()));
    for code in &codes {
        assert!(!dump.contains(code), "{code}");
        assert!(!dump.contains(&code.replace('-', "")), "{code}");
    }
}

#[tokio::test]
async fn the_console_asks_for_the_code_before_the_session_is_signed_in() {
    let app = spawn_app().await;
    app.create_user(STAFF, PASSWORD, false).await;
    let token = app.login(STAFF, PASSWORD).await;
    let (secret, codes) = enrol(&app, &token, STAFF).await;
    let browser = Browser::new(&app);
    let login = browser.get("/login").await;
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", STAFF),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/login/code")
    );
    let home = browser.get("/home").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER, "not signed in yet");
    let page = browser.get("/login/code").await;
    assert_eq!(page.status, StatusCode::OK);
    let wrong = browser
        .post(
            "/login/code",
            &[("csrf_token", &page.csrf()), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong code"));
    let otp = code_at(&secret, step_now(&app));
    let ok = browser
        .post(
            "/login/code",
            &[("csrf_token", &page.csrf()), ("code", &otp)],
        )
        .await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/home"));
    assert_eq!(browser.get("/home").await.status, StatusCode::OK);
    // A recovery code in another browser, once.
    for (attempt, expected) in [(0, StatusCode::SEE_OTHER), (1, StatusCode::UNAUTHORIZED)] {
        let other = Browser::new(&app);
        let login = other.get("/login").await;
        other
            .post(
                "/login",
                &[
                    ("csrf_token", &login.csrf()),
                    ("username", STAFF),
                    ("password", PASSWORD),
                ],
            )
            .await;
        let page = other.get("/login/code").await;
        let r = other
            .post(
                "/login/code",
                &[("csrf_token", &page.csrf()), ("code", &codes[0])],
            )
            .await;
        assert_eq!(r.status, expected, "attempt {attempt}");
    }
    // Without a password step there is no code page.
    let r = Browser::new(&app).get("/login/code").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
}

#[tokio::test]
async fn with_mfa_required_for_admins_an_admin_reaches_only_the_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.mfa_required = MfaRequired::Admins;
    let app = spawn_app_with(dir, config).await;
    app.create_user(ADMIN, PASSWORD, true).await;
    app.create_user(STAFF, PASSWORD, false).await;
    let browser = Browser::new(&app);
    let login = browser.get("/login").await;
    let r = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("username", ADMIN),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.location(), "/account");
    for path in ["/home", "/users", "/subjects"] {
        let r = browser.get(path).await;
        assert_eq!(
            (r.status, r.location()),
            (StatusCode::SEE_OTHER, "/account"),
            "{path}"
        );
    }
    let account = browser.get("/account").await;
    assert!(account.body.contains("requires two-factor sign-in"));
    let token = app.login(ADMIN, PASSWORD).await;
    let r = app.get("/subject", Some(&token)).await;
    let message = expect_error(r, StatusCode::FORBIDDEN).await;
    assert!(message.contains("two-factor"), "{message}");
    let staff = app.login(STAFF, PASSWORD).await;
    assert_eq!(
        app.get("/subject", Some(&staff)).await.status(),
        StatusCode::OK,
        "staff need not"
    );
    // Enrolled through the account page, the admin is let through.
    let start = browser
        .post(
            "/account/mfa",
            &[("csrf_token", &account.csrf()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(start.status, StatusCode::OK);
    assert!(
        start.body.contains("data:image/svg+xml;base64,"),
        "a QR code"
    );
    let marker = r#"id="totp-secret">"#;
    let at = start.body.find(marker).unwrap() + marker.len();
    let secret = &start.body[at..at + start.body[at..].find('<').unwrap()];
    let otp = code_at(secret, step_now(&app));
    let done = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf_token", &account.csrf()), ("otp", &otp)],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/account")
    );
    assert_eq!(browser.get("/users").await.status, StatusCode::OK);
    let r = auth(&app, json!({"username": ADMIN, "password": PASSWORD, "otp": code_at(secret, step_now(&app) + 1)})).await;
    assert_eq!(r.status, StatusCode::OK);
    // The secret is not shown again.
    assert!(!browser.get("/account").await.body.contains(secret));
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_every_token() {
    let app = spawn_app().await;
    app.create_user(STAFF, PASSWORD, false).await;
    let token = app.login(STAFF, PASSWORD).await;
    let here = Browser::new(&app);
    let there = Browser::new(&app);
    here.sign_in(STAFF, PASSWORD).await;
    there.sign_in(STAFF, PASSWORD).await;
    let account = here.get("/account").await;
    assert_eq!(
        account.body.matches("<tr>").count(),
        3,
        "two sessions listed and a header"
    );
    assert!(account.body.contains("This session"));
    let csrf = account.csrf();
    let wrong = here
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", "not it"),
                ("password", "a new long passphrase"),
                ("password2", "a new long passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("account-current_password-error"),
        "{}",
        wrong.body
    );
    let r = here
        .post(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", PASSWORD),
                ("password", "a new long passphrase"),
                ("password2", "a new long passphrase"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/account")
    );
    assert_eq!(
        here.get("/account").await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        there.get("/home").await.status,
        StatusCode::SEE_OTHER,
        "the other ended"
    );
    expect_error(
        app.get("/subject", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    app.login(STAFF, "a new long passphrase").await;
    // Sign out everywhere else, from a third session.
    let third = Browser::new(&app);
    third.sign_in(STAFF, "a new long passphrase").await;
    let csrf = here.get("/account").await.csrf();
    let r = here
        .post("/account/sessions/revoke", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(here.get("/account").await.status, StatusCode::OK);
    assert_eq!(third.get("/home").await.status, StatusCode::SEE_OTHER);
}
