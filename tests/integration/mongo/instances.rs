//! Several instances on one MongoDB database: tokens, login limits,
//! console sessions, the first admin and establishes are shared and raced
//! across them.

use crate::common::mongo::TestDatabase;
use crate::common::*;
use idm::Config;
use mongodb::bson::doc;
use reqwest::StatusCode;
use serde_json::json;

use super::mongo_config;

/// Two instances of the service on one database, as behind a load
/// balancer: same secrets, different ports and data folders.
pub(super) async fn two_instances(
    configure: impl Fn(&mut Config),
) -> (TestApp, TestApp, TestDatabase) {
    let db = TestDatabase::new();
    let dir_a = tempfile::tempdir().unwrap();
    let mut config = mongo_config(&dir_a, &db.uri, &db.name);
    configure(&mut config);
    let a = spawn_app_with(dir_a, config.clone()).await;
    let dir_b = tempfile::tempdir().unwrap();
    let b = spawn_app_with(
        dir_b,
        Config {
            data_dir: tempfile::tempdir().unwrap().keep(),
            ..config
        },
    )
    .await;
    assert_ne!(a.base, b.base);
    (a, b, db)
}

#[tokio::test]
async fn a_token_from_one_instance_works_on_the_other_and_revocation_is_shared() {
    let (a, b, _db) = two_instances(|_| {}).await;
    let admin = a.admin_token().await;
    b.create_user("staff@example.org", "another fine passphrase", false)
        .await;
    let staff = b
        .login("staff@example.org", "another fine passphrase")
        .await;
    assert_eq!(
        b.get(&format!("/user/{ADMIN}"), Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        a.get("/user/staff@example.org", Some(&staff))
            .await
            .status(),
        StatusCode::OK
    );
    // Deleting the user on A ends its token on B at once.
    let r = a
        .delete_json(
            "/user",
            Some(&admin),
            &json!({"username": "staff@example.org"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        b.get("/user/staff@example.org", Some(&staff)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances() {
    let (a, b, _db) = two_instances(|c| c.login_account_limit = 3).await;
    a.create_user("victim@example.org", "the right passphrase", false)
        .await;
    async fn attempt(app: &TestApp, password: &str) -> reqwest::Response {
        app.post_json(
            "/auth",
            None,
            &json!({"username": "victim@example.org", "password": password}),
        )
        .await
    }
    expect_error(attempt(&a, "wrong one").await, StatusCode::UNAUTHORIZED).await;
    expect_error(attempt(&b, "wrong two").await, StatusCode::UNAUTHORIZED).await;
    expect_error(attempt(&a, "wrong three").await, StatusCode::UNAUTHORIZED).await;
    // Three failures in total: both instances now refuse, even the right
    // password.
    for app in [&b, &a] {
        let r = attempt(app, "the right passphrase").await;
        assert!(r.headers().contains_key("retry-after"));
        expect_error(r, StatusCode::TOO_MANY_REQUESTS).await;
    }
    // The window ends on both.
    a.clock.advance(chrono::Duration::seconds(
        a.config.login_window_secs as i64 + 1,
    ));
    b.clock.advance(chrono::Duration::seconds(
        b.config.login_window_secs as i64 + 1,
    ));
    assert_eq!(
        attempt(&b, "the right passphrase").await.status(),
        StatusCode::OK
    );
}

/// Two instances count in the same documents: 200 wrong passwords for one
/// account, and 200 unknown users from one address, sent at once and
/// spread over both instances, get no more answers than the limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_failed_logins_on_two_instances_get_at_most_the_limits() {
    let (a, b, _db) = two_instances(|c| {
        c.login_ip_limit = 20;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    a.create_user("victim@example.org", "the right passphrase", false)
        .await;
    let wrong = json!({"username": "victim@example.org", "password": "a guess"});
    let logins: Vec<_> = (0..200)
        .map(|i| {
            (
                if i % 2 == 0 { &a } else { &b },
                Some("203.0.113.1"),
                wrong.clone(),
            )
        })
        .collect();
    let answers = logins_at_once(&logins).await;
    let limit = a.config.login_account_limit as usize;
    assert_eq!(count_status(&answers, StatusCode::UNAUTHORIZED), limit);
    assert_eq!(
        count_status(&answers, StatusCode::TOO_MANY_REQUESTS),
        200 - limit
    );

    let logins: Vec<_> = (0..200)
        .map(|i| {
            let body = json!({"username": format!("nobody{i}@example.org"), "password": "a guess"});
            (if i % 2 == 0 { &a } else { &b }, Some("203.0.113.2"), body)
        })
        .collect();
    let answers = logins_at_once(&logins).await;
    assert_eq!(count_status(&answers, StatusCode::UNAUTHORIZED), 20);
    assert_eq!(count_status(&answers, StatusCode::TOO_MANY_REQUESTS), 180);

    // The owner signs in from elsewhere, on either instance.
    let right = json!({"username": "victim@example.org", "password": "the right passphrase"});
    assert_eq!(
        login_from(&b, Some("198.51.100.7"), &right).await.status,
        StatusCode::OK
    );
}

/// A browser: its own cookie jar, no redirects followed. Cookies do not
/// depend on the port, so one jar serves both instances, as behind a load
/// balancer.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token of a console page (its meta tag).
async fn csrf_of(r: reqwest::Response) -> String {
    let body = r.text().await.unwrap();
    let marker = r#"name="csrf-token" content=""#;
    let start = body.find(marker).expect("page has a csrf meta tag") + marker.len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_admin_forms_on_two_instances_create_one_admin() {
    let (a, b, _db) = two_instances(|_| {}).await;
    // Eight browsers open the form, half on each instance, then all submit.
    let mut forms = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let client = browser();
        let csrf = csrf_of(client.get(app.url("/init")).send().await.unwrap()).await;
        forms.push((
            client,
            app.url("/init"),
            csrf,
            format!("first{i}@example.org"),
        ));
    }
    let mut requests = tokio::task::JoinSet::new();
    for (client, url, csrf, email) in forms {
        requests.spawn(async move {
            client
                .post(url)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("email", email.as_str()),
                    ("password", "a long first passphrase"),
                    ("password2", "a long first passphrase"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = requests.join_all().await;
    let users = a
        .state
        .services
        .deps
        .store
        .list_users(&idm::store::UserQuery {
            search: None,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(users.total, 1, "{statuses:?}");
    assert!(users.items[0].admin);
    let refused = statuses
        .iter()
        .filter(|s| !s.is_success() && !s.is_redirection())
        .count();
    assert_eq!(
        refused, 7,
        "all but one submission are refused: {statuses:?}"
    );
}

#[tokio::test]
async fn a_console_session_from_one_instance_is_valid_on_the_other_until_logout() {
    let (a, b, _db) = two_instances(|_| {}).await;
    a.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let client = browser();
    let csrf = csrf_of(client.get(a.url("/login")).send().await.unwrap()).await;
    let r = client
        .post(a.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in on A");

    // The session lives in MongoDB: B knows it.
    let home = client.get(b.url("/home")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let csrf = csrf_of(home).await;
    assert_eq!(
        client.get(b.url("/users")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Signing out on B ends the session on A too.
    let r = client
        .post(b.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = client.get(a.url("/users")).send().await.unwrap();
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "A sends the browser to sign in"
    );
    assert!(
        after.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "{:?}",
        after.headers()
    );
}

/// Of many concurrent establishes of one link, spread over two instances,
/// exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_establishes_on_two_instances_have_one_winner() {
    let (a, b, _db) = two_instances(|_| {}).await;
    let token = a.admin_token().await;
    let subject = json!({"sssid": "S-RACE", "name": "Rita Race", "bday": "1990-04-01"});
    assert_eq!(
        a.post_json("/subject", Some(&token), &subject)
            .await
            .status(),
        StatusCode::CREATED
    );
    let consent = json!({"sssid": "S-RACE", "date_consented": "2026-11-28T12:00:00Z"});
    assert_eq!(
        a.put_json("/subject/S-RACE", Some(&token), &consent)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let link: serde_json::Value = a
        .post_json("/subject/S-RACE/links", Some(&token), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = link["data"]["_id"].as_str().unwrap().to_owned();
    let jwt = a
        .get(&format!("/link/{id}/jwt"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    let patient = json!({"resourceType": "Patient", "identifier": [{"system": "urn:app", "value": "device-1"}]});
    let attempts = (0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.client
            .post(app.url("/establish"))
            .header("Authorization", format!("Bearer {jwt}"))
            .json(&patient)
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, lost), (1, 19), "{statuses:?}");
    let linked: serde_json::Value = b
        .get(&format!("/link/{id}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(linked["data"]["linked_to"], "device-1");
}
