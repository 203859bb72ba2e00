//! Test harness: the real server on port 0 with a fresh SQLite file per
//! test, a reqwest client, and helpers for common steps.

pub mod browser;
pub mod mongo;
pub mod smtp;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use idm::app::AppState;
use idm::clock::{Clock, ManualClock, OsRandom, RandomSource, random_hex};
use idm::{Application, Config};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN: &str = "admin@example.org";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    /// Where the test clock started: the real time when the test began, to
    /// the whole second.
    pub start: DateTime<Utc>,
    pub state: AppState,
    pub config: Config,
    /// Keeps the data folder alive for the test's duration.
    pub dir: TempDir,
    /// With `IDM_TEST_BACKEND=mongodb`: the test's database, dropped at the end.
    pub mongo: Option<mongo::TestDatabase>,
}

/// A configuration for tests: port 0, a fresh data folder, strong secrets.
pub fn test_config(dir: &TempDir) -> Config {
    let (database_url, database_name) = if mongo::api_suite_on_mongo() {
        (mongo::mongo_uri(), mongo::unique_database_name())
    } else {
        (String::new(), Config::default().database_name)
    };
    Config {
        database_url,
        database_name,
        port: 0,
        data_dir: dir.path().to_path_buf(),
        token_secret: Some(random_hex(&OsRandom, 32).into()),
        link_secret: Some(random_hex(&OsRandom, 32).into()),
        public_url: "http://idm.test".into(),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    spawn_app_with(dir, config).await
}

pub async fn spawn_app_with(dir: TempDir, config: Config) -> TestApp {
    spawn_app_with_random(dir, config, Arc::new(OsRandom)).await
}

/// As `spawn_app_with`, with the given source of random bytes.
pub async fn spawn_app_with_random(
    dir: TempDir,
    config: Config,
    random: Arc<dyn RandomSource>,
) -> TestApp {
    let clock = Arc::new(ManualClock::starting_now());
    let start = clock.now();
    let app = Application::build_with(config.clone(), clock.clone(), random)
        .await
        .expect("the application builds");
    let mongo = config
        .database_url
        .starts_with("mongodb")
        .then(|| mongo::TestDatabase {
            uri: config.database_url.clone(),
            name: config.database_name.clone(),
        });
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        // A cookie store, so page forms carry their session's CSRF token.
        client: Client::builder().cookie_store(true).build().unwrap(),
        clock,
        start,
        state,
        config,
        dir,
        mongo,
    }
}

impl TestApp {
    /// The test clock's start plus `offset`, written as the API writes
    /// timestamps (RFC 3339 UTC, fractions only when there are some).
    pub fn at(&self, offset: Duration) -> String {
        idm::domain::format_timestamp(self.start + offset)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates the first admin through the service layer and logs in.
    pub async fn admin_token(&self) -> String {
        self.create_user(ADMIN, ADMIN_PASSWORD, true).await;
        self.login(ADMIN, ADMIN_PASSWORD).await
    }

    /// Creates a subject through the service, as the system (no actor).
    pub async fn add_subject(&self, sssid: &str, name: &str, bday: &str) {
        self.state
            .services
            .subjects
            .create(
                &idm::service::Context::system(),
                idm::service::subjects::SubjectFields {
                    sssid: Some(sssid.into()),
                    name: Some(name.into()),
                    bday: Some(bday.into()),
                    ..Default::default()
                },
            )
            .await
            .expect("subject created");
    }

    /// Creates a user as the command line would (no actor).
    pub async fn create_user(&self, username: &str, password: &str, admin: bool) {
        self.state
            .services
            .users
            .create(
                &idm::service::Context::system(),
                idm::service::users::NewUser {
                    username: username.into(),
                    password: password.into(),
                    admin,
                },
            )
            .await
            .expect("user created");
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .post_json(
                "/auth",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login of {username} failed");
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The CSRF token of this client's browser session (creating the
    /// session if needed), for posting page forms.
    pub async fn csrf(&self) -> String {
        let page = self.get("/login", None).await.text().await.unwrap();
        let marker = r#"name="csrf-token" content=""#;
        let start = page.find(marker).expect("page has a csrf meta tag") + marker.len();
        let end = page[start..].find('"').unwrap() + start;
        page[start..end].to_owned()
    }

    /// `GET /subject?{query}` (`query` already URL-encoded) as staff: the
    /// listed sssids in order, and the `X-Total-Count`.
    pub async fn list_subjects(&self, token: &str, query: &str) -> (Vec<String>, u64) {
        let r = self.get(&format!("/subject?{query}"), Some(token)).await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let total: u64 = r.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let sssids = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sssid"].as_str().unwrap().to_owned())
            .collect();
        (sssids, total)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", format!("JWT {t}"));
        }
        req.send().await.unwrap()
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.header("Authorization", format!("JWT {t}"));
        }
        req.send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::PUT, path, token, body)
            .await
    }

    pub async fn delete_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::DELETE, path, token, body)
            .await
    }
}

/// One answer to `POST /auth`.
#[derive(Debug)]
pub struct LoginAnswer {
    pub status: StatusCode,
    /// `Retry-After` in seconds, if the answer had one.
    pub retry_after: Option<u64>,
    pub body: String,
}

impl LoginAnswer {
    pub async fn of(response: Response) -> Self {
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let body = response.text().await.unwrap();
        Self {
            status,
            retry_after,
            body,
        }
    }
}

/// `POST /auth` with `body` to `app`, from the client address
/// `forwarded_for` (believed only when the app trusts 127.0.0.1 as a proxy).
pub async fn login_from(app: &TestApp, forwarded_for: Option<&str>, body: &Value) -> LoginAnswer {
    let mut request = app.client.post(app.url("/auth")).json(body);
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    LoginAnswer::of(request.send().await.unwrap()).await
}

/// Sends all logins at once, each `(app, forwarded_for, body)`, and returns
/// the answers in the same order.
pub async fn logins_at_once(logins: &[(&TestApp, Option<&str>, Value)]) -> Vec<LoginAnswer> {
    futures::future::join_all(
        logins
            .iter()
            .map(|(app, forwarded_for, body)| login_from(app, *forwarded_for, body)),
    )
    .await
}

/// How many answers had `status`.
pub fn count_status(answers: &[LoginAnswer], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// An account's audit trail through `GET /user/<u>/audits` (admin token).
pub async fn account_trail(app: &TestApp, admin_token: &str, username: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/user/{username}/audits"), Some(admin_token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

/// The entries of a trail with `action`.
pub fn entries_with<'a>(trail: &'a [Value], action: &str) -> Vec<&'a Value> {
    trail.iter().filter(|e| e["action"] == action).collect()
}

/// Asserts the JSON error envelope with `status` and returns its message.
pub async fn expect_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status, "unexpected status");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(
        body["error"]["status"],
        status.as_u16(),
        "envelope status: {body}"
    );
    body["error"]["message"]
        .as_str()
        .expect("envelope has a message")
        .to_owned()
}
