//! `idm import`: brings the old service's data (see
//! `store::mongo::legacy`) into the current store, through the store traits,
//! so it works into SQLite as well as MongoDB.
//!
//! Rules:
//! - Idempotent: a record that is already there as imported counts as
//!   unchanged, so re-running an import changes nothing.
//! - Users keep their old `_id` as id: a user with the same name and id is
//!   "already imported" even after its bcrypt hash was upgraded at login. A
//!   user with the same name but another id is a conflict.
//! - Subjects and links are compared by content: equal is unchanged,
//!   different is a conflict.
//! - With conflicts nothing at all is written unless `force` is set; then
//!   the old data overwrites (users get the old password and admin flag,
//!   and their tokens are revoked).
//! - Audits are appended once: entries equal to ones already stored (same
//!   time, action, actor, subject and link) are not added again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::store::mongo::legacy::{LegacyData, LegacyUser};
use crate::store::{
    AuditRecord, AuditStore, LinkRecord, LinkStore, SubjectRecord, SubjectStore, UserRecord,
    UserStore, UserUpdate, UserWriteOutcome,
};

/// What an import writes to: every store once all aggregates are merged
/// (`dyn Store` then satisfies this).
pub trait ImportTarget: UserStore + SubjectStore + LinkStore + AuditStore {}
impl<T: UserStore + SubjectStore + LinkStore + AuditStore + ?Sized> ImportTarget for T {}

/// Per kind of record: how many were written new, found already there, or
/// overwritten (with `force`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub imported: u64,
    pub unchanged: u64,
    pub overwritten: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub users: Counts,
    pub subjects: Counts,
    pub links: Counts,
    pub audits: Counts,
    /// Old documents that were not imported, and why.
    pub skipped: Vec<String>,
    /// Records that differed from what the store holds (overwritten, since
    /// a report only exists when the import ran).
    pub conflicts: Vec<String>,
}

impl ImportReport {
    /// Human-readable summary for the command line.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (kind, c) in [
            ("users", self.users),
            ("subjects", self.subjects),
            ("links", self.links),
            ("audits", self.audits),
        ] {
            out.push_str(&format!(
                "{kind}: {} imported, {} unchanged, {} overwritten\n",
                c.imported, c.unchanged, c.overwritten
            ));
        }
        if !self.conflicts.is_empty() {
            out.push_str(&format!(
                "overwrote {} conflicting record(s) (--force):\n",
                self.conflicts.len()
            ));
            for line in &self.conflicts {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!("skipped {} document(s):\n", self.skipped.len()));
            for line in &self.skipped {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

/// How one record relates to what the store holds.
enum Plan<T> {
    Insert,
    Unchanged,
    /// Differs; carries what is stored now.
    Conflict(T),
}

/// Imports `data` into `target`. `now` is the time the import runs.
pub async fn run<S: ImportTarget + ?Sized>(
    target: &S,
    data: LegacyData,
    now: DateTime<Utc>,
    force: bool,
) -> Result<ImportReport> {
    let mut report = ImportReport {
        skipped: data.skipped.clone(),
        ..ImportReport::default()
    };

    // ---- plan everything first, so a refused import writes nothing
    let mut user_plans = Vec::new();
    // Old data may name one account twice (the old service did not
    // normalise case) or repeat an id: the first one wins.
    let mut seen = HashSet::new();
    for user in &data.users {
        if !seen.insert(user.username.as_str()) {
            report.skipped.push(format!(
                "user {} ({}): the same username appears earlier",
                user.username, user.id
            ));
            continue;
        }
        let plan = match target.user_by_username(&user.username).await? {
            None => Plan::Insert,
            Some(existing) if existing.id == user.id => Plan::Unchanged,
            Some(existing) => {
                report.conflicts.push(format!(
                    "user {}: exists and was not created by this import",
                    user.username
                ));
                Plan::Conflict(existing)
            }
        };
        user_plans.push((user, plan));
    }
    let mut subject_plans = Vec::new();
    let mut seen = HashSet::new();
    for subject in &data.subjects {
        let s = &subject.record;
        if !seen.insert(s.sssid.as_str()) {
            report.skipped.push(format!(
                "subject {} ({}): the same sssid appears earlier",
                s.sssid, subject.old_id
            ));
            continue;
        }
        let plan = match target.subject(&s.sssid).await? {
            None => Plan::Insert,
            Some(existing) if same_subject(&existing, s) => Plan::Unchanged,
            Some(existing) => {
                report.conflicts.push(format!(
                    "subject {}: differs from the stored subject",
                    s.sssid
                ));
                Plan::Conflict(existing)
            }
        };
        subject_plans.push((s, plan));
    }
    let mut link_plans = Vec::new();
    let mut seen = HashSet::new();
    for link in &data.links {
        if !seen.insert(link.id.as_str()) {
            report
                .skipped
                .push(format!("link {}: the same id appears earlier", link.id));
            continue;
        }
        let imported_subject = data.subjects.iter().any(|s| s.record.sssid == link.sssid);
        if !imported_subject && target.subject(&link.sssid).await?.is_none() {
            report.skipped.push(format!(
                "link {}: its subject {} does not exist",
                link.id, link.sssid
            ));
            continue;
        }
        let plan = match target.link(&link.id).await? {
            None => Plan::Insert,
            Some(existing) if same_link(&existing, link) => Plan::Unchanged,
            Some(existing) => {
                report
                    .conflicts
                    .push(format!("link {}: differs from the stored link", link.id));
                Plan::Conflict(existing)
            }
        };
        link_plans.push((link, plan));
    }
    if !report.conflicts.is_empty() && !force {
        let mut message = format!(
            "{} record(s) conflict with existing data; nothing was imported. \
             Re-run with --force to overwrite them:",
            report.conflicts.len()
        );
        for line in &report.conflicts {
            message.push_str("\n  ");
            message.push_str(line);
        }
        return Err(Error::Conflict(message));
    }

    // ---- write
    // New accounts first, so that overwriting a conflicting admin's role
    // can count on imported admins.
    let mut overwrites = Vec::new();
    for (user, plan) in user_plans {
        match plan {
            Plan::Unchanged => report.users.unchanged += 1,
            Plan::Insert => {
                target.insert_user(&new_user(user, now)).await?;
                report.users.imported += 1;
            }
            Plan::Conflict(existing) => overwrites.push((user, existing)),
        }
    }
    for (user, existing) in overwrites {
        let update = UserUpdate {
            admin: Some(user.admin),
            password_hash: Some(user.password_hash.clone()),
            revoke_tokens: true,
            changed: now,
        };
        match target.update_user(&existing.username, &update).await? {
            UserWriteOutcome::Done(_) => report.users.overwritten += 1,
            UserWriteOutcome::LastAdmin => report.skipped.push(format!(
                "user {}: not demoted, it is the last admin",
                user.username
            )),
            UserWriteOutcome::NotFound => {
                target.insert_user(&new_user(user, now)).await?;
                report.users.imported += 1;
            }
        }
    }
    for (subject, plan) in subject_plans {
        match plan {
            Plan::Unchanged => report.subjects.unchanged += 1,
            Plan::Insert => {
                target.insert_subject(subject).await?;
                report.subjects.imported += 1;
            }
            Plan::Conflict(existing) => {
                let replacement = SubjectRecord {
                    version: existing.version + 1,
                    changed: now,
                    ..subject.clone()
                };
                if !target
                    .replace_subject(&replacement, existing.version)
                    .await?
                {
                    return Err(changed_meanwhile("subject", &subject.sssid));
                }
                report.subjects.overwritten += 1;
            }
        }
    }
    for (link, plan) in link_plans {
        match plan {
            Plan::Unchanged => report.links.unchanged += 1,
            Plan::Insert => {
                target.insert_link(link).await?;
                report.links.imported += 1;
            }
            Plan::Conflict(existing) => {
                let replacement = LinkRecord {
                    version: existing.version + 1,
                    changed: now,
                    ..link.clone()
                };
                if !target.replace_link(&replacement, existing.version).await? {
                    return Err(changed_meanwhile("link", &link.id));
                }
                report.links.overwritten += 1;
            }
        }
    }
    import_audits(target, &data, &mut report).await?;
    Ok(report)
}

fn changed_meanwhile(kind: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "{kind} {id} changed while importing; run the import again"
    ))
}

