//! The process's life: a SIGKILL loses no acknowledged write, a SIGTERM
//! finishes what is in flight, and a backup restores into a new data
//! folder.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{PASSWORD, Server, add_user, free_port, idm, login, start, wait_ready};

/// SIGKILL in the middle of a stream of user creations: every creation the
/// server acknowledged (201) is there after a restart.
#[tokio::test]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [("IDM_PORT", port.as_str())];
    assert!(
        add_user(dir.path(), "boss@example.org", true, &env)
            .status
            .success()
    );
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = idm(dir.path());
    cmd.envs(env);
    let mut server = start(cmd);
    wait_ready(&base).await;
    let token = login(&base, "boss@example.org").await;

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (base, token, acknowledged) = (base.clone(), token.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let name = format!("writer{w}-{i}@example.org");
                    let sent = client
                        .post(format!("{base}/user"))
                        .header("Authorization", format!("JWT {token}"))
                        .json(&json!({"username": name, "password": PASSWORD}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push(name),
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 4,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );

    let list = idm(dir.path())
        .envs(env)
        .args(["user", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    for name in &acknowledged {
        assert!(
            list.contains(name.as_str()),
            "{name} was acknowledged but lost"
        );
    }
    println!(
        "{} acknowledged writes survived SIGKILL",
        acknowledged.len()
    );
}

fn signal_terminate(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM while 200 requests are in flight: every one gets a complete
/// answer, then the process exits 0.
#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    // Costlier hashing makes each login take long enough that all 200 are
    // still running when the signal arrives.
    // A grace period far above what 200 logins need even on a loaded
    // machine: this test is about finishing them, not about the default.
    let env = [
        ("IDM_PORT", port.as_str()),
        ("IDM_ARGON2_ITERATIONS", "8"),
        ("IDM_SHUTDOWN_GRACE_SECS", "300"),
        // Every attempt is taken from the login budgets before its password
        // is checked, so 200 at once from one address need budgets as large.
        ("IDM_LOGIN_ACCOUNT_LIMIT", "1000"),
        ("IDM_LOGIN_IP_LIMIT", "1000"),
        ("IDM_LOGIN_ACCOUNT_CEILING", "2000"),
    ];
    assert!(
        add_user(dir.path(), "boss@example.org", true, &env)
            .status
            .success()
    );
    let base = format!("http://127.0.0.1:{port}");
    // The request log tells when the server has received every request.
    let log_path = dir.path().join("server.log");
    let mut cmd = idm(dir.path());
    cmd.envs(env)
        .env("RUST_LOG", "tower_http=debug")
        .env("NO_COLOR", "1");
    let mut server = Server(
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;

    let started = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .matches("started processing request")
            .count()
    };
    let before = started(&log_path);
    let client = reqwest::Client::new();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests: Vec<_> = (0..200)
        .map(|_| {
            let request = client
                .post(format!("{base}/auth"))
                .json(&json!({"username": "boss@example.org", "password": PASSWORD}));
            let finished = finished.clone();
            tokio::spawn(async move {
                let r = request.send().await?;
                let status = r.status();
                let body: Value = r.json().await?;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, reqwest::Error>((status, body))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while started(&log_path) < before + 200 {
        assert!(
            Instant::now() < deadline,
            "the server did not receive all requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_terminate(&server);
    let done_at_signal = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        done_at_signal < 200,
        "all requests finished before the signal; the test proves nothing"
    );
    let mut answered = 0;
    for r in requests {
        let (status, body) = r.await.unwrap().expect("a complete answer");
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].is_string());
        answered += 1;
    }
    assert_eq!(answered, 200);
    let exit = server.0.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}");
    // It no longer listens.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
    println!(
        "{} of 200 requests were still in flight at SIGTERM",
        200 - done_at_signal
    );
}

#[tokio::test]
async fn a_backup_restores_into_a_new_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [("IDM_PORT", port.as_str())];
    assert!(
        add_user(dir.path(), "boss@example.org", true, &env)
            .status
            .success()
    );
    assert!(
        add_user(dir.path(), "staff@example.org", false, &env)
            .status
            .success()
    );
    let mut cmd = idm(dir.path());
    cmd.envs(env);
    let _running = start(cmd);
    wait_ready(&format!("http://127.0.0.1:{port}")).await;

    // Online backup while the service runs.
    let copy = dir.path().join("copy.sqlite3");
    let out = idm(dir.path()).arg("backup").arg(&copy).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = idm(dir.path()).arg("backup").arg(&copy).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "never overwrites");

    // Restore: the copy becomes the database of a new data folder (with the
    // secrets, which are backed up alongside).
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(restored.join("secrets")).unwrap();
    std::fs::copy(&copy, restored.join("idm.sqlite3")).unwrap();
    for secret in ["token_secret", "link_secret"] {
        std::fs::copy(
            dir.path().join("data/secrets").join(secret),
            restored.join("secrets").join(secret),
        )
        .unwrap();
    }
    let port2 = free_port().to_string();
    let mut cmd = idm(dir.path());
    cmd.env("IDM_PORT", &port2).env("IDM_DATA_DIR", &restored);
    let _restored_server = start(cmd);
    let base2 = format!("http://127.0.0.1:{port2}");
    wait_ready(&base2).await;
    let token = login(&base2, "boss@example.org").await;
    let r = reqwest::Client::new()
        .get(format!("{base2}/user"))
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let names: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["boss@example.org", "staff@example.org"]);
}
