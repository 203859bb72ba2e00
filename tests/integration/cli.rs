//! The `idm` binary as an operator uses it: defaults, configuration layers,
//! user commands, exit codes, and durability across SIGKILL.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const IDM: &str = env!("CARGO_BIN_EXE_idm");
const PASSWORD: &str = "correct horse battery staple";

/// The binary with a clean environment (no IDM_* from the caller) in `dir`.
fn idm(dir: &Path) -> Command {
    let mut cmd = Command::new(IDM);
    cmd.env_clear().current_dir(dir).env("RUST_LOG", "warn");
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn add_user(dir: &Path, email: &str, admin: bool, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = idm(dir);
    cmd.envs(extra_env.iter().copied())
        .args(["user", "add", email, "--password-stdin"]);
    if admin {
        cmd.arg("--admin");
    }
    run_with_stdin(cmd, &format!("{PASSWORD}\n"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(mut cmd: Command) -> Server {
    Server(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not come up");
}

async fn login(base: &str, email: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/auth"))
        .json(&json!({"username": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn runs_on_the_defaults_with_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start(idm(dir.path()));
    let base = "http://127.0.0.1:9096";
    wait_ready(base).await;
    let out = add_user(dir.path(), "Boss@Example.org", true, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = login(base, "boss@example.org").await;
    let r = reqwest::Client::new()
        .get(format!("{base}/user/boss@example.org"))
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["admin"], true);
    // Secrets were generated into the data folder, with the SQLite file.
    assert!(dir.path().join("data/secrets/token_secret").exists());
    assert!(dir.path().join("data/idm.sqlite3").exists());
}

#[tokio::test]
async fn configuration_layers_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("idm.toml"),
        format!("port = {file_port}\ndata_dir = \"store\"\n"),
    )
    .unwrap();

    let mut cmd = idm(dir.path());
    cmd.env("IDM_CONFIG", "idm.toml");
    let server = start(cmd);
    wait_ready(&format!("http://127.0.0.1:{file_port}")).await;
    drop(server);
    assert!(
        dir.path().join("store/idm.sqlite3").exists(),
        "data_dir from the file"
    );

    let mut cmd = idm(dir.path());
    cmd.env("IDM_CONFIG", "idm.toml")
        .env("IDM_PORT", env_port.to_string());
    let server = start(cmd);
    wait_ready(&format!("http://127.0.0.1:{env_port}")).await;
    drop(server);

    let mut cmd = idm(dir.path());
    cmd.env("IDM_PORT", env_port.to_string()).args([
        "--config",
        "idm.toml",
        "serve",
        "--port",
        &flag_port.to_string(),
    ]);
    let _server = start(cmd);
    wait_ready(&format!("http://127.0.0.1:{flag_port}")).await;
}

#[test]
fn bad_input_and_bad_configuration_have_clear_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = add_user(dir.path(), "not-an-email", false, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("email address"));

    let out = run_with_stdin(
        {
            let mut c = idm(dir.path());
            c.args(["user", "add", "a@example.org", "--password-stdin"]);
            c
        },
        "password\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too common"));

    let out = idm(dir.path())
        .args(["user", "delete", "ghost@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));

    let out = idm(dir.path())
        .env("IDM_PORT", "not-a-port")
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("port")
    );

    let out = idm(dir.path())
        .env("IDM_TOKEN_SECRET", "secret")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("too weak"));

    // Without --password-stdin and without a terminal, it says what to do.
    let out = run_with_stdin(
        {
            let mut c = idm(dir.path());
            c.args(["user", "add", "a@example.org"]);
            c
        },
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
}

#[test]
fn misspelt_settings_are_refused_in_the_file_and_named_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idm.toml"), "prot = 9000\n").unwrap();
    let out = idm(dir.path())
        .env("IDM_CONFIG", "idm.toml")
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "a misspelt file key stops the start"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown setting `prot`") && stderr.contains("did you mean port?"),
        "{stderr}"
    );

    // An unknown variable is named with its likely meaning, and the command
    // still runs (the environment may hold other programs' IDM_ variables);
    // the test suite's own IDM_TEST_* variables are not warned about.
    let out = idm(dir.path())
        .env("IDM_PASWORD_MIN_CHARS", "12")
        .env("IDM_TEST_BACKEND", "sqlite")
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "ignoring unknown environment variable IDM_PASWORD_MIN_CHARS \
             (did you mean IDM_PASSWORD_MIN_CHARS?)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("IDM_TEST_BACKEND"), "{stderr}");
}

#[test]
fn user_commands_manage_accounts() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        add_user(dir.path(), "boss@example.org", true, &[])
            .status
            .success()
    );
    assert!(
        add_user(dir.path(), "staff@example.org", false, &[])
            .status
            .success()
    );
    let dup = add_user(dir.path(), "STAFF@example.org", false, &[]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let out = idm(dir.path())
        .args(["user", "set-admin", "staff@example.org", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = idm(dir.path()).args(["user", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains("staff@example.org\tadmin"), "{list}");

    let out = run_with_stdin(
        {
            let mut c = idm(dir.path());
            c.args([
                "user",
                "set-password",
                "staff@example.org",
                "--password-stdin",
            ]);
            c
        },
        "an entirely new passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = idm(dir.path())
        .args(["user", "delete", "staff@example.org"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = idm(dir.path())
        .args(["user", "delete", "boss@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the last admin stays");
    let list = idm(dir.path()).args(["user", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1);
}

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

/// The binary started through a shell with the usual umask 022, as a
/// service started by hand or by an init script without `UMask=` would be.
fn idm_under_umask_022(dir: &Path) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", IDM]);
    cmd
}

/// Paths relative to a folder, with their permission bits.
type Modes = Vec<(String, u32)>;

/// Every folder under `root` (and `root`) with its mode, then every file.
fn modes_under(root: &Path) -> (Modes, Modes) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (mut dirs, mut files) = (vec![(root.display().to_string(), mode(root))], Vec::new());
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                dirs.push((name, mode(&path)));
                pending.push(path);
            } else {
                files.push((name, mode(&path)));
            }
        }
    }
    (dirs, files)
}

/// Under umask 022 a first start, a reset mail to the file outbox and a
/// backup leave nothing another local user could read: folders 0700, files
/// 0600 (the database and its WAL/SHM, generated secrets, mails with live
/// reset links, backups).
#[tokio::test]
async fn everything_the_service_creates_is_private_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = idm_under_umask_022(dir.path());
    cmd.env("IDM_PORT", &port);
    let _server = start(cmd);
    wait_ready(&base).await;

    let mut cmd = idm_under_umask_022(dir.path());
    cmd.args([
        "user",
        "add",
        "boss@example.org",
        "--admin",
        "--password-stdin",
    ]);
    let out = run_with_stdin(cmd, &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = login(&base, "boss@example.org").await;
    let r = reqwest::Client::new()
        .post(format!("{base}/user/boss@example.org/reset"))
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the server wrote a reset mail");
    let backup = dir.path().join("data/backup.sqlite3");
    let out = idm_under_umask_022(dir.path())
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (dirs, files) = modes_under(&dir.path().join("data"));
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "idm.sqlite3",
        "idm.sqlite3-wal",
        "idm.sqlite3-shm",
        "secrets/token_secret",
        "secrets/link_secret",
        "backup.sqlite3",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("outbox/") && n.ends_with(".eml")),
        "no mail in the outbox: {names:?}"
    );
    assert_eq!(dirs.len(), 3, "data, secrets, outbox: {dirs:?}");
    for (name, mode) in dirs {
        assert_eq!(mode, 0o700, "folder {name} is {mode:o}");
    }
    for (name, mode) in files {
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
}

#[test]
fn weak_secrets_are_refused_at_start_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let forty_a = "a".repeat(40);
    for (key, weak) in [
        ("IDM_TOKEN_SECRET", forty_a.as_str()),
        ("IDM_LINK_SECRET", "changemechangemechangemechangeme"),
    ] {
        let out = idm(dir.path())
            .env(key, weak)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{key}={weak} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = key.trim_start_matches("IDM_").to_lowercase();
        assert!(stderr.contains(&format!("{name} is too weak")), "{stderr}");
        assert!(stderr.contains("bits of entropy"), "{stderr}");
        assert!(stderr.contains("`idm secret`"), "{stderr}");
        assert!(!stderr.contains(weak), "the secret is not echoed: {stderr}");

        let out = idm(dir.path())
            .env(key, weak)
            .arg("check")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stdout).contains("too weak"));

        let out = idm(dir.path())
            .env(key, weak)
            .env("IDM_DEV_MODE", "true")
            .arg("check")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dev mode allows it: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn idm_secret_prints_a_fresh_secret_the_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = |dir: &Path| {
        // Also with a configuration that would not load: it needs none.
        let out = idm(dir)
            .env("IDM_PORT", "not-a-port")
            .arg("secret")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (token_secret, link_secret) = (secret(dir.path()), secret(dir.path()));
    assert_ne!(token_secret, link_secret);
    for s in [&token_secret, &link_secret] {
        assert_eq!(s.len(), 64, "{s}");
        assert!(s.chars().all(|c| c.is_ascii_hexdigit()), "{s}");
    }
    let out = idm(dir.path())
        .env("IDM_TOKEN_SECRET", &token_secret)
        .env("IDM_LINK_SECRET", &link_secret)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
