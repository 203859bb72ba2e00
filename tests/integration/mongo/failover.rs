//! A MongoDB that goes away, stops answering or is configured in ways the
//! service must not guess at, over real HTTP. Runs on NX-27017 (the test
//! suite's wire-protocol server) and on a real MongoDB alike: needs
//! `IDM_TEST_MONGODB_URI`, and the NX-27017 binary for the tests that stop
//! and restart a server of their own (see tests/integration/common/mongo.rs).
//!
//! What a real replica set does in a failover (elections, `failCommand`
//! faults) is in tests/integration/mongo/replica_set.rs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::mongo::{TestDatabase, mongo_uri, unique_database_name};
use crate::common::*;
use idm::Config;
use mongodb::bson::{Document, doc};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// `uri` with its path naming `database` (`mongodb://h:1/?x` becomes
/// `mongodb://h:1/database?x`).
fn with_database(uri: &str, database: &str) -> String {
    let scheme_end = uri.find("://").unwrap() + 3;
    let (hosts_end, rest) = match uri[scheme_end..].find(['/', '?']) {
        Some(i) => (scheme_end + i, &uri[scheme_end + i..]),
        None => (uri.len(), ""),
    };
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{}/{database}{query}", &uri[..hosts_end])
}

fn config_for(dir: &tempfile::TempDir, url: &str, database_name: &str) -> Config {
    Config {
        database_url: url.to_owned(),
        database_name: database_name.to_owned(),
        ..test_config(dir)
    }
}

