//! What staff do with links: create one for a consented subject, list and
//! read them, and update one (withdraw it, or record by hand what it is
//! linked to).

use std::future::ready;

use chrono::{DateTime, SubsecRound, Utc};

use super::{
    ALREADY_ESTABLISHED, LinkFields, LinkService, LinkView, link_not_found, link_target,
    linked_value,
};
use crate::clock::random_hex;
use crate::domain::{Timestamp, format_timestamp};
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::link_tokens::LINK_ALGORITHM;
use crate::service::optimistic::Edit;
use crate::service::subjects::{JourneyDate, require_study_access, subject_not_found};
use crate::store::LinkRecord;

/// Random bytes in a link id: 128 bits, so ids cannot be guessed or
/// enumerated.
const LINK_ID_BYTES: usize = 16;

/// What a staff update changed, for the audit and the subject's derived
/// dates.
#[derive(Default)]
struct StaffChange {
    actions: Vec<String>,
    /// Linked by hand, now.
    linked_on: Option<DateTime<Utc>>,
    withdrawn_on: Option<DateTime<Utc>>,
}

impl LinkService {
    /// A new link for a consented subject.
    pub async fn create(&self, ctx: &Context, sssid: &str) -> Result<LinkView> {
        ctx.require_write()?;
        let subject = self
            .deps
            .store
            .subject(sssid)
            .await?
            .ok_or_else(subject_not_found)?;
        subject.journey().check_can_invite()?;
        let now = self.deps.clock.now();
        let link = LinkRecord {
            id: random_hex(self.deps.random.as_ref(), LINK_ID_BYTES),
            sssid: subject.sssid,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            algorithm: LINK_ALGORITHM.into(),
            created: now,
            changed: now,
            issued_at: None,
            exp: None,
            linked_on: None,
            linked_to: None,
            linked_system: None,
            withdrawn_on: None,
            version: 1,
        };
        self.deps.store.insert_link(&link).await?;
        self.audits
            .record(ctx, link_target(&link), "[Link] create")
            .await;
        // A withdrawal written since the subject was read above may have
        // voided the subject's links before this one existed: void it now,
        // so that no usable link outlives an acknowledged withdrawal.
        let subject = self.deps.store.subject(&link.sssid).await?;
        if subject.is_some_and(|s| s.date_withdrawn.is_some()) {
            self.subjects.void_open_links(ctx, &link.sssid).await?;
            return Err(Error::PreconditionFailed(
                "Subject has withdrawn from the study".into(),
            ));
        }
        Ok(link.into())
    }

    /// The links of a subject, oldest first.
    pub async fn for_subject(&self, ctx: &Context, sssid: &str) -> Result<Vec<LinkView>> {
        require_study_access(ctx)?;
        if self.deps.store.subject(sssid).await?.is_none() {
            return Err(subject_not_found());
        }
        let links = self.deps.store.links_for_subject(sssid).await?;
        Ok(links.into_iter().map(LinkView::from).collect())
    }

    pub async fn get(&self, ctx: &Context, id: &str) -> Result<LinkView> {
        require_study_access(ctx)?;
        Ok(self.load(id).await?.into())
    }

    /// A staff update: `withdrawn_on` once; `linked_to`/`linked_system`
    /// only while not linked (which links it by hand, now); the fields that
    /// define the link cannot change. Withdrawing an unestablished link
    /// revokes it alone; withdrawing an established one withdraws the
    /// subject.
    pub async fn update(&self, ctx: &Context, id: &str, fields: LinkFields) -> Result<()> {
        ctx.require_write()?;
        let update = StaffUpdate::parse(fields)?;
        let decided = self
            .edit_link(id, link_not_found, |current| {
                ready(update.decide(current, self.deps.clock.now()))
            })
            .await?;
        let Edit::Write { next, then: change } = decided else {
            return Ok(());
        };
        for action in change.actions {
            self.audits.record(ctx, link_target(&next), action).await;
        }
        if let Some(at) = change.linked_on {
            self.derive_subject_date(ctx, &next.sssid, JourneyDate::Enrolled, at)
                .await;
        }
        // Withdrawing an established link ends the subject's pairing with
        // the app: the subject is withdrawn (and its other open links are
        // voided). Withdrawing a link that was never established only
        // revokes that one QR code; the subject stays as it is.
        if let Some(at) = change.withdrawn_on
            && next.linked_on.is_some()
        {
            self.derive_subject_date(ctx, &next.sssid, JourneyDate::Withdrawn, at)
                .await;
        }
        Ok(())
    }
}

