//! Subject lists on SQLite, by the design of `store::subject_list`: each
//! part of a filter has its count, collect and walk statement, each reads
//! through an index (the plan check in `tests/list_plans.rs` runs `EXPLAIN
//! QUERY PLAN` on every one), and the only sort of matches is
//! `sorted_page` over keys the collect statement bounds by the count limit.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use super::subjects::subject_from_row;
use crate::store::subject_list::{
    NAME_PAD, NameCandidates, PagePlan, Part, SearchText, SubjectPage, Window, counted_total,
    merged_page, page_plan, page_total, parts, sorted_window,
};
use crate::store::{SubjectColumn, SubjectQuery, SubjectStatus};

/// The statements of one part of a list query. Each selects the sort key
/// (NULL for the sssid order) and the sssid.
#[derive(Debug, Clone)]
pub struct PartStatements {
    pub part: Part,
    /// Counts the part's subjects through its index, stopping one past the
    /// count limit; `None` without a filter (the store keeps the number).
    pub count: Option<String>,
    /// For the names: counts them from the trigram index alone (its
    /// matches are exact unless the text holds the padding), which is
    /// the part's count when the parts before it are empty and there is
    /// no status.
    pub count_alone: Option<String>,
    /// Every subject of the part (at most one past the count limit);
    /// `None` when the walk reads nothing but the part's subjects.
    pub collect: Option<String>,
    /// `:limit` subjects from `:offset` on, in order, by walking the sort
    /// index (or a range of it).
    pub walk: String,
}

