//! The old service's data arrives complete (SPEC section 12): the import
//! tests' fixture plus old account audits and a subject whose link was
//! established without a stored `date_enrolled`. Every audit is kept
//! (none skipped), account audits join the account's trail, the subject
//! arrives enrolled on its link's `linked_on`; into MongoDB (with
//! `idm import`) and SQLite (the same import, the same documents) alike.

use chrono::{TimeZone, Utc};
use idm::service::import;
use idm::store::mongo::MongoStore;
use idm::store::mongo::legacy;
use idm::store::sqlite::SqliteStore;
use idm::store::{AuditStore, StoreResult, SubjectRecord, SubjectStore};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::import::{run_import, write_old_layout};
use crate::common::mongo::TestDatabase;

/// Old audits about the staff account, and L1: consented, its link
/// established, no `date_enrolled` stored.
async fn write_more_old_data(collection: &mongodb::Collection<Document>, staff: ObjectId) -> usize {
    let (l1, link) = (ObjectId::new(), ObjectId::new());
    let docs = vec![
        doc! { "_id": ObjectId::new(), "type": "audit", "document": staff, "datetime": "2019-12-30T08:00:00Z", "action": "user created" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": staff, "datetime": "2019-12-30T08:00:01Z", "action": "temporary password generated" },
        doc! { "_id": l1, "type": "subject", "sssid": "L1", "name": "Linked Without Date", "bday": "1990-06-07",
        "date_invited": "2020-02-01T00:00:00Z", "date_consented": "2020-02-02T00:00:00Z", "date_enrolled": null },
        doc! { "_id": link, "type": "link", "sub": "L1", "iss": "https://old.example.org", "aud": "https://old.example.org",
        "created": "2020-02-02T01:00:00Z", "linked_to": "patient-7", "linked_system": "urn:c3pro",
        "linked_on": "2020-02-03T04:05:06.789Z" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": l1, "datetime": "2020-02-02T00:00:00Z", "action": "consented: 2020-02-02" },
        doc! { "_id": ObjectId::new(), "type": "audit", "document": link, "datetime": "2020-02-03T04:05:06.789Z", "action": "link to patient-7" },
    ];
    let audits = docs
        .iter()
        .filter(|d| d.get_str("type") == Ok("audit"))
        .count();
    collection.insert_many(docs).await.unwrap();
    audits
}

/// The dates and trails the import must produce, read through a store.
async fn check_arrived<S: SubjectStore + AuditStore + ?Sized>(store: &S) -> StoreResult<()> {
    let l1: SubjectRecord = store.subject("L1").await?.unwrap();
    let linked_on =
        Utc.with_ymd_and_hms(2020, 2, 3, 4, 5, 6).unwrap() + chrono::Duration::milliseconds(789);
    assert_eq!(
        l1.date_enrolled,
        Some(linked_on),
        "enrolled on the link's linked_on"
    );
    assert_eq!(l1.date_withdrawn, None);
    let l1_trail: Vec<String> = store
        .audits_for_subject("L1")
        .await?
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        l1_trail,
        [
            "consented: 2020-02-02",
            "link to patient-7",
            "enrolled: 2020-02-03T04:05:06.789Z"
        ]
    );
    let s1 = store.subject("S-1").await?.unwrap();
    assert_eq!(
        s1.date_enrolled,
        Some(Utc.with_ymd_and_hms(2020, 1, 5, 0, 0, 0).unwrap())
    );
    let account: Vec<(String, Option<String>)> = store
        .audits_for_user("staff@example.org")
        .await?
        .into_iter()
        .map(|a| (a.action, a.actor))
        .collect();
    assert_eq!(
        account,
        [
            ("user created".to_owned(), None),
            ("temporary password generated".to_owned(), None)
        ],
        "the old account audits are the account's"
    );
    Ok(())
}

#[tokio::test]
async fn the_old_service_arrives_complete_in_both_stores() {
    let old = TestDatabase::new();
    let target = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&old.uri).await.unwrap();
    let collection = client.database(&old.name).collection("c3pro_idm");
    let fixture = write_old_layout(&collection).await;
    let extra_audits = write_more_old_data(&collection, fixture.user_id).await;
    // The fixture's four audits, the six above, and the two derived
    // enrolments (S-1 and L1).
    let expected = 4 + extra_audits + 2;

    let (code, stdout, stderr) = run_import(&old.uri, &target.name, &old.name, false);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("audits: {expected} imported, 0 unchanged")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("audit of"),
        "no audit is skipped: {stdout}"
    );
    let mongo = MongoStore::open(&target.uri, &target.name).await.unwrap();
    check_arrived(&mongo).await.unwrap();
    let (code, stdout, _) = run_import(&old.uri, &target.name, &old.name, false);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("audits: 0 imported, {expected} unchanged")),
        "{stdout}"
    );

    // The same documents into SQLite.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("idm.sqlite"))
        .await
        .unwrap();
    let now = Utc::now();
    let data = legacy::read(&old.uri, &old.name, "c3pro_idm", now)
        .await
        .unwrap();
    let report = import::run(&sqlite, data, now, false).await.unwrap();
    assert_eq!(report.audits.imported, expected as u64);
    assert!(
        report
            .skipped
            .iter()
            .all(|line| !line.starts_with("audit of")),
        "{:?}",
        report.skipped
    );
    check_arrived(&sqlite).await.unwrap();
}

#[tokio::test]
async fn a_subject_imported_before_dates_were_derived_is_completed_without_force() {
    let old = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&old.uri).await.unwrap();
    let collection = client.database(&old.name).collection("c3pro_idm");
    write_old_layout(&collection).await;
    let now = Utc::now();
    let data = legacy::read(&old.uri, &old.name, "c3pro_idm", now)
        .await
        .unwrap();
    // What an earlier import stored: S-1 as the old service had it.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("idm.sqlite"))
        .await
        .unwrap();
    let earlier = data
        .subjects
        .iter()
        .find(|s| s.record.sssid == "S-1")
        .unwrap();
    assert_eq!(earlier.record.date_enrolled, None);
    sqlite.insert_subject(&earlier.record).await.unwrap();

    let report = import::run(&sqlite, data, now, false).await.unwrap();
    assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
    assert_eq!(report.subjects.overwritten, 1, "S-1 completed");
    let s1 = sqlite.subject("S-1").await.unwrap().unwrap();
    assert_eq!(
        s1.date_enrolled,
        Some(Utc.with_ymd_and_hms(2020, 1, 5, 0, 0, 0).unwrap())
    );
}
