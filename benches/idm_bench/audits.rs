//! `audit-verify`: how long `idm audit verify` takes on a SQLite trail of
//! N entries, and whether memory stays flat while it reads them.
//!
//! The trail is written straight into a fresh database file in one
//! transaction, sealed by the same code as the store's appends (a quarter
//! of the entries carry personal values, like name changes), so filling a
//! million entries takes seconds. The store then verifies it while a
//! thread samples the process's resident memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{Duration as TimeDelta, Utc};
use idm::store::chain::{GENESIS, Unsealed, personal};
use idm::store::sqlite::SqliteStore;
use idm::store::{AuditRecord, AuditStore};
use serde_json::json;

/// Resident memory of this process in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn entry(i: u64, start: chrono::DateTime<Utc>) -> AuditRecord {
    let sssid = format!("S{:06}", i % 100_000);
    let action = match i % 4 {
        0 => format!(
            "name: {} -> {}",
            personal(&format!("\"Participant {i}\"")),
            personal(&format!("\"Participant {i} Renamed\""))
        ),
        1 => "create".to_owned(),
        2 => format!("consented: {}", start.format("%Y-%m-%dT%H:%M:%SZ")),
        _ => "[Link] create JWT".to_owned(),
    };
    AuditRecord {
        datetime: start + TimeDelta::milliseconds(i as i64),
        action,
        actor: Some("nurse@study.example".into()),
        request_id: Some(format!("{i:016x}")),
        client_ip: Some("192.0.2.10".into()),
        subject: Some(sssid),
        link: None,
        user: None,
        chain: None,
    }
}

fn fill(path: &Path, entries: u64) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO audits (seq, hash, datetime, action, personal, actor, request_id,
                                 client_ip, subject, link, user)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let start = Utc::now() - TimeDelta::days(365);
        let mut previous = GENESIS.to_owned();
        for seq in 1..=entries {
            let sealed = Unsealed::new(&entry(seq, start)).seal(seq, &previous);
            insert.execute(rusqlite::params![
                seq as i64,
                sealed.hash,
                sealed.datetime.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                sealed.template,
                sealed.personal_json(),
                sealed.actor,
                sealed.request_id,
                sealed.client_ip,
                sealed.subject,
                sealed.link,
                sealed.user
            ])?;
            previous = sealed.hash;
        }
    }
    tx.commit()?;
    Ok(())
}

pub async fn audit_verify(entries: u64, folder: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder)?;
    let dir = tempfile::tempdir_in(folder)?;
    let path = dir.path().join("idm.sqlite3");
    drop(SqliteStore::open(&path).await?);
    let started = Instant::now();
    fill(&path, entries)?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let store = SqliteStore::open(&path).await?;
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let report = store.verify_audit_chain().await?;
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().ok();
    anyhow::ensure!(report.ok && report.entries == entries, "{report:?}");
    println!(
        "{}",
        json!({
            "bench": "audit-verify",
            "entries": entries,
            "database_mb": (file_mb * 10.0).round() / 10.0,
            "fill_seconds": (fill_seconds * 100.0).round() / 100.0,
            "verify_seconds": (seconds * 100.0).round() / 100.0,
            "entries_per_second": (entries as f64 / seconds).round(),
            "rss_before_verify_mb": before / 1024,
            "rss_peak_during_verify_mb": peak.load(Ordering::Relaxed) / 1024,
        })
    );
    Ok(())
}
