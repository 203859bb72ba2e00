use async_trait::async_trait;
use rusqlite::{self, Row, params};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_ts, ts};
use crate::store::{AuditCursor, AuditPage, AuditRange, AuditRecord, AuditStore, StoreResult};

const AUDIT_COLUMNS: &str = "datetime, action, actor, request_id, subject, link, user, client_ip";

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        datetime: parse_ts(&row.get::<_, String>(0)?)?,
        action: row.get(1)?,
        actor: row.get(2)?,
        request_id: row.get(3)?,
        subject: row.get(4)?,
        link: row.get(5)?,
        user: row.get(6)?,
        client_ip: row.get(7)?,
    })
}

impl SqliteStore {
    async fn audits_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Vec<AuditRecord>> {
        let value = value.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audits WHERE {column} = ?1 ORDER BY id"
            ))?;
            stmt.query_map([value], audit_from_row)?.collect()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()> {
        let e = entry.clone();
        self.write(move |c| {
            c.execute_cached(
                &format!(
                    "INSERT INTO audits ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    ts(e.datetime),
                    e.action,
                    e.actor,
                    e.request_id,
                    e.subject,
                    e.link,
                    e.user,
                    e.client_ip
                ],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn audits_between(&self, range: &AuditRange) -> StoreResult<AuditPage> {
        let range = range.clone();
        self.read(move |c| {
            // The cursor is the last entry's time and row id: the next page
            // starts after it in the index's order.
            let (after_time, after_id) = match &range.after {
                Some(AuditCursor(text)) => match text.split_once('/') {
                    Some((time, id)) => (time.to_owned(), id.parse::<i64>().unwrap_or(i64::MAX)),
                    None => (String::new(), i64::MAX),
                },
                None => (String::new(), 0),
            };
            let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS}, id FROM audits
                 WHERE datetime >= ?1 AND datetime < ?2 AND (datetime, id) > (?3, ?4)
                 ORDER BY datetime, id LIMIT ?5"
            ))?;
            let mut last = None;
            let entries = stmt
                .query_map(
                    params![ts(range.from), ts(range.to), after_time, after_id, limit],
                    |row| {
                        let entry = audit_from_row(row)?;
                        let id: i64 = row.get(8)?;
                        Ok((entry, id))
                    },
                )?
                .map(|row| {
                    row.map(|(entry, id)| {
                        last = Some(format!("{}/{id}", ts(entry.datetime)));
                        entry
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
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
