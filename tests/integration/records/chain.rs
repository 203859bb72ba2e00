//! `GET /audit/verify`, and a chain that goes on across restarts.

use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::{AuditRecord, AuditStore};
use mongodb::bson::doc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::mongo::TestDatabase;
use crate::common::*;

async fn verdict(app: &TestApp, token: &str) -> Value {
    let r = app.get("/audit/verify", Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["data"].clone()
}

#[tokio::test]
async fn admins_verify_the_trail_and_see_the_first_broken_entry() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("staff@example.org", "another fine passphrase", false)
        .await;
    let staff = app
        .login("staff@example.org", "another fine passphrase")
        .await;
    let r = app
        .post_json(
            "/subject",
            Some(&staff),
            &json!({"sssid": "S1", "name": "Ada Lovelace", "bday": "1971-03-14"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .put_json("/subject/S1", Some(&staff), &json!({"name": "Ada King"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let ok = verdict(&app, &admin).await;
    assert_eq!(ok["ok"], true, "{ok}");
    let entries = ok["entries"].as_u64().unwrap();
    // Account entries (user created, logins) and the subject's two.
    assert!(entries >= 4, "{ok}");
    assert!(ok.get("first_broken").is_none(), "{ok}");

    expect_error(
        app.get("/audit/verify", Some(&staff)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_error(
        app.get("/audit/verify", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // The name change, edited in the database.
    let trail: Value = app
        .get("/subject/S1/audits", Some(&staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trail["data"][1]["action"],
        "name: \"Ada Lovelace\" -> \"Ada King\""
    );
    let broken_seq = match &app.mongo {
        Some(db) => {
            let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
            let audits = client
                .database(&db.name)
                .collection::<mongodb::bson::Document>("audits");
            let entry = audits
                .find_one(doc! { "subject": "S1", "action": { "$regex": "^name" } })
                .await
                .unwrap()
                .unwrap();
            audits
                .update_one(
                    doc! { "_id": entry.get("_id").unwrap() },
                    doc! { "$set": { "actor": "someone.else@example.org" } },
                )
                .await
                .unwrap();
            entry
                .get_i64("seq")
                .or_else(|_| entry.get_i32("seq").map(i64::from))
                .unwrap()
        }
        None => {
            let c = rusqlite::Connection::open(app.dir.path().join("idm.sqlite3")).unwrap();
            c.query_row(
                "UPDATE audits SET actor = 'someone.else@example.org'
                 WHERE subject = 'S1' AND action LIKE 'name%' RETURNING seq",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
        }
    };
    let broken = verdict(&app, &admin).await;
    assert_eq!(broken["ok"], false, "{broken}");
    assert_eq!(broken["entries"], broken_seq - 1, "{broken}");
    let first = &broken["first_broken"];
    assert_eq!(first["seq"], broken_seq, "{broken}");
    assert_eq!(first["actor"], "someone.else@example.org");
    assert_eq!(first["subject"], "S1");
    assert_eq!(first["action"], "name: \"Ada Lovelace\" -> \"Ada King\"");
}

fn entry(i: usize) -> AuditRecord {
    AuditRecord {
        datetime: chrono::Utc::now(),
        action: format!("update {i}"),
        actor: None,
        request_id: None,
        client_ip: None,
        subject: Some("S1".into()),
        link: None,
        user: None,
        chain: None,
    }
}

#[tokio::test]
async fn the_sqlite_chain_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idm.sqlite3");
    for round in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        for i in 0..3 {
            store.append_audit(&entry(round * 3 + i)).await.unwrap();
        }
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok && report.entries == 6, "{report:?}");
}

#[tokio::test]
async fn the_mongodb_chain_goes_on_after_a_restart() {
    let db = TestDatabase::new();
    for round in 0..2 {
        let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
        for i in 0..3 {
            store.append_audit(&entry(round * 3 + i)).await.unwrap();
        }
    }
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok && report.entries == 6, "{report:?}");
    let seqs: Vec<_> = store
        .audits_for_subject("S1")
        .await
        .unwrap()
        .iter()
        .map(|e| e.chain.as_ref().unwrap().seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
}
