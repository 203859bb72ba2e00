//! Failover on a real MongoDB replica set: faults injected with the
//! server's `failCommand` fail point, a primary stepping down under load,
//! admin removals racing from two instances, index definitions changed
//! between versions.
//!
//! Runs only when `IDM_TEST_MONGODB_URI` points at a replica set member
//! (`hello` answers with a `setName`); the fault tests also need
//! `mongod --setParameter enableTestCommands=1`. Otherwise each test prints
//! why it was skipped and passes: NX-27017, the suite's default server, has
//! neither. DEPLOY.md ("Testing against a replica set") says how to start
//! one. The tests share the server's one `failCommand` fail point and step
//! the primary down, so they take turns.

use std::time::{Duration, Instant};

use crate::common::mongo::{TestDatabase, URI_VAR};
use crate::common::*;
use chrono::{DurationRound, Utc};
use futures::TryStreamExt as _;
use idm::Config;
use idm::clock::{OsRandom, random_hex};
use idm::store::mongo::MongoStore;
use idm::store::{
    ThrottleStore, ThrottleTake, UserRecord, UserStore, UserUpdate, UserWriteOutcome,
};
use mongodb::bson::{Bson, Document, doc};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};

/// One test at a time: the fail point and the primary are the server's.
static TAKING_TURNS: Mutex<()> = Mutex::const_new(());

/// The replica set under test, with a client for administrative commands.
struct ReplicaSet {
    admin: mongodb::Client,
    _turn: MutexGuard<'static, ()>,
}

/// The replica set in `IDM_TEST_MONGODB_URI`, or `None` (printing why).
async fn replica_set(test: &str, needs_fail_points: bool) -> Option<ReplicaSet> {
    let uri = match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => {
            eprintln!("skipped {test}: {URI_VAR} is not set (see DEPLOY.md)");
            return None;
        }
    };
    let turn = TAKING_TURNS.lock().await;
    let admin = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let hello = admin
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .unwrap();
    if hello.get_str("setName").is_err() {
        eprintln!(
            "skipped {test}: {URI_VAR} is no replica set member (`hello` has no setName); \
             start one as DEPLOY.md shows"
        );
        return None;
    }
    let set = ReplicaSet { admin, _turn: turn };
    if needs_fail_points && set.fail_command("off", doc! {}).await.is_err() {
        eprintln!(
            "skipped {test}: the server refuses configureFailPoint; start mongod with \
             --setParameter enableTestCommands=1"
        );
        return None;
    }
    Some(set)
}

impl ReplicaSet {
    /// Configures the `failCommand` fail point; answers how often it had
    /// been entered before (a running count: the difference between two
    /// answers is how often it struck in between).
    async fn fail_command(&self, mode: impl Into<Bson>, data: Document) -> Result<i64, String> {
        self.fail_point("failCommand", mode, data).await
    }

    async fn fail_point(
        &self,
        name: &str,
        mode: impl Into<Bson>,
        data: Document,
    ) -> Result<i64, String> {
        let command = doc! { "configureFailPoint": name, "mode": mode.into(), "data": data };
        let reply = self.admin.database("admin").run_command(command).await;
        match reply.map_err(|e| e.to_string())?.get("count") {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            _ => Ok(0),
        }
    }
}

/// A test's own client name, so that fail points hit only its clients.
fn app_name() -> String {
    format!("idm-test-{}", random_hex(&OsRandom, 6))
}

