//! Study subjects: creation, reading, partial updates with the set-once
//! dates of SPEC section 4, listing, and the subject's audit trail.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;

mod links_journey;
mod records;
mod step_day;

pub use records::{Correction, MAX_REASON_CHARS};
pub use step_day::{StepDay, StepDayProblem};

use crate::domain::{
    BirthDate, Journey, Sssid, SubjectName, Timestamp, format_timestamp, parse_subject_email,
};
use crate::error::{Error, Result, Validation};
use crate::service::audits::{AuditTarget, Auditor, personal};
use crate::service::listing::SubjectListQuery;
use crate::service::optimistic::{self, Edit};
use crate::service::{Actor, Context, Deps};
use crate::store::{
    AuditRecord, DEFAULT_COUNT_LIMIT, LinkRecord, StoreError, SubjectQuery, SubjectRecord, Total,
};

/// What one attempt of [`SubjectService::edit_subject`] decided: answer
/// `T` unchanged, or write the subject, audit `action` and answer `result`.
type SubjectEdit<T> = Edit<SubjectRecord, T, Audited<T>>;

/// The audit text of a subject write, and the answer once it is written.
struct Audited<T> {
    action: String,
    result: T,
}

/// A subject as clients see it: `bday` as `YYYY-MM-DD`, times RFC 3339 UTC.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SubjectView {
    pub sssid: String,
    /// Empty once the subject's personal data was erased.
    pub name: String,
    /// `null` once the subject's personal data was erased.
    pub bday: Option<NaiveDate>,
    pub email: Option<String>,
    pub date_invited: Option<DateTime<Utc>>,
    pub date_consented: Option<DateTime<Utc>>,
    pub date_enrolled: Option<DateTime<Utc>>,
    pub date_withdrawn: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
}

impl SubjectView {
    /// The journey dates, for the rules in [`Journey`] (where the subject
    /// stands, whether it may get a link).
    pub fn journey(&self) -> Journey {
        Journey {
            invited: self.date_invited,
            consented: self.date_consented,
            enrolled: self.date_enrolled,
            withdrawn: self.date_withdrawn,
        }
    }
}

impl From<SubjectRecord> for SubjectView {
    fn from(s: SubjectRecord) -> Self {
        Self {
            sssid: s.sssid,
            name: s.name,
            bday: s.bday,
            email: s.email,
            date_invited: s.date_invited,
            date_consented: s.date_consented,
            date_enrolled: s.date_enrolled,
            date_withdrawn: s.date_withdrawn,
            created: s.created,
            changed: s.changed,
        }
    }
}

/// Subject fields as typed; `None` means "not sent". For `email`,
/// `Some(None)` (JSON null) or empty text removes the address.
#[derive(Debug, Default, Clone)]
pub struct SubjectFields {
    pub sssid: Option<String>,
    pub name: Option<String>,
    pub bday: Option<String>,
    pub email: Option<Option<String>>,
    pub date_invited: Option<String>,
    pub date_consented: Option<String>,
    pub date_enrolled: Option<String>,
    pub date_withdrawn: Option<String>,
}

/// The dates that can be set once and never changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyDate {
    Invited,
    Consented,
    Enrolled,
    Withdrawn,
}

impl JourneyDate {
    const ALL: [JourneyDate; 4] = [
        JourneyDate::Invited,
        JourneyDate::Consented,
        JourneyDate::Enrolled,
        JourneyDate::Withdrawn,
    ];

    pub fn field(self) -> &'static str {
        match self {
            JourneyDate::Invited => "date_invited",
            JourneyDate::Consented => "date_consented",
            JourneyDate::Enrolled => "date_enrolled",
            JourneyDate::Withdrawn => "date_withdrawn",
        }
    }

    /// The word of the audit text and the conflict message.
    fn word(self) -> &'static str {
        match self {
            JourneyDate::Invited => "invited",
            JourneyDate::Consented => "consented",
            JourneyDate::Enrolled => "enrolled",
            JourneyDate::Withdrawn => "withdrawn",
        }
    }

    fn slot(self, subject: &mut SubjectRecord) -> &mut Option<DateTime<Utc>> {
        match self {
            JourneyDate::Invited => &mut subject.date_invited,
            JourneyDate::Consented => &mut subject.date_consented,
            JourneyDate::Enrolled => &mut subject.date_enrolled,
            JourneyDate::Withdrawn => &mut subject.date_withdrawn,
        }
    }

    fn typed(self, fields: &SubjectFields) -> Option<&str> {
        match self {
            JourneyDate::Invited => fields.date_invited.as_deref(),
            JourneyDate::Consented => fields.date_consented.as_deref(),
            JourneyDate::Enrolled => fields.date_enrolled.as_deref(),
            JourneyDate::Withdrawn => fields.date_withdrawn.as_deref(),
        }
    }

    fn audit_text(self, at: DateTime<Utc>) -> String {
        format!("{}: {}", self.word(), format_timestamp(at))
    }
}

