//! Under the usual umask 022, everything the service creates is private
//! to its user.

use std::path::Path;
use std::process::Command;

use super::{IDM, PASSWORD, free_port, login, run_with_stdin, start, wait_ready};

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
