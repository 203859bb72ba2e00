//! The audit chain on MongoDB. Several instances append to one chain
//! without transactions: an entry is inserted as number `last + 1` under a
//! unique index on `seq`, so of two instances that read the same last
//! entry one insert wins and the other gets a duplicate-key error, reads
//! the new last entry and tries again. Within an instance appends take
//! turns (a mutex) and remember the last entry they wrote, so the common
//! case is one insert and no read.

use async_trait::async_trait;
use chrono::{DurationRound, TimeDelta};
use mongodb::IndexModel;
use mongodb::bson::{self, Bson, Document, doc};
use tokio::sync::Mutex;

use super::{
    DocExt, MongoStore, classify, collect, is_duplicate, malformed, put_opt, to_bson_time,
};
use crate::store::chain::{self, BrokenEntry, ChainVerifier, PersonalValue, SealedAudit, Unsealed};
use crate::store::{
    AuditCursor, AuditPage, AuditRange, AuditRecord, AuditStore, StoreError, StoreResult,
};

/// How often an append re-reads the last entry after losing its place to
/// another instance before it gives up (each loss means another instance
/// made progress, so this only ends an append under extreme contention).
const APPEND_ATTEMPTS: usize = 200;

/// The last entry this instance knows of, `(seq, hash)`; `None` until the
/// first append reads it.
#[derive(Default)]
pub(crate) struct ChainTail(Mutex<Option<(u64, String)>>);

fn personal_from_doc(d: &Document) -> Result<Vec<PersonalValue>, String> {
    match d.get("personal") {
        None => Ok(Vec::new()),
        Some(value) => bson::from_bson(value.clone()).map_err(|e| format!("personal values: {e}")),
    }
}

fn sealed_from_doc(d: &Document) -> Result<SealedAudit, Box<BrokenEntry>> {
    let seq = d.req_i64("seq").ok();
    let unreadable = |problem: String| Box::new(BrokenEntry::unreadable(seq, problem));
    let seq = seq
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| unreadable("the sequence number is missing or not a whole number".into()))?;
    Ok(SealedAudit {
        seq,
        hash: d.req_str("hash").map_err(|e| unreadable(e.to_string()))?,
        datetime: d
            .req_time("datetime")
            .map_err(|e| unreadable(e.to_string()))?,
        template: d.req_str("action").map_err(|e| unreadable(e.to_string()))?,
        personal: personal_from_doc(d).map_err(unreadable)?,
        actor: d.opt_str("actor"),
        request_id: d.opt_str("request_id"),
        client_ip: d.opt_str("client_ip"),
        subject: d.opt_str("subject"),
        link: d.opt_str("link"),
        user: d.opt_str("user"),
    })
}

fn audit_from_doc(d: &Document) -> StoreResult<AuditRecord> {
    sealed_from_doc(d)
        .map(SealedAudit::into_record)
        .map_err(|broken| malformed(format!("audit entry: {}", broken.problem)))
}

fn personal_bson(values: &[PersonalValue]) -> StoreResult<Bson> {
    bson::to_bson(values).map_err(|e| StoreError::Other(e.into()))
}

/// The chain fields of a sealed entry, as stored.
fn chain_fields(sealed: &SealedAudit) -> StoreResult<Document> {
    let mut d = doc! {
        "seq": sealed.seq as i64,
        "hash": &sealed.hash,
        "action": &sealed.template,
    };
    if !sealed.personal.is_empty() {
        d.insert("personal", personal_bson(&sealed.personal)?);
    }
    Ok(d)
}

fn sealed_doc(sealed: &SealedAudit) -> StoreResult<Document> {
    let mut d = chain_fields(sealed)?;
    d.insert("datetime", to_bson_time(sealed.datetime));
    put_opt(&mut d, "actor", sealed.actor.as_deref());
    put_opt(&mut d, "request_id", sealed.request_id.as_deref());
    put_opt(&mut d, "client_ip", sealed.client_ip.as_deref());
    put_opt(&mut d, "subject", sealed.subject.as_deref());
    put_opt(&mut d, "link", sealed.link.as_deref());
    put_opt(&mut d, "user", sealed.user.as_deref());
    Ok(d)
}

impl MongoStore {
    async fn audits_where(&self, field: &str, value: &str) -> StoreResult<Vec<AuditRecord>> {
        let cursor = self
            .audits()
            .find(doc! { field: value })
            .sort(doc! { "seq": 1 })
            .await
            .map_err(classify)?;
        collect(cursor).await?.iter().map(audit_from_doc).collect()
    }

    /// The last chained entry in the database.
    async fn chain_tail(&self) -> StoreResult<(u64, String)> {
        let last = self
            .audits()
            .find_one(doc! { "hash": { "$exists": true } })
            .sort(doc! { "seq": -1 })
            .await
            .map_err(classify)?;
        match last {
            None => Ok((0, chain::GENESIS.to_owned())),
            Some(d) => {
                let seq = d.req_i64("seq")?;
                Ok((u64::try_from(seq).unwrap_or(0), d.req_str("hash")?))
            }
        }
    }

