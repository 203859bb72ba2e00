//! Settings and secrets as an operator meets them: the defaults, the
//! layers (file, environment, flags), clear errors with exit codes, and
//! secrets refused or generated.

use std::path::Path;

use serde_json::Value;

use super::{add_user, free_port, idm, login, run_with_stdin, start, wait_ready};

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
