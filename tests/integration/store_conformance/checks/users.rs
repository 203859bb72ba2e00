//! Users: round trips, unique names under races, the first admin once,
//! literal search with pages, and the last admin kept under concurrent
//! removals.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use idm::store::*;
use tokio::task::JoinSet;

use crate::store_conformance::base_time;

use super::user;

fn update(admin: Option<bool>, at: DateTime<Utc>) -> UserUpdate {
    UserUpdate {
        admin,
        password_hash: None,
        revoke_tokens: false,
        changed: at,
    }
}

async fn admin_count<S: UserStore + ?Sized>(store: &S) -> usize {
    let page = store
        .list_users(&UserQuery {
            search: None,
            offset: 0,
            limit: 1000,
        })
        .await
        .unwrap();
    page.items.iter().filter(|u| u.admin).count()
}

pub async fn users_round_trip<S: UserStore + ?Sized>(store: &S) {
    let t = base_time();
    let mut alice = user("alice@example.org", false, t);
    alice.last_login = Some(t + Duration::milliseconds(1234));
    alice.token_version = 3;
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.user_by_username("alice@example.org").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_id(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_username("bob@example.org").await.unwrap(),
        None
    );
    assert_eq!(store.user_by_id("nope").await.unwrap(), None);
    assert!(!store.admin_exists().await.unwrap());

    let mut twin = user("alice@example.org", true, t);
    twin.id = "other-id".into();
    assert!(matches!(
        store.insert_user(&twin).await,
        Err(StoreError::Duplicate(_))
    ));

    let later = t + Duration::seconds(5);
    store.record_login(&alice.id, later).await.unwrap();
    let read = store.user_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(read.last_login, Some(later));
}

pub async fn concurrent_inserts_of_one_username_have_one_winner<S: UserStore + ?Sized + 'static>(
    store: Arc<S>,
) {
    let t = base_time();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut u = user("race@example.org", false, t);
            u.id = format!("race-{i}");
            store.insert_user(&u).await
        });
    }
    let (mut won, mut duplicate) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Duplicate(_)) => duplicate += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((won, duplicate), (1, 19));
}

pub async fn first_admin_only_once<S: UserStore + ?Sized>(store: &S) {
    let t = base_time();
    store
        .insert_user(&user("staff@example.org", false, t))
        .await
        .unwrap();
    // A non-admin's name cannot become the first admin.
    assert!(matches!(
        store
            .insert_first_admin(&user("staff@example.org", true, t))
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(!store.admin_exists().await.unwrap());
    assert!(
        store
            .insert_first_admin(&user("first@example.org", true, t))
            .await
            .unwrap()
    );
    assert!(store.admin_exists().await.unwrap());
    assert!(
        !store
            .insert_first_admin(&user("second@example.org", true, t))
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_username("second@example.org").await.unwrap(),
        None
    );
}

pub async fn no_first_admin_once_an_admin_exists<S: UserStore + ?Sized>(store: &S) {
    let t = base_time();
    store
        .insert_user(&user("cli-admin@example.org", true, t))
        .await
        .unwrap();
    assert!(
        !store
            .insert_first_admin(&user("init@example.org", true, t))
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_username("init@example.org").await.unwrap(),
        None
    );
}

pub async fn concurrent_first_admins_have_one_winner<S: UserStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = stores[i % stores.len()].clone();
        tasks.spawn(async move {
            store
                .insert_first_admin(&user(&format!("admin{i}@example.org"), true, t))
                .await
                .unwrap()
        });
    }
    let winners = tasks.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(winners, 1);
    assert_eq!(admin_count(&*stores[0]).await, 1);
}

pub async fn list_users_searches_literally_and_pages<S: UserStore + ?Sized>(store: &S) {
    let t = base_time();
    for name in [
        "carol@example.org",
        "abc@example.org",
        "a.c@example.org",
        "Zed@Example.org",
        "a%c@example.org",
    ] {
        store.insert_user(&user(name, false, t)).await.unwrap();
    }
    let query = |search: Option<&str>, offset, limit| UserQuery {
        search: search.map(str::to_owned),
        offset,
        limit,
    };
    let names = |p: Page<UserRecord>| p.items.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let all = store.list_users(&query(None, 0, 100)).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(
        names(all),
        [
            "Zed@Example.org",
            "a%c@example.org",
            "a.c@example.org",
            "abc@example.org",
            "carol@example.org"
        ]
    );
    // `.` and `%` are literal text, not patterns.
    let dot = store.list_users(&query(Some("a.c"), 0, 100)).await.unwrap();
    assert_eq!(names(dot), ["a.c@example.org"]);
    let percent = store.list_users(&query(Some("a%c"), 0, 100)).await.unwrap();
    assert_eq!(names(percent), ["a%c@example.org"]);
    // Case-insensitive.
    let zed = store
        .list_users(&query(Some("zed@"), 0, 100))
        .await
        .unwrap();
    assert_eq!(names(zed), ["Zed@Example.org"]);
    let page = store.list_users(&query(None, 1, 2)).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(names(page), ["a%c@example.org", "a.c@example.org"]);
    let none = store
        .list_users(&query(Some("(.*)"), 0, 100))
        .await
        .unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));
}

