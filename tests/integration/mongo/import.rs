//! `idm import`: the old service's layout copied in completely, bcrypt
//! hashes upgraded, idempotent, and conflicting data kept unless forced.

use std::process::Command;

use crate::common::mongo::TestDatabase;
use crate::common::*;
use chrono::{TimeZone, Utc};
use idm::store::mongo::MongoStore;
use idm::store::{AuditStore, LinkStore, SubjectStore, UserStore};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use reqwest::StatusCode;
use serde_json::json;

use super::mongo_config;

pub(super) fn binary(text: &str) -> Bson {
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

pub(super) struct OldData {
    pub(super) link_id: String,
    pub(super) user_id: ObjectId,
}

/// Writes the old single-collection layout into `collection`.
pub(super) async fn write_old_layout(collection: &mongodb::Collection<Document>) -> OldData {
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
pub(super) fn run_import(
    uri: &str,
    target: &str,
    old_db: &str,
    force: bool,
) -> (i32, String, String) {
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
        stdout.contains("audits: 5 imported, 0 unchanged"),
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
    assert_eq!(s1.bday.unwrap().to_string(), "1980-02-03");
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
            .unwrap()
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
            // Derived from the established link, as the service derives it.
            (None, "enrolled: 2020-01-05T00:00:00Z", None),
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
        stdout.contains("audits: 0 imported, 5 unchanged"),
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
