//! Tampering directly in the database, on both stores: changing one
//! entry's text, date or actor, deleting one, swapping two, inserting one
//! (with a correctly computed hash of its own), adding a copy with a
//! sequence number outside the chain. `idm audit verify` names the first
//! broken entry each time and exits 1.

use std::path::Path;
use std::process::Command;

use chrono::{Duration, DurationRound, Utc};
use idm::store::chain::{Unsealed, personal};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::{AuditRecord, AuditStore};
use mongodb::bson::doc;
use serde_json::Value;

use crate::common::mongo::TestDatabase;

const IDM: &str = env!("CARGO_BIN_EXE_idm");

#[derive(Debug, Clone, Copy)]
enum Tamper {
    Text,
    Date,
    Actor,
    Delete,
    Swap,
    Insert,
    /// A copy of an entry under a number no read of the chain's order
    /// meets: 0 on SQLite, a text on MongoDB.
    Outside,
}

const ALL: [Tamper; 7] = [
    Tamper::Text,
    Tamper::Date,
    Tamper::Actor,
    Tamper::Delete,
    Tamper::Swap,
    Tamper::Insert,
    Tamper::Outside,
];

/// The entry that is tampered with (or the first of two swapped, or
/// where one is inserted).
const AT: i64 = 4;
const ENTRIES: u64 = 8;

impl Tamper {
    /// The entry `idm audit verify` must name: the changed one, or the one
    /// after a deleted or inserted one (the inserted entry's own hash is
    /// right, but the original entry behind it no longer follows its
    /// predecessor); none for an entry outside the chain, which is found
    /// by counting once every entry of the chain verified.
    fn first_broken(self) -> Option<i64> {
        match self {
            Tamper::Text | Tamper::Date | Tamper::Actor | Tamper::Swap => Some(AT),
            Tamper::Delete | Tamper::Insert => Some(AT + 1),
            Tamper::Outside => None,
        }
    }
}

fn entry(i: u64) -> AuditRecord {
    let now = Utc::now()
        .duration_trunc(Duration::milliseconds(1))
        .unwrap();
    AuditRecord {
        datetime: now + Duration::seconds(i as i64),
        action: format!("name: {}", personal(&format!("\"Person {i}\""))),
        actor: Some("admin@example.org".into()),
        request_id: Some(format!("req-{i}")),
        client_ip: None,
        subject: Some(format!("S{}", i % 3)),
        link: None,
        user: None,
        chain: None,
    }
}

async fn fill(store: &dyn AuditStore) {
    for i in 1..=ENTRIES {
        store.append_audit(&entry(i)).await.unwrap();
    }
}

/// `idm audit verify` with the given settings: exit code and its JSON.
fn verify(env: &[(&str, String)], data_dir: &Path) -> (i32, Value) {
    let output = Command::new(IDM)
        .env_clear()
        .env("RUST_LOG", "off")
        .env("IDM_DATA_DIR", data_dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), report)
}

fn assert_broken_at(tamper: Tamper, (code, report): (i32, Value)) {
    assert_eq!(code, 1, "{tamper:?}: {report}");
    assert_eq!(report["ok"], false, "{tamper:?}: {report}");
    assert_eq!(
        report["first_broken"]["seq"],
        serde_json::json!(tamper.first_broken()),
        "{tamper:?}: {report}"
    );
    assert!(
        report["first_broken"]["problem"].as_str().unwrap().len() > 10,
        "{report}"
    );
    // The entries before the break; a deleted entry leaves one fewer.
    let intact = match (tamper, tamper.first_broken()) {
        (Tamper::Delete, _) => AT - 1,
        (_, Some(seq)) => seq - 1,
        (_, None) => ENTRIES as i64,
    };
    assert_eq!(report["entries"], intact, "{report}");
}

/// The verdict read a few entries per store call, with the parts ending
/// before, at and after the tampered place: the CLI's, whole.
async fn assert_parts_agree(store: &dyn AuditStore, tamper: Tamper, (_, whole): &(i32, Value)) {
    for part in [1, 2, 3, AT as u64, 100] {
        let report = idm::store::chain::verify_in_parts(store, part)
            .await
            .unwrap();
        let report = serde_json::to_value(report).unwrap();
        assert_eq!(&report, whole, "{tamper:?}, parts of {part}");
    }
}

fn assert_intact((code, report): (i32, Value)) {
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], ENTRIES, "{report}");
}

// ------------------------------------------------------------------ SQLite

