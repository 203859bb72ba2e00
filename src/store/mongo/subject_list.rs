//! Subject lists on MongoDB, by the design of `store::subject_list` (the
//! same as SQLite's): every clause of a filter and every sort has an index
//! ([`subject_indexes`]; `tests/list_plans.rs` checks each query against
//! them), counts stop one past the count limit, and a page is collected
//! (sort keys of the counted matches, sorted here) or walked (the sort
//! index, hinted, with the filter applied to each subject).

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{Hint, IndexOptions};
use mongodb::{Collection, IndexModel};

use super::{DocExt, classify, collect, regex_literal};
use crate::store::subject_list::{
    NameCandidates, PagePlan, SearchText, SubjectPage, name_trigrams, page_plan, page_total,
    sorted_page,
};
use crate::store::{
    StoreResult, SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, name_sort_key,
};

/// Fields that lists can be ordered by besides the sssid; each has an
/// index with the sssid as tie breaker.
const SORTABLE_FIELDS: &[&str] = &[
    "name_sort",
    "bday",
    "created",
    "changed",
    "date_invited",
    "date_consented",
    "date_enrolled",
    "date_withdrawn",
];

/// An index of the subjects collection.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectIndex {
    pub name: String,
    pub keys: Document,
    pub unique: bool,
}

/// Every index of the subjects collection besides `_id` (the sssid).
pub fn subject_indexes() -> Vec<SubjectIndex> {
    let index = |name: &str, keys: Document, unique| SubjectIndex {
        name: name.to_owned(),
        keys,
        unique,
    };
    let mut indexes = vec![
        index("sssid_unique", doc! { "sssid": 1 }, true),
        // Multikey: one entry per trigram of the name.
        index("by_name_trigrams", doc! { "name_trigrams": 1 }, false),
        index("by_status", doc! { "status": 1, "sssid": 1 }, false),
    ];
    for field in SORTABLE_FIELDS {
        indexes.push(index(
            &format!("by_{field}"),
            doc! { *field: 1, "sssid": 1 },
            false,
        ));
    }
    indexes
}

pub(super) async fn create_indexes(subjects: &Collection<Document>) -> StoreResult<()> {
    for index in subject_indexes() {
        let options = IndexOptions::builder()
            .name(index.name)
            .unique(index.unique.then_some(true))
            .build();
        subjects
            .create_index(
                IndexModel::builder()
                    .keys(index.keys)
                    .options(options)
                    .build(),
            )
            .await
            .map_err(classify)?;
    }
    Ok(())
}

/// What the status filter compares: the subject's standing in words.
fn status_word(subject: &SubjectRecord) -> &'static str {
    let standing = subject.journey().standing();
    SubjectStatus::ALL
        .into_iter()
        .find(|status| status.standing() == standing)
        .map_or("not-invited", SubjectStatus::as_str)
}

/// The fields a subject document carries for lists, derived from the
/// subject at every write: the name's sort key, the lower-cased name and
/// its trigrams (the search), and the status.
pub(super) fn derived_fields(subject: &SubjectRecord) -> Document {
    let folded = subject.name.to_lowercase();
    doc! {
        "name_sort": name_sort_key(&subject.name),
        "name_trigrams": name_trigrams(&folded),
        "name_folded": folded,
        "status": status_word(subject),
    }
}

/// The field a column is stored in.
fn field(column: SubjectColumn) -> &'static str {
    match column {
        SubjectColumn::Sssid => "sssid",
        // Names sort the way people read them (`name_sort_key`).
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

/// The documents of one list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQueries {
    /// What matches; `None` lists every subject (the total is then the
    /// collection's own count).
    pub filter: Option<Document>,
    /// The order: the column, then the sssid, in the same direction.
    pub sort: Document,
    /// The index the walk follows (the sort's, or the status index, which
    /// holds the sssid order of each status).
    pub walk_index: String,
    /// Whether the walk reads nothing but matches, so collecting never
    /// pays.
    pub walk_reads_only_matches: bool,
    /// The sort key and sssid of a match, for collecting.
    pub key_projection: Document,
}

/// The documents of `query`.
pub fn list_queries(query: &SubjectQuery) -> ListQueries {
    let search = SearchText::new(query.search.as_deref());
    let mut filter = Document::new();
    if let Some(status) = query.status {
        filter.insert("status", status.as_str());
    }
    if let Some(search) = &search {
        let literal = regex_literal(&search.text);
        let candidates = match search.name_candidates() {
            NameCandidates::AllOf(trigrams) => doc! { "$all": trigrams },
            NameCandidates::Range { from, to } => {
                doc! { "$elemMatch": { "$gte": from, "$lte": to } }
            }
        };
        let mut parts = vec![
            doc! { "sssid": { "$regex": format!("^{literal}") } },
            // Candidates from the trigram index, confirmed by the literal
            // rule on the name lower-cased in Rust (never the server's
            // idea of letter case).
            doc! {
                "name_trigrams": candidates,
                "name_folded": { "$regex": regex_literal(&search.folded) },
            },
        ];
        if search.may_start_a_bday() {
            parts.push(doc! { "bday": { "$regex": format!("^{literal}") } });
        }
        filter.insert("$or", parts);
    }
    let direction = if query.descending { -1 } else { 1 };
    let column = field(query.order_by);
    let sort = match column {
        "sssid" => doc! { "sssid": direction },
        column => doc! { column: direction, "sssid": direction },
    };
    let walk_index = match (column, query.status) {
        // The status index holds the sssid order of each status.
        ("sssid", Some(_)) => "by_status".to_owned(),
        ("sssid", None) => "sssid_unique".to_owned(),
        (column, _) => format!("by_{column}"),
    };
    let walk_reads_only_matches = search.is_none() && (query.status.is_none() || column == "sssid");
    ListQueries {
        filter: (!filter.is_empty()).then_some(filter),
        sort,
        walk_index,
        walk_reads_only_matches,
        key_projection: doc! { "_id": 0, "sssid": 1, column: 1 },
    }
}

