use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{self, OptionalExtension, Row, params, params_from_iter};

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

/// Searches at least this many characters long use the trigram index;
/// shorter ones have no trigram and scan the (narrow) name table.
const TRIGRAM_CHARS: usize = 3;

/// The upper bound of the strings starting with `prefix`, for an index
/// range `prefix <= x < bound` (UTF-8 orders like code points).
fn prefix_bound(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// `text` as a GLOB pattern that matches it literally anywhere: `*`, `?`
/// and `[` become one-character classes.
fn glob_substring(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 8);
    pattern.push('*');
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                pattern.push('[');
                pattern.push(c);
                pattern.push(']');
            }
            _ => pattern.push(c),
        }
    }
    pattern.push('*');
    pattern
}

/// The sssids a text search matches (SPEC section 4: an sssid prefix, a
/// case-insensitive name substring or a bday prefix), each part through an
/// index, so the cost follows the number of matches, not of subjects.
fn search_matches(search: &str, values: &mut Vec<Value>) -> String {
    let n = values.len();
    let (text, bound, name) = (n + 1, n + 2, n + 3);
    values.push(Value::Text(search.to_owned()));
    values.push(Value::Text(prefix_bound(search)));
    let folded = search.to_lowercase();
    let names = if folded.chars().count() >= TRIGRAM_CHARS {
        values.push(Value::Text(glob_substring(&folded)));
        format!(
            "SELECT sssid FROM subject_names WHERE id IN
                 (SELECT rowid FROM subject_names_trigrams WHERE name_folded GLOB ?{name})"
        )
    } else {
        values.push(Value::Text(folded));
        format!("SELECT sssid FROM subject_names WHERE instr(name_folded, ?{name}) > 0")
    };
    format!(
        "SELECT sssid FROM subjects WHERE sssid >= ?{text} AND sssid < ?{bound}
         UNION {names}
         UNION SELECT sssid FROM subjects WHERE bday >= ?{text} AND bday < ?{bound}"
    )
}

/// The rows to list (`FROM ...`) with their filter, and its parameters.
/// User text only ever travels as a parameter.
fn filter(query: &SubjectQuery) -> (String, Vec<Value>, bool) {
    let mut values = Vec::new();
    let searching = query.search.as_deref().is_some_and(|s| !s.is_empty());
    // A search first collects its (few) matches; CROSS JOIN keeps them the
    // outer loop, so the planner does not walk a whole sort index probing
    // for rare matches.
    let mut source = match query.search.as_deref().filter(|s| !s.is_empty()) {
        Some(search) => format!(
            "(WITH matches(sssid) AS MATERIALIZED ({}) SELECT subjects.* FROM matches
               CROSS JOIN subjects ON subjects.sssid = matches.sssid) AS subjects",
            search_matches(search, &mut values)
        ),
        None => "subjects".to_owned(),
    };
    if let Some(status) = query.status {
        source.push_str(&format!(" WHERE status = ?{}", values.len() + 1));
        values.push(Value::Text(status_value(status).to_owned()));
    }
    (source, values, searching)
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
        let (source, values, searching) = filter(query);
        let column = sort_column(query.order_by);
        let direction = if query.descending { "DESC" } else { "ASC" };
        let (limit, offset) = (query.limit as i64, query.offset as i64);
        self.read(move |c| {
            let order = if column == "sssid" {
                format!("sssid {direction}")
            } else {
                format!("{column} {direction}, sssid {direction}")
            };
            let count = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
                c.query_row_cached(
                    &format!("SELECT count(*) FROM {source}"),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
            };
            if searching {
                // The matches are collected once; the page and the count of
                // all matches both come from that one pass.
                let mut stmt = c.prepare_cached(&format!(
                    "WITH page AS MATERIALIZED (
                         SELECT sssid, count(*) OVER () AS total FROM {source}
                         ORDER BY {order} LIMIT {limit} OFFSET {offset})
                     SELECT {SUBJECT_COLUMNS}, (SELECT total FROM page LIMIT 1) FROM subjects
                     WHERE sssid IN (SELECT sssid FROM page)
                     ORDER BY {order}"
                ))?;
                let mut total = 0;
                let items = stmt
                    .query_map(params_from_iter(values.iter()), |row| {
                        Ok((subject_from_row(row)?, row.get::<_, i64>(11)?))
                    })?
                    .map(|item| {
                        item.map(|(subject, all)| {
                            total = all;
                            subject
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // An empty page (past the end, or no match) carries no count.
                if items.is_empty() {
                    total = count(c)?;
                }
                return Ok(Page {
                    items,
                    total: total as u64,
                });
            }
            let total = count(c)?;
            // A deferred join: the inner query pages through the sort index
            // alone (it holds the sssid), so rows skipped by a deep OFFSET
            // are never read; only the page's rows are fetched.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects
                 WHERE sssid IN (SELECT sssid FROM {source}
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
