//! MongoDB-specific behaviour over real HTTP: several instances on one
//! database, a database that goes away, and the import from the old
//! service. Needs `IDM_TEST_MONGODB_URI` (see tests/integration/common/mongo.rs).

use std::process::Command;

use crate::common::mongo::{OwnServer, TestDatabase, unique_database_name};
use crate::common::*;
use chrono::{TimeZone, Utc};
use idm::Config;
use idm::store::mongo::MongoStore;
use idm::store::{AuditStore, LinkStore, SubjectStore, UserStore};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use reqwest::StatusCode;
use serde_json::json;

/// A test configuration on the given MongoDB database.
fn mongo_config(dir: &tempfile::TempDir, uri: &str, database: &str) -> Config {
    Config {
        database_url: uri.to_owned(),
        database_name: database.to_owned(),
        ..test_config(dir)
    }
}

/// Two instances of the service on one database, as behind a load
/// balancer: same secrets, different ports and data folders.
async fn two_instances(configure: impl Fn(&mut Config)) -> (TestApp, TestApp, TestDatabase) {
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

#[tokio::test]
async fn duplicate_names_are_409_on_mongodb() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let config = mongo_config(&dir, &db.uri, &db.name);
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    let body =
        json!({"username": "twice@example.org", "password": "a decent passphrase", "admin": false});
    assert_eq!(
        app.post_json("/user", Some(&admin), &body).await.status(),
        StatusCode::CREATED
    );
    let message = expect_error(
        app.post_json("/user", Some(&admin), &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains("already exists"), "{message}");
}

/// Subjects written by a version that sorted names by a lower-cased
/// `name_lower` get their sort key when the store opens, the old index
/// goes, and opening again changes nothing.
#[tokio::test]
async fn subjects_stored_before_the_name_sort_key_get_it_at_start() {
    use futures::StreamExt as _;
    use idm::store::{SubjectColumn, SubjectQuery};
    let db = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let subjects = client.database(&db.name).collection::<Document>("subjects");
    let at = mongodb::bson::DateTime::from_millis(1_780_000_000_000);
    for (sssid, name) in [
        ("S1", "Zoë"),
        ("S2", "Émilie"),
        ("S3", "Åsa"),
        ("S4", "bob"),
    ] {
        subjects
            .insert_one(doc! {
                "_id": sssid, "sssid": sssid, "name": name, "name_lower": name.to_lowercase(),
                "bday": "1980-01-01", "created": at, "changed": at, "version": 1_i64,
            })
            .await
            .unwrap();
    }
    subjects
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "name_lower": 1, "sssid": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .name("by_name_lower".to_owned())
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();

    let by_name = SubjectQuery {
        search: None,
        status: None,
        order_by: SubjectColumn::Name,
        descending: false,
        offset: 0,
        limit: 10,
    };
    for _ in 0..2 {
        let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
        let names: Vec<_> = store
            .list_subjects(&by_name)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["Åsa", "bob", "Émilie", "Zoë"]);
    }
    let keys: Vec<Document> = subjects
        .list_indexes()
        .await
        .unwrap()
        .map(|index| index.unwrap().keys)
        .collect()
        .await;
    assert!(
        keys.contains(&doc! { "name_sort": 1, "sssid": 1 }),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.contains_key("name_lower")),
        "{keys:?}"
    );
    let emilie = subjects
        .find_one(doc! { "_id": "S2" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(emilie.get_str("name_sort").unwrap(), "emilie");
    assert!(emilie.get("name_lower").is_none(), "the old key is gone");
}

#[tokio::test]
async fn a_stopped_database_makes_readyz_fail_and_api_errors_stay_json() {
    let mut server = OwnServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A short selection timeout from the URL (it wins over the default)
    // keeps the failing requests below quick.
    let uri = format!("{}&serverSelectionTimeoutMS=1000", server.uri);
    let config = mongo_config(&dir, &uri, &unique_database_name());
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);

    server.stop();

    let r = app.get("/readyz", None).await;
    let message = expect_error(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        message.contains("mongodb database is not reachable"),
        "{message}"
    );
    let status: serde_json::Value = app.get("/status", None).await.json().await.unwrap();
    assert_eq!(status["data"]["db"], "mongodb database is not reachable");
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    // Requests that need the database fail cleanly, without details.
    let message = expect_error(
        app.get(&format!("/user/{ADMIN}"), Some(&admin)).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(message, "Service temporarily unavailable");
    let message = expect_error(
        app.post_json(
            "/auth",
            None,
            &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(!message.contains("mongodb"), "{message}");
}

#[tokio::test]
async fn startup_against_an_unreachable_database_fails_clearly_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = mongo_config(
        &dir,
        &format!(
            "mongodb://idm:hunter2-secret@127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=500"
        ),
        "idm",
    );
    let err = match idm::Application::build(config).await {
        Ok(_) => panic!("started without a database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("cannot reach MongoDB at 127.0.0.1:"), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");
}

// ------------------------------------------------------------------ import

fn binary(text: &str) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: text.as_bytes().to_vec(),
    })
}

