//! The user commands: staff accounts managed from the command line.

use super::{add_user, idm, run_with_stdin};

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
