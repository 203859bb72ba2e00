//! `idm user invite|disable|enable|set-role|reset-mfa` at the command line.
use std::path::Path;
use std::process::{Command, Output};

const IDM: &str = env!("CARGO_BIN_EXE_idm");
const USER: &str = "monitor@example.org";

fn idm(dir: &Path, args: &[&str]) -> Output {
    Command::new(IDM)
        .env_clear()
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .args(["user"])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn accounts_are_invited_disabled_enabled_and_given_roles() {
    let dir = tempfile::tempdir().unwrap();
    let out = idm(dir.path(), &["invite", USER, "--role", "monitor"]);
    assert!(ok(&out).contains("invited monitor@example.org as monitor"));
    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].contains("/welcome?k="), "the invitation mail");
    let list = ok(&idm(dir.path(), &["list"]));
    assert!(
        list.contains("monitor@example.org\tmonitor\tinvited"),
        "{list}"
    );
    assert!(ok(&idm(dir.path(), &["set-role", USER, "staff"])).contains("is now staff"));
    assert!(ok(&idm(dir.path(), &["disable", USER])).contains("is disabled"));
    assert!(ok(&idm(dir.path(), &["list"])).contains("\tstaff\tdisabled"));
    // An invited account enabled again is invited again.
    assert!(ok(&idm(dir.path(), &["enable", USER])).contains("is invited"));
    let bad = idm(dir.path(), &["set-role", USER, "root"]);
    assert_eq!(bad.status.code(), Some(2), "bad input");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("role must be one of"));
    let none = idm(dir.path(), &["reset-mfa", USER]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no two-factor sign-in"));
    let unknown = idm(dir.path(), &["disable", "nobody@example.org"]);
    assert_eq!(unknown.status.code(), Some(1));
}