/// `uri` with one more query parameter.
fn with_param(uri: &str, param: &str) -> String {
    let after_hosts = uri.find("://").map_or(0, |i| i + 3);
    if uri.contains('?') {
        format!("{uri}&{param}")
    } else if uri[after_hosts..].contains('/') {
        format!("{uri}?{param}")
    } else {
        format!("{uri}/?{param}")
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
}

fn staff(name: &str) -> UserRecord {
    UserRecord {
        id: format!("id-{name}"),
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        admin: false,
        token_version: 0,
        created: now(),
        changed: now(),
        last_login: None,
    }
}

fn revoke_tokens() -> UserUpdate {
    UserUpdate {
        admin: None,
        password_hash: None,
        revoke_tokens: true,
        changed: now(),
    }
}

/// An instance of the service on `db`, its driver named `app`.
async fn instance(db: &TestDatabase, app: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        database_url: with_param(&db.uri, &format!("appName={app}")),
        database_name: db.name.clone(),
        ..test_config(&dir)
    };
    configure(&mut config);
    spawn_app_with(dir, config).await
}

async fn wait_until_ready(app: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    while app.get("/readyz", None).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_on_update_or_find_and_modify_is_retried_and_applied_once() {
    let Some(rs) = replica_set("closed connection", true).await else {
        return;
    };
    let db = TestDatabase::new();
    let app = app_name();
    let store = MongoStore::open(&with_param(&db.uri, &format!("appName={app}")), &db.name)
        .await
        .unwrap();
    store.insert_user(&staff("x@example.org")).await.unwrap();

    let close = |command: &str| doc! { "failCommands": [command], "closeConnection": true, "appName": &app };
    let entered = rs
        .fail_command(doc! { "times": 1 }, close("update"))
        .await
        .unwrap();
    let outcome = store
        .update_user("x@example.org", &revoke_tokens())
        .await
        .unwrap();
    let UserWriteOutcome::Done(user) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(user.token_version, 1);
    let stored = store
        .user_by_username("x@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.token_version, 1, "applied once");
    let now_entered = rs.fail_command("off", doc! {}).await.unwrap();
    assert_eq!(now_entered - entered, 1, "the fault happened once");

    let window = chrono::Duration::hours(1);
    let first = store.throttle_take("k", now(), window, 10).await.unwrap();
    assert!(
        matches!(first, ThrottleTake::Taken(w) if w.count == 1),
        "{first:?}"
    );
    let entered = rs
        .fail_command(doc! { "times": 1 }, close("findAndModify"))
        .await
        .unwrap();
    let second = store.throttle_take("k", now(), window, 10).await.unwrap();
    assert!(
        matches!(second, ThrottleTake::Taken(w) if w.count == 2),
        "{second:?}"
    );
    assert_eq!(
        store
            .throttle_peek("k", now())
            .await
            .unwrap()
            .unwrap()
            .count,
        2
    );
    let now_entered = rs.fail_command("off", doc! {}).await.unwrap();
    assert_eq!(now_entered - entered, 1, "the fault happened once");
}

/// The harder case: the primary applied the write and the reply was lost.
/// The driver's retry carries the same transaction number, so the server
/// answers from its record instead of applying it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_reply_is_lost_is_applied_once() {
    let Some(rs) = replica_set("lost reply", true).await else {
        return;
    };
    let db = TestDatabase::new();
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    store.insert_user(&staff("x@example.org")).await.unwrap();
    let lose_reply = doc! { "closeConnection": true };
    if rs
        .fail_point(
            "onPrimaryTransactionalWrite",
            doc! { "times": 1 },
            lose_reply,
        )
        .await
        .is_err()
    {
        eprintln!("skipped lost reply: this server has no onPrimaryTransactionalWrite fail point");
        return;
    }
    let outcome = store.update_user("x@example.org", &revoke_tokens()).await;
    let _ = rs
        .fail_point("onPrimaryTransactionalWrite", "off", doc! {})
        .await;
    assert!(
        matches!(outcome, Ok(UserWriteOutcome::Done(_))),
        "{outcome:?}"
    );
    let stored = store
        .user_by_username("x@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.token_version, 1, "applied once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_primary_and_interrupted_errors_without_labels_answer_503() {
    let Some(rs) = replica_set("not primary", true).await else {
        return;
    };
    let db = TestDatabase::new();
    let name = app_name();
    let app = instance(&db, &name, |_| {}).await;
    let admin = app.admin_token().await;
    app.add_subject("fo-1", "Ada", "1990-01-02").await;
    let subject = json!({"sssid": "fo-2", "name": "Bo", "bday": "1990-01-02"});
    for (command, code) in [
        ("insert", 10107),
        ("insert", 189),
        ("find", 11602),
        ("find", 13435),
    ] {
        let fault = doc! { "failCommands": [command], "errorCode": code, "errorLabels": [], "appName": &name };
        rs.fail_command("alwaysOn", fault).await.unwrap();
        let r = if command == "insert" {
            app.post_json("/subject", Some(&admin), &subject).await
        } else {
            app.get("/subject/fo-1", Some(&admin)).await
        };
        rs.fail_command("off", doc! {}).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{command} failing with {code}"
        );
    }
    wait_until_ready(&app, Duration::from_secs(30)).await;
    let r = app.post_json("/subject", Some(&admin), &subject).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_blocked_for_20_s_is_answered_within_the_bound() {
    let Some(rs) = replica_set("blocked command", true).await else {
        return;
    };
    let db = TestDatabase::new();
    let name = app_name();
    let app = instance(&db, &name, |c| {
        c.database_timeout_secs = 3;
        c.mongodb_server_selection_timeout_secs = 2;
        c.mongodb_write_timeout_secs = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let block = doc! {
        "failCommands": ["find", "ping"], "blockConnection": true, "blockTimeMS": 20_000, "appName": &name,
    };
    rs.fail_command("alwaysOn", block).await.unwrap();
    let started = Instant::now();
    let user = app
        .get(&format!("/user/{ADMIN}"), Some(&admin))
        .await
        .status();
    let user_took = started.elapsed();
    let started = Instant::now();
    let ready = app.get("/readyz", None).await.status();
    let ready_took = started.elapsed();
    rs.fail_command("off", doc! {}).await.unwrap();
    assert_eq!(user, StatusCode::SERVICE_UNAVAILABLE);
    assert!(user_took < Duration::from_secs(5), "{user_took:?}");
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready_took < Duration::from_secs(4), "{ready_took:?}");
    wait_until_ready(&app, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_down_during_writes_from_two_instances_loses_nothing_acknowledged() {
    let Some(rs) = replica_set("step-down", false).await else {
        return;
    };
    let db = TestDatabase::new();
    let a = instance(&db, &app_name(), |_| {}).await;
    let b = instance(&db, &app_name(), |_| {}).await;
    let admin = a.admin_token().await;
    let (started_tx, mut started) = tokio::sync::mpsc::channel::<()>(200);
    let writers = [&a, &b, &a, &b].into_iter().enumerate().map(|(w, app)| {
        let (admin, started_tx) = (&admin, started_tx.clone());
        async move {
            let mut answers = Vec::new();
            for i in 0..40 {
                let sssid = format!("sd-{w}-{i}");
                let subject = json!({"sssid": sssid, "name": "Ada", "bday": "1990-01-02"});
                let status = app
                    .post_json("/subject", Some(admin), &subject)
                    .await
                    .status();
                answers.push((sssid, status));
                let _ = started_tx.try_send(());
            }
            answers
        }
    });
    // A few writes in, the primary steps down (`force` lets a one-member
    // set do it too; it is electable again after 5 s).
    let step_down = async {
        for _ in 0..8 {
            started.recv().await.unwrap();
        }
        let step_down =
            doc! { "replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 2, "force": true };
        if let Err(e) = rs.admin.database("admin").run_command(step_down).await {
            eprintln!("replSetStepDown answered {e} (servers before 4.2 close the connection)");
        }
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(writers), step_down);
    let mut acknowledged = Vec::new();
    for (sssid, status) in answers.into_iter().flatten() {
        assert!(
            status == StatusCode::CREATED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{sssid}: {status}"
        );
        if status == StatusCode::CREATED {
            acknowledged.push(sssid);
        }
    }
    for app in [&a, &b] {
        wait_until_ready(app, Duration::from_secs(60)).await;
        for sssid in &acknowledged {
            let r = app.get(&format!("/subject/{sssid}"), Some(&admin)).await;
            assert_eq!(r.status(), StatusCode::OK, "acknowledged {sssid} is there");
        }
    }
    eprintln!(
        "{} of 160 writes acknowledged across the step-down",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_rounds_of_racing_admin_removals_from_two_instances_leave_an_admin() {
    let Some(_rs) = replica_set("admin races", false).await else {
        return;
    };
    let db = TestDatabase::new();
    let a = instance(&db, &app_name(), |_| {}).await;
    let b = instance(&db, &app_name(), |_| {}).await;
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    let admins: Vec<String> = (0..3).map(|i| format!("admin{i}@example.org")).collect();
    for round in 0..50 {
        let mut tokens = Vec::new();
        for name in &admins {
            match store.user_by_username(name).await.unwrap() {
                None => a.create_user(name, ADMIN_PASSWORD, true).await,
                Some(user) if !user.admin => {
                    let promote = UserUpdate {
                        admin: Some(true),
                        ..revoke_tokens()
                    };
                    store.update_user(name, &promote).await.unwrap();
                }
                Some(_) => {}
            }
            tokens.push(a.login(name, ADMIN_PASSWORD).await);
        }
        let (a, b) = (&a, &b);
        let removals = admins.iter().enumerate().map(|(i, name)| {
            let (demoter, deleter) = (&tokens[(i + 1) % 3], &tokens[(i + 2) % 3]);
            async move {
                let path = format!("/user/{name}");
                let (demote, delete) = (json!({"admin": false}), json!({"username": name}));
                let (demoted, deleted) = tokio::join!(
                    a.put_json(&path, Some(demoter), &demote),
                    b.delete_json("/user", Some(deleter), &delete)
                );
                [demoted.status(), deleted.status()]
            }
        });
        for status in futures::future::join_all(removals)
            .await
            .into_iter()
            .flatten()
        {
            assert!(
                !status.is_server_error(),
                "round {round}: a removal answered {status}"
            );
        }
        let left = store.admin_exists().await.unwrap();
        assert!(left, "round {round}: no admin left");
    }
}

#[tokio::test]
async fn indexes_defined_differently_by_an_older_version_are_brought_up_to_date() {
    let Some(_rs) = replica_set("index changes", false).await else {
        return;
    };
    let db = TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let database = client.database(&db.name);
    // Same name, other keys (IndexKeySpecsConflict, 86); same keys and
    // name, another TTL (IndexOptionsConflict, 85).
    database
        .run_command(doc! { "createIndexes": "users", "indexes": [
        { "key": { "admin": -1 }, "name": "admins" } ] })
        .await
        .unwrap();
    database
        .run_command(doc! { "createIndexes": "sessions", "indexes": [
        { "key": { "expires": 1 }, "name": "expire_sessions", "expireAfterSeconds": 60 } ] })
        .await
        .unwrap();
    MongoStore::open(&db.uri, &db.name)
        .await
        .expect("the start updates the indexes");
    let spec = |collection: &'static str, name: &'static str| {
        let indexes = database.collection::<Document>(collection);
        async move {
            let all: Vec<mongodb::IndexModel> = indexes
                .list_indexes()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            all.into_iter()
                .find(|i| i.options.as_ref().and_then(|o| o.name.as_deref()) == Some(name))
                .unwrap_or_else(|| panic!("no index {name} on {collection}"))
        }
    };
    assert_eq!(spec("users", "admins").await.keys, doc! { "admin": 1 });
    let sessions = spec("sessions", "expire_sessions").await;
    let ttl = sessions.options.unwrap().expire_after.unwrap();
    assert_eq!(ttl, Duration::from_secs(24 * 3600));
}
