//! MongoDB for tests. Tests that need a server read `IDM_TEST_MONGODB_URI`
//! (`scripts/mongo-test-server.sh` starts NX-27017 and prints it; any real
//! MongoDB works too) and fail with instructions when it is unset, so a
//! missing server never looks like a pass. Each test uses its own uniquely
//! named database, dropped when the test ends.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idm::clock::{OsRandom, random_hex};

pub const URI_VAR: &str = "IDM_TEST_MONGODB_URI";

/// The server the Mongo tests run against.
pub fn mongo_uri() -> String {
    match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "{URI_VAR} is not set: MongoDB tests need a server. Run \
             `eval \"$(scripts/mongo-test-server.sh)\"` (starts NX-27017 on a free port) \
             or point {URI_VAR} at a real MongoDB, e.g. mongodb://localhost:27017"
        ),
    }
}

/// Whether the whole API suite should run against MongoDB
/// (`IDM_TEST_BACKEND=mongodb`).
pub fn api_suite_on_mongo() -> bool {
    std::env::var("IDM_TEST_BACKEND").is_ok_and(|b| b.eq_ignore_ascii_case("mongodb"))
}

pub fn unique_database_name() -> String {
    format!("idm_test_{}", random_hex(&OsRandom, 8))
}

/// Drops its database when the test ends (also when it fails).
pub struct TestDatabase {
    pub uri: String,
    pub name: String,
}

impl TestDatabase {
    pub fn new() -> Self {
        Self {
            uri: mongo_uri(),
            name: unique_database_name(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (uri, name) = (self.uri.clone(), self.name.clone());
        // The test's runtime may be shutting down: use a fresh one and a
        // fresh client on a plain thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut options = mongodb::options::ClientOptions::parse(&uri).await.ok()?;
                // The server may be gone already (tests that stop it).
                options.server_selection_timeout = Some(Duration::from_secs(2));
                let client = mongodb::Client::with_options(options).ok()?;
                client.database(&name).drop().await.ok()
            })
        })
        .join();
    }
}

/// An NX-27017 server of our own, for tests that stop the database. Killed
/// when dropped.
pub struct OwnServer {
    child: Child,
    pub uri: String,
}

impl OwnServer {
    pub fn start() -> Self {
        let binary = std::env::var_os("IDM_TEST_NX27017")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/nx-27017")
            });
        assert!(
            binary.exists(),
            "{} not found: run scripts/mongo-test-server.sh once (it installs NX-27017 into .venv/) \
             or set IDM_TEST_NX27017",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let state = tempfile::tempdir().unwrap().keep();
        let child = Command::new(&binary)
            .args(["--data-dir", "memory", "--host", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg("--log-file")
            .arg(state.join("server.log"))
            .arg("--pid-file")
            .arg(state.join("server.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("NX-27017 starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "NX-27017 did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}
