//! The plan check of the subject list (issue 16): for every list query a
//! store can build (each sort column and direction, with no filter, a name
//! search long and short, an sssid prefix, a bday prefix, a status, and a
//! search within a status), every filter clause and every sort is served by
//! an index the store itself defines. SQLite: `EXPLAIN QUERY PLAN` of each
//! statement on a real database file. MongoDB: the filter, sort and hint
//! documents the store builds, checked against its index definitions
//! (statically, so this runs without a server).

use chrono::{NaiveDate, TimeZone, Utc};
use idm::store::mongo::subject_list::{PartFilter, SubjectIndex, list_queries, subject_indexes};
use idm::store::sqlite::SqliteStore;
use idm::store::sqlite::subject_list::{SUBJECT_COUNT, list_statements};
use idm::store::{SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore};
use mongodb::bson::{Bson, Document, doc};
use rusqlite::Connection;

/// Every filter a list can have: (label, search, status).
const FILTERS: &[(&str, Option<&str>, Option<SubjectStatus>)] = &[
    ("no filter", None, None),
    ("name search", Some("meier"), None),
    ("short name search", Some("me"), None),
    ("one-letter search", Some("M"), None),
    ("sssid prefix", Some("S0012"), None),
    ("bday prefix", Some("1980-03"), None),
    ("status", None, Some(SubjectStatus::Enrolled)),
    ("no status yet", None, Some(SubjectStatus::NotInvited)),
    (
        "search and status",
        Some("meier"),
        Some(SubjectStatus::Consented),
    ),
    (
        "bday prefix and status",
        Some("1980"),
        Some(SubjectStatus::NotInvited),
    ),
];

/// Every query of the matrix, with a label for messages.
fn queries() -> Vec<(String, SubjectQuery)> {
    let mut queries = Vec::new();
    for column in SubjectColumn::ALL {
        for descending in [false, true] {
            for (label, search, status) in FILTERS {
                queries.push((
                    format!("{label}, by {column:?}, descending {descending}"),
                    SubjectQuery {
                        search: search.map(str::to_owned),
                        status: *status,
                        order_by: column,
                        descending,
                        offset: 100,
                        limit: 50,
                    },
                ));
            }
        }
    }
    queries
}

