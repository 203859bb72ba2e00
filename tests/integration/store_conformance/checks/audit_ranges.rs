//! The whole trail read by time, a page at a time (the study-wide audit
//! export).

use chrono::Duration;
use idm::store::*;

use crate::store_conformance::base_time;

pub async fn audits_between_pages_through_a_time_range<S: AuditStore + ?Sized>(store: &S) {
    let t = base_time();
    let entry = |n: i64, seconds: i64, subject: Option<&str>, user: Option<&str>| AuditRecord {
        datetime: t + Duration::seconds(seconds),
        action: format!("entry {n}"),
        actor: None,
        request_id: None,
        client_ip: None,
        subject: subject.map(str::to_owned),
        link: None,
        user: user.map(str::to_owned),
        chain: None,
    };
    // Seven entries, three of them at one instant, written out of time
    // order; subject, account and study-level entries alike.
    let written = [
        entry(0, 10, Some("S1"), None),
        entry(1, 20, None, Some("bob@example.org")),
        entry(2, 20, Some("S2"), None),
        entry(3, 20, None, None),
        entry(4, 5, Some("S1"), None),
        entry(5, 30, Some("S3"), None),
        entry(6, 40, None, None),
    ];
    for e in &written {
        store.append_audit(e).await.unwrap();
    }
    let read_all = |from: i64, to: i64, limit: u64| async move {
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .audits_between(&AuditRange {
                    from: t + Duration::seconds(from),
                    to: t + Duration::seconds(to),
                    after,
                    limit,
                })
                .await
                .unwrap();
            assert!(page.entries.len() as u64 <= limit);
            let actions: Vec<String> = page.entries.iter().map(|e| e.action.clone()).collect();
            pages.push(actions);
            assert!(pages.len() < 20, "pages repeat: {pages:?}");
            match page.next {
                Some(next) => after = Some(next),
                None => return pages,
            }
        }
    };
    let everything: Vec<String> = [4, 0, 1, 2, 3, 5, 6]
        .iter()
        .map(|n| format!("entry {n}"))
        .collect();
    assert_eq!(read_all(0, 100, 100).await.concat(), everything);
    assert_eq!(read_all(0, 100, 100).await.len(), 1, "one page");
    // Pages of two, with a page break inside the three entries of one
    // instant: none is lost or repeated.
    let pages = read_all(0, 100, 2).await;
    assert_eq!(pages.concat(), everything);
    assert!(pages.iter().all(|p| p.len() <= 2));
    assert_eq!(pages.len(), 4);
    // `from` inclusive, `to` exclusive.
    assert_eq!(
        read_all(10, 30, 2).await.concat(),
        ["entry 0", "entry 1", "entry 2", "entry 3"]
    );
    assert_eq!(read_all(41, 100, 2).await, [Vec::<String>::new()]);
    // Entries come back as written, with their place in the chain.
    let page = store
        .audits_between(&AuditRange {
            from: t,
            to: t + Duration::seconds(11),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let unchained: Vec<AuditRecord> = page
        .entries
        .iter()
        .map(|e| {
            assert!(e.chain.is_some(), "an entry read back has its chain link");
            AuditRecord {
                chain: None,
                ..e.clone()
            }
        })
        .collect();
    assert_eq!(unchained, vec![written[4].clone(), written[0].clone()]);
    assert_eq!(page.next, None);
}
