//! Throttling windows: counted, purged when old, cleared by prefix, and
//! budgets that racing takes never exceed.

use std::sync::Arc;

use chrono::Duration;
use idm::store::*;
use tokio::task::JoinSet;

use crate::store_conformance::base_time;

pub async fn old_throttle_windows_are_purged<S: ThrottleStore + ?Sized>(store: &S) {
    let t = base_time();
    store
        .throttle_hit("old", t, Duration::seconds(60))
        .await
        .unwrap();
    store
        .throttle_hit("open", t, Duration::seconds(600))
        .await
        .unwrap();
    let later = t + Duration::seconds(61);
    assert_eq!(store.purge_throttle_windows(later).await.unwrap(), 1);
    assert_eq!(store.purge_throttle_windows(later).await.unwrap(), 0);
    assert!(store.throttle_peek("open", later).await.unwrap().is_some());
    // A purged key starts a fresh window.
    let w = store
        .throttle_hit("old", later, Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(w.count, 1);
}

pub async fn throttle_windows<S: ThrottleStore + ?Sized>(store: &S) {
    let t = base_time();
    let window = Duration::seconds(60);
    assert_eq!(store.throttle_peek("k", t).await.unwrap(), None);
    for expected in 1..=3 {
        let w = store.throttle_hit("k", t, window).await.unwrap();
        assert_eq!(
            w,
            ThrottleWindow {
                count: expected,
                resets_at: t + window
            }
        );
    }
    let inside = t + Duration::seconds(59);
    assert_eq!(
        store.throttle_peek("k", inside).await.unwrap(),
        Some(ThrottleWindow {
            count: 3,
            resets_at: t + window
        })
    );
    assert_eq!(store.throttle_peek("other", inside).await.unwrap(), None);
    // The window ends: peek sees nothing, the next hit starts at 1.
    let after = t + window;
    assert_eq!(store.throttle_peek("k", after).await.unwrap(), None);
    assert_eq!(
        store.throttle_hit("k", after, window).await.unwrap(),
        ThrottleWindow {
            count: 1,
            resets_at: after + window
        }
    );
    store.throttle_clear("k").await.unwrap();
    assert_eq!(store.throttle_peek("k", after).await.unwrap(), None);
    store.throttle_clear("never-used").await.unwrap();
}

pub async fn concurrent_throttle_hits_all_count<S: ThrottleStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let s = stores[i % stores.len()].clone();
        tasks.spawn(async move {
            s.throttle_hit("busy", t, Duration::seconds(60))
                .await
                .unwrap()
                .count
        });
    }
    let mut counts = tasks.join_all().await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u32>>());
}

pub async fn throttle_takes_stop_at_the_limit<S: ThrottleStore + ?Sized>(store: &S) {
    let t = base_time();
    let window = Duration::seconds(60);
    let first = ThrottleWindow {
        count: 1,
        resets_at: t + window,
    };
    assert_eq!(
        store.throttle_take("k", t, window, 3).await.unwrap(),
        ThrottleTake::Taken(first)
    );
    // A later take counts in the open window; its length is not reset.
    let inside = t + Duration::seconds(10);
    let mut last = first;
    for expected in 2..=3 {
        match store.throttle_take("k", inside, window, 3).await.unwrap() {
            ThrottleTake::Taken(w) => {
                assert_eq!(w.count, expected);
                assert_eq!(w.resets_at, t + window);
                last = w;
            }
            other => panic!("take {expected} refused: {other:?}"),
        }
    }
    // The budget is used up: refused, and refusals are not counted.
    for _ in 0..3 {
        assert_eq!(
            store.throttle_take("k", inside, window, 3).await.unwrap(),
            ThrottleTake::Refused(ThrottleWindow {
                count: 3,
                resets_at: t + window
            })
        );
    }
    assert_eq!(
        store
            .throttle_peek("k", inside)
            .await
            .unwrap()
            .unwrap()
            .count,
        3
    );
    // A given-back attempt makes room for exactly one more.
    store.throttle_give_back("k", &last).await.unwrap();
    assert_eq!(
        store
            .throttle_peek("k", inside)
            .await
            .unwrap()
            .unwrap()
            .count,
        2
    );
    assert!(matches!(
        store.throttle_take("k", inside, window, 3).await.unwrap(),
        ThrottleTake::Taken(ThrottleWindow { count: 3, .. })
    ));
    assert!(matches!(
        store.throttle_take("k", inside, window, 3).await.unwrap(),
        ThrottleTake::Refused(_)
    ));
    // A budget of its own per key.
    assert!(matches!(
        store.throttle_take("k2", inside, window, 3).await.unwrap(),
        ThrottleTake::Taken(ThrottleWindow { count: 1, .. })
    ));
    // The window ends: the next take opens a fresh one.
    let after = t + window;
    let fresh = ThrottleWindow {
        count: 1,
        resets_at: after + Duration::seconds(30),
    };
    assert_eq!(
        store
            .throttle_take("k", after, Duration::seconds(30), 3)
            .await
            .unwrap(),
        ThrottleTake::Taken(fresh)
    );
    // An attempt from the old window frees nothing in the new one.
    store.throttle_give_back("k", &last).await.unwrap();
    assert_eq!(store.throttle_peek("k", after).await.unwrap(), Some(fresh));
    // Giving back never goes below zero.
    store.throttle_give_back("k", &fresh).await.unwrap();
    store.throttle_give_back("k", &fresh).await.unwrap();
    assert_eq!(
        store
            .throttle_peek("k", after)
            .await
            .unwrap()
            .unwrap()
            .count,
        0
    );
    // Nothing to give back to: no window is created.
    store
        .throttle_give_back("never-used", &fresh)
        .await
        .unwrap();
    assert_eq!(
        store.throttle_peek("never-used", after).await.unwrap(),
        None
    );
}

