//! List queries as the services take them: a typed sort column, direction,
//! status filter and one paging rule, shared by the JSON API (which reads
//! them from query-string text) and the pages (which build them from the
//! visitor's URL), so neither turns typed values back into text.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::store::{SubjectColumn, SubjectStatus};

/// The most items one page may hold; more is read as this many.
pub const MAX_PER_PAGE: u64 = 500;

/// Items per page when a client names none.
pub const DEFAULT_PER_PAGE: u64 = 50;

/// Which items of a list to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub offset: u64,
    /// From 1 to [`MAX_PER_PAGE`] ([`MAX_EXPORT_PAGE`] for the server's own
    /// reads of an export).
    pub perpage: u64,
}

/// The largest page a CSV export reads at once. A page at a deep offset
/// costs its offset (the store steps over the rows before it), so a whole
/// list read 500 at a time costs the square of its length: a million
/// subjects took 85 s. Pages that grow to 10,000 rows (about 3 MB held)
/// make the offsets a twentieth as many.
pub const MAX_EXPORT_PAGE: u64 = 10_000;

impl Default for Paging {
    fn default() -> Self {
        Self::new(0, DEFAULT_PER_PAGE)
    }
}

impl Paging {
    /// `perpage` is read as 1 to [`MAX_PER_PAGE`].
    pub fn new(offset: u64, perpage: u64) -> Self {
        Self {
            offset,
            perpage: perpage.clamp(1, MAX_PER_PAGE),
        }
    }

    /// A page of an export: 1 to [`MAX_EXPORT_PAGE`] items.
    pub fn for_export(offset: u64, perpage: u64) -> Self {
        Self {
            offset,
            perpage: perpage.clamp(1, MAX_EXPORT_PAGE),
        }
    }

    /// Page `number` (counted from 1; 0 is read as 1) of `perpage` items.
    pub fn page(number: u64, perpage: u64) -> Self {
        let perpage = perpage.clamp(1, MAX_PER_PAGE);
        Self::new(
            number.max(1).saturating_sub(1).saturating_mul(perpage),
            perpage,
        )
    }

    /// `offset` and `perpage` as typed in a query string: blank means the
    /// default, a perpage of 0 is refused, above the cap is the cap. The
    /// stores page with signed 64-bit numbers, so larger ones are refused.
    pub fn parse(offset: Option<&str>, perpage: Option<&str>) -> Result<Self> {
        let number = |name: &str, text: Option<&str>| -> Result<Option<u64>> {
            given(text)
                .map(|s| {
                    s.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| i64::try_from(*n).is_ok())
                        .ok_or_else(|| {
                            Error::BadRequest(format!("{name} must be a whole number, got {s:?}"))
                        })
                })
                .transpose()
        };
        let offset = number("offset", offset)?.unwrap_or(0);
        let perpage = match number("perpage", perpage)? {
            None => DEFAULT_PER_PAGE,
            Some(0) => return Err(Error::BadRequest("perpage must be at least 1".into())),
            Some(n) => n,
        };
        Ok(Self::new(offset, perpage))
    }
}

/// Query-string text that says something (blank means "not sent").
/// Search text as given. Nothing stored holds a control character (every
/// stored text passes `check_plain_text`), so a search for one is refused
/// rather than handed to a store: SQLite's `LIKE` stops at a NUL byte and
/// would match everything, MongoDB refuses a pattern holding one.
pub fn search_text(text: Option<&str>) -> Result<Option<String>> {
    text.map(|text| crate::domain::check_plain_text("search", text).map(|()| text.to_owned()))
        .transpose()
}

fn given(text: Option<&str>) -> Option<&str> {
    text.filter(|s| !s.trim().is_empty())
}

/// A word no variant is spelled as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Ascending,
    Descending,
}

impl SortDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDirection::Ascending => "asc",
            SortDirection::Descending => "desc",
        }
    }

    pub fn is_descending(self) -> bool {
        self == SortDirection::Descending
    }

    pub fn reversed(self) -> Self {
        match self {
            SortDirection::Ascending => SortDirection::Descending,
            SortDirection::Descending => SortDirection::Ascending,
        }
    }
}

