use async_trait::async_trait;
use rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::chain::{
    self, BrokenEntry, ChainVerifier, PersonalValue, SealedAudit, Unsealed, personal_from_json,
    personal_to_json,
};
use crate::store::{AuditCursor, AuditPage, AuditRange, AuditRecord, AuditStore, StoreResult};

const AUDIT_COLUMNS: &str =
    "seq, hash, datetime, action, personal, actor, request_id, client_ip, subject, link, user";

/// A stored entry, or what is wrong with it when it cannot be read as one
/// (a tampered date, malformed personal values).
fn sealed_from_row(row: &Row<'_>) -> rusqlite::Result<Result<SealedAudit, Box<BrokenEntry>>> {
    let seq: i64 = row.get(0)?;
    let datetime: String = row.get(2)?;
    let Ok(datetime) = parse_ts(&datetime) else {
        return Ok(Err(Box::new(BrokenEntry::unreadable(
            Some(seq),
            format!("the date {datetime:?} is not a timestamp"),
        ))));
    };
    let personal = match personal_from_json(row.get::<_, Option<String>>(4)?.as_deref()) {
        Ok(p) => p,
        Err(problem) => return Ok(Err(Box::new(BrokenEntry::unreadable(Some(seq), problem)))),
    };
    let Ok(seq) = u64::try_from(seq) else {
        return Ok(Err(Box::new(BrokenEntry::unreadable(
            Some(seq),
            "the sequence number is negative",
        ))));
    };
    Ok(Ok(SealedAudit {
        seq,
        hash: row.get(1)?,
        datetime,
        template: row.get(3)?,
        personal,
        actor: row.get(5)?,
        request_id: row.get(6)?,
        client_ip: row.get(7)?,
        subject: row.get(8)?,
        link: row.get(9)?,
        user: row.get(10)?,
    }))
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    match sealed_from_row(row)? {
        Ok(sealed) => Ok(sealed.into_record()),
        Err(broken) => Err(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            broken.problem.into(),
        )),
    }
}

/// Appends `entry` after the last entry, in the transaction that reads
/// it: the write lock of an IMMEDIATE transaction is SQLite's one writer,
/// so no other connection or process can take the same place.
pub(super) fn append_sealed(
    tx: &rusqlite::Transaction<'_>,
    entry: &Unsealed,
) -> rusqlite::Result<()> {
    let (last_seq, last_hash) = tx
        .query_row_cached(
            "SELECT seq, hash FROM audits ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .unwrap_or((0, chain::GENESIS.to_owned()));
    let sealed = entry.seal(last_seq as u64 + 1, &last_hash);
    tx.execute_cached(
        &format!(
            "INSERT INTO audits ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            sealed.seq as i64,
            sealed.hash,
            ts(sealed.datetime),
            sealed.template,
            sealed.personal_json(),
            sealed.actor,
            sealed.request_id,
            sealed.client_ip,
            sealed.subject,
            sealed.link,
            sealed.user
        ],
    )?;
    Ok(())
}

/// Migration 008's hook: chains the entries written before the chain, in
/// the order they were written, marking the personal values in their
/// texts so that those can be erased too.
pub(super) fn chain_existing_entries(
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite_migration::HookResult {
    {
        let mut old = tx.prepare(
            "SELECT datetime, action, actor, request_id, client_ip, subject, link, user
             FROM audits_unchained ORDER BY id",
        )?;
        let mut rows = old.query([])?;
        while let Some(row) = rows.next()? {
            let action: String = row.get(1)?;
            let entry = AuditRecord {
                datetime: parse_ts(&row.get::<_, String>(0)?)?,
                action: chain::mark_personal_in_old_text(&action),
                actor: row.get(2)?,
                request_id: row.get(3)?,
                client_ip: row.get(4)?,
                subject: row.get(5)?,
                link: row.get(6)?,
                user: row.get(7)?,
                chain: None,
            };
            append_sealed(tx, &Unsealed::new(&entry))?;
        }
    }
    tx.execute_batch("DROP TABLE audits_unchained")?;
    Ok(())
}

/// Erases the personal values of `sssid`'s entries; returns how many
/// entries held some.
fn erase_values(tx: &rusqlite::Transaction<'_>, sssid: &str) -> rusqlite::Result<u64> {
    let held: Vec<(i64, String)> = tx
        .prepare("SELECT seq, personal FROM audits WHERE subject = ?1 AND personal IS NOT NULL")?
        .query_map([sssid], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut erased = 0;
    for (seq, personal) in held {
        let values = personal_from_json(Some(&personal)).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
        })?;
        if values.iter().all(PersonalValue::is_erased) {
            continue;
        }
        let kept: Vec<_> = values.iter().map(PersonalValue::erased).collect();
        tx.execute(
            "UPDATE audits SET personal = ?2 WHERE seq = ?1",
            rusqlite::params![seq, personal_to_json(&kept)],
        )?;
        erased += 1;
    }
    Ok(erased)
}

/// After an erasure, leaves no copy of the erased values in the database
/// files: the name's trigrams live on in the search index's older
/// segments until they are merged ('optimize'), and the WAL keeps old
/// page images until it is checkpointed and truncated. Freed space is
/// zeroed by `secure_delete` (mod.rs). A checkpoint can only finish when
/// no reader holds an older snapshot, so it is tried a few times.
fn scrub(c: &rusqlite::Connection) -> rusqlite::Result<bool> {
    let has_trigrams: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'subject_names_trigrams')",
        [],
        |r| r.get(0),
    )?;
    if has_trigrams {
        c.execute_batch(
            "INSERT INTO subject_names_trigrams (subject_names_trigrams) VALUES ('optimize')",
        )?;
    }
    for attempt in 0..20 {
        let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(10 * (attempt + 1)));
    }
    Ok(false)
}