/// A JWT as the old service stored it in `_jwt` (the signature does not
/// matter to the import; only `iat` is read).
fn old_jwt(jti: &str, iat: i64, exp: i64) -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "HS256", "typ": "JWT"})),
        b64(
            json!({"jti": jti, "iat": iat, "exp": exp, "sub": "Ada", "aud": "https://old.example.org", "iss": "https://old.example.org"})
        )
    )
}

struct OldData {
    link_id: String,
    user_id: ObjectId,
}

/// Writes the old single-collection layout into `collection`.
async fn write_old_layout(collection: &mongodb::Collection<Document>) -> OldData {
    let (staff, admin, s1, s2, link) = (
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
    );
    let link_id = link.to_hex();
    let old_hash = bcrypt::hash("old staff password", 4).unwrap();
    let admin_hash = bcrypt::hash("old admin password", 4).unwrap();
    let docs = vec![
        doc! { "_id": staff, "type": "user", "username": "Staff@Example.org", "password": binary(&old_hash), "admin": false,
        "temporary": { "hash": "reset-secret", "time": 1_600_000_000_i64 } },
        // The old service did not normalise case: a second account of the
        // same person.
        doc! { "_id": ObjectId::new(), "type": "user", "username": "STAFF@example.org", "password": binary(&admin_hash), "admin": true },
        doc! { "_id": admin, "type": "user", "username": "boss@example.org", "password": binary(&admin_hash), "admin": true, "temporary": Bson::Null },
        doc! { "_id": s1, "type": "subject", "sssid": "S-1", "name": "Ada Lovelace", "bday": "1980-02-03",
        "email": "ada@example.org", "date_invited": "2020-01-02T03:04:05.678Z", "date_consented": "2020-01-03",
        "created": "2020-01-01T00:00:00Z", "changed": "2020-01-03T10:00:00Z" },
        doc! { "_id": s2, "type": "subject", "sssid": "S-2", "name": "Bad Old Data", "bday": 19750131_i32 },
        doc! { "_id": ObjectId::new(), "type": "subject", "sssid": "S-3", "name": "No Birthday" },
        doc! { "_id": link, "type": "link", "sub": "S-1", "iss": "https://old.example.org", "aud": "https://old.example.org",
        "secret": "old-shared-secret", "algorithm": "HS256", "created": "2020-01-04T00:00:00Z", "changed": "2020-01-05T00:00:00Z",
        "exp": 1_578_268_800_i64, "_jwt": binary(&old_jwt(&link_id, 1_578_182_400, 1_578_268_800)),
        "linked_to": "patient-42", "linked_system": "urn:c3pro", "linked_on": "2020-01-05T00:00:00Z", "withdrawn_on": Bson::Null },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": s1, "actor_id": staff, "datetime": "2020-01-01T00:00:00Z", "action": "create" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": s1, "actor_id": staff, "datetime": "2020-01-03T10:00:00Z", "action": "consented: 2020-01-03" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": link, "actor_id": admin, "datetime": "2020-01-04T00:00:00Z", "action": "create" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": link, "datetime": "2020-01-05T00:00:00Z", "action": "link to patient-42" },
    ];
    collection.insert_many(docs).await.unwrap();
    OldData {
        link_id,
        user_id: staff,
    }
}

