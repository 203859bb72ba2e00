//! Links (QR-code invitations): creation after consent, reading, staff
//! updates, the link JWT, and `/establish` by the mobile app (SPEC section 5).

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::Serialize;

use crate::clock::random_hex;
use crate::domain::{Timestamp, check_plain_text, format_timestamp};
use crate::error::{Error, Result};
use crate::service::audits::{AuditTarget, Auditor};
use crate::service::link_tokens::{LINK_ALGORITHM, LinkClaims, LinkTokens};
use crate::service::subjects::{
    JourneyDate, MAX_WRITE_ATTEMPTS, SubjectService, concurrent_change, require_study_access,
    subject_not_found,
};
use crate::service::{Context, Deps};
use crate::store::{LinkRecord, SubjectRecord};

/// Random bytes in a link id: 128 bits, so ids cannot be guessed or
/// enumerated.
const LINK_ID_BYTES: usize = 16;

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

/// Every `/establish` refusal about the token itself is the same 403, so
/// the answer does not tell a forger which check failed.
fn invalid_link_token() -> Error {
    Error::Forbidden("invalid or expired link token".into())
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

    /// A new link for a consented subject.
    pub async fn create(&self, ctx: &Context, sssid: &str) -> Result<LinkView> {
        require_study_access(ctx)?;
        let subject = self
            .deps
            .store
            .subject(sssid)
            .await?
            .ok_or_else(subject_not_found)?;
        if subject.date_consented.is_none() {
            return Err(Error::PreconditionFailed(
                "Subject has not yet been consented".into(),
            ));
        }
        if subject.date_withdrawn.is_some() {
            return Err(Error::PreconditionFailed(
                "Subject has withdrawn from the study".into(),
            ));
        }
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
        Ok(link.into())
    }

    /// The QR invitation of a subject: the newest link that can still be
    /// established (not linked, not withdrawn, not expired) with its JWT,
    /// or a new link when there is none. Showing the QR code again thus
    /// shows the same token until it expires or is used.
    pub async fn invitation(&self, ctx: &Context, sssid: &str) -> Result<Invitation> {
        require_study_access(ctx)?;
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

    async fn load(&self, id: &str) -> Result<LinkRecord> {
        self.deps.store.link(id).await?.ok_or_else(link_not_found)
    }

    /// A staff update: `withdrawn_on` once; `linked_to`/`linked_system`
    /// only while not linked (which links it by hand, now); the fields that
    /// define the link cannot change.
    pub async fn update(&self, ctx: &Context, id: &str, fields: LinkFields) -> Result<()> {
        require_study_access(ctx)?;
        let exp = fields
            .exp
            .as_deref()
            .map(|raw| Timestamp::parse("exp", raw))
            .transpose()?;
        let linked_on = fields
            .linked_on
            .as_deref()
            .map(|raw| Timestamp::parse("linked_on", raw))
            .transpose()?;
        let withdrawn_on = fields
            .withdrawn_on
            .as_deref()
            .map(|raw| Timestamp::parse("withdrawn_on", raw))
            .transpose()?
            .map(Timestamp::instant);
        let linked_to = fields
            .linked_to
            .as_deref()
            .map(|raw| linked_value("linked_to", raw, Error::BadRequest))
            .transpose()?;
        let linked_system = fields
            .linked_system
            .as_deref()
            .map(|raw| linked_value("linked_system", raw, Error::BadRequest))
            .transpose()?;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load(id).await?;
            let unchanged = |name: &str, sent: &Option<String>, stored: &str| match sent.as_deref()
            {
                Some(value) if value != stored => {
                    Err(Error::Conflict(format!("{name} cannot be changed")))
                }
                _ => Ok(()),
            };
            unchanged("_id", &fields.id, &current.id)?;
            unchanged("sub", &fields.sub, &current.sssid)?;
            unchanged("iss", &fields.iss, &current.iss)?;
            unchanged("aud", &fields.aud, &current.aud)?;
            unchanged("algorithm", &fields.algorithm, &current.algorithm)?;
            if exp.is_some_and(|e| Some(e.instant()) != current.exp) {
                return Err(Error::Conflict("exp cannot be changed".into()));
            }
            if linked_on.is_some_and(|t| Some(t.instant()) != current.linked_on) {
                return Err(Error::Conflict(
                    "linked_on cannot be changed; it is set when the link is established".into(),
                ));
            }

            let now = self.deps.clock.now();
            let mut next = current.clone();
            let mut actions = Vec::new();
            let mut newly_linked = false;
            match (&current.linked_on, &linked_to) {
                (Some(_), Some(to)) if Some(to) != current.linked_to.as_ref() => {
                    return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
                }
                (Some(_), _) => {
                    if linked_system.is_some() && linked_system != current.linked_system {
                        return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
                    }
                }
                (None, Some(to)) => {
                    if current.withdrawn_on.is_some() {
                        return Err(Error::Conflict("this link has been withdrawn".into()));
                    }
                    next.linked_on = Some(now);
                    next.linked_to = Some(to.clone());
                    next.linked_system = linked_system.clone();
                    actions.push(format!("[Link] link to {to}"));
                    newly_linked = true;
                }
                (None, None) => {
                    if linked_system.is_some() {
                        return Err(Error::BadRequest(
                            "linked_system can only be set together with linked_to".into(),
                        ));
                    }
                }
            }
            let mut newly_withdrawn = None;
            match (current.withdrawn_on, withdrawn_on) {
                (_, None) => {}
                (None, Some(at)) => {
                    next.withdrawn_on = Some(at);
                    actions.push(format!("[Link] withdrawn: {}", format_timestamp(at)));
                    newly_withdrawn = Some(at);
                }
                (Some(stored), Some(at)) if stored == at => {}
                (Some(_), Some(_)) => {
                    return Err(Error::Conflict("Link has already been withdrawn".into()));
                }
            }
            if actions.is_empty() {
                return Ok(());
            }
            next.changed = now;
            next.version += 1;
            if !self.deps.store.replace_link(&next, current.version).await? {
                continue;
            }
            for action in actions {
                self.audits.record(ctx, link_target(&next), action).await;
            }
            if newly_linked {
                self.derive_subject_date(ctx, &next.sssid, JourneyDate::Enrolled, now)
                    .await;
            }
            if let Some(at) = newly_withdrawn {
                self.derive_subject_date(ctx, &next.sssid, JourneyDate::Withdrawn, at)
                    .await;
            }
            return Ok(());
        }
        Err(concurrent_change())
    }

    /// The link's JWT: issued on the first call, then the same token until
    /// it expires. Established, withdrawn and expired links get 410.
    pub async fn jwt(&self, ctx: &Context, id: &str) -> Result<String> {
        require_study_access(ctx)?;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load(id).await?;
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
            if subject.date_withdrawn.is_some() {
                return Err(Error::PreconditionFailed(
                    "Subject has withdrawn from the study".into(),
                ));
            }
            if let (Some(issued_at), Some(exp)) = (current.issued_at, current.exp) {
                return self.sign(&current, &subject, issued_at, exp);
            }
            // JWT times are whole seconds; keep the stored ones equal, so the
            // token can be re-created exactly and `exp` in the JSON matches.
            let issued_at = now.trunc_subsecs(0);
            let exp = issued_at + self.settings.lifetime;
            let mut next = current.clone();
            next.issued_at = Some(issued_at);
            next.exp = Some(exp);
            next.changed = now;
            next.version += 1;
            if self.deps.store.replace_link(&next, current.version).await? {
                self.audits
                    .record(ctx, link_target(&next), "[Link] create JWT")
                    .await;
                return self.sign(&next, &subject, issued_at, exp);
            }
        }
        Err(concurrent_change())
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
            birthdate: subject.bday.format("%Y-%m-%d").to_string(),
        })
    }

    /// `POST /establish`: the mobile app presents the link JWT and a FHIR
    /// Patient. Checks run in the order of SPEC section 5, and the answer
    /// kinds (401, 406, 403, 409, 406) are what the app understands.
    /// `authorization` is the raw `Authorization` header, `body` the raw
    /// request body.
    pub async fn establish(
        &self,
        ctx: &Context,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<()> {
        let Some(header) = authorization else {
            return Err(Error::Unauthorized("Authorization Required".into()));
        };
        let header = header.trim();
        let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
        if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt")) {
            return Err(Error::NotAcceptable(
                "use Authorization: Bearer <link token>".into(),
            ));
        }
        let token = token.trim();
        let claims = self.tokens.verify(token).ok_or_else(invalid_link_token)?;
        let current = self
            .deps
            .store
            .link(&claims.jti)
            .await?
            .ok_or_else(invalid_link_token)?;
        let now = self.deps.clock.now();
        // The app holds the link secret, so anyone could sign claims; only
        // the issuer, audience and times we stored for this link count.
        let issued_as_claimed = claims.iss == current.iss
            && claims.aud == current.aud
            && current.issued_at.map(|t| t.timestamp()) == Some(claims.iat)
            && current.exp.map(|t| t.timestamp()) == Some(claims.exp);
        if !issued_as_claimed || current.exp.is_none_or(|exp| now >= exp) {
            return Err(invalid_link_token());
        }
        if current.withdrawn_on.is_some() {
            return Err(Error::Forbidden("this link has been withdrawn".into()));
        }
        if current.linked_on.is_some() {
            return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
        }
        let (linked_to, linked_system) = patient_identifier(body)?;

        let mut current = current;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mut next = current.clone();
            next.linked_on = Some(now);
            next.linked_to = Some(linked_to.clone());
            next.linked_system = linked_system.clone();
            next.changed = now;
            next.version += 1;
            if self.deps.store.replace_link(&next, current.version).await? {
                self.audits
                    .record(
                        ctx,
                        link_target(&next),
                        format!("[Link] link to {linked_to}"),
                    )
                    .await;
                self.derive_subject_date(ctx, &next.sssid, JourneyDate::Enrolled, now)
                    .await;
                return Ok(());
            }
            // Someone wrote first: most likely a concurrent establish.
            current = self.load(&claims.jti).await.map_err(|e| match e {
                Error::NotFound(_) => invalid_link_token(),
                other => other,
            })?;
            if current.linked_on.is_some() {
                return Err(Error::Conflict(ALREADY_ESTABLISHED.into()));
            }
            if current.withdrawn_on.is_some() {
                return Err(Error::Forbidden("this link has been withdrawn".into()));
            }
        }
        Err(concurrent_change())
    }
}