fn tamper_sqlite(path: &Path, tamper: Tamper) {
    let c = rusqlite::Connection::open(path).unwrap();
    let sql = |q: &str| {
        c.execute_batch(q).unwrap();
    };
    match tamper {
        Tamper::Text => sql(&format!(
            "UPDATE audits SET action = action || ' (and more)' WHERE seq = {AT}"
        )),
        Tamper::Date => sql(&format!(
            "UPDATE audits SET datetime = '2020-01-01T00:00:00.000000Z' WHERE seq = {AT}"
        )),
        Tamper::Actor => sql(&format!(
            "UPDATE audits SET actor = 'someone@example.org' WHERE seq = {AT}"
        )),
        Tamper::Delete => sql(&format!("DELETE FROM audits WHERE seq = {AT}")),
        Tamper::Swap => sql(&format!(
            "UPDATE audits SET seq = -1 WHERE seq = {AT};
             UPDATE audits SET seq = {AT} WHERE seq = {AT} + 1;
             UPDATE audits SET seq = {AT} + 1 WHERE seq = -1;"
        )),
        Tamper::Insert => {
            for seq in (AT..=ENTRIES as i64).rev() {
                sql(&format!(
                    "UPDATE audits SET seq = {} WHERE seq = {seq}",
                    seq + 1
                ));
            }
            let previous: String = c
                .query_row("SELECT hash FROM audits WHERE seq = ?1", [AT - 1], |r| {
                    r.get(0)
                })
                .unwrap();
            let forged = Unsealed::new(&AuditRecord {
                action: "consented: 2020-01-01T00:00:00Z".into(),
                ..entry(AT as u64)
            })
            .seal(AT as u64, &previous);
            c.execute(
                "INSERT INTO audits (seq, hash, datetime, action, actor, request_id, subject)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    AT,
                    forged.hash,
                    forged.datetime.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                    forged.template,
                    forged.actor,
                    forged.request_id,
                    forged.subject
                ],
            )
            .unwrap();
        }
        Tamper::Outside => sql(&format!(
            "INSERT INTO audits (seq, hash, datetime, action, actor)
             SELECT 0, hash, datetime, action, actor FROM audits WHERE seq = {AT}"
        )),
    }
}

#[tokio::test]
async fn tampering_with_the_sqlite_trail_is_found() {
    for tamper in ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        let store = SqliteStore::open(&path).await.unwrap();
        fill(&store).await;
        drop(store);
        let env = [("IDM_DATABASE_URL", format!("sqlite://{}", path.display()))];
        assert_intact(verify(&env, dir.path()));
        tamper_sqlite(&path, tamper);
        let verdict = verify(&env, dir.path());
        let store = SqliteStore::open(&path).await.unwrap();
        assert_parts_agree(&store, tamper, &verdict).await;
        assert_broken_at(tamper, verdict);
    }
}

// ----------------------------------------------------------------- MongoDB

async fn tamper_mongo(db: &mongodb::Database, tamper: Tamper) {
    let audits = db.collection::<mongodb::bson::Document>("audits");
    let set = |fields: mongodb::bson::Document| doc! { "$set": fields };
    match tamper {
        Tamper::Text => {
            let old = audits.find_one(doc! { "seq": AT }).await.unwrap().unwrap();
            let text = format!("{} (and more)", old.get_str("action").unwrap());
            audits
                .update_one(doc! { "seq": AT }, set(doc! { "action": text }))
                .await
                .unwrap();
        }
        Tamper::Date => {
            let date = mongodb::bson::DateTime::from_millis(1_577_836_800_000);
            audits
                .update_one(doc! { "seq": AT }, set(doc! { "datetime": date }))
                .await
                .unwrap();
        }
        Tamper::Actor => {
            audits
                .update_one(
                    doc! { "seq": AT },
                    set(doc! { "actor": "someone@example.org" }),
                )
                .await
                .unwrap();
        }
        Tamper::Delete => {
            audits.delete_one(doc! { "seq": AT }).await.unwrap();
        }
        Tamper::Swap => {
            for (from, to) in [(AT, -1), (AT + 1, AT), (-1, AT + 1)] {
                audits
                    .update_one(doc! { "seq": from }, set(doc! { "seq": to }))
                    .await
                    .unwrap();
            }
        }
        Tamper::Insert => {
            for seq in (AT..=ENTRIES as i64).rev() {
                audits
                    .update_one(doc! { "seq": seq }, set(doc! { "seq": seq + 1 }))
                    .await
                    .unwrap();
            }
            let before = audits
                .find_one(doc! { "seq": AT - 1 })
                .await
                .unwrap()
                .unwrap();
            let forged = Unsealed::new(&AuditRecord {
                action: "consented: 2020-01-01T00:00:00Z".into(),
                ..entry(AT as u64)
            })
            .seal(AT as u64, before.get_str("hash").unwrap());
            audits
                .insert_one(doc! {
                    "seq": AT,
                    "hash": forged.hash,
                    "datetime": mongodb::bson::DateTime::from_millis(forged.datetime.timestamp_millis()),
                    "action": forged.template,
                    "actor": forged.actor,
                    "request_id": forged.request_id,
                    "subject": forged.subject,
                })
                .await
                .unwrap();
        }
        Tamper::Outside => {
            let mut copy = audits.find_one(doc! { "seq": AT }).await.unwrap().unwrap();
            copy.remove("_id");
            copy.insert("seq", AT.to_string());
            audits.insert_one(copy).await.unwrap();
        }
    }
}

#[tokio::test]
async fn tampering_with_the_mongodb_trail_is_found() {
    for tamper in ALL {
        let db = TestDatabase::new();
        let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
        fill(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let secret = || idm::clock::random_hex(&idm::clock::OsRandom, 32);
        let env = [
            ("IDM_DATABASE_URL", db.uri.clone()),
            ("IDM_DATABASE_NAME", db.name.clone()),
            ("IDM_TOKEN_SECRET", secret()),
            ("IDM_LINK_SECRET", secret()),
        ];
        assert_intact(verify(&env, dir.path()));
        tamper_mongo(store.database(), tamper).await;
        let verdict = verify(&env, dir.path());
        assert_parts_agree(&store, tamper, &verdict).await;
        assert_broken_at(tamper, verdict);
    }
}
