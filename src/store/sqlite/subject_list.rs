//! Subject lists on SQLite, by the design of `store::subject_list`: each
//! statement below reads through an index (the plan check in
//! `tests/list_plans.rs` runs `EXPLAIN QUERY PLAN` on every one), and the
//! only sort of matches is [`sorted_page`] over keys the collect statement
//! bounds by the count limit.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, Statement};

use super::subjects::subject_from_row;
use crate::store::subject_list::{
    NameCandidates, PagePlan, SearchText, SubjectPage, page_plan, page_total, sorted_page,
};
use crate::store::{SubjectColumn, SubjectQuery, SubjectStatus};

/// The statements of one list query and their named parameters. User text
/// only ever travels as a parameter; the SQL depends on the shape of the
/// query alone, so each shape is prepared once per connection.
#[derive(Debug, Clone)]
pub struct ListStatements {
    /// Counts the matches through the filter's indexes, stopping one past
    /// the count limit; `None` without a filter (the store keeps the
    /// number of subjects).
    pub count: Option<String>,
    /// The sort key and sssid of every match, at most one past the count
    /// limit; `None` when the walk reads nothing but matches anyway.
    pub collect: Option<String>,
    /// The page's sssids and one more, in order, by walking the sort index.
    pub walk: String,
    /// The rows of the sssids in `:page` (a JSON array).
    pub fetch: String,
    /// Every parameter; a statement binds those it names.
    pub params: Vec<(&'static str, Value)>,
}

/// The number of subjects, kept by triggers (migration 008).
pub const SUBJECT_COUNT: &str = "SELECT subjects FROM subject_count";

/// The columns of a [`SubjectRecord`], for `subject_from_row`.
pub(super) const SUBJECT_COLUMNS: &str = "sssid, name, bday, email, date_invited, \
     date_consented, date_enrolled, date_withdrawn, created, changed, version";

/// The stored column a list is sorted by, and the index sorted by it
/// with the sssid (`None`: the sssid, which `subjects` itself is ordered
/// by, being `WITHOUT ROWID`).
fn sort_index(column: SubjectColumn) -> (&'static str, Option<&'static str>) {
    match column {
        SubjectColumn::Sssid => ("sssid", None),
        SubjectColumn::Name => ("name_sort", Some("subjects_by_name_sort")),
        SubjectColumn::Bday => ("bday", Some("subjects_by_bday")),
        SubjectColumn::Created => ("created", Some("subjects_by_created")),
        SubjectColumn::Changed => ("changed", Some("subjects_by_changed")),
        SubjectColumn::DateInvited => ("date_invited", Some("subjects_by_invited")),
        SubjectColumn::DateConsented => ("date_consented", Some("subjects_by_consented")),
        SubjectColumn::DateEnrolled => ("date_enrolled", Some("subjects_by_enrolled")),
        SubjectColumn::DateWithdrawn => ("date_withdrawn", Some("subjects_by_withdrawn")),
    }
}

/// The condition on the generated `status` column (migration 002), whose
/// `CASE` mirrors the domain rule `Journey::standing` (NULL before any
/// step); the store conformance suite checks they agree.
fn status_condition(status: SubjectStatus, params: &mut Vec<(&'static str, Value)>) -> String {
    let value = match status {
        SubjectStatus::NotInvited => return "subjects.status IS NULL".into(),
        SubjectStatus::Invited => "invited",
        SubjectStatus::Consented => "consented",
        SubjectStatus::Enrolled => "enrolled",
        SubjectStatus::Withdrawn => "withdrawn",
    };
    params.push((":status", Value::Text(value.into())));
    "subjects.status = :status".into()
}

/// `text` as an FTS5 phrase: in double quotes, inner quotes doubled, so
/// every character is literal. With the trigram tokenizer a phrase
/// matches the names that contain `text`, straight from the index.
fn trigram_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

const IN_SSSID_RANGE: &str = "(subjects.sssid >= :text AND subjects.sssid < :text_end)";
const IN_BDAY_RANGE: &str = "(subjects.bday >= :text AND subjects.bday < :text_end)";

/// The sssids a search matches (with `status`, among those), each part
/// through its index and each sssid once (a part leaves out what an
/// earlier part found), as a `UNION ALL` that a `LIMIT` stops early.
fn search_matches(
    search: &SearchText,
    status: Option<&str>,
    params: &mut Vec<(&'static str, Value)>,
) -> String {
    params.push((":text", Value::Text(search.text.clone())));
    params.push((":text_end", Value::Text(search.prefix_end())));
    params.push((":folded", Value::Text(search.folded.clone())));
    let and_status = status.map(|s| format!(" AND {s}")).unwrap_or_default();
    // Candidates from the trigram index, confirmed on the unpadded name.
    let (names, phrase) = match search.name_candidates() {
        NameCandidates::AllOf(_) => {
            params.push((":phrase", Value::Text(trigram_phrase(&search.folded))));
            (
                "subject_names_trigrams
                 CROSS JOIN subject_names ON subject_names.id = subject_names_trigrams.rowid",
                "subject_names_trigrams MATCH :phrase AND ",
            )
        }
        NameCandidates::Range { from, to } => {
            params.push((":gram_from", Value::Text(from)));
            params.push((":gram_to", Value::Text(to)));
            (
                "(SELECT DISTINCT doc FROM subject_name_trigram_terms
                  WHERE term >= :gram_from AND term <= :gram_to) AS grams
                 CROSS JOIN subject_names ON subject_names.id = grams.doc",
                "",
            )
        }
    };
    let names_status = match status {
        Some(_) => " CROSS JOIN subjects ON subjects.sssid = subject_names.sssid",
        None => "",
    };
    let mut sql = format!(
        "SELECT subjects.sssid FROM subjects WHERE {IN_SSSID_RANGE}{and_status}
         UNION ALL
         SELECT subject_names.sssid FROM {names}{names_status}
         WHERE {phrase}instr(subject_names.name_folded, :folded) > 0
           AND NOT (subject_names.sssid >= :text AND subject_names.sssid < :text_end){and_status}"
    );
    if search.may_start_a_bday() {
        sql.push_str(&format!(
            "
         UNION ALL
         SELECT subjects.sssid FROM subjects WHERE {IN_BDAY_RANGE}
           AND NOT {IN_SSSID_RANGE} AND instr(subjects.name_folded, :folded) = 0{and_status}"
        ));
    }
    sql
}

/// The statements of `query`, counting exactly up to `count_limit`.
pub fn list_statements(query: &SubjectQuery, count_limit: u64) -> ListStatements {
    let mut params = Vec::new();
    let search = SearchText::new(query.search.as_deref());
    let status = query.status.map(|s| status_condition(s, &mut params));
    let (column, index) = sort_index(query.order_by);
    let direction = if query.descending { "DESC" } else { "ASC" };
    let order = match column {
        "sssid" => format!("subjects.sssid {direction}"),
        column => format!("subjects.{column} {direction}, subjects.sssid {direction}"),
    };
    let walk_index = match (index, &status) {
        // The status index holds the sssid order of each status.
        (None, Some(_)) => "INDEXED BY subjects_by_status".to_owned(),
        (None, None) => "NOT INDEXED".to_owned(),
        (Some(index), _) => format!("INDEXED BY {index}"),
    };
    let matches = match (&search, &status) {
        (Some(search), status) => Some(search_matches(search, status.as_deref(), &mut params)),
        (None, Some(status)) => Some(format!(
            "SELECT subjects.sssid FROM subjects WHERE {status}"
        )),
        (None, None) => None,
    };
    let mut conditions = Vec::new();
    if let Some(search) = &search {
        let bday = if search.may_start_a_bday() {
            format!(" OR {IN_BDAY_RANGE}")
        } else {
            String::new()
        };
        conditions.push(format!(
            "({IN_SSSID_RANGE} OR instr(subjects.name_folded, :folded) > 0{bday})"
        ));
    }
    conditions.extend(status.clone());
    let filter = match conditions.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conditions.join(" AND ")),
    };
    let walk = format!(
        "SELECT subjects.sssid FROM subjects {walk_index} {filter}
         ORDER BY {order} LIMIT :limit OFFSET :offset"
    );
    // Without a search the walk of the sssid order reads matches only.
    let walk_reads_only_matches = search.is_none() && (status.is_none() || column == "sssid");
    let collect =
        matches
            .as_ref()
            .filter(|_| !walk_reads_only_matches)
            .map(|matches| match column {
                "sssid" => format!("SELECT NULL, sssid FROM ({matches} LIMIT :count_to)"),
                column => format!(
                "SELECT subjects.{column}, subjects.sssid FROM ({matches} LIMIT :count_to) AS hits
                 CROSS JOIN subjects ON subjects.sssid = hits.sssid"
            ),
            });
    let count = matches.map(|matches| format!("SELECT count(*) FROM ({matches} LIMIT :count_to)"));
    params.push((":count_to", Value::Integer(count_to(count_limit))));
    params.push((":limit", Value::Integer(count_to(query.limit))));
    params.push((
        ":offset",
        Value::Integer(i64::try_from(query.offset).unwrap_or(i64::MAX)),
    ));
    ListStatements {
        count,
        collect,
        walk,
        fetch: format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects
             WHERE sssid IN (SELECT value FROM json_each(:page))"
        ),
        params,
    }
}

