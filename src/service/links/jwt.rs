//! The link JWT that the QR code holds: issued on first request (staff or
//! the console's invitation), then the same token until it expires.

use chrono::{DateTime, SubsecRound, Utc};

use super::{Invitation, LinkService, link_not_found, link_target};
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::link_tokens::LinkClaims;
use crate::service::optimistic::Edit;
use crate::service::subjects::subject_not_found;
use crate::store::{LinkRecord, SubjectRecord};

impl LinkService {
    /// The QR invitation of a subject: the newest link that can still be
    /// established (not linked, not withdrawn, not expired) with its JWT,
    /// or a new link when there is none. Showing the QR code again thus
    /// shows the same token until it expires or is used.
    pub async fn invitation(&self, ctx: &Context, sssid: &str) -> Result<Invitation> {
        ctx.require_write()?;
        if self.deps.store.subject(sssid).await?.is_none() {
            return Err(subject_not_found());
        }
        let now = self.deps.clock.now();
        let reusable = self
            .deps
            .store
            .links_for_subject(sssid)
            .await?
            .into_iter()
            .rev()
            .find(|l| {
                l.linked_on.is_none()
                    && l.withdrawn_on.is_none()
                    && l.exp.is_none_or(|exp| now < exp)
            });
        if let Some(link) = reusable {
            match self.jwt(ctx, &link.id).await {
                Ok(token) => {
                    let link = self.load(&link.id).await?.into();
                    return Ok(Invitation { link, token });
                }
                // Established or expired a moment ago: make a new one.
                Err(Error::Gone(_)) => {}
                Err(other) => return Err(other),
            }
        }
        let link = self.create(ctx, sssid).await?;
        let token = self.jwt(ctx, &link.id).await?;
        let link = self.load(&link.id).await?.into();
        Ok(Invitation { link, token })
    }

    /// The link's JWT: issued on the first call, then the same token until
    /// it expires. Established, withdrawn and expired links get 410.
    pub async fn jwt(&self, ctx: &Context, id: &str) -> Result<String> {
        ctx.require_write()?;
        let decided = self
            .edit_link(id, link_not_found, |current| async move {
                let now = self.deps.clock.now();
                if current.linked_on.is_some() {
                    return Err(Error::Gone(
                        "this link has already been established; create a new link".into(),
                    ));
                }
                if current.withdrawn_on.is_some() {
                    return Err(Error::Gone(
                        "this link has been withdrawn; create a new link".into(),
                    ));
                }
                if current.exp.is_some_and(|exp| now >= exp) {
                    return Err(Error::Gone(
                        "this link has expired; create a new link".into(),
                    ));
                }
                let subject = self
                    .deps
                    .store
                    .subject(&current.sssid)
                    .await?
                    .ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("link {} has no subject", current.id))
                    })?;
                subject.journey().check_not_withdrawn()?;
                if let (Some(issued_at), Some(exp)) = (current.issued_at, current.exp) {
                    return Ok(Edit::Unchanged(
                        self.sign(&current, &subject, issued_at, exp)?,
                    ));
                }
                // JWT times are whole seconds; keep the stored ones equal, so
                // the token can be re-created exactly and `exp` in the JSON
                // matches.
                let issued_at = now.trunc_subsecs(0);
                let exp = issued_at + self.settings.lifetime;
                let mut next = current;
                next.issued_at = Some(issued_at);
                next.exp = Some(exp);
                next.changed = now;
                Ok(Edit::Write {
                    next,
                    then: (subject, issued_at, exp),
                })
            })
            .await?;
        match decided {
            Edit::Unchanged(token) => Ok(token),
            Edit::Write {
                next,
                then: (subject, issued_at, exp),
            } => {
                self.audits
                    .record(ctx, link_target(&next), "[Link] create JWT")
                    .await;
                self.sign(&next, &subject, issued_at, exp)
            }
        }
    }

    fn sign(
        &self,
        link: &LinkRecord,
        subject: &SubjectRecord,
        issued_at: DateTime<Utc>,
        exp: DateTime<Utc>,
    ) -> Result<String> {
        self.tokens.sign(&LinkClaims {
            jti: link.id.clone(),
            iss: link.iss.clone(),
            aud: link.aud.clone(),
            iat: issued_at.timestamp(),
            exp: exp.timestamp(),
            sub: subject.name.clone(),
            // A subject without a birth date was erased, and is withdrawn,
            // so it gets no token; nothing else would be honest here.
            birthdate: subject
                .bday
                .map(|b| b.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        })
    }
}