/// Runs `idm import` as an operator would, into the MongoDB `target`.
fn run_import(uri: &str, target: &str, old_db: &str, force: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idm"));
    cmd.env_clear()
        .env("IDM_DATABASE_URL", uri)
        .env("IDM_DATABASE_NAME", target)
        .args([
            "import",
            "--from",
            uri,
            "--db",
            old_db,
            "--collection",
            "c3pro_idm",
        ]);
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every document of every collection, for "nothing changed" checks.
async fn snapshot(db: &mongodb::Database) -> Vec<(String, Vec<Document>)> {
    let mut names = db.list_collection_names().await.unwrap();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let mut cursor = db
            .collection::<Document>(&name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap();
        let mut docs = Vec::new();
        while cursor.advance().await.unwrap() {
            docs.push(cursor.deserialize_current().unwrap());
        }
        out.push((name, docs));
    }
    out
}

#[tokio::test]
async fn import_from_the_old_layout_is_complete_upgrades_bcrypt_and_is_idempotent() {
    let old = TestDatabase::new();
    let target = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&old.uri).await.unwrap();
    let fixture = write_old_layout(&client.database(&old.name).collection("c3pro_idm")).await;

    let (code, stdout, stderr) = run_import(&old.uri, &target.name, &old.name, false);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("users: 2 imported, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("subjects: 2 imported, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("links: 1 imported, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("audits: 4 imported, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bday is missing"),
        "the bad subject is reported: {stdout}"
    );
    assert!(!stdout.contains("reset-secret") && !stderr.contains("reset-secret"));

    // What arrived, read through the store.
    let store = MongoStore::open(&target.uri, &target.name).await.unwrap();
    let staff = store
        .user_by_username("staff@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(staff.id, fixture.user_id.to_hex());
    assert!(staff.password_hash.starts_with("$2b$04$"));
    assert!(!staff.admin);
    assert!(
        store
            .user_by_username("boss@example.org")
            .await
            .unwrap()
            .unwrap()
            .admin
    );
    let s1 = store.subject("S-1").await.unwrap().unwrap();
    assert_eq!(s1.bday.to_string(), "1980-02-03");
    assert_eq!(
        s1.date_invited,
        Some(
            Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap()
                + chrono::Duration::milliseconds(678)
        )
    );
    assert_eq!(
        s1.date_consented,
        Some(Utc.with_ymd_and_hms(2020, 1, 3, 0, 0, 0).unwrap())
    );
    assert_eq!(
        s1.created,
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        store
            .subject("S-2")
            .await
            .unwrap()
            .unwrap()
            .bday
            .to_string(),
        "1975-01-31"
    );
    assert!(store.subject("S-3").await.unwrap().is_none());
    let link = store.link(&fixture.link_id).await.unwrap().unwrap();
    assert_eq!(link.sssid, "S-1");
    assert_eq!(link.linked_to.as_deref(), Some("patient-42"));
    assert_eq!(link.linked_system.as_deref(), Some("urn:c3pro"));
    assert_eq!(
        link.linked_on,
        Some(Utc.with_ymd_and_hms(2020, 1, 5, 0, 0, 0).unwrap())
    );
    assert_eq!(link.exp, Some(Utc.timestamp_opt(1_578_268_800, 0).unwrap()));
    assert_eq!(
        link.issued_at,
        Some(Utc.timestamp_opt(1_578_182_400, 0).unwrap())
    );
    assert_eq!(link.withdrawn_on, None);
    let audits = store.audits_for_subject("S-1").await.unwrap();
    let summary: Vec<(Option<&str>, &str, Option<&str>)> = audits
        .iter()
        .map(|a| (a.link.as_deref(), a.action.as_str(), a.actor.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (None, "create", Some("staff@example.org")),
            (None, "consented: 2020-01-03", Some("staff@example.org")),
            (
                Some(fixture.link_id.as_str()),
                "create",
                Some("boss@example.org")
            ),
            (Some(fixture.link_id.as_str()), "link to patient-42", None),
        ]
    );

    // The bcrypt user logs in with the old password; the hash is upgraded.
    let dir = tempfile::tempdir().unwrap();
    let config = mongo_config(&dir, &target.uri, &target.name);
    let app = spawn_app_with(dir, config).await;
    let token = app.login("staff@example.org", "old staff password").await;
    assert_eq!(
        app.get("/user/staff@example.org", Some(&token))
            .await
            .status(),
        StatusCode::OK
    );
    let upgraded = store
        .user_by_username("staff@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(
        upgraded.password_hash.starts_with("$argon2id$"),
        "{}",
        upgraded.password_hash
    );
    expect_error(
        app.post_json(
            "/auth",
            None,
            &json!({"username": "staff@example.org", "password": "wrong"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.post_json(
            "/auth",
            None,
            &json!({"username": "staff@example.org", "password": "old staff password"})
        )
        .await
        .status(),
        StatusCode::OK,
        "the argon2id hash verifies the same password"
    );

    // Re-running changes nothing, not even the upgraded hash.
    let before = snapshot(store.database()).await;
    let (code, stdout, stderr) = run_import(&old.uri, &target.name, &old.name, false);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("users: 0 imported, 2 unchanged, 0 overwritten"),
        "{stdout}"
    );
    assert!(
        stdout.contains("subjects: 0 imported, 2 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("links: 0 imported, 1 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("audits: 0 imported, 4 unchanged"),
        "{stdout}"
    );
    assert_eq!(snapshot(store.database()).await, before);
}

#[tokio::test]
async fn import_refuses_to_overwrite_conflicting_data_without_force() {
    let old = TestDatabase::new();
    let target = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&old.uri).await.unwrap();
    write_old_layout(&client.database(&old.name).collection("c3pro_idm")).await;

    // The new system already has a different account with an old name and
    // a subject with an old sssid but other data.
    let dir = tempfile::tempdir().unwrap();
    let config = mongo_config(&dir, &target.uri, &target.name);
    let app = spawn_app_with(dir, config).await;
    app.create_user("staff@example.org", "a brand new passphrase", true)
        .await;
    let store = MongoStore::open(&target.uri, &target.name).await.unwrap();
    let before = snapshot(store.database()).await;

    let (code, stdout, stderr) = run_import(&old.uri, &target.name, &old.name, false);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("user staff@example.org"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        snapshot(store.database()).await,
        before,
        "nothing was written"
    );

    let (code, stdout, stderr) = run_import(&old.uri, &target.name, &old.name, true);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("users: 1 imported, 0 unchanged, 1 overwritten"),
        "{stdout}"
    );
    // The old password and role now apply; the new password's tokens end.
    let staff = store
        .user_by_username("staff@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(staff.password_hash.starts_with("$2b$"));
    assert!(
        !staff.admin,
        "the old role wins (boss@example.org is still an admin)"
    );
    app.login("staff@example.org", "old staff password").await;
    expect_error(
        app.post_json(
            "/auth",
            None,
            &json!({"username": "staff@example.org", "password": "a brand new passphrase"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
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
