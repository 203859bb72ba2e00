//! Links: round trips with versions, and one winner among concurrent
//! replacements.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use idm::store::*;
use tokio::task::JoinSet;

use crate::store_conformance::base_time;

pub fn link(id: &str, sssid: &str, at: DateTime<Utc>) -> LinkRecord {
    LinkRecord {
        id: id.into(),
        sssid: sssid.into(),
        iss: "https://idm.example.org".into(),
        aud: "https://idm.example.org".into(),
        algorithm: "HS256".into(),
        created: at,
        changed: at,
        issued_at: None,
        exp: None,
        linked_on: None,
        linked_to: None,
        linked_system: None,
        withdrawn_on: None,
        version: 0,
    }
}

pub async fn links_round_trip_and_versions<S: LinkStore + ?Sized>(store: &S) {
    let t = base_time();
    // Same instant: insertion order decides "oldest first".
    for id in ["ffff", "0000", "8888"] {
        store.insert_link(&link(id, "S1", t)).await.unwrap();
    }
    store.insert_link(&link("other", "S2", t)).await.unwrap();
    assert!(matches!(
        store.insert_link(&link("0000", "S3", t)).await,
        Err(StoreError::Duplicate(_))
    ));
    let ids = store
        .links_for_subject("S1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect::<Vec<_>>();
    assert_eq!(ids, ["ffff", "0000", "8888"]);
    assert!(store.links_for_subject("S9").await.unwrap().is_empty());

    let mut issued = link("0000", "S1", t);
    issued.issued_at = Some(t + Duration::seconds(1));
    issued.exp = Some(t + Duration::days(1));
    issued.version = 1;
    assert!(store.replace_link(&issued, 0).await.unwrap());
    let mut linked = issued.clone();
    linked.linked_on = Some(t + Duration::seconds(2));
    linked.linked_to = Some("patient-7".into());
    linked.linked_system = Some("urn:app".into());
    linked.withdrawn_on = Some(t + Duration::seconds(3));
    linked.changed = t + Duration::seconds(3);
    linked.version = 2;
    assert!(store.replace_link(&linked, 1).await.unwrap());
    assert_eq!(store.link("0000").await.unwrap(), Some(linked.clone()));
    assert!(
        !store.replace_link(&issued, 1).await.unwrap(),
        "stale version"
    );
    // Clearing optional fields works too.
    let mut cleared = link("0000", "S1", t);
    cleared.version = 3;
    assert!(store.replace_link(&cleared, 2).await.unwrap());
    assert_eq!(store.link("0000").await.unwrap(), Some(cleared));
    assert_eq!(store.link("missing").await.unwrap(), None);
    // Replacing keeps the link's place in the subject's list.
    let ids = store
        .links_for_subject("S1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect::<Vec<_>>();
    assert_eq!(ids, ["ffff", "0000", "8888"]);
}

/// Many establishes of one link read the same version; one wins.
pub async fn concurrent_link_replacements_have_one_winner<S: LinkStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    stores[0].insert_link(&link("race", "S1", t)).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let s = stores[i % stores.len()].clone();
        tasks.spawn(async move {
            let mut l = link("race", "S1", t);
            l.linked_to = Some(format!("app-{i}"));
            l.linked_on = Some(t);
            l.version = 1;
            (i, s.replace_link(&l, 0).await.unwrap())
        });
    }
    let winners: Vec<usize> = tasks
        .join_all()
        .await
        .into_iter()
        .filter_map(|(i, won)| won.then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = stores[0].link("race").await.unwrap().unwrap();
    assert_eq!(stored.linked_to, Some(format!("app-{}", winners[0])));
    assert_eq!(stored.version, 1);
}