/// One more than `n`: the row that tells whether there are more.
fn count_to(n: u64) -> i64 {
    i64::try_from(n.saturating_add(1)).unwrap_or(i64::MAX)
}

/// `sql` prepared (cached) with those of `params` it names bound.
pub fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
    params: &[(&'static str, Value)],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = c.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    Ok(stmt)
}

fn bind(stmt: &mut Statement<'_>, params: &[(&'static str, Value)]) -> rusqlite::Result<()> {
    for (name, value) in params {
        if let Some(index) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    Ok(())
}

fn rows<T>(
    c: &Connection,
    sql: &str,
    params: &[(&'static str, Value)],
    f: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = prepare(c, sql, params)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// One page of `query` and its total, in one read snapshot.
pub(super) fn list(
    c: &Connection,
    query: &SubjectQuery,
    count_limit: u64,
) -> rusqlite::Result<SubjectPage> {
    let snapshot = c.unchecked_transaction()?;
    let mut statements = list_statements(query, count_limit);
    let subjects: i64 = c
        .prepare_cached(SUBJECT_COUNT)?
        .query_row([], |r| r.get(0))?;
    let subjects = u64::try_from(subjects).unwrap_or(0);
    let matches = match &statements.count {
        None => Some(subjects),
        Some(sql) => {
            let counted: i64 = prepare(c, sql, &statements.params)?
                .raw_query()
                .next()?
                .map_or(Ok(0), |row| row.get(0))?;
            u64::try_from(counted).ok().filter(|n| *n <= count_limit)
        }
    };
    let plan = match statements.collect {
        None => PagePlan::Walk,
        Some(_) => page_plan(matches, subjects, query.offset, query.limit),
    };
    let (page, more) = match (plan, &statements.collect) {
        (PagePlan::Collect, Some(collect)) => {
            let keys = rows(c, collect, &statements.params, |row| {
                Ok((row.get::<_, Option<String>>(0)?, row.get::<_, String>(1)?))
            })?;
            let page = sorted_page(keys, query.descending, query.offset, query.limit);
            (page, false)
        }
        _ => {
            let mut page = rows(c, &statements.walk, &statements.params, |row| row.get(0))?;
            let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
            let more = page.len() > limit;
            page.truncate(limit);
            (page, more)
        }
    };
    let json = serde_json::to_string(&page)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    statements.params.push((":page", Value::Text(json)));
    let mut fetched = rows(c, &statements.fetch, &statements.params, subject_from_row)?;
    // In the page's order.
    let position: HashMap<&str, usize> = page
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    fetched.sort_by_key(|s| position.get(s.sssid.as_str()).copied());
    snapshot.finish()?;
    let total = page_total(matches, count_limit, query.offset, fetched.len(), more);
    Ok(SubjectPage {
        items: fetched,
        total,
    })
}