pub async fn throttle_windows_are_cleared_by_prefix<S: ThrottleStore + ?Sized>(store: &S) {
    let t = base_time();
    let window = Duration::seconds(60);
    let keys = [
        "login-account:ann@example.org",
        "login-account:ann@example.org from 192.0.2.1",
        "login-account:ann@example.org from 2001:db8::1",
        "login-account:ann@example.org audited address",
        "login-account:ann@example.org.uk from 192.0.2.1",
        "login-account:ann@example.orgx",
        "login-account:anne@example.org from 192.0.2.1",
        "login-ip:192.0.2.1",
        "prefix-ü",
        "prefix-üü",
        "prefix-ý",
    ];
    for key in keys {
        store.throttle_take(key, t, window, 5).await.unwrap();
    }
    assert_eq!(
        store
            .throttle_clear_prefix("login-account:ann@example.org ")
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.throttle_clear_prefix("prefix-ü").await.unwrap(), 2);
    assert_eq!(store.throttle_clear_prefix("nothing").await.unwrap(), 0);
    let mut left = Vec::new();
    for key in keys {
        if store.throttle_peek(key, t).await.unwrap().is_some() {
            left.push(key);
        }
    }
    assert_eq!(
        left,
        [
            "login-account:ann@example.org",
            "login-account:ann@example.org.uk from 192.0.2.1",
            "login-account:ann@example.orgx",
            "login-account:anne@example.org from 192.0.2.1",
            "login-ip:192.0.2.1",
            "prefix-ý",
        ]
    );
}

/// 200 racers (spread over the given stores, e.g. two clients of one
/// database) take from one budget of 10: exactly 10 get through, when
/// the key is new and again when its window has ended.
pub async fn concurrent_takes_never_exceed_the_limit<S: ThrottleStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    let window = Duration::seconds(60);
    for now in [t, t + window] {
        let mut tasks = JoinSet::new();
        for i in 0..200 {
            let s = stores[i % stores.len()].clone();
            tasks.spawn(async move { s.throttle_take("race", now, window, 10).await.unwrap() });
        }
        let answers = tasks.join_all().await;
        let mut taken: Vec<u32> = answers
            .iter()
            .filter_map(|a| match a {
                ThrottleTake::Taken(w) => Some(w.count),
                ThrottleTake::Refused(_) => None,
            })
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, (1..=10).collect::<Vec<u32>>(), "at {now}");
        for answer in &answers {
            match answer {
                ThrottleTake::Taken(w) | ThrottleTake::Refused(w) => {
                    assert_eq!(w.resets_at, now + window)
                }
            }
        }
        assert_eq!(
            stores[0].throttle_peek("race", now).await.unwrap(),
            Some(ThrottleWindow {
                count: 10,
                resets_at: now + window
            })
        );
    }
}
