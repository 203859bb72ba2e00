//! One conformance suite for every store implementation: the checks in
//! `checks` are written once against the store traits, and the macros at
//! the bottom run them against SQLite (a fresh file) and MongoDB (a fresh
//! database on the server in `IDM_TEST_MONGODB_URI`).
//!
//! Timestamps are whole milliseconds near the real time: that is the
//! precision every store keeps, and MongoDB's TTL monitor leaves them alone.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::*;

/// A store plus whatever keeps its data alive until the test ends.
pub struct Fixture<S: ?Sized> {
    pub store: Arc<S>,
    _keep: Box<dyn Any + Send>,
}

async fn sqlite() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("idm.sqlite3"))
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

async fn mongodb() -> Fixture<MongoStore> {
    let db = crate::common::mongo::TestDatabase::new();
    let store = MongoStore::open(&db.uri, &db.name)
        .await
        .expect("MongoDB store opens");
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(db),
    }
}

fn base_time() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

mod checks {
    use super::*;
    use tokio::task::JoinSet;

    fn user(name: &str, admin: bool, at: DateTime<Utc>) -> UserRecord {
        UserRecord {
            id: format!("id-{name}"),
            username: name.to_owned(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            admin,
            token_version: 0,
            created: at,
            changed: at,
            last_login: None,
        }
    }

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

    // ------------------------------------------------------------ users

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

    pub async fn concurrent_inserts_of_one_username_have_one_winner<
        S: UserStore + ?Sized + 'static,
    >(
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
        let names =
            |p: Page<UserRecord>| p.items.into_iter().map(|u| u.username).collect::<Vec<_>>();
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

    // ------------------------------------------------------------ audits

    pub async fn audits_keep_order_and_targets<S: AuditStore + ?Sized>(store: &S) {
        let t = base_time();
        let entry =
            |action: &str, subject: Option<&str>, link: Option<&str>, user: Option<&str>| {
                AuditRecord {
                    datetime: t,
                    action: action.into(),
                    actor: user.map(|_| "admin@example.org".to_owned()),
                    request_id: Some("req-1".into()),
                    client_ip: Some("192.0.2.7".into()),
                    subject: subject.map(str::to_owned),
                    link: link.map(str::to_owned),
                    user: user.map(str::to_owned),
                }
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

    // ------------------------------------------------------------ throttle

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

    // ------------------------------------------------------------ subjects

    fn subject(sssid: &str, name: &str, bday: &str, at: DateTime<Utc>) -> SubjectRecord {
        SubjectRecord {
            sssid: sssid.into(),
            name: name.into(),
            bday: NaiveDate::parse_from_str(bday, "%Y-%m-%d").unwrap(),
            email: None,
            date_invited: None,
            date_consented: None,
            date_enrolled: None,
            date_withdrawn: None,
            created: at,
            changed: at,
            version: 0,
        }
    }

    fn subject_query(search: Option<&str>, status: Option<SubjectStatus>) -> SubjectQuery {
        SubjectQuery {
            search: search.map(str::to_owned),
            status,
            order_by: SubjectColumn::Sssid,
            descending: false,
            offset: 0,
            limit: 500,
        }
    }

    async fn sssids<S: SubjectStore + ?Sized>(store: &S, query: &SubjectQuery) -> Vec<String> {
        store
            .list_subjects(query)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.sssid)
            .collect()
    }

    pub async fn subjects_round_trip_and_versions<S: SubjectStore + ?Sized>(store: &S) {
        let t = base_time();
        let mut s = subject("S-1", "Ada Lovelace", "1815-12-10", t);
        s.email = Some("ada@example.org".into());
        s.date_invited = Some(t + Duration::milliseconds(1));
        store.insert_subject(&s).await.unwrap();
        assert_eq!(store.subject("S-1").await.unwrap(), Some(s.clone()));
        assert_eq!(
            store.subject("s-1").await.unwrap(),
            None,
            "sssids are case-sensitive"
        );
        assert!(matches!(
            store
                .insert_subject(&subject("S-1", "Other", "1990-01-01", t))
                .await,
            Err(StoreError::Duplicate(_))
        ));

        let mut next = s.clone();
        next.version = 1;
        next.email = None;
        next.name = "Ada King".into();
        next.date_consented = Some(t + Duration::seconds(2));
        next.changed = t + Duration::seconds(2);
        assert!(store.replace_subject(&next, 0).await.unwrap());
        assert_eq!(store.subject("S-1").await.unwrap(), Some(next.clone()));
        // A writer that read version 0 lost.
        let mut stale = s.clone();
        stale.version = 1;
        assert!(!store.replace_subject(&stale, 0).await.unwrap());
        assert_eq!(store.subject("S-1").await.unwrap(), Some(next));
        let mut unknown = subject("S-404", "Nobody", "1990-01-01", t);
        unknown.version = 1;
        assert!(!store.replace_subject(&unknown, 0).await.unwrap());
        assert_eq!(store.subject("S-404").await.unwrap(), None);
    }

    /// The status filter is the domain's `Journey::standing`, written again
    /// in each store's query language: for every combination of set dates,
    /// in either order in time (standing follows which dates are set, not
    /// when), each status selects exactly the subjects of that standing.
    pub async fn status_filter_agrees_with_the_domain_standing<S: SubjectStore + ?Sized>(
        store: &S,
    ) {
        let t = base_time();
        let mut all = Vec::new();
        for backwards in [false, true] {
            for dates in 0..16u8 {
                let sssid = format!("J-{}-{dates:02}", u8::from(backwards));
                let mut s = subject(&sssid, "Journey", "1980-01-01", t);
                let date = |step: u8| {
                    let day = if backwards { 3 - step } else { step };
                    (dates & (1 << step) != 0).then(|| t + Duration::days(i64::from(day) + 1))
                };
                s.date_invited = date(0);
                s.date_consented = date(1);
                s.date_enrolled = date(2);
                s.date_withdrawn = date(3);
                store.insert_subject(&s).await.unwrap();
                all.push(s);
            }
        }
        for status in SubjectStatus::ALL {
            let expected: Vec<String> = all
                .iter()
                .filter(|s| s.journey().standing() == status.standing())
                .map(|s| s.sssid.clone())
                .collect();
            assert!(!expected.is_empty(), "{status:?}");
            let page = store
                .list_subjects(&subject_query(None, Some(status)))
                .await
                .unwrap();
            let found: Vec<String> = page.items.into_iter().map(|s| s.sssid).collect();
            assert_eq!(found, expected, "{status:?}");
            assert_eq!(page.total, expected.len() as u64, "{status:?}");
        }
    }

    pub async fn subject_lists_search_filter_sort_and_page<S: SubjectStore + ?Sized>(store: &S) {
        let t = base_time();
        let day = |n: i64| Some(t + Duration::days(n));
        let mut invited = subject("A-10", "Ana Müller", "1980-05-01", t);
        invited.date_invited = day(1);
        let mut consented = subject("A-2", "Bob (Jr.)", "1975-01-31", t + Duration::seconds(1));
        consented.date_invited = day(1);
        consented.date_consented = day(2);
        let mut enrolled = subject("B-1", "carl.smith", "1980-12-24", t + Duration::seconds(2));
        enrolled.date_consented = day(2);
        enrolled.date_enrolled = day(3);
        let mut withdrawn = subject("b-1", "Dora", "2001-07-07", t + Duration::seconds(3));
        withdrawn.date_enrolled = day(3);
        withdrawn.date_withdrawn = day(4);
        let fresh = subject("C.1", "Eve", "1980-05-02", t + Duration::seconds(4));
        for s in [&invited, &consented, &enrolled, &withdrawn, &fresh] {
            store.insert_subject(s).await.unwrap();
        }

        let all = store
            .list_subjects(&subject_query(None, None))
            .await
            .unwrap();
        assert_eq!(all.total, 5);
        // Search: sssid prefix (case-sensitive), name substring
        // (case-insensitive), bday prefix; always literal text.
        assert_eq!(
            sssids(store, &subject_query(Some("A-"), None)).await,
            ["A-10", "A-2"]
        );
        assert_eq!(
            sssids(store, &subject_query(Some("b-"), None)).await,
            ["b-1"]
        );
        assert_eq!(
            sssids(store, &subject_query(Some("MÜLLER"), None)).await,
            ["A-10"]
        );
        assert_eq!(
            sssids(store, &subject_query(Some("(jr.)"), None)).await,
            ["A-2"]
        );
        assert_eq!(
            sssids(store, &subject_query(Some("1980-05"), None)).await,
            ["A-10", "C.1"]
        );
        assert_eq!(
            sssids(store, &subject_query(Some("."), None)).await,
            ["A-2", "B-1"]
        );
        assert!(
            sssids(store, &subject_query(Some(".*"), None))
                .await
                .is_empty()
        );
        assert!(
            sssids(store, &subject_query(Some("10"), None))
                .await
                .is_empty(),
            "sssid matches are prefixes"
        );

        // Status is the latest state.
        let status = |s| subject_query(None, Some(s));
        assert_eq!(
            sssids(store, &status(SubjectStatus::Invited)).await,
            ["A-10"]
        );
        assert_eq!(
            sssids(store, &status(SubjectStatus::Consented)).await,
            ["A-2"]
        );
        assert_eq!(
            sssids(store, &status(SubjectStatus::Enrolled)).await,
            ["B-1"]
        );
        assert_eq!(
            sssids(store, &status(SubjectStatus::Withdrawn)).await,
            ["b-1"]
        );
        let filtered = store
            .list_subjects(&SubjectQuery {
                search: Some("1980".into()),
                ..status(SubjectStatus::Enrolled)
            })
            .await
            .unwrap();
        assert_eq!(filtered.total, 1);

        // Ordering with the sssid as tie breaker, both directions.
        let ordered = |order_by, descending| SubjectQuery {
            order_by,
            descending,
            ..subject_query(None, None)
        };
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::Sssid, false)).await,
            ["A-10", "A-2", "B-1", "C.1", "b-1"]
        );
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::Sssid, true)).await,
            ["b-1", "C.1", "B-1", "A-2", "A-10"]
        );
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::Bday, false)).await,
            ["A-2", "A-10", "C.1", "B-1", "b-1"]
        );
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::Created, true)).await,
            ["C.1", "b-1", "B-1", "A-2", "A-10"]
        );
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::Name, false)).await,
            ["A-10", "A-2", "B-1", "b-1", "C.1"],
            "names sort ignoring letter case, ties by sssid"
        );
        // Unset dates sort first ascending; ties by sssid.
        assert_eq!(
            sssids(store, &ordered(SubjectColumn::DateConsented, false)).await,
            ["A-10", "C.1", "b-1", "A-2", "B-1"]
        );
        for column in [
            SubjectColumn::Changed,
            SubjectColumn::DateInvited,
            SubjectColumn::DateEnrolled,
            SubjectColumn::DateWithdrawn,
        ] {
            assert_eq!(sssids(store, &ordered(column, false)).await.len(), 5);
        }

        // A search sorts and pages its matches like a plain listing: by
        // sssid, by name (from the name index), by another column, with
        // and without a status filter.
        let searched = |order_by, descending, status| SubjectQuery {
            order_by,
            descending,
            ..subject_query(Some("1980"), status)
        };
        assert_eq!(
            sssids(store, &searched(SubjectColumn::Sssid, true, None)).await,
            ["C.1", "B-1", "A-10"]
        );
        assert_eq!(
            sssids(store, &searched(SubjectColumn::Name, true, None)).await,
            ["C.1", "B-1", "A-10"]
        );
        assert_eq!(
            sssids(store, &searched(SubjectColumn::Bday, false, None)).await,
            ["A-10", "C.1", "B-1"]
        );
        assert_eq!(
            sssids(
                store,
                &searched(SubjectColumn::Name, false, Some(SubjectStatus::Enrolled))
            )
            .await,
            ["B-1"]
        );
        let searched_page = |offset| SubjectQuery {
            offset,
            limit: 1,
            ..searched(SubjectColumn::Name, false, None)
        };
        let second = store.list_subjects(&searched_page(1)).await.unwrap();
        assert_eq!(second.total, 3);
        assert_eq!(second.items[0].sssid, "B-1");
        let past_the_end = store.list_subjects(&searched_page(3)).await.unwrap();
        assert!(past_the_end.items.is_empty());
        assert_eq!(past_the_end.total, 3, "a page past the end still counts");

        // Pages.
        let page = store
            .list_subjects(&SubjectQuery {
                offset: 1,
                limit: 2,
                ..ordered(SubjectColumn::Sssid, false)
            })
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(
            page.items
                .iter()
                .map(|s| s.sssid.as_str())
                .collect::<Vec<_>>(),
            ["A-2", "B-1"]
        );
    }

    /// `NotInvited` is the state before any step: a consent recorded
    /// without an invitation is consented, not "not invited".
    pub async fn not_invited_lists_subjects_with_no_step_yet<S: SubjectStore + ?Sized>(store: &S) {
        let t = base_time();
        let later = Some(t + Duration::days(1));
        let fresh = subject("N-1", "Nora", "1980-01-01", t);
        let also_fresh = subject("N-2", "Ned", "1990-01-01", t);
        let mut invited = subject("I-1", "Ida", "1980-01-02", t);
        invited.date_invited = later;
        let mut consented_directly = subject("C-1", "Cleo", "1980-01-03", t);
        consented_directly.date_consented = later;
        let mut withdrawn_directly = subject("W-1", "Walt", "1980-01-04", t);
        withdrawn_directly.date_withdrawn = later;
        for s in [
            &fresh,
            &also_fresh,
            &invited,
            &consented_directly,
            &withdrawn_directly,
        ] {
            store.insert_subject(s).await.unwrap();
        }
        let not_invited = subject_query(None, Some(SubjectStatus::NotInvited));
        assert_eq!(sssids(store, &not_invited).await, ["N-1", "N-2"]);
        let page = store.list_subjects(&not_invited).await.unwrap();
        assert_eq!(page.total, 2);
        // With a search, sorted by another column, and paged.
        let searched = SubjectQuery {
            order_by: SubjectColumn::Bday,
            descending: true,
            ..subject_query(Some("N"), Some(SubjectStatus::NotInvited))
        };
        assert_eq!(sssids(store, &searched).await, ["N-2", "N-1"]);
        let second = store
            .list_subjects(&SubjectQuery {
                offset: 1,
                limit: 1,
                ..searched.clone()
            })
            .await
            .unwrap();
        assert_eq!((second.items[0].sssid.as_str(), second.total), ("N-1", 2));
        assert!(
            sssids(
                store,
                &subject_query(Some("Ida"), Some(SubjectStatus::NotInvited))
            )
            .await
            .is_empty()
        );
        // Recording the invitation takes a subject off the list.
        let mut next = fresh.clone();
        next.version = 1;
        next.date_invited = later;
        assert!(store.replace_subject(&next, 0).await.unwrap());
        assert_eq!(sssids(store, &not_invited).await, ["N-2"]);
    }

    /// Names sort as readers expect: diacritics and letter case ignored
    /// (Åsa among the a's, Émilie among the e's, Zoë among the z's), ties
    /// broken by sssid in the same direction, with or without a search;
    /// renames move a subject.
    pub async fn names_sort_in_reading_order_with_ties_by_sssid<S: SubjectStore + ?Sized>(
        store: &S,
    ) {
        let t = base_time();
        for (sssid, name) in [
            ("S-1", "Zoë Zander"),
            ("S-2", "Émilie Martin"),
            ("S-3", "Åsa Berg"),
            ("S-4", "adam Smith"),
            ("S-5", "Bob Brown"),
            ("S-6", "emilie martin"),
            ("S-0", "Émilie Martin"),
        ] {
            store
                .insert_subject(&subject(sssid, name, "1980-01-01", t))
                .await
                .unwrap();
        }
        let by_name = |descending, search: Option<&str>| SubjectQuery {
            order_by: SubjectColumn::Name,
            descending,
            ..subject_query(search, None)
        };
        assert_eq!(
            sssids(store, &by_name(false, None)).await,
            ["S-4", "S-3", "S-5", "S-0", "S-2", "S-6", "S-1"]
        );
        assert_eq!(
            sssids(store, &by_name(true, None)).await,
            ["S-1", "S-6", "S-2", "S-0", "S-5", "S-3", "S-4"]
        );
        // A search ("S-" matches every sssid) orders its matches the same.
        assert_eq!(
            sssids(store, &by_name(false, Some("S-"))).await,
            ["S-4", "S-3", "S-5", "S-0", "S-2", "S-6", "S-1"]
        );
        let page = store
            .list_subjects(&SubjectQuery {
                offset: 1,
                limit: 2,
                ..by_name(false, Some("S-"))
            })
            .await
            .unwrap();
        assert_eq!(
            (
                page.items
                    .iter()
                    .map(|s| s.sssid.as_str())
                    .collect::<Vec<_>>(),
                page.total
            ),
            (vec!["S-3", "S-5"], 7)
        );
        // Renaming Zoë to Ångström moves her among the a's.
        let mut zoe = store.subject("S-1").await.unwrap().unwrap();
        let expected = zoe.version;
        zoe.version += 1;
        zoe.name = "Ångström".into();
        assert!(store.replace_subject(&zoe, expected).await.unwrap());
        assert_eq!(
            sssids(store, &by_name(false, None)).await,
            ["S-4", "S-1", "S-3", "S-5", "S-0", "S-2", "S-6"]
        );
    }

    // ------------------------------------------------------------ links

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

    // ------------------------------------------------------------ reset tokens

    fn token(hash: &str, user: &str, at: DateTime<Utc>) -> ResetTokenRecord {
        ResetTokenRecord {
            token_hash: hash.into(),
            user_id: user.into(),
            created: at,
            expires: at + Duration::hours(2),
        }
    }

    /// Reset tokens belong to existing users (SQLite enforces it).
    async fn users_with_ids<S: UserStore + ?Sized>(store: &S, ids: &[&str]) {
        for id in ids {
            let mut u = user(&format!("{id}@example.org"), false, base_time());
            u.id = (*id).to_owned();
            store.insert_user(&u).await.unwrap();
        }
    }

    pub async fn reset_tokens_are_single_use_and_superseded<
        S: ResetTokenStore + UserStore + ?Sized,
    >(
        store: &S,
    ) {
        let t = base_time();
        users_with_ids(store, &["u1", "u2"]).await;
        store.put_reset_token(&token("h1", "u1", t)).await.unwrap();
        store.put_reset_token(&token("h2", "u2", t)).await.unwrap();
        let newer = token("h1b", "u1", t + Duration::seconds(1));
        store.put_reset_token(&newer).await.unwrap();
        assert_eq!(
            store.take_reset_token("h1").await.unwrap(),
            None,
            "superseded"
        );
        assert_eq!(store.take_reset_token("h1b").await.unwrap(), Some(newer));
        assert_eq!(
            store.take_reset_token("h1b").await.unwrap(),
            None,
            "single use"
        );
        store.delete_reset_tokens_for_user("u2").await.unwrap();
        assert_eq!(store.take_reset_token("h2").await.unwrap(), None);
        assert_eq!(store.take_reset_token("never").await.unwrap(), None);
    }

    pub async fn concurrent_reset_token_takes_have_one_winner<
        S: ResetTokenStore + UserStore + ?Sized + 'static,
    >(
        stores: Vec<Arc<S>>,
    ) {
        let t = base_time();
        users_with_ids(&*stores[0], &["u"]).await;
        stores[0]
            .put_reset_token(&token("once", "u", t))
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        for i in 0..20 {
            let s = stores[i % stores.len()].clone();
            tasks.spawn(async move { s.take_reset_token("once").await.unwrap().is_some() });
        }
        assert_eq!(tasks.join_all().await.into_iter().filter(|w| *w).count(), 1);
    }

    // ------------------------------------------------------------ sessions

    pub async fn sessions_expire_and_overwrite<S: SessionRecordStore + ?Sized>(store: &S) {
        let t = base_time();
        let session = |id: &str, data: &str, expires| SessionRecord {
            id: id.into(),
            data: data.into(),
            expires,
        };
        let a = session("a", r#"{"user":"1"}"#, t + Duration::minutes(30));
        store.create_session(&a).await.unwrap();
        assert!(matches!(
            store.create_session(&session("a", "{}", t)).await,
            Err(StoreError::Duplicate(_))
        ));
        assert_eq!(store.load_session("a", t).await.unwrap(), Some(a.clone()));
        assert_eq!(
            store
                .load_session("a", t + Duration::minutes(30))
                .await
                .unwrap(),
            None,
            "expired at its expiry time"
        );
        let a2 = session("a", r#"{"user":"2"}"#, t + Duration::hours(1));
        store.save_session(&a2).await.unwrap();
        assert_eq!(store.load_session("a", t).await.unwrap(), Some(a2));
        let b = session("b", "{}", t + Duration::minutes(1));
        store.save_session(&b).await.unwrap();
        assert_eq!(store.load_session("b", t).await.unwrap(), Some(b));
        store
            .save_session(&session("c", "{}", t + Duration::minutes(2)))
            .await
            .unwrap();
        assert_eq!(
            store
                .delete_expired_sessions(t + Duration::minutes(5))
                .await
                .unwrap(),
            2
        );
        assert!(store.load_session("a", t).await.unwrap().is_some());
        store.delete_session("a").await.unwrap();
        assert_eq!(store.load_session("a", t).await.unwrap(), None);
        store.delete_session("never").await.unwrap();
    }
}

/// Users, audits and throttling: implemented by every store.
macro_rules! core_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn users_round_trip() {
                checks::users_round_trip(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn concurrent_inserts_of_one_username_have_one_winner() {
                checks::concurrent_inserts_of_one_username_have_one_winner($open().await.store)
                    .await;
            }

            #[tokio::test]
            async fn first_admin_only_once() {
                checks::first_admin_only_once(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn no_first_admin_once_an_admin_exists() {
                checks::no_first_admin_once_an_admin_exists(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_first_admins_have_one_winner() {
                let f = $open().await;
                checks::concurrent_first_admins_have_one_winner(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn list_users_searches_literally_and_pages() {
                checks::list_users_searches_literally_and_pages(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn user_updates_and_last_admin_rule() {
                checks::user_updates_and_last_admin_rule(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn last_admin_survives_concurrent_removals() {
                let f = $open().await;
                checks::last_admin_survives_concurrent_removals(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn audits_keep_order_and_targets() {
                checks::audits_keep_order_and_targets(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn throttle_windows() {
                checks::throttle_windows(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn old_throttle_windows_are_purged() {
                checks::old_throttle_windows_are_purged(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_throttle_hits_all_count() {
                let f = $open().await;
                checks::concurrent_throttle_hits_all_count(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn throttle_takes_stop_at_the_limit() {
                checks::throttle_takes_stop_at_the_limit(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn throttle_windows_are_cleared_by_prefix() {
                checks::throttle_windows_are_cleared_by_prefix(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_takes_never_exceed_the_limit() {
                let f = $open().await;
                checks::concurrent_takes_never_exceed_the_limit(vec![f.store.clone()]).await;
            }
        }
    };
}

/// Subjects, links and reset tokens.
macro_rules! study_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn subjects_round_trip_and_versions() {
                checks::subjects_round_trip_and_versions(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn subject_lists_search_filter_sort_and_page() {
                checks::subject_lists_search_filter_sort_and_page(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn status_filter_agrees_with_the_domain_standing() {
                checks::status_filter_agrees_with_the_domain_standing(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn not_invited_lists_subjects_with_no_step_yet() {
                checks::not_invited_lists_subjects_with_no_step_yet(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn names_sort_in_reading_order_with_ties_by_sssid() {
                checks::names_sort_in_reading_order_with_ties_by_sssid(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn links_round_trip_and_versions() {
                checks::links_round_trip_and_versions(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_link_replacements_have_one_winner() {
                let f = $open().await;
                checks::concurrent_link_replacements_have_one_winner(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn reset_tokens_are_single_use_and_superseded() {
                checks::reset_tokens_are_single_use_and_superseded(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_reset_token_takes_have_one_winner() {
                let f = $open().await;
                checks::concurrent_reset_token_takes_have_one_winner(vec![f.store.clone()]).await;
            }
        }
    };
}

/// Browser sessions (tower-sessions records).
macro_rules! session_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn sessions_expire_and_overwrite() {
                checks::sessions_expire_and_overwrite(&*$open().await.store).await;
            }
        }
    };
}

core_conformance!(sqlite_core, sqlite);
core_conformance!(mongodb_core, mongodb);
study_conformance!(sqlite_study, sqlite);
study_conformance!(mongodb_study, mongodb);
session_conformance!(sqlite_sessions, sqlite);
session_conformance!(mongodb_sessions, mongodb);

/// The same races between two independent MongoDB clients on one database,
/// as two `idm serve` instances behind a load balancer would run them.
mod mongodb_two_clients {
    use super::*;

    async fn two_clients() -> (Vec<Arc<MongoStore>>, crate::common::mongo::TestDatabase) {
        let db = crate::common::mongo::TestDatabase::new();
        let a = MongoStore::open(&db.uri, &db.name).await.unwrap();
        let b = MongoStore::open(&db.uri, &db.name).await.unwrap();
        (vec![Arc::new(a), Arc::new(b)], db)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_admins_have_one_winner() {
        let (stores, _db) = two_clients().await;
        checks::concurrent_first_admins_have_one_winner(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn last_admin_survives_concurrent_removals() {
        let (stores, _db) = two_clients().await;
        checks::last_admin_survives_concurrent_removals(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_throttle_hits_all_count() {
        let (stores, _db) = two_clients().await;
        checks::concurrent_throttle_hits_all_count(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_takes_never_exceed_the_limit() {
        let (stores, _db) = two_clients().await;
        checks::concurrent_takes_never_exceed_the_limit(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_link_replacements_have_one_winner() {
        let (stores, _db) = two_clients().await;
        checks::concurrent_link_replacements_have_one_winner(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reset_token_takes_have_one_winner() {
        let (stores, _db) = two_clients().await;
        checks::concurrent_reset_token_takes_have_one_winner(stores).await;
    }
}
