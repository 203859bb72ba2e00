//! Audit entries keep their order and targets, and form one hash chain
//! that holds under concurrent appends.

use std::sync::Arc;

use chrono::Duration;
use idm::store::chain::personal;
use idm::store::*;

use crate::store_conformance::base_time;

/// The entries as written: the chain link the store adds left out.
fn unchained(entries: Vec<AuditRecord>) -> Vec<AuditRecord> {
    entries
        .into_iter()
        .map(|e| AuditRecord { chain: None, ..e })
        .collect()
}

pub async fn audits_keep_order_and_targets<S: AuditStore + ?Sized>(store: &S) {
    let t = base_time();
    let entry =
        |action: &str, subject: Option<&str>, link: Option<&str>, user: Option<&str>| AuditRecord {
            datetime: t,
            action: action.into(),
            actor: user.map(|_| "admin@example.org".to_owned()),
            request_id: Some("req-1".into()),
            client_ip: Some("192.0.2.7".into()),
            subject: subject.map(str::to_owned),
            link: link.map(str::to_owned),
            user: user.map(str::to_owned),
            chain: None,
        };
    // Same instant: insertion order decides.
    let written = [
        entry("create", Some("S1"), None, None),
        entry("create", Some("S1"), Some("L1"), None),
        entry("consented: 2026-01-01", Some("S1"), None, None),
        entry("create", Some("S2"), None, None),
        entry("login", None, None, Some("bob@example.org")),
        entry("link to abc", Some("S1"), Some("L1"), None),
    ];
    for e in &written {
        store.append_audit(e).await.unwrap();
    }
    let mut later = entry("update", Some("S1"), None, None);
    later.datetime = t + Duration::seconds(1);
    later.actor = None;
    later.request_id = None;
    store.append_audit(&later).await.unwrap();

    let s1 = store.audits_for_subject("S1").await.unwrap();
    let seqs: Vec<_> = s1.iter().map(|e| e.chain.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, [1, 2, 3, 6, 7], "the chain's numbers");
    assert_eq!(
        unchained(s1),
        vec![
            written[0].clone(),
            written[1].clone(),
            written[2].clone(),
            written[5].clone(),
            later
        ]
    );
    assert_eq!(
        unchained(store.audits_for_user("bob@example.org").await.unwrap()),
        vec![written[4].clone()]
    );
    assert!(store.audits_for_subject("S9").await.unwrap().is_empty());
}

/// Every entry is a link of one chain that verifies, personal values read
/// back as written, and a store with no entries verifies too.
pub async fn audit_chain_verifies<S: AuditStore + ?Sized>(store: &S) {
    let empty = store.verify_audit_chain().await.unwrap();
    assert!(empty.ok && empty.entries == 0, "{empty:?}");
    let t = base_time();
    for i in 0..5 {
        store
            .append_audit(&AuditRecord {
                datetime: t,
                action: format!(
                    "name: {} -> {}",
                    personal("\"Ada\""),
                    personal(&format!("\"Bea {i}\""))
                ),
                actor: None,
                request_id: None,
                client_ip: None,
                subject: Some("S1".into()),
                link: None,
                user: None,
                chain: None,
            })
            .await
            .unwrap();
    }
    let trail = store.audits_for_subject("S1").await.unwrap();
    assert_eq!(trail[4].action, "name: \"Ada\" -> \"Bea 4\"");
    let hashes: std::collections::HashSet<_> = trail
        .iter()
        .map(|e| e.chain.as_ref().unwrap().hash.clone())
        .collect();
    assert_eq!(hashes.len(), 5, "every entry has its own hash");
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, 5);
    // Read a part at a time (a store call each), with the parts ending
    // anywhere, even exactly at the last entry: the same verdict.
    for part in 1..=6 {
        let report = idm::store::chain::verify_in_parts(store, part)
            .await
            .unwrap();
        assert!(
            report.ok && report.entries == 5,
            "parts of {part}: {report:?}"
        );
    }
}

/// Many writers at once (on one or several clients of one database): every
/// entry gets its own place and the chain verifies.
pub async fn concurrent_appends_form_one_chain<S: AuditStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let t = base_time();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = stores[w % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .append_audit(&AuditRecord {
                        datetime: t,
                        action: format!("update {w}/{i}"),
                        actor: None,
                        request_id: None,
                        client_ip: None,
                        subject: Some(format!("S{w}")),
                        link: None,
                        user: None,
                        chain: None,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = stores[0].verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, (WRITERS * EACH) as u64);
    // Each writer's entries in the order it wrote them.
    let mine = stores[0].audits_for_subject("S3").await.unwrap();
    let actions: Vec<_> = mine.iter().map(|e| e.action.clone()).collect();
    let expected: Vec<_> = (0..EACH).map(|i| format!("update 3/{i}")).collect();
    assert_eq!(actions, expected);
}
