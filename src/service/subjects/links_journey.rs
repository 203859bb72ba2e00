//! The subject's journey as its links make it: dates derived from link
//! events, and the links a withdrawal voids.

// The service's types, store access and write helper are the parent's.
use super::*;

impl SubjectService {
    /// Sets a journey date derived from the subject's links (first
    /// establishment, first withdrawal) unless it is set already.
    pub(crate) async fn derive_date(
        &self,
        ctx: &Context,
        sssid: &str,
        date: JourneyDate,
        at: DateTime<Utc>,
    ) -> Result<()> {
        // Milliseconds, a precision both stores keep exactly (BSON dates are
        // milliseconds), so the audit text names the date as it is stored.
        let at = at.trunc_subsecs(3);
        let now = self.deps.clock.now();
        let result = self
            .edit_subject(ctx, sssid, |mut next| {
                if date.slot(&mut next).is_some() {
                    return Ok(Edit::Unchanged(()));
                }
                *date.slot(&mut next) = Some(at);
                next.changed = now;
                Ok(Edit::Write {
                    next,
                    then: Audited {
                        action: date.audit_text(at),
                        result: (),
                    },
                })
            })
            .await;
        match result {
            // The subject is gone: there is nothing to derive a date for.
            Err(Error::NotFound(_)) => return Ok(()),
            other => other?,
        }
        if date == JourneyDate::Withdrawn {
            self.void_open_links(ctx, sssid).await?;
        }
        Ok(())
    }

    /// Withdrawal ends the subject's pairing: every link of a withdrawn
    /// subject that is neither established nor withdrawn gets the
    /// subject's `date_withdrawn` as its `withdrawn_on`, so its QR code no
    /// longer establishes (403) nor yields a JWT (410). Established links
    /// stay as they are: they are the subject's history.
    ///
    /// Each link is voided with the same optimistic write `/establish`
    /// uses, so for every link exactly one of the two wins: once this
    /// returns, every link was either established before it was voided or
    /// is void, and the withdrawal may be acknowledged. A link created
    /// while the withdrawal was being written is voided by its creator
    /// (see `LinkService::create`), and `/establish` also refuses links of
    /// a withdrawn subject. Safe to repeat: voided links are skipped.
    pub(crate) async fn void_open_links(&self, ctx: &Context, sssid: &str) -> Result<()> {
        let store = self.deps.store.as_ref();
        let Some(withdrawn) = store.subject(sssid).await?.and_then(|s| s.date_withdrawn) else {
            return Ok(());
        };
        let is_open = |link: &LinkRecord| link.linked_on.is_none() && link.withdrawn_on.is_none();
        for link in store.links_for_subject(sssid).await? {
            if !is_open(&link) {
                continue;
            }
            let now = self.deps.clock.now();
            let voided = optimistic::edit(store, &link.id, subject_not_found, |mut current| {
                std::future::ready(Ok(if is_open(&current) {
                    current.withdrawn_on = Some(withdrawn);
                    current.changed = now;
                    Edit::Write {
                        next: current,
                        then: (),
                    }
                } else {
                    Edit::Unchanged(())
                }))
            })
            .await;
            match voided {
                Ok(Edit::Write { next, .. }) => {
                    let target = AuditTarget {
                        subject: Some(next.sssid.clone()),
                        link: Some(next.id.clone()),
                        user: None,
                    };
                    let action = format!("[Link] withdrawn: {}", format_timestamp(withdrawn));
                    self.audits.record(ctx, target, action).await;
                }
                // Established or withdrawn meanwhile, or deleted: nothing to void.
                Ok(Edit::Unchanged(())) | Err(Error::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}