async fn start_error(config: Config) -> String {
    match idm::Application::build(config).await {
        Ok(_) => panic!("the service started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn the_urls_database_is_the_one_written_to() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let url = with_database(&db.uri, &db.name);
    let config = config_for(&dir, &url, "");
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    let r = app
        .post_json(
            "/subject",
            Some(&admin),
            &json!({"sssid": "url-db-1", "name": "Ada", "bday": "1990-01-02"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let stored = client
        .database(&db.name)
        .collection::<Document>("subjects")
        .find_one(doc! { "sssid": "url-db-1" })
        .await
        .unwrap();
    assert!(stored.is_some(), "the subject is in the URL's database");
    let default = client
        .database(idm::config::DEFAULT_MONGO_DATABASE)
        .collection::<Document>("subjects")
        .find_one(doc! { "sssid": "url-db-1" })
        .await
        .unwrap();
    assert!(default.is_none(), "nothing went to the default database");
}

#[tokio::test]
async fn a_database_name_that_contradicts_the_url_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = "mongodb://idm:hunter2-secret@127.0.0.1:1/prod?directConnection=true";
    let err = start_error(config_for(&dir, url, "idm")).await;
    assert!(
        err.contains("database_url names the database \"prod\" but database_name is \"idm\""),
        "{err}"
    );
    assert!(!err.contains("hunter2-secret"), "{err}");
}

#[tokio::test]
async fn reads_from_secondaries_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = "mongodb://127.0.0.1:1/?replicaSet=rs0&readPreference=secondaryPreferred";
    let err = start_error(config_for(&dir, url, "")).await;
    assert!(err.contains("readPreference=secondaryPreferred"), "{err}");
    assert!(err.contains("primary"), "{err}");
}

#[tokio::test]
async fn a_search_for_a_nul_byte_is_never_a_server_error() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = config_for(&sqlite_dir, "", "");
    let mongo_dir = tempfile::tempdir().unwrap();
    let mongo = config_for(&mongo_dir, &mongo_uri(), &unique_database_name());
    for (store, dir, config) in [
        ("sqlite", sqlite_dir, sqlite),
        ("mongodb", mongo_dir, mongo),
    ] {
        let app = spawn_app_with(dir, config).await;
        let admin = app.admin_token().await;
        app.add_subject("nul-1", "Ada", "1990-01-02").await;
        for path in [
            "/subject?search=%00",
            "/user?search=%00",
            "/subject?search=a%00b",
        ] {
            let r = app.get(path, Some(&admin)).await;
            let status = r.status();
            assert!(
                status == StatusCode::OK || status.is_client_error(),
                "{store} {path}: {status}"
            );
            if status == StatusCode::OK {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["data"], json!([]), "{store} {path}");
            }
        }
    }
}

// ------------------------------------------------- a server of our own

fn nx_binary() -> PathBuf {
    let binary = std::env::var_os("IDM_TEST_NX27017")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/nx-27017"));
    assert!(
        binary.exists(),
        "{} not found: run scripts/mongo-test-server.sh once (it installs NX-27017 into .venv/) \
         or set IDM_TEST_NX27017",
        binary.display()
    );
    binary
}

/// NX-27017 keeping its data on disk, so that it can be stopped and
/// started again on the same port with the data still there.
struct DiskServer {
    child: Option<Child>,
    port: u16,
    state: tempfile::TempDir,
}

impl DiskServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            child: None,
            port,
            state: tempfile::tempdir().unwrap(),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let state = self.state.path();
        let child = Command::new(nx_binary())
            .arg("--data-dir")
            .arg(state.join("data"))
            .args(["--host", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--log-file")
            .arg(state.join("server.log"))
            // Its own pid file: the default one is shared by every
            // NX-27017 on the machine.
            .arg("--pid-file")
            .arg(state.join("server.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("NX-27017 starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "NX-27017 did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DiskServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Short bounds, so that the test sees them at work.
fn bounded(config: Config) -> Config {
    Config {
        database_timeout_secs: 3,
        mongodb_server_selection_timeout_secs: 2,
        readyz_timeout_secs: 2,
        ..config
    }
}

/// Sends `request` and returns its status and how long the answer took;
/// fails the test if there is none within 30 s (a hang).
async fn timed(
    request: impl std::future::Future<Output = reqwest::Response>,
) -> (StatusCode, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("an answer, not a hang");
    (response.status(), started.elapsed())
}

/// Asks `/readyz` until it says 200 (the database is back), for at most
/// `within`.
async fn wait_until_ready(app: &TestApp, within: Duration) {
    let started = Instant::now();
    let deadline = started + within;
    loop {
        if app.get("/readyz", None).await.status() == StatusCode::OK {
            eprintln!("ready again after {:?}", started.elapsed());
            return;
        }
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the API answers while the database is away: 503 for each of these,
/// within the bound.
async fn expect_unavailable(app: &TestApp, admin: &str, bound: Duration) {
    let (status, took) = timed(app.get("/readyz", None)).await;
    eprintln!("/readyz answered {status} after {took:?}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/readyz");
    assert!(took < Duration::from_secs(5), "/readyz took {took:?}");
    let requests = [
        (
            "GET /user/{admin}",
            app.get(&format!("/user/{ADMIN}"), Some(admin)).await,
        ),
        (
            "GET /subject",
            app.get("/subject?search=a", Some(admin)).await,
        ),
        (
            "POST /subject",
            app.post_json(
                "/subject",
                Some(admin),
                &json!({"sssid": "while-away", "name": "Bo", "bday": "1990-01-02"}),
            )
            .await,
        ),
        (
            "POST /auth",
            app.post_json(
                "/auth",
                None,
                &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
            )
            .await,
        ),
    ];
    for (what, response) in requests {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    }
    let (status, took) = timed(app.get(&format!("/user/{ADMIN}"), Some(admin))).await;
    eprintln!("GET /user answered {status} after {took:?}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < bound, "an API call took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_quickly_and_both_recover_when_it_is_back() {
    let mut server = DiskServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = bounded(config_for(&dir, &server.uri(), &unique_database_name()));
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    app.add_subject("before-1", "Ada", "1990-01-02").await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);

    server.stop();
    // database_timeout_secs (3) plus the time to answer.
    expect_unavailable(&app, &admin, Duration::from_secs(5)).await;

    server.launch();
    wait_until_ready(&app, Duration::from_secs(20)).await;
    let r = app.get("/subject/before-1", Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::OK, "the data and the token survive");
    let r = app
        .post_json(
            "/subject",
            Some(&admin),
            &json!({"sssid": "after-1", "name": "Bo", "bday": "1990-01-02"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

// ------------------------------------- a server that stops answering

/// A TCP relay to the database that can be frozen: it keeps every
/// connection open but passes nothing on, like a server that accepted the
/// request and never answers (a blocked command, a partition).
struct Relay {
    address: SocketAddr,
    frozen: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (frozen, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass_on(client_read, server_write, watching.clone()));
                tokio::spawn(pass_on(server_read, client_write, watching.clone()));
            }
        });
        Self { address, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn pass_on(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_is_503_within_the_bound_not_a_hang() {
    let server = DiskServer::start();
    let relay = Relay::start(([127, 0, 0, 1], server.port).into()).await;
    let dir = tempfile::tempdir().unwrap();
    // The driver's monitor checks the server only every 60 s here, so it
    // goes on believing the server healthy (as it does while a real server
    // blocks one command): only the service's own bounds can answer.
    let url = format!(
        "mongodb://{}/?directConnection=true&heartbeatFrequencyMS=60000",
        relay.address
    );
    let config = bounded(config_for(&dir, &url, &unique_database_name()));
    let app = spawn_app_with(dir, config).await;
    let admin = app.admin_token().await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);

    relay.freeze(true);
    expect_unavailable(&app, &admin, Duration::from_secs(5)).await;

    relay.freeze(false);
    wait_until_ready(&app, Duration::from_secs(20)).await;
    let (status, _) = timed(app.get(&format!("/user/{ADMIN}"), Some(&admin))).await;
    assert_eq!(status, StatusCode::OK);
}