/// `asc` or `desc` in any letter case, surrounding blanks ignored.
impl FromStr for SortDirection {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        match s.trim().to_ascii_lowercase().as_str() {
            "asc" => Ok(SortDirection::Ascending),
            "desc" => Ok(SortDirection::Descending),
            _ => Err(UnknownWord),
        }
    }
}

impl SubjectColumn {
    /// Every column, in the order the API's message names them.
    pub const ALL: [SubjectColumn; 9] = [
        SubjectColumn::Sssid,
        SubjectColumn::Name,
        SubjectColumn::Bday,
        SubjectColumn::Created,
        SubjectColumn::Changed,
        SubjectColumn::DateInvited,
        SubjectColumn::DateConsented,
        SubjectColumn::DateEnrolled,
        SubjectColumn::DateWithdrawn,
    ];

    /// The query word (`ordercol`), the field name of the subject.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectColumn::Sssid => "sssid",
            SubjectColumn::Name => "name",
            SubjectColumn::Bday => "bday",
            SubjectColumn::Created => "created",
            SubjectColumn::Changed => "changed",
            SubjectColumn::DateInvited => "date_invited",
            SubjectColumn::DateConsented => "date_consented",
            SubjectColumn::DateEnrolled => "date_enrolled",
            SubjectColumn::DateWithdrawn => "date_withdrawn",
        }
    }

    /// Dates read best newest first, names and ids A to Z.
    pub fn natural_direction(self) -> SortDirection {
        match self {
            SubjectColumn::Sssid | SubjectColumn::Name | SubjectColumn::Bday => {
                SortDirection::Ascending
            }
            _ => SortDirection::Descending,
        }
    }
}

/// The field name as written (case-sensitive, like the fields of a
/// subject), surrounding blanks ignored.
impl FromStr for SubjectColumn {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|col| col.as_str() == s)
            .ok_or(UnknownWord)
    }
}

impl SubjectStatus {
    /// The query word (`status`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectStatus::NotInvited => "not-invited",
            SubjectStatus::Invited => "invited",
            SubjectStatus::Consented => "consented",
            SubjectStatus::Enrolled => "enrolled",
            SubjectStatus::Withdrawn => "withdrawn",
        }
    }
}

/// Any letter case, surrounding blanks ignored.
impl FromStr for SubjectStatus {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownWord)
    }
}

/// One page of subjects: which, in what order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectListQuery {
    /// Literal text: an sssid prefix, part of a name, or a bday prefix.
    pub search: Option<String>,
    pub status: Option<SubjectStatus>,
    pub order_by: SubjectColumn,
    pub direction: SortDirection,
    pub paging: Paging,
}

/// A subject list query as typed into a query string; blank means default.
#[derive(Debug, Default, Clone, Copy)]
pub struct SubjectListText<'a> {
    pub offset: Option<&'a str>,
    pub perpage: Option<&'a str>,
    pub ordercol: Option<&'a str>,
    pub orderdir: Option<&'a str>,
    pub search: Option<&'a str>,
    pub status: Option<&'a str>,
}