/// The statements of one list query and their named parameters (besides
/// the walk's `:limit` and `:offset`, and the fetch's `:page`). User text
/// only ever travels as a parameter; the SQL depends on the shape of the
/// query alone, so each shape is prepared once per connection.
#[derive(Debug, Clone)]
pub struct ListStatements {
    pub parts: Vec<PartStatements>,
    /// The rows of the sssids in `:page` (a JSON array).
    pub fetch: String,
    pub params: Vec<(&'static str, Value)>,
}

/// The number of subjects, kept by triggers (migration 008).
pub const SUBJECT_COUNT: &str = "SELECT subjects FROM subject_count";

/// The columns of a `SubjectRecord`, for `subject_from_row`.
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

const IN_SSSID_RANGE: &str = "subjects.sssid >= :text AND subjects.sssid < :text_end";
const IN_BDAY_RANGE: &str = "subjects.bday >= :text AND subjects.bday < :text_end";
const NAME_HOLDS: &str = "instr(subjects.name_folded, :folded) > 0";

/// The names a search's candidates come from: the trigram index (its
/// phrase for three characters or more, a range of its terms for fewer)
/// and the small name table (sssid and folded name); and the condition
/// that selects them.
fn name_candidates(
    search: &SearchText,
    params: &mut Vec<(&'static str, Value)>,
) -> (&'static str, &'static str) {
    match search.name_candidates() {
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
    }
}

/// The statements of `query`.
pub fn list_statements(query: &SubjectQuery) -> ListStatements {
    let mut params = Vec::new();
    let search = SearchText::new(query.search.as_deref());
    if let Some(search) = &search {
        params.push((":text", Value::Text(search.text.clone())));
        params.push((":text_end", Value::Text(search.prefix_end())));
        params.push((":folded", Value::Text(search.folded.clone())));
    }
    let status = query.status.map(|s| status_condition(s, &mut params));
    let and_status = status
        .as_ref()
        .map(|s| format!(" AND {s}"))
        .unwrap_or_default();
    let (column, sort_index) = sort_index(query.order_by);
    let direction = if query.descending { "DESC" } else { "ASC" };
    let (key, order) = match column {
        "sssid" => ("NULL".to_owned(), format!("subjects.sssid {direction}")),
        column => (
            format!("subjects.{column}"),
            format!("subjects.{column} {direction}, subjects.sssid {direction}"),
        ),
    };
    // The walk follows the sort's index; the status index holds the sssid
    // order of each status.
    let walk_index = match (sort_index, &status) {
        (Some(index), _) => format!("INDEXED BY {index}"),
        (None, Some(_)) => "INDEXED BY subjects_by_status".to_owned(),
        (None, None) => "NOT INDEXED".to_owned(),
    };
    let walk = |index: &str, condition: &str| {
        let filter = match condition {
            "" => String::new(),
            condition => format!("WHERE {condition}"),
        };
        format!(
            "SELECT {key}, subjects.sssid FROM subjects {index} {filter}
             ORDER BY {order} LIMIT :limit OFFSET :offset"
        )
    };
    let counted = |from: &str, condition: &str| {
        format!("SELECT count(*) FROM (SELECT 1 FROM {from} WHERE {condition} LIMIT :count_to)")
    };
    let collected = |from: &str, condition: &str| {
        format!("SELECT {key}, subjects.sssid FROM {from} WHERE {condition} LIMIT :count_to")
    };
    let mut statements = Vec::new();
    for part in parts(search.as_ref(), status.is_some()) {
        let statement = match part {
            Part::All => PartStatements {
                part,
                count: None,
                count_alone: None,
                collect: None,
                walk: walk(&walk_index, ""),
            },
            Part::Status => {
                let status = status.as_deref().unwrap_or_default();
                PartStatements {
                    part,
                    count: Some(counted("subjects INDEXED BY subjects_by_status", status)),
                    count_alone: None,
                    // In the sssid order the walk is the status's range.
                    collect: (column != "sssid")
                        .then(|| collected("subjects INDEXED BY subjects_by_status", status)),
                    walk: walk(&walk_index, status),
                }
            }
            Part::SssidPrefix => {
                let condition = format!("{IN_SSSID_RANGE}{and_status}");
                let range = column == "sssid" && status.is_none();
                PartStatements {
                    part,
                    count: Some(counted("subjects", &condition)),
                    count_alone: None,
                    collect: (!range).then(|| collected("subjects", &condition)),
                    walk: match range {
                        true => walk("", &condition),
                        false => walk(&walk_index, &condition),
                    },
                }
            }
            Part::BdayPrefix => {
                let condition = format!("{IN_BDAY_RANGE} AND NOT ({IN_SSSID_RANGE}){and_status}");
                // Counted and collected from the bday index alone (it
                // holds the sssid) unless a status or another sort key is
                // needed.
                let by_bday = "subjects INDEXED BY subjects_by_bday";
                let range = column == "bday" && status.is_none();
                // Walked in another order, the range is only a test: the
                // unary `+` keeps SQLite from reading the bday index
                // instead of the sort's (`NOT INDEXED` does not, for a
                // `WITHOUT ROWID` table) and sorting what it found.
                let tested = match column {
                    "bday" => condition.clone(),
                    _ => condition.replace("subjects.bday", "+subjects.bday"),
                };
                PartStatements {
                    part,
                    count: Some(counted(by_bday, &condition)),
                    count_alone: None,
                    collect: (!range).then(|| collected(by_bday, &condition)),
                    walk: walk(&walk_index, &tested),
                }
            }
            Part::Name => {
                let Some(search) = &search else { continue };
                let (names, phrase) = name_candidates(search, &mut params);
                // Candidates confirmed on the folded name; outside the
                // parts above.
                let mut outside =
                    "NOT (subject_names.sssid >= :text AND subject_names.sssid < :text_end)"
                        .to_owned();
                let bday = search.may_start_a_bday();
                if bday {
                    outside.push_str(&format!(" AND NOT ({IN_BDAY_RANGE})"));
                }
                let candidates = format!(
                    "{phrase}instr(subject_names.name_folded, :folded) > 0 AND {outside}{and_status}"
                );
                // The name table has the sssid; `subjects` only when the
                // part needs more of a subject.
                let joined =
                    format!("{names} CROSS JOIN subjects ON subjects.sssid = subject_names.sssid");
                let count_from = match bday || status.is_some() {
                    true => joined.as_str(),
                    false => names,
                };
                let collect_from = match bday || status.is_some() || column != "sssid" {
                    true => joined.as_str(),
                    false => names,
                };
                let mut walked = format!("{NAME_HOLDS} AND NOT ({IN_SSSID_RANGE})");
                if bday {
                    walked.push_str(&format!(" AND NOT ({IN_BDAY_RANGE})"));
                }
                walked.push_str(&and_status);
                let alone = match search.name_candidates() {
                    NameCandidates::AllOf(_) => {
                        "SELECT rowid FROM subject_names_trigrams
                         WHERE subject_names_trigrams MATCH :phrase"
                    }
                    NameCandidates::Range { .. } => {
                        "SELECT DISTINCT doc FROM subject_name_trigram_terms
                         WHERE term >= :gram_from AND term <= :gram_to"
                    }
                };
                let exact = status.is_none() && !search.folded.contains(NAME_PAD);
                PartStatements {
                    part,
                    count: Some(counted(count_from, &candidates)),
                    count_alone: exact
                        .then(|| format!("SELECT count(*) FROM ({alone} LIMIT :count_to)")),
                    collect: Some(
                        collected(collect_from, &candidates)
                            .replace("subjects.sssid FROM", "subject_names.sssid FROM"),
                    ),
                    walk: walk(&walk_index, &walked),
                }
            }
        };
        statements.push(statement);
    }
    ListStatements {
        parts: statements,
        fetch: format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects
             WHERE sssid IN (SELECT value FROM json_each(:page))"
        ),
        params,
    }
}

/// One more than `n`, for SQL: the row that tells whether there are more.
fn one_more(n: u64) -> i64 {
    i64::try_from(n.saturating_add(1)).unwrap_or(i64::MAX)
}

fn sql_integer(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `sql` prepared (cached) with those of `params` it names bound.
pub fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
    params: &[(&'static str, Value)],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = c.prepare_cached(sql)?;
    for (name, value) in params {
        if let Some(index) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    Ok(stmt)
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

type Keys = Vec<(Option<String>, String)>;

fn key_row(row: &Row<'_>) -> rusqlite::Result<(Option<String>, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

/// One page of `query` and its total, counting up to `count_limit`, in one
/// read snapshot.
pub(super) fn list(
    c: &Connection,
    query: &SubjectQuery,
    count_limit: u64,
) -> rusqlite::Result<SubjectPage> {
    let snapshot = c.unchecked_transaction()?;
    let mut statements = list_statements(query);
    statements
        .params
        .push((":count_to", Value::Integer(one_more(count_limit))));
    let subjects: i64 = c
        .prepare_cached(SUBJECT_COUNT)?
        .query_row([], |r| r.get(0))?;
    let subjects = u64::try_from(subjects).unwrap_or(0);
    // Each part's count (`None`: more than the limit); empty parts go.
    let mut counted = Vec::new();
    for (i, part) in statements.parts.iter().enumerate() {
        // With the parts before it empty, the names count alone.
        let sql = match &part.count_alone {
            Some(alone) if counted.is_empty() && i > 0 => Some(alone),
            _ => part.count.as_ref(),
        };
        let matches = match sql {
            None => Some(subjects),
            Some(sql) => {
                let n: i64 = prepare(c, sql, &statements.params)?
                    .raw_query()
                    .next()?
                    .map_or(Ok(0), |row| row.get(0))?;
                u64::try_from(n).ok().filter(|n| *n <= count_limit)
            }
        };
        if matches != Some(0) {
            counted.push((part, matches));
        }
    }
    let filtered = query.search.is_some() || query.status.is_some();
    let total = counted_total(counted.iter().map(|(_, m)| *m), count_limit, filtered);
    let window = Window::of(query.offset, query.limit, counted.len());
    let mut params = statements.params.clone();
    params.push((":limit", sql_integer(window.limit)));
    params.push((":offset", sql_integer(window.offset)));
    let mut windows: Vec<Keys> = Vec::new();
    for (part, matches) in &counted {
        let plan = match part.collect {
            None => PagePlan::Walk,
            Some(_) => page_plan(*matches, subjects, window.offset, window.limit),
        };
        windows.push(match (plan, &part.collect) {
            (PagePlan::Collect, Some(collect)) => {
                let keys = rows(c, collect, &params, key_row)?;
                sorted_window(keys, query.descending, window.offset, window.limit)
            }
            _ => rows(c, &part.walk, &params, key_row)?,
        });
    }
    let (page, more) = match windows.len() {
        1 => {
            let mut page: Vec<String> = windows.remove(0).into_iter().map(|(_, s)| s).collect();
            let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
            let more = page.len() > limit;
            page.truncate(limit);
            (page, more)
        }
        _ => merged_page(windows, query.descending, query.offset, query.limit),
    };
    let json = serde_json::to_string(&page)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    params.push((":page", Value::Text(json)));
    let mut fetched = rows(c, &statements.fetch, &params, subject_from_row)?;
    // In the page's order.
    let position: HashMap<&str, usize> = page
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    fetched.sort_by_key(|s| position.get(s.sssid.as_str()).copied());
    snapshot.finish()?;
    let total = page_total(total, count_limit, query.offset, fetched.len(), more);
    Ok(SubjectPage {
        items: fetched,
        total,
    })
}
