//! Records that hold up in an inspection: an admin's correction of a
//! journey date, with a reason, audited with the old and the new value
//! (`PUT /subject` keeps the dates set-once; this is the one way to change
//! a recorded date), and the erasure of a withdrawn subject's personal
//! data (GDPR art. 17), which leaves the sssid, the journey dates and a
//! trail that still verifies.

// The service's types, store access and write helper are the parent's.
use super::*;

/// The longest reason kept in an audit text.
pub const MAX_REASON_CHARS: usize = 500;

/// A correction as typed. `value`: `Some(None)` (or empty text) clears
/// the date, `None` means it was not sent.
#[derive(Debug, Clone, Default)]
pub struct Correction {
    pub field: String,
    pub value: Option<Option<String>>,
    pub reason: String,
}

impl JourneyDate {
    /// The date a field name (`date_consented`, ...) stands for.
    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.field() == field)
    }
}

/// A reason for a correction or an erasure: trimmed, 1-500 characters, one
/// line (it becomes part of an audit text).
pub(crate) fn parse_reason(raw: &str) -> Result<String> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(Error::invalid("reason", "reason is required"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::invalid(
            "reason",
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    crate::domain::check_plain_text("reason", reason)?;
    Ok(reason.to_owned())
}

fn shown(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "none".to_owned(), format_timestamp)
}

impl SubjectService {
    /// Sets, changes or clears one journey date (admins and the command
    /// line), audited as `corrected <field>: <old> -> <new> (<reason>)`.
    /// A correction that changes nothing is refused (409), so none is
    /// audited twice. A withdrawal date set by correction voids the open
    /// links like any withdrawal.
    pub async fn correct(&self, ctx: &Context, sssid: &str, correction: Correction) -> Result<()> {
        require_study_access(ctx)?;
        ctx.require_admin()?;
        let mut validation = Validation::new();
        let date = JourneyDate::from_field(correction.field.trim());
        if date.is_none() {
            validation.add(
                "field",
                "field must be one of date_invited, date_consented, date_enrolled, date_withdrawn",
            );
        }
        // Milliseconds, a precision both stores keep exactly, so the audit
        // text names the date as it is stored.
        let value = match correction
            .value
            .as_ref()
            .map(|v| v.as_deref().map(str::trim))
        {
            None => {
                validation.add("value", "value is required (null clears the date)");
                None
            }
            Some(None | Some("")) => Some(None),
            Some(Some(raw)) => validation
                .check(Timestamp::parse("value", raw))
                .map(|t| Some(t.instant().trunc_subsecs(3))),
        };
        let reason = validation.check(parse_reason(&correction.reason));
        validation.finish()?;
        let (Some(date), Some(value), Some(reason)) = (date, value, reason) else {
            return Err(Error::invalid("field", "the correction is incomplete"));
        };
        let now = self.deps.clock.now();
        self.edit_subject(ctx, sssid, |mut next| {
            let old = *date.slot(&mut next);
            if old == value {
                return Err(Error::Conflict(format!(
                    "{} is already {}; there is nothing to correct",
                    date.field(),
                    shown(old)
                )));
            }
            *date.slot(&mut next) = value;
            next.changed = now;
            Ok(Edit::Write {
                next,
                then: Audited {
                    action: format!(
                        "corrected {}: {} -> {} ({reason})",
                        date.field(),
                        shown(old),
                        shown(value)
                    ),
                    result: (),
                },
            })
        })
        .await?;
        if date == JourneyDate::Withdrawn && value.is_some() {
            self.void_open_links(ctx, sssid).await?;
        }
        Ok(())
    }

    /// Erases a withdrawn subject's name, email and birth date (admins and
    /// the command line), audited as `erased personal data (<reason>)`,
    /// and the personal values inside the subject's audit entries too.
    /// Repeating it changes nothing more but completes an erasure that was
    /// cut short after the subject was written.
    pub async fn erase(&self, ctx: &Context, sssid: &str, reason: &str) -> Result<()> {
        require_study_access(ctx)?;
        ctx.require_admin()?;
        let reason = parse_reason(reason)?;
        let now = self.deps.clock.now();
        self.edit_subject(ctx, sssid, |mut next| {
            if next.date_withdrawn.is_none() {
                return Err(Error::Conflict(
                    "only a withdrawn subject's personal data can be erased; record the withdrawal first"
                        .into(),
                ));
            }
            if next.is_erased() {
                return Ok(Edit::Unchanged(()));
            }
            next.name = String::new();
            next.email = None;
            next.bday = None;
            next.changed = now;
            Ok(Edit::Write {
                next,
                then: Audited {
                    action: format!("erased personal data ({reason})"),
                    result: (),
                },
            })
        })
        .await?;
        self.deps.store.erase_personal_values(sssid).await?;
        Ok(())
    }
}