    /// The chain's order, and its guard against two entries taking one
    /// place.
    pub(super) async fn create_audit_chain_indexes(
        &self,
        unique: impl Fn(Document, &str) -> IndexModel,
        plain: impl Fn(Document, &str) -> IndexModel,
    ) -> StoreResult<()> {
        let audits = self.audits();
        audits
            .create_index(unique(doc! { "seq": 1 }, "seq_unique"))
            .await
            .map_err(classify)?;
        for field in ["subject", "user"] {
            audits
                .create_index(plain(
                    doc! { field: 1, "seq": 1 },
                    &format!("by_{field}_seq"),
                ))
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// Start-up: chains entries written before the chain existed, oldest
    /// first (they carry an ObjectId `seq` and no `hash`). Each step claims
    /// one entry with a conditional update, so instances starting together
    /// (and ones already serving) never give two entries one place, and a
    /// run that was cut short goes on where it stopped.
    pub(super) async fn chain_unchained_audits(&self) -> StoreResult<u64> {
        let audits = self.audits();
        let mut chained = 0;
        loop {
            let Some(old) = audits
                .find_one(doc! { "hash": { "$exists": false } })
                .sort(doc! { "datetime": 1, "seq": 1 })
                .await
                .map_err(classify)?
            else {
                if chained > 0 {
                    tracing::info!(
                        entries = chained,
                        "chained the audit entries of an older version"
                    );
                }
                return Ok(chained);
            };
            let entry = AuditRecord {
                datetime: old.req_time("datetime")?,
                action: chain::mark_personal_in_old_text(&old.req_str("action")?),
                actor: old.opt_str("actor"),
                request_id: old.opt_str("request_id"),
                client_ip: old.opt_str("client_ip"),
                subject: old.opt_str("subject"),
                link: old.opt_str("link"),
                user: old.opt_str("user"),
                chain: None,
            };
            let (seq, previous) = self.chain_tail().await?;
            let sealed = Unsealed::new(&entry).seal(seq + 1, &previous);
            let claimed = audits
                .update_one(
                    doc! { "_id": old.get("_id").cloned().unwrap_or(Bson::Null),
                    "hash": { "$exists": false } },
                    doc! { "$set": chain_fields(&sealed)? },
                )
                .await
                .map_err(classify);
            match claimed {
                Ok(r) if r.modified_count == 1 => chained += 1,
                // Another instance chained this entry, or took the place.
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl AuditStore for MongoStore {
    async fn append_audit(&self, entry: &AuditRecord) -> StoreResult<()> {
        // BSON dates are milliseconds: hash what is stored.
        let mut entry = entry.clone();
        entry.datetime = entry
            .datetime
            .duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(entry.datetime);
        let unsealed = Unsealed::new(&entry);
        let mut tail = self.audit_tail.0.lock().await;
        for _ in 0..APPEND_ATTEMPTS {
            let (seq, previous) = match tail.take() {
                Some(known) => known,
                None => self.chain_tail().await?,
            };
            let sealed = unsealed.seal(seq + 1, &previous);
            match self.audits().insert_one(sealed_doc(&sealed)?).await {
                Ok(_) => {
                    *tail = Some((sealed.seq, sealed.hash));
                    return Ok(());
                }
                Err(e) => {
                    let e = classify(e);
                    if !is_duplicate(&e) {
                        return Err(e);
                    }
                    // Another instance took the place: read the new tail.
                }
            }
        }
        Err(StoreError::Unavailable(
            "mongodb: the audit chain is too contended to append; try again".into(),
        ))
    }

    async fn verify_audit_chain_part(
        &self,
        mut verifier: ChainVerifier,
        limit: u64,
    ) -> StoreResult<ChainVerifier> {
        let last = i64::try_from(verifier.last_seq()).unwrap_or(i64::MAX);
        let mut cursor = self
            .audits()
            .find(doc! { "seq": { "$gt": last } })
            .sort(doc! { "seq": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(classify)?;
        let mut read = 0;
        while cursor.advance().await.map_err(classify)? {
            read += 1;
            let d: Document = cursor.deserialize_current().map_err(classify)?;
            if !verifier.check(sealed_from_doc(&d).as_ref().map_err(|b| &**b)) {
                return Ok(verifier);
            }
        }
        if read < limit {
            let stored = self
                .audits()
                .count_documents(doc! {})
                .await
                .map_err(classify)?;
            verifier.end_of_trail(stored);
        }
        Ok(verifier)
    }

    async fn erase_personal_values(&self, sssid: &str) -> StoreResult<u64> {
        let cursor = self
            .audits()
            .find(doc! { "subject": sssid, "personal": { "$exists": true } })
            .await
            .map_err(classify)?;
        let mut erased = 0;
        for d in collect(cursor).await? {
            let values = personal_from_doc(&d).map_err(malformed)?;
            if values.iter().all(PersonalValue::is_erased) {
                continue;
            }
            let kept: Vec<_> = values.iter().map(PersonalValue::erased).collect();
            self.audits()
                .update_one(
                    doc! { "_id": d.get("_id").cloned().unwrap_or(Bson::Null) },
                    doc! { "$set": { "personal": personal_bson(&kept)? } },
                )
                .await
                .map_err(classify)?;
            erased += 1;
        }
        Ok(erased)
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