/// A subject that passed every rule of creation, not written yet.
#[derive(Debug, Clone)]
pub struct NewSubject {
    record: SubjectRecord,
    dates: Vec<(JourneyDate, DateTime<Utc>)>,
}

impl NewSubject {
    pub fn sssid(&self) -> &str {
        &self.record.sssid
    }
}

/// Validated fields of one request.
struct ParsedFields {
    name: Option<String>,
    bday: Option<NaiveDate>,
    email: Option<Option<String>>,
    dates: Vec<(JourneyDate, DateTime<Utc>)>,
}

impl ParsedFields {
    /// Every field's problem at once, so a form can show each next to its
    /// field; `required` names fields that must be present.
    fn parse(fields: &SubjectFields, required: &[&str]) -> Result<Self> {
        let mut validation = Validation::new();
        for &name in required {
            let value = match name {
                "sssid" => &fields.sssid,
                "name" => &fields.name,
                _ => &fields.bday,
            };
            if value.is_none() {
                validation.add(name, format!("{name} is required"));
            }
        }
        let mut dates = Vec::new();
        for date in JourneyDate::ALL {
            if let Some(raw) = date.typed(fields)
                && let Some(at) = validation.check(Timestamp::parse(date.field(), raw))
            {
                dates.push((date, at.instant()));
            }
        }
        let name = fields
            .name
            .as_deref()
            .and_then(|raw| validation.check(SubjectName::parse(raw)))
            .map(SubjectName::into_inner);
        let bday = fields
            .bday
            .as_deref()
            .and_then(|raw| validation.check(BirthDate::parse(raw)))
            .map(BirthDate::date);
        let email = match &fields.email {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => validation.check(parse_subject_email(raw)).map(Some),
        };
        validation.finish()?;
        Ok(Self {
            name,
            bday,
            email: email.map(Option::flatten),
            dates,
        })
    }
}

/// Study data is for staff and the command line, never anonymous callers.
pub(crate) fn require_study_access(ctx: &Context) -> Result<()> {
    match ctx.actor {
        Actor::Staff(_) | Actor::System => Ok(()),
        Actor::Anonymous => Err(Error::Unauthorized("Authorization Required".into())),
    }
}

pub(crate) fn subject_not_found() -> Error {
    Error::NotFound("no such subject".into())
}

pub(crate) fn subject_target(sssid: &str) -> AuditTarget {
    AuditTarget {
        subject: Some(sssid.to_owned()),
        ..AuditTarget::default()
    }
}

