//! The subject list at scale, three ways, each printing figures for a
//! person to read (see BENCHMARKS.md), none asserting a speed:
//!
//! - `subject-api`: the JSON subject API of a real server over HTTP with
//!   100,000 subjects in SQLite;
//! - `subject-screens`: the console's study screens the same way, from a
//!   signed-in session;
//! - `subject-queries`: the store's subject queries themselves, on MongoDB
//!   (or SQLite), with many subjects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use chrono::{NaiveDate, Utc};
use idm::app::AppState;
use idm::clock::{OsRandom, random_hex};
use idm::config::StoreLocation;
use idm::service::Context;
use idm::store::{Store, SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus};
use idm::{Application, Config};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tempfile::TempDir;

/// How many subjects `subject-api` and `subject-screens` seed; their pages
/// and searches are chosen for this many.
const SUBJECTS: usize = 100_000;
/// Requests per case; the figure is their mean.
const ROUNDS: u32 = 20;
const USERNAME: &str = "bench@example.org";
const PASSWORD: &str = "benchmark pass phrase";

/// A server on a free loopback port with a fresh SQLite file.
struct Server {
    base: String,
    state: AppState,
    /// Keeps the data folder until the benchmark ends.
    _dir: TempDir,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        // Seeding commits once per subject; keep the file in memory where
        // there is a tmpfs, since what is measured is reading, not fsync.
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let config = Config {
            port: 0,
            data_dir: dir.path().to_path_buf(),
            token_secret: Some(random_hex(&OsRandom, 32).into()),
            link_secret: Some(random_hex(&OsRandom, 32).into()),
            public_url: "http://idm.test".into(),
            ..Config::default()
        };
        let app = Application::build(config).await?;
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        Ok(Self {
            base,
            state,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates the benchmark's staff member as the command line would.
    async fn add_user(&self, admin: bool) -> anyhow::Result<()> {
        self.state
            .services
            .users
            .create(
                &Context::system(),
                idm::service::users::NewUser {
                    username: USERNAME.into(),
                    password: PASSWORD.into(),
                    admin,
                },
            )
            .await?;
        Ok(())
    }
}

/// Seeds `count` subjects (a multiple of 1,000) straight through the store,
/// 100 writers at a time: names from four surnames, births spread over 80
/// years, every subject invited, every second consented, every fourth
/// enrolled, and `changed` one millisecond apart so "recent first" has a
/// stable order.
async fn seed_subjects(store: Arc<dyn Store>, count: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..count / 1_000 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..1_000 {
                let n = chunk * 1_000 + i;
                let subject = SubjectRecord {
                    sssid: format!("S{n:06}"),
                    name: format!("Person {n} {}", ["Smith", "Jones", "Müller", "Ng"][n % 4]),
                    bday: Some(birthday(1930, 80, n)),
                    email: None,
                    date_invited: Some(now),
                    date_consented: (n % 2 == 0).then_some(now),
                    date_enrolled: (n % 4 == 0).then_some(now),
                    date_withdrawn: None,
                    created: now,
                    changed: now + chrono::Duration::milliseconds(n as i64),
                    version: 1,
                };
                store.insert_subject(&subject).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    println!("seeded {count} subjects in {:?}", started.elapsed());
    Ok(())
}

/// The `n`th subject's birthday: years from `first_year` over `years`
/// years, every month, days 1 to 28.
fn birthday(first_year: i32, years: usize, n: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(
        first_year + (n % years) as i32,
        1 + (n % 12) as u32,
        1 + (n % 28) as u32,
    )
    .expect("days 1 to 28 exist in every month")
}

fn print_figures(figures: &[(&str, Duration)]) {
    for (label, per_request) in figures {
        println!(
            "{label:>28}: {:>8.2} ms per request",
            per_request.as_secs_f64() * 1000.0
        );
    }
}

/// How long listing, searching and fetching take through `GET /subject`
/// with 100,000 subjects.
pub async fn subject_api() -> anyhow::Result<()> {
    let server = Server::start().await?;
    seed_subjects(server.state.services.deps.store.clone(), SUBJECTS).await?;
    server.add_user(true).await?;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(server.url("/auth"))
        .json(&json!({"username": USERNAME, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("the login answer has an access token")?;
    let get = |path: &str| {
        client
            .get(server.url(path))
            .header("Authorization", format!("JWT {token}"))
            .send()
    };

    let cases = [
        ("first page by sssid", "/subject?perpage=50"),
        (
            "page 1000 by name desc",
            "/subject?offset=50000&perpage=50&ordercol=name&orderdir=DESC",
        ),
        (
            "last page by created",
            "/subject?offset=99950&perpage=50&ordercol=created",
        ),
        (
            "status=consented by bday",
            "/subject?status=consented&ordercol=bday",
        ),
        ("name search 'müller'", "/subject?search=m%C3%BCller"),
        ("sssid prefix search", "/subject?search=S09999"),
        ("fetch one by sssid", "/subject/S054321"),
    ];
    let mut figures = Vec::new();
    for (label, path) in cases {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let r = get(path).await?;
            ensure!(r.status() == StatusCode::OK, "{path}: {}", r.status());
            r.bytes().await?;
        }
        figures.push((label, started.elapsed() / ROUNDS));
    }
    print_figures(&figures);

    // The search measured is exact: every fourth subject is a Müller.
    let r = get("/subject?search=m%C3%BCller").await?;
    let total = r.headers()["x-total-count"].to_str()?.to_owned();
    ensure!(total == "25000", "'müller' matched {total} subjects");
    Ok(())
}

/// How long the list and search screens take with 100,000 subjects, from a
/// signed-in (non-admin) session, as full pages and as htmx fragments.
pub async fn subject_screens() -> anyhow::Result<()> {
    let server = Server::start().await?;
    seed_subjects(server.state.services.deps.store.clone(), SUBJECTS).await?;
    server.add_user(false).await?;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()?;

    // Sign in through the form, as a browser does.
    let login_page = browser
        .get(server.url("/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_token(&login_page).context("the login page has a CSRF token")?;
    let signed_in = browser
        .post(server.url("/login"))
        .header("Origin", &server.base)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    ensure!(
        signed_in.status() == StatusCode::SEE_OTHER,
        "sign-in failed: {}",
        signed_in.status()
    );

    let cases: [(&str, &str, Option<&str>); 9] = [
        ("start page (recent 10)", "/home", None),
        ("list page (recent first)", "/subjects", None),
        (
            "list fragment, page 2000",
            "/subjects?sort=changed&dir=desc&page=2000",
            Some("subjects-list"),
        ),
        (
            "sorted by name, desc",
            "/subjects?sort=name&dir=desc",
            Some("subjects-list"),
        ),
        (
            "status=enrolled",
            "/subjects?status=enrolled",
            Some("subjects-list"),
        ),
        (
            "search name 'müller'",
            "/subjects?q=m%C3%BCller",
            Some("subjects-list"),
        ),
        (
            "search name 'person 4242'",
            "/subjects?q=person%204242",
            Some("subjects-list"),
        ),
        (
            "search sssid prefix",
            "/subjects?q=S09999",
            Some("subjects-list"),
        ),
        ("subject page", "/subjects/S054321", None),
    ];
    let mut figures = Vec::new();
    for (label, path, target) in cases {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let mut request = browser.get(server.url(path));
            if let Some(target) = target {
                // A fragment request from the subjects list, as htmx sends it.
                request = request
                    .header("HX-Request", "true")
                    .header("HX-Target", target)
                    .header("HX-Current-URL", server.url("/subjects"));
            }
            let r = request.send().await?;
            ensure!(r.status() == StatusCode::OK, "{path}: {}", r.status());
            r.bytes().await?;
        }
        figures.push((label, started.elapsed() / ROUNDS));
    }
    print_figures(&figures);
    Ok(())
}

/// The CSRF token in a page's `csrf-token` meta tag.
fn csrf_token(page: &str) -> Option<String> {
    let marker = r#"name="csrf-token" content=""#;
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}

/// How long typical subject queries take in the store itself with `count`
/// subjects: on a fresh database of the MongoDB server at `mongodb_url`,
/// dropped afterwards, or else on a fresh SQLite file.
pub async fn subject_queries(count: usize, mongodb_url: Option<String>) -> anyhow::Result<()> {
    ensure!(count > 0, "--subjects must be at least 1");
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
    let database = format!("idm_bench_{}", random_hex(&OsRandom, 8));
    let location = match &mongodb_url {
        Some(url) => StoreLocation::Mongo {
            url: url.clone(),
            database: database.clone(),
        },
        None => StoreLocation::Sqlite(dir.path().join("idm.sqlite3")),
    };
    let store = idm::store::open(&location, &Default::default()).await?;
    let measured = measure_subject_queries(store, count).await;
    if let Some(url) = &mongodb_url {
        mongodb::Client::with_uri_str(url)
            .await?
            .database(&database)
            .drop()
            .await
            .with_context(|| format!("dropping the benchmark's database {database}"))?;
    }
    measured
}

async fn measure_subject_queries(store: Arc<dyn Store>, count: usize) -> anyhow::Result<()> {
    let t = Utc::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (worker..count).step_by(16) {
                let subject = SubjectRecord {
                    sssid: format!("S{i:07}"),
                    name: format!("Participant {i} Name{}", i % 997),
                    bday: Some(birthday(1940, 60, i)),
                    email: None,
                    date_invited: Some(t),
                    date_consented: (i % 2 == 0).then_some(t),
                    date_enrolled: (i % 4 == 0).then_some(t),
                    date_withdrawn: None,
                    created: t + chrono::Duration::milliseconds(i as i64),
                    changed: t,
                    version: 0,
                };
                store.insert_subject(&subject).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    println!("inserted {count} subjects in {:?}", started.elapsed());

    let query = |search: Option<&str>, status, order_by, descending| SubjectQuery {
        search: search.map(str::to_owned),
        status,
        order_by,
        descending,
        offset: 0,
        limit: 50,
    };
    let cases = [
        (
            "first page by sssid",
            query(None, None, SubjectColumn::Sssid, false),
        ),
        (
            "first page by name desc",
            query(None, None, SubjectColumn::Name, true),
        ),
        (
            "first page by created desc",
            query(None, None, SubjectColumn::Created, true),
        ),
        (
            "sssid prefix search",
            query(Some("S00001"), None, SubjectColumn::Sssid, false),
        ),
        (
            "name substring search",
            query(Some("name99"), None, SubjectColumn::Name, false),
        ),
        (
            "status enrolled",
            query(
                None,
                Some(SubjectStatus::Enrolled),
                SubjectColumn::Sssid,
                false,
            ),
        ),
    ];
    let lookup = Instant::now();
    for i in 0..100 {
        store.subject(&format!("S{:07}", i * 7 % count)).await?;
    }
    println!("lookup by sssid: {:?} per call", lookup.elapsed() / 100);
    for (name, q) in cases {
        let started = Instant::now();
        let page = store.list_subjects(&q).await?;
        println!(
            "{name}: {:?} ({} of {} matches)",
            started.elapsed(),
            page.items.len(),
            page.total
        );
    }
    Ok(())
}
