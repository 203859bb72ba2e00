use async_trait::async_trait;
use mongodb::bson::{Document, doc};

use super::{DocExt, MongoStore, classify, insert_unique, put_opt, subject_list, to_bson_time};
use crate::store::{StoreResult, SubjectPage, SubjectQuery, SubjectRecord, SubjectStore};

/// The stored document. The sssid is both `_id` (lookups) and `sssid`
/// (compound indexes for sorted lists). `bday` is `YYYY-MM-DD` text, so it
/// sorts and prefix-matches like a date.
fn subject_doc(s: &SubjectRecord) -> Document {
    let mut d = doc! {
        "_id": &s.sssid,
        "sssid": &s.sssid,
        "name": &s.name,
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
    d.extend(subject_list::derived_fields(s));
    d
}

pub(super) fn subject_from_doc(d: &Document) -> StoreResult<SubjectRecord> {
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

    async fn list_subject_page(
        &self,
        query: &SubjectQuery,
        count_limit: u64,
    ) -> StoreResult<SubjectPage> {
        subject_list::list(&self.subjects(), query, count_limit, subject_from_doc).await
    }
}
