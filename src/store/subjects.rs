//! Study subjects (participants).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::subject_list::{DEFAULT_COUNT_LIMIT, SubjectPage};
use super::{Page, StoreResult};
use crate::domain::{Journey, Standing};

#[derive(Debug, Clone, PartialEq)]
pub struct SubjectRecord {
    /// Study subject id; unique, case-sensitive, 1-64 characters.
    pub sssid: String,
    /// Empty once the subject's personal data was erased.
    pub name: String,
    /// Required for every subject, so `None` means the subject's personal
    /// data (name, birth date, email) was erased; see
    /// [`SubjectRecord::is_erased`].
    pub bday: Option<NaiveDate>,
    pub email: Option<String>,
    pub date_invited: Option<DateTime<Utc>>,
    pub date_consented: Option<DateTime<Utc>>,
    /// Set explicitly, or by the service at the first established link.
    pub date_enrolled: Option<DateTime<Utc>>,
    /// Set explicitly, or by the service at the first link withdrawal.
    pub date_withdrawn: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    /// Optimistic-concurrency counter: every successful replace adds one.
    pub version: i64,
}

impl SubjectRecord {
    /// A subject created at `now`, before any step of its journey.
    pub fn new(
        sssid: String,
        name: String,
        bday: NaiveDate,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sssid,
            name,
            bday: Some(bday),
            email,
            date_invited: None,
            date_consented: None,
            date_enrolled: None,
            date_withdrawn: None,
            created: now,
            changed: now,
            version: 1,
        }
    }

    /// Whether the subject's personal data was erased (GDPR art. 17): a
    /// birth date is required for every subject, so only an erasure
    /// leaves none.
    pub fn is_erased(&self) -> bool {
        self.bday.is_none()
    }

    /// The journey dates, for the rules in [`Journey`].
    pub fn journey(&self) -> Journey {
        Journey {
            invited: self.date_invited,
            consented: self.date_consented,
            enrolled: self.date_enrolled,
            withdrawn: self.date_withdrawn,
        }
    }
}

/// The latest state of a subject, for filtering: the subjects whose
/// [`Journey::standing`] is [`SubjectStatus::standing`]. Each store
/// expresses that rule in its own query language (SQLite's generated
/// `status` column, MongoDB's filter); the conformance suite checks both
/// against the domain rule for every combination of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStatus {
    /// No step of the journey recorded yet: no `date_invited` and nothing
    /// later.
    NotInvited,
    /// `date_invited` set, nothing later.
    Invited,
    /// `date_consented` set, not enrolled or withdrawn.
    Consented,
    /// `date_enrolled` set, not withdrawn.
    Enrolled,
    /// `date_withdrawn` set.
    Withdrawn,
}

impl SubjectStatus {
    pub const ALL: [SubjectStatus; 5] = [
        SubjectStatus::NotInvited,
        SubjectStatus::Invited,
        SubjectStatus::Consented,
        SubjectStatus::Enrolled,
        SubjectStatus::Withdrawn,
    ];

    /// The standing this filter selects.
    pub fn standing(self) -> Standing {
        match self {
            SubjectStatus::NotInvited => Standing::Pending,
            SubjectStatus::Invited => Standing::Invited,
            SubjectStatus::Consented => Standing::Consented,
            SubjectStatus::Enrolled => Standing::Enrolled,
            SubjectStatus::Withdrawn => Standing::Withdrawn,
        }
    }
}

/// The key names are sorted by, stored next to the name: transliterated
/// to Latin letters without diacritics (`Å` → `a`, `ß` → `ss`, `Ø` → `o`)
/// and lower-cased, so Åsa and Émilie sort among the a's and e's rather
/// than after Zoë, as a reader expects. Characters without a
/// transliteration are kept as they are. Stores break ties by sssid.
pub fn name_sort_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.chars() {
        match deunicode::deunicode_char(c) {
            Some(latin) => key.push_str(latin),
            None => key.push(c),
        }
    }
    key.to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectColumn {
    #[default]
    Sssid,
    Name,
    Bday,
    Created,
    Changed,
    DateInvited,
    DateConsented,
    DateEnrolled,
    DateWithdrawn,
}

#[derive(Debug, Clone)]
pub struct SubjectQuery {
    /// Literal text (never a pattern): an sssid prefix, a case-insensitive
    /// name substring, or a `YYYY-MM-DD` bday prefix.
    pub search: Option<String>,
    pub status: Option<SubjectStatus>,
    pub order_by: SubjectColumn,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// Fails with `Duplicate` if the sssid is taken.
    async fn insert_subject(&self, subject: &SubjectRecord) -> StoreResult<()>;
    async fn subject(&self, sssid: &str) -> StoreResult<Option<SubjectRecord>>;
    /// Writes `subject` (with `version` already incremented by the caller)
    /// only if the stored version is still `expected_version`; `false` means
    /// someone else wrote first and the caller should re-read and retry.
    async fn replace_subject(
        &self,
        subject: &SubjectRecord,
        expected_version: i64,
    ) -> StoreResult<bool>;
    /// One page of a list and its total, counted exactly up to
    /// `count_limit` matches (a lower bound past that). Ties in the sort
    /// column are broken by sssid, so pages are stable. Follows the design
    /// of `store::subject_list`: cheap whatever the number of subjects.
    async fn list_subject_page(
        &self,
        query: &SubjectQuery,
        count_limit: u64,
    ) -> StoreResult<SubjectPage>;

    /// [`SubjectStore::list_subject_page`] with the default count limit and
    /// the total as a number (a lower bound past the limit), for callers
    /// that only page through.
    async fn list_subjects(&self, query: &SubjectQuery) -> StoreResult<Page<SubjectRecord>> {
        let page = self.list_subject_page(query, DEFAULT_COUNT_LIMIT).await?;
        Ok(Page {
            items: page.items,
            total: page.total.value(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::name_sort_key;

    #[test]
    fn sort_keys_ignore_diacritics_and_letter_case() {
        assert_eq!(name_sort_key("Åsa Öberg"), "asa oberg");
        assert_eq!(name_sort_key("Émilie"), "emilie");
        assert_eq!(name_sort_key("ZOË"), "zoe");
        assert_eq!(name_sort_key("Straße"), "strasse");
        assert_eq!(name_sort_key("Søren Łukasz"), "soren lukasz");
        let mut names = ["Zoë", "Émilie", "Åsa", "bob", "Adam"];
        names.sort_by_key(|n| name_sort_key(n));
        assert_eq!(names, ["Adam", "Åsa", "bob", "Émilie", "Zoë"]);
    }
}
