//! Subject lists on MongoDB, by the design of `store::subject_list` (the
//! same as SQLite's): each part of a filter and every sort has an index
//! ([`subject_indexes`]; `tests/list_plans.rs` checks each query against
//! them), counts stop one past the count limit, and each part's page is
//! collected (sort keys of its counted subjects, sorted here) or walked
//! (the sort index, hinted, with the part's filter applied to each
//! subject).

use std::collections::HashMap;

use super::indexes::EnsureIndex;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{Hint, IndexOptions};
use mongodb::{Collection, IndexModel};

use super::{DocExt, classify, collect, regex_literal};
use crate::store::subject_list::{
    NameCandidates, PagePlan, Part, SearchText, SubjectPage, Window, counted_total, merged_page,
    name_trigrams, page_plan, page_total, parts as parts_of, sorted_window,
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
            .ensure_index(
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
/// The fields [`derived_fields`] adds: for queries only, never read back.
const DERIVED_FIELDS: [&str; 4] = ["name_sort", "name_trigrams", "name_folded", "status"];

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

/// One part of a list query (`store::subject_list::Part`).
#[derive(Debug, Clone, PartialEq)]
pub struct PartQuery {
    pub part: Part,
    /// The part's subjects; `None` lists every subject (the total is then
    /// the collection's own count).
    pub filter: Option<PartFilter>,
    /// The index the walk follows (hinted): the sort's, or the status
    /// index, which holds the sssid order of each status.
    pub walk_index: String,
    /// Whether the walk reads nothing but the part's subjects (a range of
    /// the walked index), so collecting never pays.
    pub walk_reads_only_part: bool,
}

/// Which subjects a part holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PartFilter {
    pub filter: Document,
    /// The index `filter` bounds, hinted to count and collect (the planner
    /// could otherwise pick a sort index and read far more).
    pub index: String,
}

/// The documents of one list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQueries {
    pub parts: Vec<PartQuery>,
    /// The order: the column, then the sssid, in the same direction.
    pub sort: Document,
    /// The sort key and sssid of a subject, for collecting.
    pub key_projection: Document,
}

/// The documents of `query`.
pub fn list_queries(query: &SubjectQuery) -> ListQueries {
    let search = SearchText::new(query.search.as_deref());
    let status = query.status.map(|s| doc! { "status": s.as_str() });
    let with_status = |mut filter: Document| {
        filter.extend(status.clone().unwrap_or_default());
        filter
    };
    let direction = if query.descending { -1 } else { 1 };
    let column = field(query.order_by);
    let sort = match column {
        "sssid" => doc! { "sssid": direction },
        column => doc! { column: direction, "sssid": direction },
    };
    let walk_index = match (column, query.status) {
        ("sssid", Some(_)) => "by_status".to_owned(),
        ("sssid", None) => "sssid_unique".to_owned(),
        (column, _) => format!("by_{column}"),
    };
    // Search text as literal regular expressions: anchored (a prefix, on
    // the index) and unanchored on the name lower-cased in Rust (never the
    // server's idea of letter case).
    let (prefix, in_name) = search.as_ref().map_or_else(Default::default, |s| {
        (
            format!("^{}", regex_literal(&s.text)),
            regex_literal(&s.folded),
        )
    });
    let mut parts = Vec::new();
    for part in parts_of(search.as_ref(), status.is_some()) {
        let (filter, filter_index, reads_only_part) = match part {
            Part::All => (None, None, true),
            Part::Status => (status.clone(), Some("by_status"), column == "sssid"),
            Part::SssidPrefix => (
                Some(with_status(doc! { "sssid": { "$regex": &prefix } })),
                Some("sssid_unique"),
                column == "sssid" && status.is_none(),
            ),
            Part::Name => {
                let candidates = match search.as_ref().map(SearchText::name_candidates) {
                    Some(NameCandidates::AllOf(trigrams)) => doc! { "$all": trigrams },
                    Some(NameCandidates::Range { from, to }) => {
                        doc! { "$elemMatch": { "$gte": from, "$lte": to } }
                    }
                    None => continue,
                };
                // Outside the parts before.
                let mut outside = vec![doc! { "sssid": { "$regex": &prefix } }];
                if search.as_ref().is_some_and(SearchText::may_start_a_bday) {
                    outside.push(doc! { "bday": { "$regex": &prefix } });
                }
                let filter = doc! {
                    // Candidates from the trigram index, confirmed by the
                    // literal rule.
                    "name_trigrams": candidates,
                    "name_folded": { "$regex": &in_name },
                    "$nor": outside,
                };
                (Some(with_status(filter)), Some("by_name_trigrams"), false)
            }
            Part::BdayPrefix => {
                let filter = doc! {
                    "bday": { "$regex": &prefix },
                    "$nor": [{ "sssid": { "$regex": &prefix } }],
                };
                (
                    Some(with_status(filter)),
                    Some("by_bday"),
                    column == "bday" && status.is_none(),
                )
            }
        };
        let filter = filter.zip(filter_index).map(|(filter, index)| PartFilter {
            filter,
            index: index.to_owned(),
        });
        parts.push(PartQuery {
            part,
            filter,
            walk_index: walk_index.clone(),
            walk_reads_only_part: reads_only_part,
        });
    }
    ListQueries {
        parts,
        sort,
        key_projection: doc! { "_id": 0, "sssid": 1, column: 1 },
    }
}

