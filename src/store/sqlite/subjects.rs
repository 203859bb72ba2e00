use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_sqlite::rusqlite::types::Value;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params, params_from_iter};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_opt_ts, parse_ts, ts};
use crate::store::{
    Page, StoreResult, SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore,
};

const SUBJECT_COLUMNS: &str = "sssid, name, bday, email, date_invited, date_consented, \
     date_enrolled, date_withdrawn, created, changed, version";

const BDAY_FORMAT: &str = "%Y-%m-%d";

fn subject_from_row(row: &Row<'_>) -> rusqlite::Result<SubjectRecord> {
    let bday: String = row.get(2)?;
    Ok(SubjectRecord {
        sssid: row.get(0)?,
        name: row.get(1)?,
        bday: NaiveDate::parse_from_str(&bday, BDAY_FORMAT).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
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
/// prefix-matches like the `YYYY-MM-DD` users type.
fn bday_text(bday: NaiveDate) -> String {
    bday.format(BDAY_FORMAT).to_string()
}

fn sort_column(column: SubjectColumn) -> &'static str {
    match column {
        SubjectColumn::Sssid => "sssid",
        SubjectColumn::Name => "name_folded",
        SubjectColumn::Bday => "bday",
        SubjectColumn::Created => "created",
        SubjectColumn::Changed => "changed",
        SubjectColumn::DateInvited => "date_invited",
        SubjectColumn::DateConsented => "date_consented",
        SubjectColumn::DateEnrolled => "date_enrolled",
        SubjectColumn::DateWithdrawn => "date_withdrawn",
    }
}

/// The value of the generated `status` column.
fn status_value(status: SubjectStatus) -> &'static str {
    match status {
        SubjectStatus::Invited => "invited",
        SubjectStatus::Consented => "consented",
        SubjectStatus::Enrolled => "enrolled",
        SubjectStatus::Withdrawn => "withdrawn",
    }
}

/// The WHERE clause and its parameters, and whether it holds a text search.
/// User text only ever travels as a parameter, and `instr()` compares it
/// literally, so no character in it is special.
fn filter(query: &SubjectQuery) -> (String, Vec<Value>, bool) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let search = query.search.as_deref().filter(|s| !s.is_empty());
    let searching = search.is_some();
    if let Some(search) = search {
        conditions.push(
            "(instr(sssid, ?1) = 1 OR instr(name_folded, ?2) > 0 OR instr(bday, ?1) = 1)"
                .to_owned(),
        );
        values.push(Value::Text(search.to_owned()));
        values.push(Value::Text(search.to_lowercase()));
    }
    if let Some(status) = query.status {
        conditions.push(format!("status = ?{}", values.len() + 1));
        values.push(Value::Text(status_value(status).to_owned()));
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (clause, values, searching)
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn insert_subject(&self, subject: &SubjectRecord) -> StoreResult<()> {
        let s = subject.clone();
        self.write(move |c| {
            c.execute_cached(
                &format!(
                    "INSERT INTO subjects ({SUBJECT_COLUMNS}, name_folded)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    s.sssid,
                    s.name,
                    bday_text(s.bday),
                    s.email,
                    s.date_invited.map(ts),
                    s.date_consented.map(ts),
                    s.date_enrolled.map(ts),
                    s.date_withdrawn.map(ts),
                    ts(s.created),
                    ts(s.changed),
                    s.version,
                    s.name.to_lowercase(),
                ],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn subject(&self, sssid: &str) -> StoreResult<Option<SubjectRecord>> {
        let sssid = sssid.to_owned();
        self.read(move |c| {
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
                    "UPDATE subjects SET name = ?2, name_folded = ?3, bday = ?4, email = ?5,
                         date_invited = ?6, date_consented = ?7, date_enrolled = ?8,
                         date_withdrawn = ?9, created = ?10, changed = ?11, version = ?12
                     WHERE sssid = ?1 AND version = ?13",
                    params![
                        s.sssid,
                        s.name,
                        s.name.to_lowercase(),
                        bday_text(s.bday),
                        s.email,
                        s.date_invited.map(ts),
                        s.date_consented.map(ts),
                        s.date_enrolled.map(ts),
                        s.date_withdrawn.map(ts),
                        ts(s.created),
                        ts(s.changed),
                        s.version,
                        expected_version,
                    ],
                )
                .map_err(classify)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list_subjects(&self, query: &SubjectQuery) -> StoreResult<Page<SubjectRecord>> {
        let (clause, values, searching) = filter(query);
        // A text search reads every row anyway (substrings cannot use an
        // index). Walking a sort index row by row instead would visit the
        // whole table through random lookups when matches are rare; one
        // sequential scan with a bounded top-N sort is fast in every case.
        let source = if searching {
            "subjects NOT INDEXED"
        } else {
            "subjects"
        };
        let column = sort_column(query.order_by);
        let direction = if query.descending { "DESC" } else { "ASC" };
        let (limit, offset) = (query.limit as i64, query.offset as i64);
        self.read(move |c| {
            let total: i64 = c.query_row_cached(
                &format!("SELECT count(*) FROM {source} {clause}"),
                params_from_iter(values.iter()),
                |r| r.get(0),
            )?;
            let order = if column == "sssid" {
                format!("sssid {direction}")
            } else {
                format!("{column} {direction}, sssid {direction}")
            };
            // A deferred join: the inner query pages through the sort index
            // alone (it holds the sssid), so rows skipped by a deep OFFSET
            // are never read; only the page's rows are fetched.
            let mut stmt = c.prepare(&format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects
                 WHERE sssid IN (SELECT sssid FROM {source} {clause}
                                 ORDER BY {order} LIMIT {limit} OFFSET {offset})
                 ORDER BY {order}"
            ))?;
            let items = stmt
                .query_map(params_from_iter(values.iter()), subject_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page {
                items,
                total: total as u64,
            })
        })
        .await
    }
}
