//! The old audit entries, appended once: about a subject or its links
//! (the subject's trail) or about a staff account (the account's trail),
//! with the entries the import derives.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ImportReport, ImportTarget};
use crate::error::Result;
use crate::store::AuditRecord;
use crate::store::mongo::legacy::LegacyData;

/// The trail an entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Trail {
    Subject(String),
    Account(String),
}

/// Appends old audits, and `derived` ones, that are not stored yet, in
/// time order. Entries are matched as a multiset, so two identical old
/// entries stay two.
pub(super) async fn import_audits<S: ImportTarget + ?Sized>(
    target: &S,
    data: &LegacyData,
    derived: Vec<AuditRecord>,
    report: &mut ImportReport,
) -> Result<()> {
    let subject_of: HashMap<&str, &str> = data
        .subjects
        .iter()
        .map(|s| (s.old_id.as_str(), s.record.sssid.as_str()))
        .collect();
    let link_subject: HashMap<&str, &str> = data
        .links
        .iter()
        .map(|l| (l.id.as_str(), l.sssid.as_str()))
        .collect();
    // Every old account, the ones whose name appeared earlier included:
    // their entries belong to the account of that name.
    let username_of: HashMap<&str, &str> = data
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.username.as_str()))
        .collect();
    let mut records = Vec::new();
    for audit in &data.audits {
        let document = audit.document.as_str();
        let (subject, link, user) = if let Some(sssid) = subject_of.get(document) {
            (Some(*sssid), None, None)
        } else if let Some(sssid) = link_subject.get(document) {
            (Some(*sssid), Some(audit.document.clone()), None)
        } else if let Some(username) = username_of.get(document) {
            (None, None, Some(*username))
        } else {
            report.skipped.push(format!(
                "audit of {}: refers to no imported subject, link or user",
                audit.document
            ));
            continue;
        };
        records.push(AuditRecord {
            datetime: audit.datetime,
            action: audit.action.clone(),
            actor: audit
                .actor_id
                .as_deref()
                .and_then(|id| username_of.get(id))
                .map(|u| (*u).to_owned()),
            request_id: None,
            client_ip: None,
            subject: subject.map(str::to_owned),
            link,
            user: user.map(str::to_owned),
            chain: None,
        });
    }
    records.extend(derived);
    // Oldest first (stable: entries of one instant keep their order), so
    // each trail reads in time order.
    records.sort_by_key(|r| r.datetime);
    // Stored entries per trail, counted, loaded once per trail.
    let mut stored: HashMap<Trail, HashMap<AuditKey, usize>> = HashMap::new();
    for record in records {
        let trail = match (&record.subject, &record.user) {
            (Some(sssid), _) => Trail::Subject(sssid.clone()),
            (None, Some(username)) => Trail::Account(username.clone()),
            (None, None) => continue,
        };
        if !stored.contains_key(&trail) {
            let existing = match &trail {
                Trail::Subject(sssid) => target.audits_for_subject(sssid).await?,
                Trail::Account(username) => target.audits_for_user(username).await?,
            };
            let mut counts = HashMap::new();
            for entry in &existing {
                *counts.entry(AuditKey::of(entry)).or_insert(0) += 1;
            }
            stored.insert(trail.clone(), counts);
        }
        let remaining = stored
            .get_mut(&trail)
            .and_then(|c| c.get_mut(&AuditKey::of(&record)));
        match remaining {
            Some(n) if *n > 0 => {
                *n -= 1;
                report.audits.unchanged += 1;
            }
            _ => {
                // Stored like the entries of this service: personal values
                // in the old texts can be erased.
                let marked = AuditRecord {
                    action: crate::store::chain::mark_personal_in_old_text(&record.action),
                    ..record
                };
                target.append_audit(&marked).await?;
                report.audits.imported += 1;
            }
        }
    }
    Ok(())
}

/// What makes two audit entries the same entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AuditKey {
    datetime: DateTime<Utc>,
    action: String,
    actor: Option<String>,
    link: Option<String>,
}

impl AuditKey {
    fn of(r: &AuditRecord) -> Self {
        Self {
            datetime: r.datetime,
            action: r.action.clone(),
            actor: r.actor.clone(),
            link: r.link.clone(),
        }
    }
}