/// A sort key as stored: text (names, birth dates) or a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Text(String),
    Time(i64),
}

type Keys = Vec<(Option<SortValue>, String)>;

fn sort_key(d: &Document, column: &str) -> StoreResult<(Option<SortValue>, String)> {
    let value = match (column, d.get(column)) {
        // The sssid order's key is the sssid itself.
        ("sssid", _) => None,
        (_, Some(Bson::String(s))) => Some(SortValue::Text(s.clone())),
        (_, Some(Bson::DateTime(t))) => Some(SortValue::Time(t.timestamp_millis())),
        _ => None,
    };
    Ok((value, d.req_str("sssid")?))
}

/// One page of `query` and its total, counting up to `count_limit`.
pub(super) async fn list(
    subjects: &Collection<Document>,
    query: &SubjectQuery,
    count_limit: u64,
    subject_from_doc: fn(&Document) -> StoreResult<SubjectRecord>,
) -> StoreResult<SubjectPage> {
    let queries = list_queries(query);
    let column = field(query.order_by);
    let count_to = count_limit.saturating_add(1);
    let all = subjects
        .estimated_document_count()
        .await
        .map_err(classify)?;
    // Each part's count (`None`: more than the limit); empty parts go.
    let mut counted = Vec::new();
    for part in &queries.parts {
        let matches = match &part.filter {
            None => Some(all),
            Some(PartFilter { filter, index }) => {
                let n = subjects
                    .count_documents(filter.clone())
                    .limit(count_to)
                    .hint(Hint::Name(index.clone()))
                    .await
                    .map_err(classify)?;
                Some(n).filter(|n| *n <= count_limit)
            }
        };
        if matches != Some(0) {
            counted.push((part, matches));
        }
    }
    let filtered = query.search.is_some() || query.status.is_some();
    let total = counted_total(counted.iter().map(|(_, m)| *m), count_limit, filtered);
    let window = Window::of(query.offset, query.limit, counted.len());
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut windows: Vec<Keys> = Vec::new();
    for (part, matches) in &counted {
        let plan = match part.walk_reads_only_part {
            true => PagePlan::Walk,
            false => page_plan(*matches, all, window.offset, window.limit),
        };
        let (filter, index) = match &part.filter {
            Some(PartFilter { filter, index }) => (filter.clone(), Some(index.clone())),
            None => (Document::new(), None),
        };
        let collecting = plan == PagePlan::Collect && index.is_some();
        let cursor = match (collecting, index) {
            (true, Some(index)) => subjects
                .find(filter)
                .hint(Hint::Name(index))
                .limit(as_i64(count_to)),
            _ => subjects
                .find(filter)
                .sort(queries.sort.clone())
                .hint(Hint::Name(part.walk_index.clone()))
                .skip(window.offset)
                .limit(as_i64(window.limit)),
        }
        .projection(queries.key_projection.clone())
        .await
        .map_err(classify)?;
        let keys = collect(cursor)
            .await?
            .iter()
            .map(|d| sort_key(d, column))
            .collect::<StoreResult<Keys>>()?;
        windows.push(match collecting {
            true => sorted_window(keys, query.descending, window.offset, window.limit),
            false => keys,
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
    // Without the derived fields (a name's trigrams outweigh the rest of
    // its document), and each document made a record as it arrives: a
    // page of an export is 10,000 subjects.
    let mut cursor = subjects
        .find(doc! { "_id": { "$in": &page } })
        .projection(
            DERIVED_FIELDS
                .iter()
                .map(|f| (f.to_string(), Bson::Int32(0)))
                .collect::<Document>(),
        )
        .await
        .map_err(classify)?;
    let position: HashMap<&str, usize> = page
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut items = Vec::with_capacity(page.len());
    while cursor.advance().await.map_err(classify)? {
        let document: Document = cursor.deserialize_current().map_err(classify)?;
        items.push(subject_from_doc(&document)?);
    }
    items.sort_by_key(|s| position.get(s.sssid.as_str()).copied());
    let total = page_total(total, count_limit, query.offset, items.len(), more);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_leaves_out_exactly_the_derived_fields() {
        let at = chrono::DateTime::UNIX_EPOCH;
        let subject = SubjectRecord {
            sssid: "S-1".into(),
            name: "Ada Lovelace".into(),
            bday: chrono::NaiveDate::from_ymd_opt(1815, 12, 10),
            email: None,
            date_invited: None,
            date_consented: None,
            date_enrolled: None,
            date_withdrawn: None,
            created: at,
            changed: at,
            version: 1,
        };
        let derived: Vec<String> = derived_fields(&subject).keys().cloned().collect();
        assert_eq!(derived, DERIVED_FIELDS);
    }
}
