//! Benchmark helpers, one binary so the benchmark links once. For
//! `scripts/bench.sh`:
//!
//! - `seed`: fills the configured store (`IDM_*` settings, SQLite or
//!   MongoDB) with consented subjects, one issued link each, through the
//!   library's `Store` trait, and writes the links' JWTs to a file so the
//!   load generator can redeem fresh links at `/establish`;
//! - `baseline-server`: baseline (a), a minimal axum server that answers
//!   `GET /subject/{sssid}` with fixed bytes from memory: the HTTP and
//!   framework limit of this machine;
//! - `argon2`: baseline (b), the raw argon2id verification rate with the
//!   configured parameters on all cores: the login limit.
//!
//! Each prints one JSON line on stdout for the script to collect.
//!
//! And on their own (`cargo bench --bench idm_bench -- <command>`), the
//! subject list at scale (`scale.rs`): `subject-api`, `subject-screens`
//! and `subject-queries` print a table of timings; `audit-verify`
//! (`audits.rs`) times verifying a trail of a million audit entries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a helper script: a failed unwrap stops it with its message

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Router;
use axum::http::header;
use axum::routing::get;
use chrono::{NaiveDate, SubsecRound as _, Utc};
use clap::{Parser, Subcommand};
use futures::StreamExt as _;
use idm::Config;
use idm::clock::{OsRandom, random_hex};
use idm::service::link_tokens::{LINK_ALGORITHM, LinkClaims, LinkTokens};
use idm::store::{LinkRecord, SubjectRecord};
use serde_json::json;

mod audits;
mod scale;

#[derive(Parser)]
#[command(
    about = "Benchmark helpers for scripts/bench.sh, and the subject list at scale (see BENCHMARKS.md)"
)]
struct Cli {
    /// Passed by `cargo bench`, after the command's own arguments; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Inserts subjects S000001..S<N>, each consented, the first ones
    /// with issued links.
    Seed {
        #[arg(long)]
        subjects: u64,
        /// So that `/establish` has a fresh link for every request even
        /// with few subjects.
        #[arg(long, default_value_t = 1)]
        links_per_subject: u64,
        /// Only subjects S000001..S<this> get links (all by default): a
        /// million links would only make the token file and the seeding
        /// longer, not `/establish` different.
        #[arg(long)]
        linked_subjects: Option<u64>,
        /// Where to write the links' JWTs, one a line.
        #[arg(long)]
        link_tokens: PathBuf,
    },
    /// Serves `body` for `GET /subject/{sssid}` until killed.
    BaselineServer {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        body: PathBuf,
    },
    /// Verifies one password on every core for `seconds` and reports the rate.
    Argon2 {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Times the subject API (`GET /subject`) with 100,000 subjects in SQLite.
    SubjectApi,
    /// Times the study screens (`/subjects`) with 100,000 subjects in SQLite.
    SubjectScreens,
    /// Times the store's subject queries with many subjects.
    SubjectQueries {
        #[arg(long, default_value_t = 100_000)]
        subjects: usize,
        /// A MongoDB server to run on (in a fresh database, dropped
        /// afterwards); without it, a fresh SQLite file.
        #[arg(long)]
        mongodb_url: Option<String>,
    },
    /// Verifies a SQLite audit trail of N entries (written first) and
    /// reports the time and the memory while verifying.
    AuditVerify {
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Where the temporary database goes (removed afterwards).
        #[arg(long, default_value = "target/bench")]
        folder: PathBuf,
    },
}

/// Name parts for seeded subjects; `scripts/bench-search.lua` searches for
/// fragments of them.
const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin",
    "Lukas", "Maria", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tanja", "Uwe", "Vera", "Walter",
    "Xenia", "Yusuf", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Meier",
    "Schmidt",
    "Keller",
    "Brunner",
    "Baumann",
    "Fischer",
    "Weber",
    "Huber",
    "Steiner",
    "Gerber",
    "Widmer",
    "Frei",
    "Moser",
    "Graf",
    "Wyss",
    "Roth",
    "Lehmann",
    "Kaufmann",
    "Suter",
    "Zimmermann",
    "Bachmann",
    "Hofmann",
    "Lang",
    "Berger",
    "Sommer",
    "Ammann",
    "Marti",
    "Kunz",
    "Egli",
    "Vogel",
    "Ziegler",
    "Lanz",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            eprintln!(
                "nothing to do: the benchmark runs through scripts/bench.sh; see BENCHMARKS.md for the others"
            );
            Ok(())
        }
        Some(Command::Seed {
            subjects,
            links_per_subject,
            linked_subjects,
            link_tokens,
        }) => {
            let linked = linked_subjects.unwrap_or(subjects);
            seed(subjects, links_per_subject, linked, &link_tokens).await
        }
        Some(Command::BaselineServer { port, body }) => baseline_server(port, &body).await,
        Some(Command::Argon2 { seconds }) => argon2_rate(Duration::from_secs(seconds)),
        Some(Command::SubjectApi) => scale::subject_api().await,
        Some(Command::SubjectScreens) => scale::subject_screens().await,
        Some(Command::SubjectQueries {
            subjects,
            mongodb_url,
        }) => scale::subject_queries(subjects, mongodb_url).await,
        Some(Command::AuditVerify { entries, folder }) => {
            audits::audit_verify(entries, &folder).await
        }
    }
}