/// JSON-quoted, so the audit text is unambiguous whatever the value holds.
fn quoted(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// One page of subjects and how many match in all (exact up to the count
/// limit, a lower bound past it).
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectList {
    pub items: Vec<SubjectView>,
    pub total: Total,
}

/// The audit text of a changed personal field, `name: "Old" -> "New"`;
/// both values are personal data, erasable with the subject's.
fn changed(field: &str, old: &str, new: &str) -> String {
    format!(
        "{field}: {} -> {}",
        personal(&quoted(old)),
        personal(&quoted(new))
    )
}

#[derive(Clone)]
pub struct SubjectService {
    deps: Deps,
    audits: Auditor,
    /// Lists count their matches exactly up to this many.
    count_limit: u64,
}

impl SubjectService {
    pub fn new(deps: Deps, audits: Auditor) -> Self {
        Self {
            deps,
            audits,
            count_limit: DEFAULT_COUNT_LIMIT,
        }
    }

    /// Lists count exactly up to `count_limit` matches (at least 1).
    pub fn with_count_limit(self, count_limit: u64) -> Self {
        Self {
            count_limit: count_limit.max(1),
            ..self
        }
    }

    pub async fn create(&self, ctx: &Context, fields: SubjectFields) -> Result<SubjectView> {
        ctx.require_write()?;
        let subject = self.check_new(&fields)?;
        self.insert_new(ctx, subject).await
    }

    /// The subject `fields` would create, with every rule of
    /// [`SubjectService::create`] checked except that the sssid is free;
    /// nothing is read or written.
    pub fn check_new(&self, fields: &SubjectFields) -> Result<NewSubject> {
        let sssid = fields.sssid.as_deref().map(Sssid::parse);
        let parsed = ParsedFields::parse(fields, &["sssid", "name", "bday"]);
        let (sssid, parsed) = match (sssid, parsed) {
            (Some(Ok(sssid)), Ok(parsed)) => (sssid, parsed),
            (Some(Err(invalid)), parsed) => return Err(invalid.with(parsed)),
            (_, Err(invalid)) => return Err(invalid),
            (None, Ok(_)) => return Err(Error::invalid("sssid", "sssid is required")),
        };
        let now = self.deps.clock.now();
        let mut record = SubjectRecord::new(
            sssid.to_string(),
            parsed.name.unwrap_or_default(),
            parsed.bday.unwrap_or_default(),
            parsed.email.flatten(),
            now,
        );
        for (date, at) in &parsed.dates {
            *date.slot(&mut record) = Some(*at);
        }
        Ok(NewSubject {
            record,
            dates: parsed.dates,
        })
    }

    /// Writes a subject [`SubjectService::check_new`] accepted, with its
    /// `create` audit (and one for the dates it came with).
    pub async fn insert_new(&self, ctx: &Context, subject: NewSubject) -> Result<SubjectView> {
        ctx.require_write()?;
        let NewSubject { mut record, dates } = subject;
        let now = self.deps.clock.now();
        (record.created, record.changed) = (now, now);
        match self.deps.store.insert_subject(&record).await {
            Err(StoreError::Duplicate(_)) => {
                return Err(Error::Conflict("this SSSID is already taken".into()));
            }
            other => other?,
        }
        let target = || subject_target(&record.sssid);
        self.audits.record(ctx, target(), "create").await;
        if !dates.is_empty() {
            let texts: Vec<_> = dates.iter().map(|(d, at)| d.audit_text(*at)).collect();
            self.audits.record(ctx, target(), texts.join("; ")).await;
        }
        Ok(record.into())
    }

    pub async fn get(&self, ctx: &Context, sssid: &str) -> Result<SubjectView> {
        require_study_access(ctx)?;
        self.deps
            .store
            .subject(sssid)
            .await?
            .map(SubjectView::from)
            .ok_or_else(subject_not_found)
    }

    /// Applies a partial update. Name, bday and email may change; each
    /// journey date is set once (the same value again is a no-op). Nothing
    /// is written, and nothing audited, when nothing changes.
    pub async fn update(&self, ctx: &Context, sssid: &str, fields: SubjectFields) -> Result<()> {
        ctx.require_write()?;
        if fields.sssid.as_deref().is_some_and(|s| s != sssid) {
            return Err(Error::Conflict("SSSID cannot be changed".into()));
        }
        let parsed = ParsedFields::parse(&fields, &[])?;
        let now = self.deps.clock.now();
        self.edit_subject(ctx, sssid, |mut next| {
            let mut changes = Vec::new();
            let personal = parsed.name.is_some() || parsed.bday.is_some() || parsed.email.is_some();
            if personal && next.is_erased() {
                return Err(Error::Conflict(
                    "this subject's personal data was erased; it cannot be entered again".into(),
                ));
            }
            if let Some(name) = &parsed.name
                && *name != next.name
            {
                changes.push(changed("name", &next.name, name));
                next.name = name.clone();
            }
            if let Some(bday) = parsed.bday
                && Some(bday) != next.bday
            {
                let old = next.bday.map(|b| b.to_string()).unwrap_or_default();
                changes.push(changed("bday", &old, &bday.to_string()));
                next.bday = Some(bday);
            }
            if let Some(email) = &parsed.email
                && *email != next.email
            {
                let text = |e: &Option<String>| e.clone().unwrap_or_default();
                changes.push(changed("email", &text(&next.email), &text(email)));
                next.email = email.clone();
            }
            for (date, at) in &parsed.dates {
                match *date.slot(&mut next) {
                    None => {
                        *date.slot(&mut next) = Some(*at);
                        changes.push(date.audit_text(*at));
                    }
                    Some(existing) if existing == *at => {}
                    Some(_) => {
                        return Err(Error::Conflict(format!(
                            "Subject has already been {}",
                            date.word()
                        )));
                    }
                }
            }
            if changes.is_empty() {
                return Ok(Edit::Unchanged(()));
            }
            next.changed = now;
            Ok(Edit::Write {
                next,
                then: Audited {
                    action: changes.join("; "),
                    result: (),
                },
            })
        })
        .await?;
        // Also when the same date was sent again: a withdrawal whose voiding
        // was cut short is completed by repeating it.
        if parsed
            .dates
            .iter()
            .any(|(d, _)| *d == JourneyDate::Withdrawn)
        {
            self.void_open_links(ctx, sssid).await?;
        }
        Ok(())
    }

    /// Records that a journey step happened: now, or on the day staff
    /// picked (`day`; see [`StepDay::instant`]). Unlike a `PUT`, which may
    /// resend the stored value as a no-op, a step that was already recorded
    /// is refused with a conflict naming its date, so a second withdrawal
    /// is reported instead of absorbed; of concurrent attempts exactly one
    /// succeeds. The audit text is that of [`SubjectService::update`].
    pub async fn record_step(
        &self,
        ctx: &Context,
        sssid: &str,
        step: JourneyDate,
        day: Option<StepDay>,
    ) -> Result<DateTime<Utc>> {
        ctx.require_write()?;
        // Milliseconds, a precision both stores keep exactly (BSON dates are
        // milliseconds), so the audit text names the date as it is stored.
        let now = self.deps.clock.now().trunc_subsecs(3);
        let at = match day {
            None => now,
            Some(day) => day
                .instant(now)
                .map_err(|problem| Error::invalid("date", problem.to_string()))?,
        };
        self.edit_subject(ctx, sssid, |mut next| {
            if let Some(at) = *step.slot(&mut next) {
                return Err(Error::Conflict(format!(
                    "Subject has already been {} (on {})",
                    step.word(),
                    format_timestamp(at)
                )));
            }
            *step.slot(&mut next) = Some(at);
            next.changed = now;
            Ok(Edit::Write {
                next,
                then: Audited {
                    action: step.audit_text(at),
                    result: at,
                },
            })
        })
        .await?;
        if step == JourneyDate::Withdrawn {
            self.void_open_links(ctx, sssid).await?;
        }
        Ok(at)
    }

    /// One optimistic write of the subject (see [`optimistic::edit`]):
    /// `edit` decides from the subject as stored; what it writes is audited
    /// once it is written.
    async fn edit_subject<T>(
        &self,
        ctx: &Context,
        sssid: &str,
        mut edit: impl FnMut(SubjectRecord) -> Result<SubjectEdit<T>>,
    ) -> Result<T> {
        let store = self.deps.store.as_ref();
        match optimistic::edit(store, sssid, subject_not_found, |current| {
            std::future::ready(edit(current))
        })
        .await?
        {
            Edit::Unchanged(result) => Ok(result),
            Edit::Write {
                then: Audited { action, result },
                ..
            } => {
                self.audits.record(ctx, subject_target(sssid), action).await;
                Ok(result)
            }
        }
    }

    pub async fn list(&self, ctx: &Context, query: SubjectListQuery) -> Result<SubjectList> {
        require_study_access(ctx)?;
        let query = SubjectQuery {
            search: query.search,
            status: query.status,
            order_by: query.order_by,
            descending: query.direction.is_descending(),
            offset: query.paging.offset,
            limit: query.paging.perpage,
        };
        let page = self
            .deps
            .store
            .list_subject_page(&query, self.count_limit)
            .await?;
        Ok(SubjectList {
            items: page.items.into_iter().map(SubjectView::from).collect(),
            total: page.total,
        })
    }

    /// The audit trail of a subject and its links, oldest first.
    pub async fn audits(&self, ctx: &Context, sssid: &str) -> Result<Vec<AuditRecord>> {
        require_study_access(ctx)?;
        if self.deps.store.subject(sssid).await?.is_none() {
            return Err(subject_not_found());
        }
        Ok(self.deps.store.audits_for_subject(sssid).await?)
    }
}