impl SqliteStore {
    async fn audits_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Vec<AuditRecord>> {
        let value = value.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audits WHERE {column} = ?1 ORDER BY seq"
            ))?;
            stmt.query_map([value], audit_from_row)?.collect()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()> {
        let entry = Unsealed::new(entry);
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            append_sealed(&tx, &entry).map_err(classify)?;
            tx.commit().map_err(classify)
        })
        .await
    }

    async fn verify_audit_chain_part(
        &self,
        mut verifier: ChainVerifier,
        limit: u64,
    ) -> StoreResult<ChainVerifier> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audits WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let last = i64::try_from(verifier.last_seq()).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![last, i64::try_from(limit).unwrap_or(i64::MAX)])?;
            let mut read = 0;
            while let Some(row) = rows.next()? {
                read += 1;
                let entry = sealed_from_row(row)?;
                if !verifier.check(entry.as_ref().map_err(|b| &**b)) {
                    return Ok(verifier);
                }
            }
            if read < limit {
                let stored: i64 = c.query_row("SELECT count(*) FROM audits", [], |r| r.get(0))?;
                verifier.end_of_trail(u64::try_from(stored).unwrap_or(0));
            }
            Ok(verifier)
        })
        .await
    }

    async fn erase_personal_values(&self, sssid: &str) -> StoreResult<u64> {
        let sssid = sssid.to_owned();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let erased = erase_values(&tx, &sssid).map_err(classify)?;
            tx.commit().map_err(classify)?;
            if !scrub(c).map_err(classify)? {
                tracing::warn!(
                    "readers kept the WAL from being emptied after an erasure; \
                     the next checkpoint removes the erased data from it"
                );
            }
            Ok(erased)
        })
        .await
    }

    async fn audits_between(&self, range: &AuditRange) -> StoreResult<AuditPage> {
        let range = range.clone();
        self.read(move |c| {
            // The cursor is the last entry's time and sequence number: the
            // next page starts after it in the index's order.
            let (after_time, after_seq) = match &range.after {
                Some(AuditCursor(text)) => match text.split_once('/') {
                    Some((time, seq)) => (time.to_owned(), seq.parse::<i64>().unwrap_or(i64::MAX)),
                    None => (String::new(), i64::MAX),
                },
                None => (String::new(), 0),
            };
            let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audits
                 WHERE datetime >= ?1 AND datetime < ?2 AND (datetime, seq) > (?3, ?4)
                 ORDER BY datetime, seq LIMIT ?5"
            ))?;
            let entries = stmt
                .query_map(
                    params![ts(range.from), ts(range.to), after_time, after_seq, limit],
                    audit_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let last = entries.last().and_then(|entry| {
                let seq = entry.chain.as_ref()?.seq;
                Some(format!("{}/{seq}", ts(entry.datetime)))
            });
            let full = entries.len() as u64 == range.limit;
            Ok(AuditPage {
                entries,
                next: last.filter(|_| full).map(AuditCursor),
            })
        })
        .await
    }

    async fn audits_for_subject(&self, sssid: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("subject", sssid).await
    }

    async fn audits_for_user(&self, username: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("user", username).await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use rusqlite_migration::Migrations;

    use super::super::migration_steps;
    use super::*;

    /// Entries written before migration 008 are chained in the order they
    /// were written, read as before, and their personal values are stored
    /// apart.
    #[tokio::test]
    async fn migration_008_chains_the_existing_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idm.sqlite3");
        let old = [
            ("create", Some("S1"), None),
            (
                r#"name: "Ada Lovelace"; bday: "1971-03-14""#,
                Some("S1"),
                None,
            ),
            ("login", None, Some("bob@example.org")),
            ("consented: 2026-01-01T00:00:00Z", Some("S1"), None),
        ];
        {
            let mut conn = Connection::open(&path).unwrap();
            let mut before = migration_steps();
            before.truncate(7);
            Migrations::new(before).to_latest(&mut conn).unwrap();
            for (action, subject, user) in old {
                conn.execute(
                    "INSERT INTO audits (datetime, action, subject, user, actor)
                     VALUES ('2026-01-01T00:00:00.000000Z', ?1, ?2, ?3, 'admin@example.org')",
                    rusqlite::params![action, subject, user],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let report = store.verify_audit_chain().await.unwrap();
        assert!(report.ok && report.entries == 4, "{report:?}");
        let trail = store.audits_for_subject("S1").await.unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, [old[0].0, old[1].0, old[3].0]);
        let seqs: Vec<_> = trail
            .iter()
            .map(|e| e.chain.as_ref().unwrap().seq)
            .collect();
        assert_eq!(seqs, [1, 2, 4]);
        let template: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT action FROM audits WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        assert!(
            !template.contains("Ada") && !template.contains("1971"),
            "{template}"
        );
    }
}
