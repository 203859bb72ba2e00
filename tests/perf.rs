//! What the performance work must not cost: durability across a crash of
//! the process, and exact search results with the search index.
//! (The speed figures come from `scripts/bench.sh`, never from assertions.)

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use idm::clock::{OsRandom, random_hex};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "crash-admin@example.org";
const PASSWORD: &str = "crash test dummy password";

/// `idm` as its own process, so the test can kill it like a crash would.
fn idm(data_dir: &Path, port: u16, secrets: &(String, String)) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command
        .env_clear()
        .env("IDM_DATA_DIR", data_dir)
        .env("IDM_PORT", port.to_string())
        .env("IDM_TOKEN_SECRET", &secrets.0)
        .env("IDM_LINK_SECRET", &secrets.1)
        .env("IDM_MAIL_TRANSPORT", "none")
        .env("IDM_LOG_LEVEL", "warn");
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `idm serve` and waits (at most 10 s) until it answers.
async fn serve(data_dir: &Path, port: u16, secrets: &(String, String)) -> Child {
    let mut child = idm(data_dir, port, secrets)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .expect("idm starts");
    let url = format!("http://127.0.0.1:{port}/");
    for _ in 0..200 {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("idm serve did not answer within 10 s");
}

async fn login(client: &Client, base: &str) -> String {
    let body: Value = client
        .post(format!("{base}/auth"))
        .json(&json!({"username": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Every write the service acknowledged is still there after the process is
/// killed (SIGKILL, no shutdown) in the middle of a burst of writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = (random_hex(&OsRandom, 32), random_hex(&OsRandom, 32));
    let mut add = idm(dir.path(), 0, &secrets)
        .args(["user", "add", ADMIN, "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());

    let port = free_port();
    let mut server = serve(dir.path(), port, &secrets).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let token = login(&client, &base).await;

    // Writes keep arriving while the process is killed, so some are cut
    // off mid-flight; only those answered 201 count as acknowledged.
    let writes = futures::stream::iter(0..2_000)
        .map(|i| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                let sssid = format!("CRASH-{i:05}");
                let answer = client
                    .post(format!("{base}/subject"))
                    .header("Authorization", format!("JWT {token}"))
                    .json(&json!({"sssid": sssid, "name": "Crash Test", "bday": "1970-01-01"}))
                    .send()
                    .await;
                answer
                    .is_ok_and(|r| r.status() == StatusCode::CREATED)
                    .then_some(sssid)
            }
        })
        .buffer_unordered(16);
    let kill_after = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    tokio::pin!(writes, kill_after);
    let mut acknowledged = BTreeSet::new();
    loop {
        tokio::select! {
            next = writes.next() => match next {
                Some(Some(sssid)) => { acknowledged.insert(sssid); }
                Some(None) => {}
                None => break,
            },
            () = &mut kill_after => break,
        }
    }
    server.kill().unwrap(); // SIGKILL: no graceful shutdown, no checkpoint
    server.wait().unwrap();
    assert!(
        acknowledged.len() > 10,
        "too few writes before the kill to prove anything: {}",
        acknowledged.len()
    );

    let port = free_port();
    let mut server = serve(dir.path(), port, &secrets).await;
    let base = format!("http://127.0.0.1:{port}");
    let token = login(&client, &base).await;
    let mut stored = BTreeSet::new();
    for offset in (0..4_000).step_by(500) {
        let page: Value = client
            .get(format!(
                "{base}/subject?search=CRASH-&perpage=500&offset={offset}"
            ))
            .header("Authorization", format!("JWT {token}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["data"].as_array().unwrap();
        stored.extend(
            items
                .iter()
                .map(|s| s["sssid"].as_str().unwrap().to_owned()),
        );
        if items.len() < 500 {
            break;
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
