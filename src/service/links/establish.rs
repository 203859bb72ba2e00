//! `POST /establish`: the mobile app redeems a link JWT with a FHIR Patient,
//! which links the app install to the subject. The API layer reads the
//! header and body into the typed request below; the order in which they
//! are judged is decided here.

use std::convert::Infallible;

use chrono::{DateTime, Utc};

use super::{ALREADY_ESTABLISHED, LinkService, link_target, linked_value};
use crate::error::{Error, Result};
use crate::service::Context;
use crate::service::link_tokens::LinkClaims;
use crate::service::optimistic::Edit;
use crate::service::subjects::JourneyDate;
use crate::store::LinkRecord;

/// What the app sent in its `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCredentials {
    /// No header.
    Missing,
    /// A header that is not visible ASCII text.
    Unreadable,
    /// A scheme other than `Bearer` or `JWT`.
    OtherScheme,
    /// The token of `Bearer <token>` or `JWT <token>`; may be empty.
    Token(String),
}

/// What the request body held, read as a FHIR Patient. Reading never
/// fails: whether the body will do is judged after the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientBody {
    /// Not a JSON object with `"resourceType":"Patient"`.
    NotAPatient,
    /// `identifier[0].value` and `.system`, trimmed, where they are
    /// non-empty text.
    Patient {
        identifier_value: Option<String>,
        identifier_system: Option<String>,
    },
}

/// An `/establish` request as the API layer read it.
#[derive(Debug, Clone)]
pub struct EstablishRequest {
    pub credentials: LinkCredentials,
    pub patient: PatientBody,
}

/// Every `/establish` refusal about the token itself is the same 403, so
/// the answer does not tell a forger which check failed.
fn invalid_link_token() -> Error {
    Error::Forbidden("invalid or expired link token".into())
}

impl LinkService {
    /// `POST /establish`: the mobile app presents the link JWT and a FHIR
    /// Patient. Checks run in the order of SPEC section 5, and the answer
    /// kinds (401, 406, 403, 409, 406) are what the app understands: the
    /// header, then the token and its link, then the body.
    pub async fn establish(&self, ctx: &Context, request: EstablishRequest) -> Result<()> {
        let token = match &request.credentials {
            LinkCredentials::Missing => {
                return Err(Error::Unauthorized("Authorization Required".into()));
            }
            LinkCredentials::Unreadable => {
                return Err(Error::NotAcceptable(
                    "malformed Authorization header".into(),
                ));
            }
            LinkCredentials::OtherScheme => {
                return Err(Error::NotAcceptable(
                    "use Authorization: Bearer <link token>".into(),
                ));
            }
            LinkCredentials::Token(token) => token,
        };
        let claims = self.tokens.verify(token).ok_or_else(invalid_link_token)?;
        let now = self.deps.clock.now();
        let decided = self
            .edit_link(&claims.jti, invalid_link_token, |current| async {
                // Read before the link is written, and the withdrawal voids
                // the link after the subject is written: whichever order the
                // two run in, a withdrawn subject's link is not established
                // (a withdrawal between this read and the write below voids
                // the link, which makes the write lose its race).
                let subject_withdrawn = self
                    .deps
                    .store
                    .subject(&current.sssid)
                    .await?
                    .is_some_and(|s| s.date_withdrawn.is_some());
                establishing(current, &claims, &request.patient, subject_withdrawn, now)
            })
            .await?;
        let (next, linked_to) = match decided {
            Edit::Write { next, then } => (next, then),
            Edit::Unchanged(never) => match never {},
        };
        self.audits
            .record(
                ctx,
                link_target(&next),
                format!("[Link] link to {linked_to}"),
            )
            .await;
        self.derive_subject_date(ctx, &next.sssid, JourneyDate::Enrolled, now)
            .await;
        Ok(())
    }
}

/// What establishing the stored link `current` with `claims` and `patient`
/// at `now` writes, or why it is refused. Run again after a lost race, when
/// a concurrent establish that wrote first makes it a 409, and a withdrawal
/// that voided the link a 403. A link of a withdrawn subject is void even
/// before the withdrawal marked it so.
fn establishing(
    current: LinkRecord,
    claims: &LinkClaims,
    patient: &PatientBody,
    subject_withdrawn: bool,
    now: DateTime<Utc>,
) -> Result<Edit<LinkRecord, Infallible, String>> {
    // The app holds the link secret, so anyone could sign claims; only the
    // issuer, audience and times we stored for this link count.
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
    if subject_withdrawn {
        return Err(Error::Forbidden("this link has been withdrawn".into()));
    }
    let (linked_to, linked_system) = patient_identifier(patient)?;
    let mut next = current;
    next.linked_on = Some(now);
    next.linked_to = Some(linked_to.clone());
    next.linked_system = linked_system;
    next.changed = now;
    Ok(Edit::Write {
        next,
        then: linked_to,
    })
}

/// `linked_to` and `linked_system` from the Patient's `identifier[0]`;
/// anything else is 406.
fn patient_identifier(patient: &PatientBody) -> Result<(String, Option<String>)> {
    let PatientBody::Patient {
        identifier_value,
        identifier_system,
    } = patient
    else {
        return Err(Error::NotAcceptable(
            "the body must be a FHIR Patient: a JSON object with \"resourceType\":\"Patient\""
                .into(),
        ));
    };
    let value = identifier_value
        .as_deref()
        .ok_or_else(|| Error::NotAcceptable("the Patient needs an identifier[0].value".into()))?;
    let value = linked_value("identifier[0].value", value, Error::NotAcceptable)?;
    let system = identifier_system
        .as_deref()
        .map(|s| linked_value("identifier[0].system", s, Error::NotAcceptable))
        .transpose()?;
    Ok((value, system))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(value: Option<&str>, system: Option<&str>) -> PatientBody {
        PatientBody::Patient {
            identifier_value: value.map(str::to_owned),
            identifier_system: system.map(str::to_owned),
        }
    }

    #[test]
    fn patient_identifier_takes_value_and_system() {
        assert_eq!(
            patient_identifier(&patient(Some("p-1"), Some("urn:app"))).unwrap(),
            ("p-1".into(), Some("urn:app".into()))
        );
        assert_eq!(
            patient_identifier(&patient(Some("p-1"), None)).unwrap(),
            ("p-1".into(), None)
        );
    }

    #[test]
    fn patient_identifier_refuses_what_cannot_be_linked() {
        let long = "x".repeat(1025);
        for body in [
            PatientBody::NotAPatient,
            patient(None, Some("urn:app")),
            patient(Some(&long), None),
            patient(Some("p-1"), Some(&long)),
        ] {
            let err = patient_identifier(&body).unwrap_err();
            assert!(matches!(err, Error::NotAcceptable(_)), "{body:?}: {err:?}");
        }
    }
}
