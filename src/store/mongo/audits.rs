use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::{DocExt, MongoStore, classify, collect, put_opt, to_bson_time};
use crate::store::{AuditRecord, AuditStore, StoreResult};

fn audit_from_doc(d: &Document) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        datetime: d.req_time("datetime")?,
        action: d.req_str("action")?,
        actor: d.opt_str("actor"),
        request_id: d.opt_str("request_id"),
        client_ip: d.opt_str("client_ip"),
        subject: d.opt_str("subject"),
        link: d.opt_str("link"),
        user: d.opt_str("user"),
    })
}

impl MongoStore {
    /// Oldest first; entries of one instant keep their insertion order
    /// through `seq`, an ObjectId, which counts up within a process.
    async fn audits_where(&self, field: &str, value: &str) -> StoreResult<Vec<AuditRecord>> {
        let cursor = self
            .audits()
            .find(doc! { field: value })
            .sort(doc! { "datetime": 1, "seq": 1 })
            .await
            .map_err(classify)?;
        collect(cursor).await?.iter().map(audit_from_doc).collect()
    }
}

#[async_trait]
impl AuditStore for MongoStore {
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()> {
        let mut d = doc! {
            "seq": ObjectId::new(),
            "datetime": to_bson_time(entry.datetime),
            "action": &entry.action,
        };
        put_opt(&mut d, "actor", entry.actor.as_deref());
        put_opt(&mut d, "request_id", entry.request_id.as_deref());
        put_opt(&mut d, "client_ip", entry.client_ip.as_deref());
        put_opt(&mut d, "subject", entry.subject.as_deref());
        put_opt(&mut d, "link", entry.link.as_deref());
        put_opt(&mut d, "user", entry.user.as_deref());
        self.audits().insert_one(d).await.map_err(classify)?;
        Ok(())
    }

    async fn audits_for_subject(&self, sssid: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("subject", sssid).await
    }

    async fn audits_for_user(&self, username: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("user", username).await
    }
}
