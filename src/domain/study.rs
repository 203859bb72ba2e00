//! Validated values of the study side: subject ids, names, birth dates and
//! the timestamps of the subject's journey, and the rules that follow from
//! the journey (where a subject stands, whether it may get a link).

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SecondsFormat, SubsecRound, Utc};

use crate::error::{Error, Result};

/// A study subject id: 1-64 characters, case-sensitive, kept exactly as
/// typed. No control characters and no surrounding blanks, since it is part
/// of URLs and people copy it around.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sssid(String);

impl Sssid {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(Error::invalid("sssid", "sssid is required"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Error::invalid(
                "sssid",
                format!("sssid must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        super::check_plain_text("sssid", raw)?;
        if raw.trim() != raw {
            return Err(Error::invalid(
                "sssid",
                "sssid must not start or end with blanks",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject's name: trimmed, 1-256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectName(String);

impl SubjectName {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(Error::invalid("name", "name is required"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Error::invalid(
                "name",
                format!("name must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        super::check_plain_text("name", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An optional contact address of a subject; empty text means none.
pub fn parse_subject_email(raw: &str) -> Result<Option<String>> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    super::check_plain_text("email", value)?;
    if value.len() > super::Username::MAX_LEN || !super::looks_like_email(value) {
        return Err(Error::invalid(
            "email",
            "email must be an email address like name@example.org",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A birth date between 1900-01-01 and 2100-12-31. `YYYY-MM-DD`; a full
/// RFC 3339 timestamp is accepted too (its date part, as written), because
/// date pickers often send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    pub const FIRST_YEAR: i32 = 1900;
    pub const LAST_YEAR: i32 = 2100;

    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .filter(|_| raw.len() == 10)
            .or_else(|| {
                DateTime::parse_from_rfc3339(raw)
                    .ok()
                    .map(|t| t.date_naive())
            })
            .ok_or_else(|| {
                Error::invalid(
                    "bday",
                    format!("bday must be a date like 1980-12-31, got {raw:?}"),
                )
            })?;
        if !(Self::FIRST_YEAR..=Self::LAST_YEAR).contains(&date.year()) {
            return Err(Error::invalid(
                "bday",
                format!(
                    "bday must be between {}-01-01 and {}-12-31",
                    Self::FIRST_YEAR,
                    Self::LAST_YEAR
                ),
            ));
        }
        Ok(Self(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

/// A point in time as clients send it: RFC 3339 with any offset, or a bare
/// `YYYY-MM-DD` meaning midnight UTC. Kept in UTC at microsecond precision,
/// the precision the stores keep, so sending a stored value back compares
/// equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// `field` names the value in the error message.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let parsed = DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .ok()
                    .filter(|_| raw.len() == 10)
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc())
            })
            .ok_or_else(|| {
                Error::invalid(field, format!(
                    "{field} must be an RFC 3339 timestamp like 2024-05-01T09:30:00Z or a date like 2024-05-01, got {raw:?}"
                ))
            })?;
        Ok(Self(parsed.trunc_subsecs(6)))
    }

    pub fn instant(self) -> DateTime<Utc> {
        self.0
    }
}

/// The dates of a subject's journey, each set once. Where the subject
/// stands, and whether it may get a link, follow from these alone; this is
/// the one place those rules are written (the stores' status filters
/// mirror [`Journey::standing`], and the conformance suite checks that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Journey {
    pub invited: Option<DateTime<Utc>>,
    pub consented: Option<DateTime<Utc>>,
    pub enrolled: Option<DateTime<Utc>>,
    pub withdrawn: Option<DateTime<Utc>>,
}

/// Where a subject stands: the furthest step of its journey that is set,
/// whatever the order of the dates (a withdrawal ends the journey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Registered, no step recorded yet.
    Pending,
    Invited,
    Consented,
    Enrolled,
    Withdrawn,
}

impl Journey {
    pub fn standing(&self) -> Standing {
        if self.withdrawn.is_some() {
            Standing::Withdrawn
        } else if self.enrolled.is_some() {
            Standing::Enrolled
        } else if self.consented.is_some() {
            Standing::Consented
        } else if self.invited.is_some() {
            Standing::Invited
        } else {
            Standing::Pending
        }
    }

    /// A new link (QR invitation) is made only for a consented subject
    /// who has not withdrawn; enrolled ones too, since a new phone needs a
    /// new link. The refusal is a 412 naming the reason.
    pub fn check_can_invite(&self) -> Result<()> {
        if self.consented.is_none() {
            return Err(Error::PreconditionFailed(
                "Subject has not yet been consented".into(),
            ));
        }
        self.check_not_withdrawn()
    }

    pub fn can_invite(&self) -> bool {
        self.check_can_invite().is_ok()
    }

    /// A withdrawn subject gets no link token, not even for a link made
    /// before the withdrawal (links imported from the old service may
    /// predate consent, so consent is not asked again here).
    pub fn check_not_withdrawn(&self) -> Result<()> {
        match self.withdrawn {
            Some(_) => Err(Error::PreconditionFailed(
                "Subject has withdrawn from the study".into(),
            )),
            None => Ok(()),
        }
    }
}

/// How timestamps appear in audit texts: RFC 3339 UTC, like the JSON.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sssids_are_kept_exactly_and_limited() {
        assert_eq!(Sssid::parse("Ab-1").unwrap().as_str(), "Ab-1");
        assert!(Sssid::parse(&"x".repeat(64)).is_ok());
        assert!(
            Sssid::parse(&"ä".repeat(64)).is_ok(),
            "counted in characters"
        );
        for bad in ["", " S1", "S1 ", "S\n1", "S\u{2028}1", &"x".repeat(65)] {
            assert!(Sssid::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_required() {
        assert_eq!(
            SubjectName::parse("  Ada Lovelace ").unwrap().into_inner(),
            "Ada Lovelace"
        );
        assert!(SubjectName::parse("   ").is_err());
        assert!(SubjectName::parse("a\u{0}b").is_err());
        assert!(SubjectName::parse("Ada\r\nFAKE").is_err());
        assert!(SubjectName::parse("Ada\u{2029}Lovelace").is_err());
        assert!(SubjectName::parse(&"n".repeat(257)).is_err());
    }

    #[test]
    fn subject_email_is_optional_but_checked() {
        assert_eq!(parse_subject_email("  ").unwrap(), None);
        assert_eq!(
            parse_subject_email(" a@example.org ").unwrap().as_deref(),
            Some("a@example.org")
        );
        assert!(parse_subject_email("not an address").is_err());
        let err = parse_subject_email("a\u{2028}b@example.org").unwrap_err();
        assert!(err.to_string().contains("line breaks"), "{err}");
    }

    #[test]
    fn birth_dates_are_dates_between_1900_and_2100() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            BirthDate::parse("1980-02-29").unwrap().date(),
            d(1980, 2, 29)
        );
        assert_eq!(
            BirthDate::parse("1900-01-01").unwrap().date(),
            d(1900, 1, 1)
        );
        assert_eq!(
            BirthDate::parse("2100-12-31").unwrap().date(),
            d(2100, 12, 31)
        );
        assert_eq!(
            BirthDate::parse("1980-05-01T00:00:00+02:00")
                .unwrap()
                .date(),
            d(1980, 5, 1),
            "the date as written, not shifted to UTC"
        );
        for bad in [
            "1899-12-31",
            "2101-01-01",
            "1981-02-29",
            "1980-5-1",
            "01.05.1980",
            "yesterday",
            "",
        ] {
            assert!(BirthDate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn timestamps_accept_rfc3339_and_bare_dates_in_utc() {
        let t = Timestamp::parse("date_consented", "2024-05-01T11:30:00+02:00").unwrap();
        assert_eq!(
            t.instant(),
            Utc.with_ymd_and_hms(2024, 5, 1, 9, 30, 0).unwrap()
        );
        let bare = Timestamp::parse("date_consented", "2024-05-01").unwrap();
        assert_eq!(
            bare.instant(),
            Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(format_timestamp(t.instant()), "2024-05-01T09:30:00Z");
        let err = Timestamp::parse("date_invited", "May 1st").unwrap_err();
        assert!(err.to_string().contains("date_invited"), "{err}");
    }

    /// Every combination of set and unset journey dates.
    fn every_journey() -> impl Iterator<Item = Journey> {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 9, 30, 0).unwrap();
        (0..16u8).map(move |bits| {
            let date = |bit: u8| (bits & (1 << bit) != 0).then_some(at);
            Journey {
                invited: date(0),
                consented: date(1),
                enrolled: date(2),
                withdrawn: date(3),
            }
        })
    }

    #[test]
    fn standing_is_the_furthest_step_and_withdrawal_ends_it() {
        for journey in every_journey() {
            let expected = match journey {
                Journey {
                    withdrawn: Some(_), ..
                } => Standing::Withdrawn,
                Journey {
                    enrolled: Some(_), ..
                } => Standing::Enrolled,
                Journey {
                    consented: Some(_), ..
                } => Standing::Consented,
                Journey {
                    invited: Some(_), ..
                } => Standing::Invited,
                _ => Standing::Pending,
            };
            assert_eq!(journey.standing(), expected, "{journey:?}");
        }
    }

    #[test]
    fn only_consented_subjects_who_have_not_withdrawn_can_be_invited() {
        for journey in every_journey() {
            let expected = journey.consented.is_some() && journey.withdrawn.is_none();
            assert_eq!(journey.can_invite(), expected, "{journey:?}");
            assert_eq!(
                journey.check_not_withdrawn().is_ok(),
                journey.withdrawn.is_none()
            );
        }
        let never_consented = Journey {
            withdrawn: Some(Utc::now()),
            ..Journey::default()
        };
        let err = never_consented.check_can_invite().unwrap_err();
        assert!(
            matches!(&err, Error::PreconditionFailed(m) if m == "Subject has not yet been consented"),
            "consent is checked first: {err:?}"
        );
    }

    #[test]
    fn timestamps_keep_microseconds_like_the_store() {
        let t = Timestamp::parse("x", "2024-05-01T09:30:00.123456789Z").unwrap();
        assert_eq!(format_timestamp(t.instant()), "2024-05-01T09:30:00.123456Z");
    }
}
