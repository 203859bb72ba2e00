//! Links (QR-code invitations, SPEC section 5): the link service, what
//! clients see of a link, and what its parts share. The work is split by
//! who asks: staff (`staff`: create, read, update), the QR code
//! (`jwt`: issuing the link JWT) and the mobile app (`establish`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::check_plain_text;
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::link_tokens::LinkTokens;
use crate::service::optimistic::{self, Edit};
use crate::service::subjects::{JourneyDate, SubjectService};
use crate::service::{Context, Deps};
use crate::store::LinkRecord;

mod establish;
mod jwt;
mod staff;

pub use establish::{EstablishRequest, LinkCredentials, PatientBody};

/// The longest `linked_to` / `linked_system` we keep.
const MAX_LINKED_CHARS: usize = 1024;

pub const ALREADY_ESTABLISHED: &str = "this link has already been established";

/// A link as clients see it: never the secret or the token. Dates are
/// RFC 3339 UTC; the optional ones appear once they happened.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LinkView {
    #[serde(rename = "_id")]
    pub id: String,
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub algorithm: String,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_on: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_on: Option<DateTime<Utc>>,
}

impl From<LinkRecord> for LinkView {
    fn from(l: LinkRecord) -> Self {
        Self {
            id: l.id,
            sub: l.sssid,
            iss: l.iss,
            aud: l.aud,
            algorithm: l.algorithm,
            created: l.created,
            changed: l.changed,
            exp: l.exp,
            linked_on: l.linked_on,
            linked_to: l.linked_to,
            linked_system: l.linked_system,
            withdrawn_on: l.withdrawn_on,
        }
    }
}

/// A staff update of a link, as typed; `None` means "not sent". The
/// immutable fields may be sent (clients send whole objects back) but must
/// equal the stored values.
#[derive(Debug, Default, Clone)]
pub struct LinkFields {
    pub id: Option<String>,
    pub sub: Option<String>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub algorithm: Option<String>,
    pub exp: Option<String>,
    pub linked_on: Option<String>,
    pub linked_to: Option<String>,
    pub linked_system: Option<String>,
    pub withdrawn_on: Option<String>,
}

/// A link ready to be shown as a QR code: the link and its JWT.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub link: LinkView,
    pub token: String,
}

/// Where the link JWT settings come from.
pub struct LinkSettings {
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
}

fn link_not_found() -> Error {
    Error::NotFound("no such link".into())
}

fn link_target(link: &LinkRecord) -> AuditTarget {
    AuditTarget {
        subject: Some(link.sssid.clone()),
        link: Some(link.id.clone()),
        user: None,
    }
}

/// `linked_to` / `linked_system`, from a staff update or the app's
/// Patient. `status` is the answer to a missing or oversized value (the
/// app gets 406 there); a line break or other control character is a 400
/// from either side, since it could forge an audit line.
fn linked_value(field: &str, raw: &str, status: fn(String) -> Error) -> Result<String> {
    let value = raw.trim();
    if value.is_empty() || value.chars().count() > MAX_LINKED_CHARS {
        return Err(status(format!(
            "{field} must be 1 to {MAX_LINKED_CHARS} characters"
        )));
    }
    check_plain_text(field, value)?;
    Ok(value.to_owned())
}

#[derive(Clone)]
pub struct LinkService {
    deps: Deps,
    subjects: SubjectService,
    tokens: Arc<LinkTokens>,
    settings: Arc<LinkSettings>,
    audits: Auditor,
}

impl LinkService {
    pub fn new(
        deps: Deps,
        subjects: SubjectService,
        tokens: Arc<LinkTokens>,
        settings: LinkSettings,
        audits: Auditor,
    ) -> Self {
        Self {
            deps,
            subjects,
            tokens,
            settings: Arc::new(settings),
            audits,
        }
    }

    async fn load(&self, id: &str) -> Result<LinkRecord> {
        self.deps.store.link(id).await?.ok_or_else(link_not_found)
    }

    /// One optimistic write of the link `id` (see [`optimistic::edit`]);
    /// no such link is `missing()`.
    async fn edit_link<K, W, F>(
        &self,
        id: &str,
        missing: fn() -> Error,
        decide: impl FnMut(LinkRecord) -> F,
    ) -> Result<Edit<LinkRecord, K, W>>
    where
        F: Future<Output = Result<Edit<LinkRecord, K, W>>>,
    {
        optimistic::edit(self.deps.store.as_ref(), id, missing, decide).await
    }

    /// Records the subject's enrolment or withdrawal that a link change
    /// implies. The link change already happened and is what the caller
    /// asked for, so a failure here is logged rather than reported.
    async fn derive_subject_date(
        &self,
        ctx: &Context,
        sssid: &str,
        date: JourneyDate,
        at: DateTime<Utc>,
    ) {
        if let Err(err) = self.subjects.derive_date(ctx, sssid, date, at).await {
            tracing::error!(error = %err, sssid, ?date, "could not record the subject's derived date");
        }
    }
}
