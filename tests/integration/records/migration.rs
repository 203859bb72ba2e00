//! Trails written before the chain existed are chained at start-up, in
//! the order they were written, by any number of instances at once; their
//! texts read as before and their personal values become erasable.

use chrono::{Duration, Utc};
use idm::store::AuditStore;
use idm::store::mongo::MongoStore;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};

use crate::common::mongo::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_chain_an_older_mongodb_trail_once() {
    let db = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let audits = client
        .database(&db.name)
        .collection::<mongodb::bson::Document>("audits");
    let t = Utc::now();
    // As the previous version wrote them: an ObjectId `seq`, no hash, and
    // several entries in one millisecond.
    let mut old = Vec::new();
    for i in 0..40 {
        let at = DateTime::from_millis((t + Duration::milliseconds(i / 3)).timestamp_millis());
        let action = if i == 7 {
            r#"name: "Ada Lovelace"; bday: "1971-03-14""#.to_owned()
        } else {
            format!("update {i}")
        };
        old.push(
            doc! { "seq": ObjectId::new(), "datetime": at, "action": action, "subject": "S1" },
        );
    }
    audits.insert_many(old).await.unwrap();

    let (a, b) = tokio::join!(
        MongoStore::open(&db.uri, &db.name),
        MongoStore::open(&db.uri, &db.name)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let report = b.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, 40);
    let trail = a.audits_for_subject("S1").await.unwrap();
    let actions: Vec<_> = trail.iter().map(|e| e.action.clone()).collect();
    let mut expected: Vec<_> = (0..40).map(|i| format!("update {i}")).collect();
    expected[7] = r#"name: "Ada Lovelace"; bday: "1971-03-14""#.to_owned();
    assert_eq!(actions, expected, "in the order written");
    let stored = audits.find_one(doc! { "seq": 8 }).await.unwrap().unwrap();
    let template = stored.get_str("action").unwrap();
    assert!(
        !template.contains("Ada") && !template.contains("1971"),
        "{template}"
    );

    // New entries follow the chained ones; a third start changes nothing.
    a.append_audit(&idm::store::AuditRecord {
        datetime: Utc::now(),
        action: "create".into(),
        actor: None,
        request_id: None,
        client_ip: None,
        subject: Some("S2".into()),
        link: None,
        user: None,
        chain: None,
    })
    .await
    .unwrap();
    let c = MongoStore::open(&db.uri, &db.name).await.unwrap();
    let report = c.verify_audit_chain().await.unwrap();
    assert!(report.ok && report.entries == 41, "{report:?}");
}
