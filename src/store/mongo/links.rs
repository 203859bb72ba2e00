use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document, doc};

use super::{DocExt, MongoStore, classify, collect, insert_unique, put_opt, to_bson_time};
use crate::store::{LinkRecord, LinkStore, StoreResult};

/// The stored document; `seq` (an ObjectId, counting up within a process)
/// keeps links created in the same millisecond in insertion order.
fn link_doc(l: &LinkRecord, seq: Bson) -> Document {
    let mut d = doc! {
        "_id": &l.id,
        "seq": seq,
        "sssid": &l.sssid,
        "iss": &l.iss,
        "aud": &l.aud,
        "algorithm": &l.algorithm,
        "created": to_bson_time(l.created),
        "changed": to_bson_time(l.changed),
        "version": l.version,
    };
    put_opt(&mut d, "issued_at", l.issued_at.map(to_bson_time));
    put_opt(&mut d, "exp", l.exp.map(to_bson_time));
    put_opt(&mut d, "linked_on", l.linked_on.map(to_bson_time));
    put_opt(&mut d, "linked_to", l.linked_to.as_deref());
    put_opt(&mut d, "linked_system", l.linked_system.as_deref());
    put_opt(&mut d, "withdrawn_on", l.withdrawn_on.map(to_bson_time));
    d
}

fn link_from_doc(d: &Document) -> StoreResult<LinkRecord> {
    Ok(LinkRecord {
        id: d.req_str("_id")?,
        sssid: d.req_str("sssid")?,
        iss: d.req_str("iss")?,
        aud: d.req_str("aud")?,
        algorithm: d.req_str("algorithm")?,
        created: d.req_time("created")?,
        changed: d.req_time("changed")?,
        issued_at: d.opt_time("issued_at"),
        exp: d.opt_time("exp"),
        linked_on: d.opt_time("linked_on"),
        linked_to: d.opt_str("linked_to"),
        linked_system: d.opt_str("linked_system"),
        withdrawn_on: d.opt_time("withdrawn_on"),
        version: d.req_i64("version")?,
    })
}

#[async_trait]
impl LinkStore for MongoStore {
    async fn insert_link(&self, link: &LinkRecord) -> StoreResult<()> {
        insert_unique(
            &self.links(),
            link_doc(link, ObjectId::new().into()),
            "link",
        )
        .await
    }

    async fn link(&self, id: &str) -> StoreResult<Option<LinkRecord>> {
        self.links()
            .find_one(doc! { "_id": id })
            .await
            .map_err(classify)?
            .as_ref()
            .map(link_from_doc)
            .transpose()
    }

    async fn links_for_subject(&self, sssid: &str) -> StoreResult<Vec<LinkRecord>> {
        let cursor = self
            .links()
            .find(doc! { "sssid": sssid })
            .sort(doc! { "created": 1, "seq": 1 })
            .await
            .map_err(classify)?;
        collect(cursor).await?.iter().map(link_from_doc).collect()
    }

    /// A single conditional replace: of concurrent writers holding the same
    /// `expected_version`, the server lets exactly one match.
    async fn replace_link(&self, link: &LinkRecord, expected_version: i64) -> StoreResult<bool> {
        // `seq` never changes, so reading it before the conditional write
        // is safe.
        let Some(seq) = self
            .links()
            .find_one(doc! { "_id": &link.id })
            .projection(doc! { "seq": 1 })
            .await
            .map_err(classify)?
            .and_then(|d| d.get("seq").cloned())
        else {
            return Ok(false);
        };
        let result = self
            .links()
            .replace_one(
                doc! { "_id": &link.id, "version": expected_version },
                link_doc(link, seq),
            )
            .await
            .map_err(classify)?;
        Ok(result.matched_count == 1)
    }
}