impl LinkService {
    /// Staff revoke one link of the subject `sssid` that was never
    /// established: its QR code stops working (`/establish` 403, its JWT
    /// 410). This is not a withdrawal from the study: the subject and its
    /// other links stay as they are. An established link is part of the
    /// subject's history; it ends with the subject's withdrawal.
    pub async fn revoke(&self, ctx: &Context, sssid: &str, id: &str) -> Result<()> {
        ctx.require_write()?;
        // Milliseconds, a precision both stores keep exactly, so the audit
        // text names the date as it is stored.
        let now = self.deps.clock.now().trunc_subsecs(3);
        let decided: Edit<LinkRecord, (), ()> = self
            .edit_link(id, link_not_found, |mut current| {
                ready(if current.sssid != sssid {
                    Err(link_not_found())
                } else if current.linked_on.is_some() {
                    Err(Error::Conflict(
                        "this link has already been established; it ends with the subject's \
                         withdrawal"
                            .into(),
                    ))
                } else if current.withdrawn_on.is_some() {
                    Err(Error::Conflict(
                        "this link has already been withdrawn".into(),
                    ))
                } else {
                    current.withdrawn_on = Some(now);
                    current.changed = now;
                    Ok(Edit::Write {
                        next: current,
                        then: (),
                    })
                })
            })
            .await?;
        if let Edit::Write { next, .. } = decided {
            let action = format!("[Link] withdrawn: {}", format_timestamp(now));
            self.audits.record(ctx, link_target(&next), action).await;
        }
        Ok(())
    }
}

/// A staff update with its values checked; the immutable fields are kept
/// as sent, to compare with the stored link.
struct StaffUpdate {
    sent: LinkFields,
    exp: Option<Timestamp>,
    linked_on: Option<Timestamp>,
    withdrawn_on: Option<DateTime<Utc>>,
    linked_to: Option<String>,
    linked_system: Option<String>,
}

impl StaffUpdate {
    fn parse(sent: LinkFields) -> Result<Self> {
        let exp = sent
            .exp
            .as_deref()
            .map(|raw| Timestamp::parse("exp", raw))
            .transpose()?;
        let linked_on = sent
            .linked_on
            .as_deref()
            .map(|raw| Timestamp::parse("linked_on", raw))
            .transpose()?;
        let withdrawn_on = sent
            .withdrawn_on
            .as_deref()
            .map(|raw| Timestamp::parse("withdrawn_on", raw))
            .transpose()?
            .map(Timestamp::instant);
        let linked_to = sent
            .linked_to
            .as_deref()
            .map(|raw| linked_value("linked_to", raw, Error::BadRequest))
            .transpose()?;
        let linked_system = sent
            .linked_system
            .as_deref()
            .map(|raw| linked_value("linked_system", raw, Error::BadRequest))
            .transpose()?;
        Ok(Self {
            sent,
            exp,
            linked_on,
            withdrawn_on,
            linked_to,
            linked_system,
        })
    }

    /// What the update does to `current` at `now`: a conflict, nothing, or
    /// the next link and what changed.
    fn decide(
        &self,
        current: LinkRecord,
        now: DateTime<Utc>,
    ) -> Result<Edit<LinkRecord, (), StaffChange>> {
        let unchanged = |name: &str, sent: &Option<String>, stored: &str| match sent.as_deref() {
            Some(value) if value != stored => {
                Err(Error::Conflict(format!("{name} cannot be changed")))
            }
            _ => Ok(()),
        };
        unchanged("_id", &self.sent.id, &current.id)?;
        unchanged("sub", &self.sent.sub, &current.sssid)?;
        unchanged("iss", &self.sent.iss, &current.iss)?;
        unchanged("aud", &self.sent.aud, &current.aud)?;
        unchanged("algorithm", &self.sent.algorithm, &current.algorithm)?;
        if self.exp.is_some_and(|e| Some(e.instant()) != current.exp) {
            return Err(Error::Conflict("exp cannot be changed".into()));
        }
        if self
            .linked_on
            .is_some_and(|t| Some(t.instant()) != current.linked_on)
        {
            return Err(Error::Conflict(
                "linked_on cannot be changed; it is set when the link is established".into(),
            ));
        }

        let mut next = current.clone();
        let mut change = StaffChange::default();
        match (&current.linked_on, &self.linked_to) {
            (Some(_), Some(to)) if Some(to) != current.linked_to.as_ref() => {
                return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
            }
            (Some(_), _) => {
                if self.linked_system.is_some() && self.linked_system != current.linked_system {
                    return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
                }
            }
            (None, Some(to)) => {
                if current.withdrawn_on.is_some() {
                    return Err(Error::Conflict("this link has been withdrawn".into()));
                }
                next.linked_on = Some(now);
                next.linked_to = Some(to.clone());
                next.linked_system = self.linked_system.clone();
                change.actions.push(format!("[Link] link to {to}"));
                change.linked_on = Some(now);
            }
            (None, None) => {
                if self.linked_system.is_some() {
                    return Err(Error::BadRequest(
                        "linked_system can only be set together with linked_to".into(),
                    ));
                }
            }
        }
        match (current.withdrawn_on, self.withdrawn_on) {
            (_, None) => {}
            (None, Some(at)) => {
                next.withdrawn_on = Some(at);
                change
                    .actions
                    .push(format!("[Link] withdrawn: {}", format_timestamp(at)));
                change.withdrawn_on = Some(at);
            }
            (Some(stored), Some(at)) if stored == at => {}
            (Some(_), Some(_)) => {
                return Err(Error::Conflict("Link has already been withdrawn".into()));
            }
        }
        if change.actions.is_empty() {
            return Ok(Edit::Unchanged(()));
        }
        next.changed = now;
        Ok(Edit::Write { next, then: change })
    }
}
