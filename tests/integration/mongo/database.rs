//! The database itself: unique names, a migration at start, a database
//! that stops or cannot be reached.

use crate::common::mongo::{OwnServer, TestDatabase, unique_database_name};
use crate::common::*;
use idm::store::SubjectStore;
use idm::store::mongo::MongoStore;
use mongodb::bson::{Document, doc};
use reqwest::StatusCode;
use serde_json::json;

use super::mongo_config;

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