/// `identifier[0].value` (and `.system`) of a FHIR Patient body.
fn patient_identifier(body: &[u8]) -> Result<(String, Option<String>)> {
    let patient = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| v.get("resourceType").and_then(|t| t.as_str()) == Some("Patient"))
        .ok_or_else(|| {
            Error::NotAcceptable(
                "the body must be a FHIR Patient: a JSON object with \"resourceType\":\"Patient\""
                    .into(),
            )
        })?;
    let identifier = patient.pointer("/identifier/0");
    let text = |key: &str| {
        identifier
            .and_then(|i| i.get(key))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let value = text("value")
        .ok_or_else(|| Error::NotAcceptable("the Patient needs an identifier[0].value".into()))?;
    let value = linked_value("identifier[0].value", value, Error::NotAcceptable)?;
    let system = text("system")
        .map(|s| linked_value("identifier[0].system", s, Error::NotAcceptable))
        .transpose()?;
    Ok((value, system))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_identifier_reads_value_and_system() {
        let body =
            br#"{"resourceType":"Patient","identifier":[{"system":"urn:app","value":" p-1 "}]}"#;
        assert_eq!(
            patient_identifier(body).unwrap(),
            ("p-1".into(), Some("urn:app".into()))
        );
        let no_system = br#"{"resourceType":"Patient","identifier":[{"value":"p-1"}]}"#;
        assert_eq!(patient_identifier(no_system).unwrap(), ("p-1".into(), None));
    }

    #[test]
    fn patient_identifier_refuses_other_bodies() {
        for body in [
            &b"not json"[..],
            br#"[]"#,
            br#"{"resourceType":"Observation","identifier":[{"value":"x"}]}"#,
            br#"{"resourceType":"Patient"}"#,
            br#"{"resourceType":"Patient","identifier":[]}"#,
            br#"{"resourceType":"Patient","identifier":[{"value":""}]}"#,
            br#"{"resourceType":"Patient","identifier":[{"value":7}]}"#,
        ] {
            let err = patient_identifier(body).unwrap_err();
            assert!(matches!(err, Error::NotAcceptable(_)), "{body:?}: {err:?}");
        }
    }

    #[test]
    fn patient_identifier_refuses_line_breaks_with_400() {
        for body in [
            r#"{"resourceType":"Patient","identifier":[{"value":"a\r\nFAKE"}]}"#,
            r#"{"resourceType":"Patient","identifier":[{"value":"a\u2028FAKE"}]}"#,
            r#"{"resourceType":"Patient","identifier":[{"value":"p-1","system":"urn:\nx"}]}"#,
        ] {
            let err = patient_identifier(body.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{body}: {err:?}");
            assert!(err.to_string().contains("identifier[0]"), "{err}");
        }
    }
}
