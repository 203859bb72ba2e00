use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Document, doc};

use super::{
    DocExt, MongoStore, classify, collect, insert_unique, put_opt, regex_literal, to_bson_time,
};
use crate::store::{
    Page, StoreResult, SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore,
    name_sort_key,
};

/// Fields that lists can be ordered by; each has an index with the sssid as
/// tie breaker.
pub(super) const SORTABLE_FIELDS: &[&str] = &[
    "name_sort",
    "bday",
    "created",
    "changed",
    "date_invited",
    "date_consented",
    "date_enrolled",
    "date_withdrawn",
];

fn field(column: SubjectColumn) -> &'static str {
    match column {
        SubjectColumn::Sssid => "sssid",
        // Names sort the way people read them, ignoring letter case and
        // diacritics (`name_sort_key`).
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

/// The stored document. The sssid is both `_id` (lookups) and `sssid`
/// (compound indexes for sorted lists). `bday` is `YYYY-MM-DD` text, so it
/// sorts and prefix-matches like a date.
fn subject_doc(s: &SubjectRecord) -> Document {
    let mut d = doc! {
        "_id": &s.sssid,
        "sssid": &s.sssid,
        "name": &s.name,
        "name_sort": name_sort_key(&s.name),
        "created": to_bson_time(s.created),
        "changed": to_bson_time(s.changed),
        "version": s.version,
    };
    // Absent once erased.
    put_opt(
        &mut d,
        "bday",
        s.bday.map(|b| b.format("%Y-%m-%d").to_string()),
    );
    put_opt(&mut d, "email", s.email.as_deref());
    put_opt(&mut d, "date_invited", s.date_invited.map(to_bson_time));
    put_opt(&mut d, "date_consented", s.date_consented.map(to_bson_time));
    put_opt(&mut d, "date_enrolled", s.date_enrolled.map(to_bson_time));
    put_opt(&mut d, "date_withdrawn", s.date_withdrawn.map(to_bson_time));
    d
}

fn subject_from_doc(d: &Document) -> StoreResult<SubjectRecord> {
    Ok(SubjectRecord {
        sssid: d.req_str("sssid")?,
        name: d.req_str("name")?,
        bday: d
            .contains_key("bday")
            .then(|| d.req_date("bday"))
            .transpose()?,
        email: d.opt_str("email"),
        date_invited: d.opt_time("date_invited"),
        date_consented: d.opt_time("date_consented"),
        date_enrolled: d.opt_time("date_enrolled"),
        date_withdrawn: d.opt_time("date_withdrawn"),
        created: d.req_time("created")?,
        changed: d.req_time("changed")?,
        version: d.req_i64("version")?,
    })
}

fn set(field: &str) -> Document {
    doc! { field: { "$exists": true } }
}

fn unset(field: &str) -> Document {
    doc! { field: { "$exists": false } }
}

/// The subjects of one status: the domain rule `Journey::standing` in
/// `src/domain/study.rs` as a filter (the furthest date set wins); the store
/// conformance suite checks they agree.
fn status_filter(status: SubjectStatus) -> Vec<Document> {
    match status {
        SubjectStatus::NotInvited => vec![
            unset("date_invited"),
            unset("date_consented"),
            unset("date_enrolled"),
            unset("date_withdrawn"),
        ],
        SubjectStatus::Withdrawn => vec![set("date_withdrawn")],
        SubjectStatus::Enrolled => vec![set("date_enrolled"), unset("date_withdrawn")],
        SubjectStatus::Consented => vec![
            set("date_consented"),
            unset("date_enrolled"),
            unset("date_withdrawn"),
        ],
        SubjectStatus::Invited => vec![
            set("date_invited"),
            unset("date_consented"),
            unset("date_enrolled"),
            unset("date_withdrawn"),
        ],
    }
}

fn query_filter(query: &SubjectQuery) -> Document {
    let mut clauses = Vec::new();
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        let literal = regex_literal(search);
        clauses.push(doc! { "$or": [
            { "sssid": { "$regex": format!("^{literal}") } },
            { "name": { "$regex": &literal, "$options": "i" } },
            { "bday": { "$regex": format!("^{literal}") } },
        ] });
    }
    if let Some(status) = query.status {
        clauses.extend(status_filter(status));
    }
    match clauses.len() {
        0 => doc! {},
        1 => clauses.remove(0),
        _ => doc! { "$and": clauses },
    }
}

#[async_trait]
impl SubjectStore for MongoStore {
    async fn insert_subject(&self, subject: &SubjectRecord) -> StoreResult<()> {
        insert_unique(&self.subjects(), subject_doc(subject), "subject").await
    }

    async fn subject(&self, sssid: &str) -> StoreResult<Option<SubjectRecord>> {
        self.subjects()
            .find_one(doc! { "_id": sssid })
            .await
            .map_err(classify)?
            .as_ref()
            .map(subject_from_doc)
            .transpose()
    }

    async fn replace_subject(
        &self,
        subject: &SubjectRecord,
        expected_version: i64,
    ) -> StoreResult<bool> {
        let result = self
            .subjects()
            .replace_one(
                doc! { "_id": &subject.sssid, "version": expected_version },
                subject_doc(subject),
            )
            .await
            .map_err(classify)?;
        Ok(result.matched_count == 1)
    }

    async fn list_subjects(&self, query: &SubjectQuery) -> StoreResult<Page<SubjectRecord>> {
        let filter = query_filter(query);
        let total = self
            .subjects()
            .count_documents(filter.clone())
            .await
            .map_err(classify)?;
        let direction = if query.descending { -1 } else { 1 };
        let column = field(query.order_by);
        // Ties in the same direction, so the `(column, sssid)` index serves
        // both directions (walked backwards for descending).
        let sort = if column == "sssid" {
            doc! { "sssid": direction }
        } else {
            doc! { column: direction, "sssid": direction }
        };
        let cursor = self
            .subjects()
            .find(filter)
            .sort(sort)
            .skip(query.offset)
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .await
            .map_err(classify)?;
        let items = collect(cursor)
            .await?
            .iter()
            .map(subject_from_doc)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, total })
    }
}

/// Gives documents written before `name_sort` existed (they carry the old
/// `name_lower`) their sort key, so the name order covers every subject.
/// Runs at every start and finds nothing once done. Only the key is set,
/// and only while the name is still the one the key was computed from,
/// so a concurrent rename (a whole-document replace) always wins.
pub(super) async fn backfill_name_sort_keys(subjects: &Collection<Document>) -> StoreResult<u64> {
    let missing = subjects
        .find(doc! { "name_sort": { "$exists": false } })
        .projection(doc! { "_id": 1, "name": 1 })
        .await
        .map_err(classify)?;
    let mut updated = 0;
    for d in collect(missing).await? {
        let (Ok(id), Ok(name)) = (d.req_str("_id"), d.req_str("name")) else {
            continue;
        };
        let result = subjects
            .update_one(
                doc! { "_id": &id, "name": &name, "name_sort": { "$exists": false } },
                doc! { "$set": { "name_sort": name_sort_key(&name) }, "$unset": { "name_lower": "" } },
            )
            .await
            .map_err(classify)?;
        updated += result.modified_count;
    }
    Ok(updated)
}
