//! The `idm` binary as an operator uses it: defaults, configuration layers,
//! user commands, exit codes, and durability across SIGKILL.

mod accounts;
mod lifecycle;
mod private_files;
mod settings;
mod subjects_import;
mod users;

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
