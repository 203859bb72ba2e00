//! What the old service left to be derived: it stored no `date_enrolled`
//! (or `date_withdrawn`) when a subject's link was established (or
//! withdrawn), and showed the subject as enrolled all the same. SPEC
//! section 4 derives these dates from the links; the import does the
//! same, so the subject arrives as the old service showed it.

use chrono::{DateTime, Utc};

use crate::domain::format_timestamp;
use crate::store::{AuditRecord, LinkRecord, SubjectRecord};

/// `subject` with the dates its links imply where it has none: the
/// earliest `linked_on` as `date_enrolled`, the earliest `withdrawn_on`
/// as `date_withdrawn`; and for each, the audit entry the service writes
/// when it derives one (no actor, at the link's time).
pub(super) fn with_link_dates(
    subject: &SubjectRecord,
    links: &[LinkRecord],
) -> (SubjectRecord, Vec<AuditRecord>) {
    let mut derived = subject.clone();
    let mut audits = Vec::new();
    let own: Vec<&LinkRecord> = links.iter().filter(|l| l.sssid == subject.sssid).collect();
    let earliest =
        |at: fn(&LinkRecord) -> Option<DateTime<Utc>>| own.iter().filter_map(|l| at(l)).min();
    for (slot, word, at) in [
        (
            &mut derived.date_enrolled,
            "enrolled",
            earliest(|l| l.linked_on),
        ),
        (
            &mut derived.date_withdrawn,
            "withdrawn",
            earliest(|l| l.withdrawn_on),
        ),
    ] {
        if let (None, Some(at)) = (*slot, at) {
            *slot = Some(at);
            audits.push(AuditRecord {
                datetime: at,
                action: format!("{word}: {}", format_timestamp(at)),
                actor: None,
                request_id: None,
                client_ip: None,
                subject: Some(subject.sssid.clone()),
                link: None,
                user: None,
                chain: None,
            });
        }
    }
    (derived, audits)
}
