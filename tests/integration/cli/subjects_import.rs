//! `idm subjects import FILE [--dry-run] [--mode all|valid]`.

use super::idm;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn subjects_import_checks_first_and_imports_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recruits.csv");
    std::fs::write(
        &file,
        "sssid,name,bday,email\r\nR-1,Ada,1980-01-01,\r\nR-2,,1980-01-02,\r\nR-3,Bob,1980-01-03,b@example.org\r\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let dry = idm(dir.path())
        .args(["subjects", "import", file, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(1), "a row has a problem");
    assert_eq!(
        text(&dry.stdout),
        "row 3: name is required\n3 rows, 2 valid, 1 with problems; dry run, nothing written\n"
    );
    let all = idm(dir.path())
        .args(["subjects", "import", file])
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(1));
    assert!(
        text(&all.stdout).ends_with("; 0 imported\n"),
        "{}",
        text(&all.stdout)
    );

    let valid = idm(dir.path())
        .args(["subjects", "import", file, "--mode", "valid"])
        .output()
        .unwrap();
    assert!(
        text(&valid.stdout).ends_with("; 2 imported\n"),
        "{}",
        text(&valid.stdout)
    );
    // Written: a second check finds taken.
    let again = idm(dir.path())
        .args(["subjects", "import", file, "--dry-run"])
        .output()
        .unwrap();
    let out = text(&again.stdout);
    assert!(
        out.contains("row 2: sssid \"R-1\" is already taken"),
        "{out}"
    );
    assert!(
        out.contains("row 4: sssid \"R-3\" is already taken"),
        "{out}"
    );

    std::fs::write(dir.path().join("bad.csv"), "id,name\r\n").unwrap();
    let bad = idm(dir.path())
        .args(["subjects", "import", "bad.csv"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unreadable file");
    assert!(
        text(&bad.stderr).starts_with("error: unknown column \"id\""),
        "{}",
        text(&bad.stderr)
    );
    let missing = idm(dir.path())
        .args(["subjects", "import", "nothing.csv"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
