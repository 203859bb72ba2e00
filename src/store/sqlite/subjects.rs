use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{self, OptionalExtension, Row, params_from_iter};

use super::cached::CachedStatements;
use super::subject_list::{self, SUBJECT_COLUMNS};
use super::{SqliteStore, classify, parse_opt_ts, parse_ts, ts};
use crate::store::{
    StoreResult, SubjectPage, SubjectQuery, SubjectRecord, SubjectStore, name_sort_key,
};

const BDAY_FORMAT: &str = "%Y-%m-%d";

pub(super) fn subject_from_row(row: &Row<'_>) -> rusqlite::Result<SubjectRecord> {
    let bday: String = row.get(2)?;
    Ok(SubjectRecord {
        sssid: row.get(0)?,
        name: row.get(1)?,
        // Empty once erased.
        bday: (!bday.is_empty())
            .then(|| NaiveDate::parse_from_str(&bday, BDAY_FORMAT))
            .transpose()
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        email: row.get(3)?,
        date_invited: parse_opt_ts(row.get(4)?)?,
        date_consented: parse_opt_ts(row.get(5)?)?,
        date_enrolled: parse_opt_ts(row.get(6)?)?,
        date_withdrawn: parse_opt_ts(row.get(7)?)?,
        created: parse_ts(&row.get::<_, String>(8)?)?,
        changed: parse_ts(&row.get::<_, String>(9)?)?,
        version: row.get(10)?,
    })
}

/// The text stored for a birth date: fixed width, so it sorts and
/// prefix-matches like the `YYYY-MM-DD` users type; empty once erased.
fn bday_text(bday: Option<NaiveDate>) -> String {
    bday.map(|d| d.format(BDAY_FORMAT).to_string())
        .unwrap_or_default()
}

/// A subject's values in the order of `SUBJECT_COLUMNS`, then its folded
/// name and its name's sort key: `?1`..`?13`.
fn subject_values(s: SubjectRecord) -> [Value; 13] {
    let name_folded = s.name.to_lowercase();
    let name_sort = name_sort_key(&s.name);
    [
        s.sssid.into(),
        s.name.into(),
        bday_text(s.bday).into(),
        s.email.into(),
        s.date_invited.map(ts).into(),
        s.date_consented.map(ts).into(),
        s.date_enrolled.map(ts).into(),
        s.date_withdrawn.map(ts).into(),
        ts(s.created).into(),
        ts(s.changed).into(),
        s.version.into(),
        name_folded.into(),
        name_sort.into(),
    ]
}

/// Migration 007's hook: the sort key of every existing name, computed
/// in Rust like at every write (SQL has no transliteration).
pub(super) fn backfill_name_sort_keys(
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite_migration::HookResult {
    let names = tx
        .prepare("SELECT sssid, name FROM subjects")?
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut update = tx.prepare("UPDATE subjects SET name_sort = ?2 WHERE sssid = ?1")?;
    for (sssid, name) in names {
        update.execute([&sssid, &name_sort_key(&name)])?;
    }
    Ok(())
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn insert_subject(&self, subject: &SubjectRecord) -> StoreResult<()> {
        let s = subject.clone();
        self.write(move |c| {
            c.execute_cached(
                &format!(
                    "INSERT INTO subjects ({SUBJECT_COLUMNS}, name_folded, name_sort)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params_from_iter(subject_values(s)),
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn subject(&self, sssid: &str) -> StoreResult<Option<SubjectRecord>> {
        self.read_by_key(|c| {
            c.query_row_cached(
                &format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE sssid = ?1"),
                [sssid],
                subject_from_row,
            )
            .optional()
        })
        .await
    }

    async fn replace_subject(
        &self,
        subject: &SubjectRecord,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let s = subject.clone();
        self.write(move |c| {
            let changed = c
                .execute_cached(
                    "UPDATE subjects SET name = ?2, bday = ?3, email = ?4,
                         date_invited = ?5, date_consented = ?6, date_enrolled = ?7,
                         date_withdrawn = ?8, created = ?9, changed = ?10, version = ?11,
                         name_folded = ?12, name_sort = ?13
                     WHERE sssid = ?1 AND version = ?14",
                    params_from_iter(
                        subject_values(s)
                            .into_iter()
                            .chain([Value::from(expected_version)]),
                    ),
                )
                .map_err(classify)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list_subject_page(
        &self,
        query: &SubjectQuery,
        count_limit: u64,
    ) -> StoreResult<SubjectPage> {
        let query = query.clone();
        self.read(move |c| subject_list::list(c, &query, count_limit))
            .await
    }
}