impl SubjectListQuery {
    /// Reads a query string's text; the message of a refusal names the
    /// parameter and lists what it accepts.
    pub fn parse(text: SubjectListText<'_>) -> Result<Self> {
        let paging = Paging::parse(text.offset, text.perpage)?;
        let order_by = match given(text.ordercol) {
            None => SubjectColumn::default(),
            Some(col) => col.parse().map_err(|UnknownWord| {
                let words: Vec<_> = SubjectColumn::ALL.iter().map(|c| c.as_str()).collect();
                Error::BadRequest(format!(
                    "ordercol must be one of {}; got {col:?}",
                    words.join(", ")
                ))
            })?,
        };
        let direction = match given(text.orderdir) {
            None => SortDirection::default(),
            Some(dir) => dir.parse().map_err(|UnknownWord| {
                Error::BadRequest(format!("orderdir must be asc or desc, got {dir:?}"))
            })?,
        };
        let status = given(text.status)
            .map(|status| {
                status.parse().map_err(|UnknownWord| {
                    let words: Vec<_> = SubjectStatus::ALL.iter().map(|s| s.as_str()).collect();
                    Error::BadRequest(format!(
                        "status must be one of {}; got {status:?}",
                        words.join(", ")
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            // Searched as typed (sssids are case-sensitive); the store folds
            // case for the name.
            search: search_text(given(text.search))?,
            status,
            order_by,
            direction,
            paging,
        })
    }
}

/// One page of staff users, by username.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserListQuery {
    /// Part of a username.
    pub search: Option<String>,
    pub paging: Paging,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SubjectListQuery> {
        let mut text = SubjectListText::default();
        for (k, v) in pairs {
            let v = Some(*v);
            match *k {
                "offset" => text.offset = v,
                "perpage" => text.perpage = v,
                "ordercol" => text.ordercol = v,
                "orderdir" => text.orderdir = v,
                "search" => text.search = v,
                "status" => text.status = v,
                _ => unreachable!(),
            }
        }
        SubjectListQuery::parse(text)
    }

    #[test]
    fn a_search_for_a_control_character_is_refused() {
        let err = message(parse(&[("search", "a\0b")]));
        assert!(
            err.contains("search must not contain control characters"),
            "{err}"
        );
        assert_eq!(
            search_text(Some("Müller")).unwrap().as_deref(),
            Some("Müller")
        );
    }

    fn message(result: Result<SubjectListQuery>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_limits() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.paging, Paging::new(0, DEFAULT_PER_PAGE));
        assert_eq!(q.order_by, SubjectColumn::Sssid);
        assert_eq!(q.direction, SortDirection::Ascending);
        let q = parse(&[("perpage", "100000")]).unwrap();
        assert_eq!(q.paging.perpage, MAX_PER_PAGE);
        assert_eq!(
            message(parse(&[("perpage", "0")])),
            "perpage must be at least 1"
        );
        assert_eq!(
            message(parse(&[("offset", "-1")])),
            "offset must be a whole number, got \"-1\""
        );
    }

    #[test]
    fn direction_and_status_ignore_letter_case_columns_do_not() {
        for (dir, want) in [
            ("ASC", SortDirection::Ascending),
            ("desc", SortDirection::Descending),
            (" DeSc ", SortDirection::Descending),
        ] {
            assert_eq!(
                parse(&[("orderdir", dir)]).unwrap().direction,
                want,
                "{dir}"
            );
        }
        assert_eq!(
            message(parse(&[("orderdir", "up")])),
            "orderdir must be asc or desc, got \"up\""
        );
        assert_eq!(
            message(parse(&[("ordercol", "password")])),
            "ordercol must be one of sssid, name, bday, created, changed, date_invited, \
             date_consented, date_enrolled, date_withdrawn; got \"password\""
        );
        assert!(parse(&[("ordercol", "Name")]).is_err());
        assert_eq!(
            message(parse(&[("status", "lost")])),
            "status must be one of not-invited, invited, consented, enrolled, withdrawn; \
             got \"lost\""
        );
        let q = parse(&[("status", "Not-Invited")]).unwrap();
        assert_eq!(q.status, Some(SubjectStatus::NotInvited));
        let q = parse(&[("status", ""), ("search", "")]).unwrap();
        assert_eq!((q.status, q.search), (None, None), "empty means absent");
    }

    #[test]
    fn every_word_reads_back_as_itself() {
        for col in SubjectColumn::ALL {
            assert_eq!(col.as_str().parse(), Ok(col));
        }
        for status in SubjectStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
    }

    #[test]
    fn pages_count_from_one_and_are_capped() {
        assert_eq!(Paging::page(1, 25), Paging::new(0, 25));
        assert_eq!(Paging::page(3, 25), Paging::new(50, 25));
        assert_eq!(Paging::page(0, 25), Paging::new(0, 25));
        assert_eq!(Paging::new(0, 0).perpage, 1);
        assert_eq!(Paging::new(0, 501).perpage, MAX_PER_PAGE);
    }
}
