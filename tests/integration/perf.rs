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

use crate::common::{TestApp, spawn_app};

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

/// Subjects whose names hold what the trigram index and GLOB patterns
/// could get wrong: wildcard characters, non-ASCII case, short words.
const NAMES: &[&str] = &[
    "Anna Müller",
    "ÄRGER Zoë",
    "a*b?c[d]",
    "Percent 100%",
    "Under_score",
    "Bracket [x] Test",
    "Lu",
    "Ann-Marie Annabelle",
    "ÅSA ÖSTLUND",
    "Star * Gazer",
    "Question? Mark",
    "Müllerin",
    "Say \"Hi\" Twice",
];

const SEARCHES: &[&str] = &[
    "ann",
    "a*b",
    "b?c",
    "c[d",
    "[d]",
    "[x]",
    "*",
    "?",
    "[",
    "]",
    "%",
    "_",
    "mü",
    "MÜLLER",
    "zoë",
    "ärger",
    "åsa öst",
    "lu",
    "x",
    "S-0",
    "S-01",
    "1980-0",
    "1980-03-1",
    "nothing at all",
    "ann-marie annabelle",
    "ller",
    "r * g",
    "n? m",
    "\"hi\"",
    "y \"h",
    "\"",
];

/// What SPEC section 4 says a search matches, computed by hand.
fn expected(
    subjects: &[(String, String, String)],
    search: &str,
    consented: &BTreeSet<String>,
    status: bool,
) -> BTreeSet<String> {
    let folded = search.to_lowercase();
    subjects
        .iter()
        .filter(|(sssid, name, bday)| {
            sssid.starts_with(search)
                || name.to_lowercase().contains(&folded)
                || bday.starts_with(search)
        })
        .filter(|(sssid, _, _)| !status || consented.contains(sssid))
        .map(|(sssid, _, _)| sssid.clone())
        .collect()
}

/// The sssids listed for `params` (raw values), in order, and the total
/// count; the largest page unless `params` names one.
async fn search(app: &TestApp, token: &str, params: &[(&str, &str)]) -> (Vec<String>, u64) {
    let mut params = params.to_vec();
    if !params.iter().any(|(name, _)| *name == "perpage") {
        params.push(("perpage", "500"));
    }
    let query = serde_urlencoded::to_string(&params).unwrap();
    app.list_subjects(token, &query).await
}

/// The indexed search finds exactly what the literal rules of SPEC
/// section 4 find, with and without a status filter, and follows renames.
#[tokio::test]
async fn indexed_search_matches_exactly_the_literal_rules() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut subjects = Vec::new();
    let mut consented = BTreeSet::new();
    for (i, name) in NAMES.iter().enumerate() {
        let sssid = format!("S-{i:02}");
        let bday = format!("1980-{:02}-{:02}", 1 + i % 12, 10 + i);
        let r = app
            .post_json(
                "/subject",
                Some(&token),
                &json!({"sssid": sssid, "name": name, "bday": bday}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        if i % 3 == 0 {
            let r = app
                .put_json(
                    &format!("/subject/{sssid}"),
                    Some(&token),
                    &json!({"date_consented": "2026-11-01"}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
            consented.insert(sssid.clone());
        }
        subjects.push((sssid, name.to_string(), bday));
    }

    let check = |subjects: Vec<(String, String, String)>| {
        let (app, token, consented) = (&app, &token, &consented);
        async move {
            for text in SEARCHES {
                // Listed in sssid order (the default), as BTreeSet iterates.
                let want: Vec<_> = expected(&subjects, text, consented, false)
                    .into_iter()
                    .collect();
                let (got, total) = search(app, token, &[("search", text)]).await;
                assert_eq!(got, want, "search {text:?}");
                assert_eq!(total, want.len() as u64, "total of {text:?}");
                // One by one, in both directions: small pages of frequent
                // matches take the store's other plan (walking in sssid
                // order), which must agree, totals included.
                for (direction, ordered) in [
                    ("asc", want.clone()),
                    ("desc", want.iter().rev().cloned().collect()),
                ] {
                    let mut pages = Vec::new();
                    for offset in 0..=ordered.len() {
                        let offset_text = offset.to_string();
                        let (page, total) = search(
                            app,
                            token,
                            &[
                                ("search", text),
                                ("perpage", "1"),
                                ("offset", &offset_text),
                                ("orderdir", direction),
                            ],
                        )
                        .await;
                        assert_eq!(total, want.len() as u64, "total of {text:?} at {offset}");
                        pages.extend(page);
                    }
                    assert_eq!(pages, ordered, "search {text:?} page by page, {direction}");
                }
                let want: Vec<_> = expected(&subjects, text, consented, true)
                    .into_iter()
                    .collect();
                let (got, total) =
                    search(app, token, &[("search", text), ("status", "consented")]).await;
                assert_eq!(got, want, "search {text:?} among consented");
                assert_eq!(
                    total,
                    want.len() as u64,
                    "total of {text:?} among consented"
                );
            }
        }
    };
    check(subjects.clone()).await;

    // Renames reach the index: the new name is found, the old one is not.
    for (sssid, name, _) in subjects.iter_mut().take(4) {
        *name = format!("Renamed {sssid} Quux");
        let r = app
            .put_json(
                &format!("/subject/{sssid}"),
                Some(&token),
                &json!({"name": name}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    check(subjects.clone()).await;
    let (got, _) = search(&app, &token, &[("search", "renamed s-0")]).await;
    assert_eq!(got.len(), 4);
}