/// A sort key as stored: text (names, birth dates) or a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Text(String),
    Time(i64),
}

fn sort_key(d: &Document, column: &str) -> StoreResult<(Option<SortValue>, String)> {
    let value = match d.get(column) {
        Some(Bson::String(s)) => Some(SortValue::Text(s.clone())),
        Some(Bson::DateTime(t)) => Some(SortValue::Time(t.timestamp_millis())),
        _ => None,
    };
    Ok((value, d.req_str("sssid")?))
}

/// One page of `query` and its total.
pub(super) async fn list(
    subjects: &Collection<Document>,
    query: &SubjectQuery,
    count_limit: u64,
    subject_from_doc: fn(&Document) -> StoreResult<SubjectRecord>,
) -> StoreResult<SubjectPage> {
    let queries = list_queries(query);
    let count_to = count_limit.saturating_add(1);
    let all = subjects.estimated_document_count();
    let (subjects_count, matches) = match &queries.filter {
        None => {
            let n = all.await.map_err(classify)?;
            (n, Some(n))
        }
        Some(filter) => {
            let counted = subjects.count_documents(filter.clone()).limit(count_to);
            let (n, counted) =
                tokio::try_join!(all.into_future(), counted.into_future()).map_err(classify)?;
            (n, Some(counted).filter(|c| *c <= count_limit))
        }
    };
    let filter = queries.filter.clone().unwrap_or_default();
    let limit = query.limit;
    let plan = match queries.walk_reads_only_matches {
        true => PagePlan::Walk,
        false => page_plan(matches, subjects_count, query.offset, limit),
    };
    let (items, more) = match plan {
        PagePlan::Collect => {
            let column = field(query.order_by);
            let cursor = subjects
                .find(filter)
                .projection(queries.key_projection.clone())
                .limit(i64::try_from(count_to).unwrap_or(i64::MAX))
                .await
                .map_err(classify)?;
            let keys = collect(cursor)
                .await?
                .iter()
                .map(|d| sort_key(d, column))
                .collect::<StoreResult<Vec<_>>>()?;
            let page = sorted_page(keys, query.descending, query.offset, limit);
            let cursor = subjects
                .find(doc! { "_id": { "$in": &page } })
                .await
                .map_err(classify)?;
            let position: HashMap<&str, usize> = page
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect();
            let mut items = collect(cursor)
                .await?
                .iter()
                .map(subject_from_doc)
                .collect::<StoreResult<Vec<_>>>()?;
            items.sort_by_key(|s| position.get(s.sssid.as_str()).copied());
            (items, false)
        }
        PagePlan::Walk => {
            let cursor = subjects
                .find(filter)
                .sort(queries.sort.clone())
                .hint(Hint::Name(queries.walk_index.clone()))
                .skip(query.offset)
                .limit(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
                .await
                .map_err(classify)?;
            let mut items = collect(cursor)
                .await?
                .iter()
                .map(subject_from_doc)
                .collect::<StoreResult<Vec<_>>>()?;
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let more = items.len() > limit;
            items.truncate(limit);
            (items, more)
        }
    };
    let total = page_total(matches, count_limit, query.offset, items.len(), more);
    Ok(SubjectPage { items, total })
}

/// Gives documents written before a field of [`derived_fields`] existed
/// (the sort key replaced an old `name_lower`; the trigrams, folded name
/// and status came later) every one of them, so lists cover every
/// subject. Runs at every start and finds nothing once done. A document
/// is only updated while its version is still the one read, so a
/// concurrent write (a whole-document replace, with the fields) wins.
pub(super) async fn upgrade_documents(
    subjects: &Collection<Document>,
    subject_from_doc: fn(&Document) -> StoreResult<SubjectRecord>,
) -> StoreResult<u64> {
    let missing = subjects
        .find(doc! { "$or": [
            { "name_sort": { "$exists": false } },
            { "name_trigrams": { "$exists": false } },
            { "name_folded": { "$exists": false } },
            { "status": { "$exists": false } },
        ] })
        .await
        .map_err(classify)?;
    let mut updated = 0;
    for d in collect(missing).await? {
        // A document that does not read as a subject fails every list
        // anyway; leave it for whoever repairs it.
        let (Ok(subject), Some(version)) = (subject_from_doc(&d), d.get("version")) else {
            continue;
        };
        let result = subjects
            .update_one(
                doc! { "_id": &subject.sssid, "version": version.clone() },
                doc! {
                    "$set": derived_fields(&subject),
                    "$unset": { "name_lower": "" },
                },
            )
            .await
            .map_err(classify)?;
        updated += result.modified_count;
    }
    Ok(updated)
}