pub async fn user_updates_and_last_admin_rule<S: UserStore + ?Sized>(store: &S) {
    let t = base_time();
    store
        .insert_user(&user("boss@example.org", true, t))
        .await
        .unwrap();
    store
        .insert_user(&user("staff@example.org", false, t))
        .await
        .unwrap();
    let later = t + Duration::seconds(10);

    // The only admin can be neither demoted nor deleted.
    assert_eq!(
        store
            .update_user("boss@example.org", &update(Some(false), later))
            .await
            .unwrap(),
        UserWriteOutcome::LastAdmin
    );
    assert_eq!(
        store.delete_user("boss@example.org").await.unwrap(),
        UserWriteOutcome::LastAdmin
    );
    assert!(
        store
            .user_by_username("boss@example.org")
            .await
            .unwrap()
            .unwrap()
            .admin
    );

    // A new password and revocation.
    let change = UserUpdate {
        admin: None,
        password_hash: Some("$2b$04$new".into()),
        revoke_tokens: true,
        changed: later,
    };
    let UserWriteOutcome::Done(changed) = store
        .update_user("staff@example.org", &change)
        .await
        .unwrap()
    else {
        panic!("update failed")
    };
    assert_eq!(changed.password_hash, "$2b$04$new");
    assert_eq!(changed.token_version, 1);
    assert_eq!(changed.changed, later);
    assert_eq!(
        store.user_by_username("staff@example.org").await.unwrap(),
        Some(changed.clone())
    );

    // Promote, then the old admin may go.
    let UserWriteOutcome::Done(promoted) = store
        .update_user("staff@example.org", &update(Some(true), later))
        .await
        .unwrap()
    else {
        panic!("promotion failed")
    };
    assert!(promoted.admin);
    assert!(matches!(
        store
            .update_user("boss@example.org", &update(Some(false), later))
            .await
            .unwrap(),
        UserWriteOutcome::Done(u) if !u.admin
    ));
    assert!(matches!(
        store.delete_user("boss@example.org").await.unwrap(),
        UserWriteOutcome::Done(u) if u.username == "boss@example.org"
    ));
    assert_eq!(
        store.user_by_username("boss@example.org").await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_user("boss@example.org").await.unwrap(),
        UserWriteOutcome::NotFound
    );
    assert_eq!(
        store
            .update_user("ghost@example.org", &update(Some(true), later))
            .await
            .unwrap(),
        UserWriteOutcome::NotFound
    );
}

/// Two admins demote or delete each other at the same time, many times
/// over: at least one admin always remains.
pub async fn last_admin_survives_concurrent_removals<S: UserStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    let store = stores[0].clone();
    for round in 0..8 {
        let a = format!("a{round}@example.org");
        let b = format!("b{round}@example.org");
        store.insert_user(&user(&a, true, t)).await.unwrap();
        store.insert_user(&user(&b, true, t)).await.unwrap();
        // Demote every admin from earlier rounds' survivors, so only
        // these two are admins.
        for u in store
            .list_users(&UserQuery {
                search: None,
                offset: 0,
                limit: 1000,
            })
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|u| u.admin && u.username != a && u.username != b)
        {
            assert!(matches!(
                store
                    .update_user(&u.username, &update(Some(false), t))
                    .await
                    .unwrap(),
                UserWriteOutcome::Done(_)
            ));
        }
        let mut tasks = JoinSet::new();
        for (i, name) in [a.clone(), b.clone()].into_iter().enumerate() {
            let s = stores[i % stores.len()].clone();
            let delete = round % 2 == 1 && i == 0;
            tasks.spawn(async move {
                if delete {
                    s.delete_user(&name).await.unwrap()
                } else {
                    s.update_user(&name, &update(Some(false), t)).await.unwrap()
                }
            });
        }
        let outcomes = tasks.join_all().await;
        let done = outcomes
            .iter()
            .filter(|o| matches!(o, UserWriteOutcome::Done(_)))
            .count();
        let refused = outcomes
            .iter()
            .filter(|o| **o == UserWriteOutcome::LastAdmin)
            .count();
        assert_eq!((done, refused), (1, 1), "round {round}: {outcomes:?}");
        assert_eq!(admin_count(&*store).await, 1, "round {round}");
    }
}
