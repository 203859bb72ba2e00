use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::{DocExt, MongoStore, classify, collect, malformed, put_opt, to_bson_time};
use crate::store::{AuditCursor, AuditPage, AuditRange, AuditRecord, AuditStore, StoreResult};

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

    async fn audits_between(&self, range: &AuditRange) -> StoreResult<AuditPage> {
        // The cursor is the last entry's time (milliseconds) and how many
        // entries of that instant were read: the next page starts there
        // and skips those. (Counting rather than comparing `seq` keeps to
        // what every wire-compatible server answers alike.)
        let (from, already) = match &range.after {
            None => (to_bson_time(range.from), 0_u64),
            Some(AuditCursor(text)) => text
                .split_once('/')
                .and_then(|(millis, n)| {
                    Some((
                        mongodb::bson::DateTime::from_millis(millis.parse().ok()?),
                        n.parse().ok()?,
                    ))
                })
                .ok_or_else(|| malformed(format!("audit cursor {text:?}")))?,
        };
        let cursor = self
            .audits()
            .find(doc! {
                "datetime": { "$gte": from, "$lt": to_bson_time(range.to) },
            })
            .sort(doc! { "datetime": 1, "seq": 1 })
            .skip(already)
            .limit(i64::try_from(range.limit).unwrap_or(i64::MAX))
            .await
            .map_err(classify)?;
        let entries = collect(cursor)
            .await?
            .iter()
            .map(audit_from_doc)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = match entries.last() {
            Some(last) if entries.len() as u64 == range.limit => {
                let at = to_bson_time(last.datetime);
                let same_instant = entries
                    .iter()
                    .rev()
                    .take_while(|e| to_bson_time(e.datetime) == at)
                    .count() as u64;
                // A page all of the cursor's instant adds to its count.
                let read = if at == from && range.after.is_some() {
                    already + same_instant
                } else {
                    same_instant
                };
                Some(AuditCursor(format!("{}/{read}", at.timestamp_millis())))
            }
            _ => None,
        };
        Ok(AuditPage { entries, next })
    }

    async fn audits_for_subject(&self, sssid: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("subject", sssid).await
    }

    async fn audits_for_user(&self, username: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audits_where("user", username).await
    }
}
