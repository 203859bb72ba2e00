//! The last-admin rule when two clients (two `idm serve` instances) remove
//! admins at the same time, on both stores.
//!
//! MongoDB has no transaction around "count the other admins, then write",
//! so one removal can stall between the two (a GC pause, a lost packet)
//! for longer than the admins lease, while another removal takes the
//! lease and counts the stalled one's admin as the remaining one. The
//! first test reproduces exactly that with a stall injected at that point
//! and the lease run out, and checks that the stalled removal's final
//! write is refused. SQLite counts and writes in one `BEGIN IMMEDIATE`
//! transaction, so there is no point to stall at: its test races two
//! handles on one file instead.
//!
//! The MongoDB test needs `IDM_TEST_MONGODB_URI` (NX-27017 or a real
//! server, see tests/common/mongo.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, DurationRound, Utc};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::{UserQuery, UserRecord, UserStore, UserUpdate, UserWriteOutcome};
use mongodb::bson::{DateTime as BsonDateTime, Document, doc};
use tokio::sync::Notify;

fn now() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
}

fn admin(name: &str) -> UserRecord {
    UserRecord {
        id: format!("id-{name}"),
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        admin: true,
        token_version: 0,
        created: now(),
        changed: now(),
        last_login: None,
    }
}

fn demotion() -> UserUpdate {
    UserUpdate {
        admin: Some(false),
        password_hash: None,
        revoke_tokens: false,
        changed: now(),
    }
}

async fn admins<S: UserStore + ?Sized>(store: &S) -> Vec<String> {
    let page = store
        .list_users(&UserQuery {
            search: None,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    page.items
        .into_iter()
        .filter(|u| u.admin)
        .map(|u| u.username)
        .collect()
}

/// A one-shot stall: the first admin removal that reaches it says so and
/// waits until released; later ones pass.
struct Stall {
    armed: AtomicBool,
    reached: Notify,
    resume: Notify,
}

impl Stall {
    fn install(store: &MongoStore) -> Arc<Self> {
        let stall = Arc::new(Self {
            armed: AtomicBool::new(true),
            reached: Notify::new(),
            resume: Notify::new(),
        });
        let hook = stall.clone();
        store.stall_admin_removals(Arc::new(move || {
            let stall = hook.clone();
            Box::pin(async move {
                if stall.armed.swap(false, Ordering::SeqCst) {
                    stall.reached.notify_one();
                    stall.resume.notified().await;
                }
            })
        }));
        stall
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_a_removal_stalled_past_its_lease_cannot_remove_the_last_admin() {
    let db = crate::common::mongo::TestDatabase::new();
    let a = Arc::new(MongoStore::open(&db.uri, &db.name).await.unwrap());
    let b = MongoStore::open(&db.uri, &db.name).await.unwrap();
    a.insert_user(&admin("x@example.org")).await.unwrap();
    a.insert_user(&admin("y@example.org")).await.unwrap();
    let stall = Stall::install(&a);

    // Instance A demotes x: it takes the lease, counts y as the other
    // admin, and stalls before its final write.
    let demote_x = tokio::spawn({
        let a = a.clone();
        async move { a.update_user("x@example.org", &demotion()).await }
    });
    stall.reached.notified().await;
    // The stall outlasts the lease: what 15 s would do to the lease
    // document, done at once.
    let expired =
        doc! { "_id": "admins", "until": BsonDateTime::from_millis(0), "holder": "stalled" };
    let replaced = a
        .database()
        .collection::<Document>("locks")
        .replace_one(doc! { "_id": "admins" }, expired)
        .await
        .unwrap();
    assert_eq!(replaced.matched_count, 1, "A holds the admins lease");

    // Instance B takes the lease, counts x (still an admin) and demotes y.
    let y = b.update_user("y@example.org", &demotion()).await.unwrap();
    assert!(matches!(y, UserWriteOutcome::Done(_)), "{y:?}");

    // A wakes up: its write must not go through on what it counted.
    stall.resume.notify_one();
    let x = demote_x.await.unwrap().unwrap();
    assert_eq!(x, UserWriteOutcome::LastAdmin);
    assert_eq!(admins(&*a).await, ["x@example.org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_a_stalled_deletion_is_fenced_too() {
    let db = crate::common::mongo::TestDatabase::new();
    let a = Arc::new(MongoStore::open(&db.uri, &db.name).await.unwrap());
    let b = MongoStore::open(&db.uri, &db.name).await.unwrap();
    a.insert_user(&admin("x@example.org")).await.unwrap();
    a.insert_user(&admin("y@example.org")).await.unwrap();
    let stall = Stall::install(&a);

    let delete_x = tokio::spawn({
        let a = a.clone();
        async move { a.delete_user("x@example.org").await }
    });
    stall.reached.notified().await;
    let expired =
        doc! { "_id": "admins", "until": BsonDateTime::from_millis(0), "holder": "stalled" };
    a.database()
        .collection::<Document>("locks")
        .replace_one(doc! { "_id": "admins" }, expired)
        .await
        .unwrap();
    let y = b.delete_user("y@example.org").await.unwrap();
    assert!(matches!(y, UserWriteOutcome::Done(_)), "{y:?}");
    stall.resume.notify_one();
    assert_eq!(
        delete_x.await.unwrap().unwrap(),
        UserWriteOutcome::LastAdmin
    );
    assert_eq!(admins(&*a).await, ["x@example.org"]);
}

/// SQLite: two handles on one file race to remove two admins, again and
/// again; exactly one removal wins each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_clients_racing_leave_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idm.sqlite3");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    for round in 0..20 {
        let (x, y) = (
            format!("x{round}@example.org"),
            format!("y{round}@example.org"),
        );
        a.insert_user(&admin(&x)).await.unwrap();
        a.insert_user(&admin(&y)).await.unwrap();
        // The previous round's survivor steps aside so that x and y are
        // the only admins.
        for other in admins(&*a).await {
            if other != x && other != y {
                a.delete_user(&other).await.unwrap();
            }
        }
        let (ra, rb) = tokio::join!(
            {
                let a = a.clone();
                let x = x.clone();
                tokio::spawn(async move { a.update_user(&x, &demotion()).await })
            },
            {
                let b = b.clone();
                let y = y.clone();
                tokio::spawn(async move { b.delete_user(&y).await })
            }
        );
        let outcomes = [ra.unwrap().unwrap(), rb.unwrap().unwrap()];
        let refused = outcomes
            .iter()
            .filter(|o| **o == UserWriteOutcome::LastAdmin)
            .count();
        assert_eq!(refused, 1, "round {round}: {outcomes:?}");
        assert_eq!(admins(&*b).await.len(), 1, "round {round}");
    }
}