/// The query plan of `sql` on `c`, one line per step.
fn explain(c: &Connection, sql: &str, params: &[(&'static str, rusqlite::types::Value)]) -> String {
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let mut stmt = idm::store::sqlite::subject_list::prepare(c, &sql, params).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan.join("\n")
}

#[tokio::test]
async fn every_sqlite_list_statement_reads_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idm.sqlite3");
    let store = SqliteStore::open(&path).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    for i in 0..40 {
        let bday = NaiveDate::from_ymd_opt(1980, 1 + i % 12, 1 + i % 28).unwrap();
        let mut subject = SubjectRecord::new(
            format!("S{i:06}"),
            format!("Person {i} Meier"),
            bday,
            None,
            at,
        );
        subject.date_invited = (i % 2 == 0).then_some(at);
        store.insert_subject(&subject).await.unwrap();
    }
    drop(store);
    let c = Connection::open(&path).unwrap();
    c.execute_batch("ANALYZE").unwrap();
    assert_eq!(
        c.query_row(SUBJECT_COUNT, [], |r| r.get::<_, i64>(0))
            .unwrap(),
        40
    );

    for (label, query) in queries() {
        let statements = list_statements(&query);
        let mut params = statements.params.clone();
        for (name, value) in [(":count_to", 10_001), (":limit", 51), (":offset", 100)] {
            params.push((name, rusqlite::types::Value::Integer(value)));
        }
        params.push((
            ":page",
            rusqlite::types::Value::Text("[\"S000001\"]".into()),
        ));
        let filtered = query.search.is_some() || query.status.is_some();
        assert_eq!(
            statements.parts.iter().all(|p| p.count.is_some()),
            filtered,
            "{label}: a filter is counted (to the limit), no filter is not"
        );
        let mut all = vec![("fetch", &statements.fetch)];
        for part in &statements.parts {
            all.push(("walk", &part.walk));
            all.extend(part.count.as_ref().map(|s| ("count", s)));
            all.extend(part.count_alone.as_ref().map(|s| ("count", s)));
            all.extend(part.collect.as_ref().map(|s| ("collect", s)));
        }
        for (purpose, sql) in all {
            let plan = explain(&c, sql, &params);
            let context = format!("{label}, {purpose}:\n{sql}\n{plan}");
            assert!(
                !plan.contains("TEMP B-TREE FOR ORDER BY"),
                "sorted in memory: {context}"
            );
            for line in plan.lines() {
                let step = line.trim_start_matches(['|', '`', '-', ' ']);
                // `subjects` is WITHOUT ROWID: the table is the sssid
                // index, and a walk in sssid order reads it in order, up
                // to the page's LIMIT; anything else must name an index.
                if step == "SCAN subjects" {
                    assert!(
                        purpose == "walk" && query.order_by == SubjectColumn::Sssid,
                        "a scan of subjects that is not the sssid walk: {context}"
                    );
                }
                assert!(
                    !step.starts_with("SCAN subject_names") || step.contains("VIRTUAL TABLE"),
                    "a scan of the names: {context}"
                );
                // A virtual table read without a constraint (index 0) is a
                // scan of the whole trigram index.
                if step.contains("VIRTUAL TABLE INDEX 0:") {
                    assert!(
                        step.contains(":M"),
                        "an unconstrained trigram read: {context}"
                    );
                }
            }
            if purpose == "walk" && !plan.contains("USING PRIMARY KEY (sssid>") {
                // The walk follows the sort's own index (or the status
                // index, the sssid order of each status), unless it is the
                // range of an sssid prefix in sssid order.
                let index = match query.order_by {
                    SubjectColumn::Sssid if query.status.is_some() => Some("subjects_by_status"),
                    SubjectColumn::Sssid => None,
                    SubjectColumn::Name => Some("subjects_by_name_sort"),
                    SubjectColumn::Bday => Some("subjects_by_bday"),
                    SubjectColumn::Created => Some("subjects_by_created"),
                    SubjectColumn::Changed => Some("subjects_by_changed"),
                    SubjectColumn::DateInvited => Some("subjects_by_invited"),
                    SubjectColumn::DateConsented => Some("subjects_by_consented"),
                    SubjectColumn::DateEnrolled => Some("subjects_by_enrolled"),
                    SubjectColumn::DateWithdrawn => Some("subjects_by_withdrawn"),
                };
                match index {
                    Some(index) => assert!(
                        plan.contains(&format!("INDEX {index}")),
                        "the walk does not follow {index}: {context}"
                    ),
                    None => assert_eq!(
                        plan.trim_start_matches(['`', '-']),
                        "SCAN subjects",
                        "{context}"
                    ),
                }
            }
        }
    }
}

/// The keys of `index` that follow the fields `filter` fixes by equality
/// at its top level: the order the index gives those matches.
fn order_after_equalities(index: &Document, filter: Option<&Document>) -> Document {
    let fixed = |field: &str| {
        filter
            .and_then(|f| f.get(field))
            .is_some_and(|v| matches!(v, Bson::String(_)))
    };
    index
        .iter()
        .skip_while(|(field, _)| fixed(field))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn reversed(keys: &Document) -> Document {
    keys.iter()
        .map(|(k, v)| (k.clone(), Bson::Int32(-v.as_i32().unwrap())))
        .collect()
}

/// Whether `condition` on `field` gives an index on `field` bounds:
/// equality, a case-sensitive regex anchored at the start, `$all` of
/// values, or `$elemMatch` of a range.
fn bounds_an_index(field: &str, condition: &Bson) -> bool {
    match condition {
        Bson::String(_) => true,
        Bson::Document(d) => {
            if let Some(Bson::String(regex)) = d.get("$regex") {
                return regex.starts_with('^') && !d.contains_key("$options");
            }
            if let Some(Bson::Array(values)) = d.get("$all") {
                return !values.is_empty() && values.iter().all(|v| matches!(v, Bson::String(_)));
            }
            if let Some(Bson::Document(range)) = d.get("$elemMatch") {
                return range.contains_key("$gte") && range.contains_key("$lte");
            }
            false
        }
        _ => {
            let _ = field;
            false
        }
    }
}

/// Whether some condition of `clause` (fields ANDed) bounds an index whose
/// first key is its field.
fn clause_has_an_index(clause: &Document, indexes: &[SubjectIndex]) -> bool {
    clause.iter().any(|(field, condition)| {
        bounds_an_index(field, condition)
            && indexes
                .iter()
                .any(|i| i.keys.keys().next().map(String::as_str) == Some(field.as_str()))
    })
}

#[test]
fn every_mongodb_list_query_has_an_index_for_each_clause_and_its_sort() {
    let mut indexes = subject_indexes();
    indexes.push(SubjectIndex {
        name: "_id_".into(),
        keys: doc! { "_id": 1 },
        unique: true,
    });
    for (label, query) in queries() {
        let q = list_queries(&query);
        let context = format!("{label}: {q:?}");
        assert!(!q.parts.is_empty(), "{context}");
        for part in &q.parts {
            // The filter: every part bounds an index, so neither its count
            // nor its collect can scan the collection, and a status has
            // its own index too.
            match &part.filter {
                None => assert!(
                    query.search.is_none() && query.status.is_none(),
                    "{context}"
                ),
                Some(PartFilter { filter, index }) => {
                    // Counted and collected through the hinted index,
                    // which a condition of the filter bounds.
                    let keys = &indexes.iter().find(|i| &i.name == index).unwrap().keys;
                    let leading = keys.keys().next().unwrap();
                    assert!(
                        filter
                            .get(leading)
                            .is_some_and(|condition| bounds_an_index(leading, condition)),
                        "{index} is not bounded by {filter} in {context}"
                    );
                    if let Some(status) = filter.get("status") {
                        let status = doc! { "status": status.clone() };
                        assert!(clause_has_an_index(&status, &indexes), "{context}");
                    }
                }
            }
            // The sort: the walk's index (after the fields the filter
            // fixes) is the sort or its reverse, so no page is sorted in
            // memory.
            let walk = indexes
                .iter()
                .find(|i| i.name == part.walk_index)
                .unwrap_or_else(|| panic!("no index {}: {context}", part.walk_index));
            let order = order_after_equalities(&walk.keys, part.filter.as_ref().map(|f| &f.filter));
            assert!(
                order == q.sort || reversed(&order) == q.sort,
                "the walk's index {} does not give the order {}: {context}",
                walk.name,
                q.sort
            );
        }
        // Ties by sssid in the sort's direction, as on SQLite.
        let directions: Vec<_> = q.sort.values().map(|v| v.as_i32().unwrap()).collect();
        assert_eq!(
            q.sort.keys().last().map(String::as_str),
            Some("sssid"),
            "{context}"
        );
        assert!(
            directions
                .iter()
                .all(|d| *d == if query.descending { -1 } else { 1 }),
            "{context}"
        );
        // The collect reads the sort key and the sssid only.
        assert!(q.key_projection.contains_key("sssid"), "{context}");
    }
}
