//! Two instances on one database writing audit entries at once: every
//! entry gets its own place in the one chain, and the chain verifies.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::instances::two_instances;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_subject_changes_on_two_instances_leave_a_chain_that_verifies() {
    const SUBJECTS: usize = 10;
    const CHANGES: usize = 30;
    let (a, b, db) = two_instances(|_| {}).await;
    let admin = a.admin_token().await;
    for s in 0..SUBJECTS {
        let app = if s % 2 == 0 { &a } else { &b };
        let r = app
            .post_json(
                "/subject",
                Some(&admin),
                &json!({"sssid": format!("S{s}"), "name": "Name 0", "bday": "1971-03-14"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // One writer per subject, each alternating between the instances.
    let writers = (0..SUBJECTS).map(|s| {
        let (a, b, admin) = (&a, &b, &admin);
        async move {
            for c in 1..=CHANGES {
                let app = if (s + c) % 2 == 0 { a } else { b };
                let r = app
                    .put_json(
                        &format!("/subject/S{s}"),
                        Some(admin),
                        &json!({"name": format!("Name {c}")}),
                    )
                    .await;
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        }
    });
    join_all(writers).await;

    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let stored = client
        .database(&db.name)
        .collection::<mongodb::bson::Document>("audits")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert!(stored >= (SUBJECTS * (CHANGES + 1)) as u64, "{stored}");
    for app in [&a, &b] {
        let verdict: Value = app
            .get("/audit/verify", Some(&admin))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(verdict["data"]["ok"], true, "{verdict}");
        assert_eq!(verdict["data"]["entries"], stored, "{verdict}");
    }
    // Each subject's trail in the order its changes were made.
    let trail: Value = b
        .get("/subject/S3/audits", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let last = &trail["data"][CHANGES]["action"];
    assert_eq!(
        last,
        &json!(format!(
            "name: \"Name {}\" -> \"Name {CHANGES}\"",
            CHANGES - 1
        ))
    );
}
