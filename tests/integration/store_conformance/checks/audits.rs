//! Audit entries keep their order and targets.

use chrono::Duration;
use idm::store::*;

use crate::store_conformance::base_time;

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
    assert_eq!(
        s1,
        vec![
            written[0].clone(),
            written[1].clone(),
            written[2].clone(),
            written[5].clone(),
            later
        ]
    );
    assert_eq!(
        store.audits_for_user("bob@example.org").await.unwrap(),
        vec![written[4].clone()]
    );
    assert!(store.audits_for_subject("S9").await.unwrap().is_empty());
}