/// How many inserts are in flight at once: enough to keep the store busy
/// while the next records are prepared.
const SEED_CONCURRENCY: usize = 16;

async fn seed(
    count: u64,
    links_per_subject: u64,
    linked_subjects: u64,
    tokens_path: &std::path::Path,
) -> anyhow::Result<()> {
    let config = Config::load(None)?;
    let secrets = config.resolve_secrets()?;
    let store = idm::store::open(&config.store_location()?, &config.database_timeouts()).await?;
    let signer = Arc::new(LinkTokens::new(&secrets.link_secret)?);
    let lifetime = chrono::Duration::seconds(config.link_lifetime_secs as i64);
    let (issuer, audience) = (config.link_issuer(), config.link_audience());
    let started = Instant::now();
    let now = Utc::now();
    let issued_at = now.trunc_subsecs(0);

    let tokens = futures::stream::iter(1..=count)
        .map(|i| {
            let store = store.clone();
            let signer = signer.clone();
            let (issuer, audience) = (issuer.clone(), audience.clone());
            async move {
                let first = FIRST_NAMES[(i as usize) % FIRST_NAMES.len()];
                let last = LAST_NAMES[(i as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
                let bday = NaiveDate::from_ymd_opt(
                    1940 + (i % 60) as i32,
                    1 + (i % 12) as u32,
                    1 + (i % 28) as u32,
                )
                .expect("valid date");
                let subject = SubjectRecord {
                    sssid: format!("S{i:06}"),
                    name: format!("{first} {last}"),
                    bday: Some(bday),
                    email: Some(format!("subject{i}@example.org")),
                    date_invited: Some(now),
                    date_consented: Some(now),
                    date_enrolled: None,
                    date_withdrawn: None,
                    created: now,
                    changed: now,
                    version: 1,
                };
                store.insert_subject(&subject).await?;
                let mut tokens = Vec::new();
                let links = if i <= linked_subjects {
                    links_per_subject
                } else {
                    0
                };
                for _ in 0..links {
                    let link = LinkRecord {
                        id: random_hex(&OsRandom, 16),
                        sssid: subject.sssid.clone(),
                        iss: issuer.clone(),
                        aud: audience.clone(),
                        algorithm: LINK_ALGORITHM.into(),
                        created: now,
                        changed: now,
                        issued_at: Some(issued_at),
                        exp: Some(issued_at + lifetime),
                        linked_on: None,
                        linked_to: None,
                        linked_system: None,
                        withdrawn_on: None,
                        version: 1,
                    };
                    store.insert_link(&link).await?;
                    tokens.push(signer.sign(&LinkClaims {
                        jti: link.id.clone(),
                        iss: link.iss.clone(),
                        aud: link.aud.clone(),
                        iat: issued_at.timestamp(),
                        exp: (issued_at + lifetime).timestamp(),
                        sub: subject.name.clone(),
                        birthdate: bday.format("%Y-%m-%d").to_string(),
                    })?);
                }
                anyhow::Ok(tokens)
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;

    let mut out = std::io::BufWriter::new(
        std::fs::File::create(tokens_path)
            .with_context(|| format!("cannot create {}", tokens_path.display()))?,
    );
    for subject_tokens in tokens {
        for token in subject_tokens? {
            writeln!(out, "{token}")?;
        }
    }
    out.flush()?;
    println!(
        "{}",
        json!({"seeded_subjects": count, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

async fn baseline_server(port: u16, body: &std::path::Path) -> anyhow::Result<()> {
    let bytes = axum::body::Bytes::from(
        std::fs::read(body).with_context(|| format!("cannot read {}", body.display()))?,
    );
    let app = Router::new().route(
        "/subject/{sssid}",
        get(move || {
            let bytes = bytes.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn argon2_rate(duration: Duration) -> anyhow::Result<()> {
    let config = Config::load(None)?;
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::encode_b64(b"benchmark-salt-16").map_err(anyhow::Error::msg)?;
    let hash = hasher
        .hash_password(b"correct horse battery", &salt)
        .map_err(anyhow::Error::msg)?
        .to_string();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let verified = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            let (verified, hash, params) = (verified.clone(), hash.as_str(), params.clone());
            scope.spawn(move || {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let parsed = PasswordHash::new(hash).expect("a valid PHC string");
                while started.elapsed() < duration {
                    argon
                        .verify_password(b"correct horse battery", &parsed)
                        .expect("the password matches");
                    verified.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let count = verified.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "argon2_verifications_per_sec": count as f64 / seconds,
            "cores": cores,
            "memory_kib": config.argon2_memory_kib,
            "iterations": config.argon2_iterations,
            "parallelism": config.argon2_parallelism,
        })
    );
    Ok(())
}