fn new_user(user: &LegacyUser, now: DateTime<Utc>) -> UserRecord {
    UserRecord {
        id: user.id.clone(),
        username: user.username.clone(),
        password_hash: user.password_hash.clone(),
        admin: user.admin,
        token_version: 0,
        created: now,
        changed: now,
        last_login: None,
    }
}

/// The fields the old service owned; `created`, `changed` and `version`
/// belong to the store.
fn same_subject(a: &SubjectRecord, b: &SubjectRecord) -> bool {
    (
        &a.name,
        a.bday,
        &a.email,
        a.date_invited,
        a.date_consented,
        a.date_enrolled,
        a.date_withdrawn,
    ) == (
        &b.name,
        b.bday,
        &b.email,
        b.date_invited,
        b.date_consented,
        b.date_enrolled,
        b.date_withdrawn,
    )
}

fn same_link(a: &LinkRecord, b: &LinkRecord) -> bool {
    (
        &a.sssid,
        &a.iss,
        &a.aud,
        a.exp,
        a.linked_on,
        &a.linked_to,
        &a.linked_system,
        a.withdrawn_on,
    ) == (
        &b.sssid,
        &b.iss,
        &b.aud,
        b.exp,
        b.linked_on,
        &b.linked_to,
        &b.linked_system,
        b.withdrawn_on,
    )
}

/// Appends old audits that are not stored yet. Entries are matched as a
/// multiset, so two identical old entries stay two.
async fn import_audits<S: ImportTarget + ?Sized>(
    target: &S,
    data: &LegacyData,
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
    let username_of: HashMap<&str, &str> = data
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.username.as_str()))
        .collect();
    // Stored entries per subject, counted, loaded once per subject.
    let mut stored: HashMap<String, HashMap<AuditKey, usize>> = HashMap::new();
    for audit in &data.audits {
        let (sssid, link) = if let Some(sssid) = subject_of.get(audit.document.as_str()) {
            (*sssid, None)
        } else if let Some(sssid) = link_subject.get(audit.document.as_str()) {
            (*sssid, Some(audit.document.clone()))
        } else {
            report.skipped.push(format!(
                "audit of {}: refers to no imported subject or link",
                audit.document
            ));
            continue;
        };
        let record = AuditRecord {
            datetime: audit.datetime,
            action: audit.action.clone(),
            actor: audit
                .actor_id
                .as_deref()
                .and_then(|id| username_of.get(id))
                .map(|u| (*u).to_owned()),
            request_id: None,
            client_ip: None,
            subject: Some(sssid.to_owned()),
            link,
            user: None,
            chain: None,
        };
        if !stored.contains_key(sssid) {
            let mut counts = HashMap::new();
            for existing in target.audits_for_subject(sssid).await? {
                *counts.entry(AuditKey::of(&existing)).or_insert(0) += 1;
            }
            stored.insert(sssid.to_owned(), counts);
        }
        let remaining = stored
            .get_mut(sssid)
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
