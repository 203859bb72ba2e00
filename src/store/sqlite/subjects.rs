use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{self, OptionalExtension, Row, named_params, params_from_iter};

use super::cached::CachedStatements;
use super::{SqliteStore, classify, parse_opt_ts, parse_ts, ts};
use crate::store::{
    Page, StoreResult, SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore,
    name_sort_key,
};

const SUBJECT_COLUMNS: &str = "sssid, name, bday, email, date_invited, date_consented, \
     date_enrolled, date_withdrawn, created, changed, version";

const BDAY_FORMAT: &str = "%Y-%m-%d";

fn subject_from_row(row: &Row<'_>) -> rusqlite::Result<SubjectRecord> {
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

fn sort_column(column: SubjectColumn) -> &'static str {
    match column {
        SubjectColumn::Sssid => "sssid",
        SubjectColumn::Name => "name_sort",
        SubjectColumn::Bday => "bday",
        SubjectColumn::Created => "created",
        SubjectColumn::Changed => "changed",
        SubjectColumn::DateInvited => "date_invited",
        SubjectColumn::DateConsented => "date_consented",
        SubjectColumn::DateEnrolled => "date_enrolled",
        SubjectColumn::DateWithdrawn => "date_withdrawn",
    }
}

/// The value of the generated `status` column (migration 002), whose
/// `CASE` mirrors the domain rule `Journey::standing` in
/// `src/domain/study.rs` (NULL before any step: `Standing::Pending`); the
/// store conformance suite checks they agree.
fn status_value(status: SubjectStatus) -> Option<&'static str> {
    match status {
        SubjectStatus::NotInvited => None,
        SubjectStatus::Invited => Some("invited"),
        SubjectStatus::Consented => Some("consented"),
        SubjectStatus::Enrolled => Some("enrolled"),
        SubjectStatus::Withdrawn => Some("withdrawn"),
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

/// `text` as an FTS5 phrase: in double quotes, inner quotes doubled, so
/// every character is literal. With the trigram tokenizer a phrase matches
/// exactly the names that contain `text` (its trigrams, one after the
/// other), straight from the index: unlike a GLOB pattern, FTS5 need not
/// read each candidate name back to check it (about 4 times faster for
/// searches that match thousands of names).
fn trigram_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
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
        values.push(Value::Text(trigram_phrase(&folded)));
        format!(
            "SELECT sssid FROM subject_names WHERE id IN
                 (SELECT rowid FROM subject_names_trigrams
                  WHERE subject_names_trigrams MATCH ?{name})"
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

/// The listed rows as `hits(sssid[, sort key])` in a `WITH` clause, and
/// its parameters. User text only ever travels as a parameter.
///
/// A search first collects its matches (`matches`, sssids only). Sorting
/// by sssid without a status filter then needs nothing else; any other
/// order or a status filter joins the matches to `subjects`. CROSS JOIN keeps the matches the outer loop,
/// so the planner does not walk a whole sort index probing for rare
/// matches.
fn hits(query: &SubjectQuery, sort_column: &str) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let search = query.search.as_deref().filter(|s| !s.is_empty());
    // Either way through the status index.
    let status = query.status.map(|status| match status_value(status) {
        None => "WHERE subjects.status IS NULL".to_owned(),
        Some(value) => {
            values.push(Value::Text(value.to_owned()));
            format!("WHERE subjects.status = ?{}", values.len())
        }
    });
    // The sssid, and the sort key when it is another column.
    let keys = |table: &str| match sort_column {
        "sssid" => format!("{table}.sssid"),
        column => format!("{table}.sssid, {table}.{column}"),
    };
    let Some(search) = search else {
        return (
            format!(
                "hits AS (SELECT {} FROM subjects {})",
                keys("subjects"),
                status.unwrap_or_default()
            ),
            values,
        );
    };
    let matches = search_matches(search, &mut values);
    let hits = match (sort_column, status) {
        ("sssid", None) => "SELECT sssid FROM matches".to_owned(),
        (_, status) => format!(
            "SELECT {} FROM matches
             CROSS JOIN subjects ON subjects.sssid = matches.sssid {}",
            keys("subjects"),
            status.unwrap_or_default()
        ),
    };
    (
        format!(
            "matches(sssid) AS MATERIALIZED ({matches}),
             hits AS MATERIALIZED ({hits})"
        ),
        values,
    )
}

/// A search for a common name fragment, listed by sssid: the plan that
/// suits many matches. The total comes from the trigram index's fast count
/// (plus the sssid and bday prefix matches whose name does not match), and
/// the page from walking `subjects` in sssid order until it is full, which
/// stops early because matches are frequent. Collecting, sorting and
/// counting every match instead costs about a microsecond per match, so
/// with thousands of matches this is several times faster.
///
/// `None` when the plan does not fit: a status filter or another order, a
/// term too short for the trigram index, or matches so rare that the walk
/// would read more rows than collecting the matches costs.
fn frequent_matches_by_sssid(
    c: &rusqlite::Connection,
    query: &SubjectQuery,
) -> rusqlite::Result<Option<Page<SubjectRecord>>> {
    let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let folded = search.to_lowercase();
    if query.status.is_some()
        || query.order_by != SubjectColumn::Sssid
        || folded.chars().count() < TRIGRAM_CHARS
    {
        return Ok(None);
    }
    let (text, bound) = (search.to_owned(), prefix_bound(search));
    let phrase = trigram_phrase(&folded);
    // The matches, and (every subject has a row id in the name table, the
    // largest a cheap upper bound of their number) how many subjects.
    let (total, subjects): (i64, i64) = c.query_row_cached(
        "SELECT (SELECT count(*) FROM subject_names_trigrams
                 WHERE subject_names_trigrams MATCH :phrase)
              + (SELECT count(*) FROM subjects
                 WHERE ((sssid >= :text AND sssid < :bound) OR (bday >= :text AND bday < :bound))
                   AND instr(name_folded, :folded) = 0),
                (SELECT coalesce(max(id), 0) FROM subject_names)",
        named_params! {":phrase": phrase, ":text": text, ":bound": bound, ":folded": folded},
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (limit, offset) = (query.limit as i64, query.offset as i64);
    // The walk reads about (offset + limit) / density rows at a fraction
    // of the per-match cost of collecting; both measured at 100,000.
    const ROWS_WALKED_PER_MATCH_COLLECTED: i64 = 3;
    if total == 0
        || (offset + limit).saturating_mul(subjects) / total
            > ROWS_WALKED_PER_MATCH_COLLECTED * total
    {
        return Ok(None);
    }
    let direction = if query.descending { "DESC" } else { "ASC" };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects
         WHERE (sssid >= :text AND sssid < :bound)
            OR instr(name_folded, :folded) > 0
            OR (bday >= :text AND bday < :bound)
         ORDER BY sssid {direction} LIMIT :limit OFFSET :offset"
    ))?;
    let items = stmt
        .query_map(
            named_params! {":text": text, ":bound": bound, ":folded": folded,
            ":limit": limit, ":offset": offset},
            subject_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Page {
        items,
        total: total as u64,
    }))
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

    async fn list_subjects(&self, query: &SubjectQuery) -> StoreResult<Page<SubjectRecord>> {
        let query = query.clone();
        self.read(move |c| {
            if let Some(page) = frequent_matches_by_sssid(c, &query)? {
                return Ok(page);
            }
            let column = sort_column(query.order_by);
            let (hits, values) = hits(&query, column);
            let searching = query.search.as_deref().is_some_and(|s| !s.is_empty());
            let direction = if query.descending { "DESC" } else { "ASC" };
            let order = if column == "sssid" {
                format!("sssid {direction}")
            } else {
                format!("{column} {direction}, sssid {direction}")
            };
            let (limit, offset) = (query.limit as i64, query.offset as i64);
            let count = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
                c.query_row_cached(
                    &format!("WITH {hits} SELECT count(*) FROM hits"),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
            };
            // A deferred join: the page is chosen from the sort keys alone
            // (for a plain listing, by walking the sort index, so rows
            // skipped by a deep OFFSET are never read), and only the page's
            // rows are fetched. A search's matches are collected once
            // (materialized), so its page and the count of all its matches
            // come from one pass; a plain listing counts separately, over
            // the narrowest index.
            let total = if searching {
                "(SELECT count(*) FROM hits)"
            } else {
                "NULL"
            };
            let mut stmt = c.prepare_cached(&format!(
                "WITH {hits} SELECT {SUBJECT_COLUMNS}, {total} FROM subjects
                 WHERE sssid IN (SELECT sssid FROM hits ORDER BY {order}
                                 LIMIT {limit} OFFSET {offset})
                 ORDER BY {order}"
            ))?;
            let mut total = None;
            let items = stmt
                .query_map(params_from_iter(values.iter()), |row| {
                    Ok((subject_from_row(row)?, row.get::<_, Option<i64>>(11)?))
                })?
                .map(|item| {
                    item.map(|(subject, all)| {
                        total = total.or(all);
                        subject
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // No count came with the page: a plain listing, or an empty page.
            let total = match total {
                Some(total) => total,
                None => count(c)?,
            };
            Ok(Page {
                items,
                total: total as u64,
            })
        })
        .await
    }
}
