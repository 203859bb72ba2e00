//! The one design both stores follow for subject lists (search, status
//! filter, sort, paging and total of SPEC section 4), so that a list costs
//! what its page and its matches cost, not what the number of subjects does:
//!
//! - A filter is one to three disjoint *parts*, each served by an index
//!   ([`parts`]). A search is literal text that matches an sssid prefix,
//!   a name substring ignoring letter case, or a bday prefix; its parts
//!   are the sssid prefix (a range of the sssid index), the birth dates
//!   that match outside it (a range of the bday index, which holds the
//!   sssid too), and the names that match outside both (the trigram index:
//!   names are indexed by the trigrams of the name lower-cased in Rust,
//!   padded with [`NAME_PAD`] so that every one- and two-character piece
//!   starts a trigram; every candidate is confirmed by the literal rule).
//!   A status filter is its own part (the status index) or narrows the
//!   search's parts.
//! - Every sort has an index: the column, then the sssid as tie breaker,
//!   in the same direction, so descending walks the index backwards.
//! - Counts stop: each part is counted through its index only up to
//!   `count_limit` ([`DEFAULT_COUNT_LIMIT`]); past that the total is a
//!   lower bound ([`Total::AtLeast`]). An unfiltered total is the store's
//!   own count of subjects, which costs nothing to read.
//! - Each part pages by the cheaper of two plans ([`page_plan`]): *collect*
//!   its (counted, so at most `count_limit`) matches' sort keys through its
//!   index and sort them ([`sorted_page`]), or *walk* the sort index in
//!   order, testing each subject, until the page is full. Rare matches are
//!   cheaper to collect, frequent ones to walk (the walk stops early
//!   exactly because they are frequent; a prefix of the sort column is a
//!   range of the sort index, where every subject walked matches). With
//!   several parts, each gives its first `offset + limit` and they are
//!   merged ([`merged_page`]).

use super::SubjectRecord;

/// Totals are exact up to this many matches (a setting,
/// `subject_count_limit`); more are reported as a lower bound. Counting
/// costs about 0.15 microseconds a match (an FTS5 phrase, a range of an
/// index), so a frequent search spends about 0.3 ms counting to 2,000,
/// 1.5 ms to 10,000: the larger limit halved the search rate at a million
/// subjects (BENCHMARKS.md).
pub const DEFAULT_COUNT_LIMIT: u64 = 2_000;

/// Appended twice to every indexed name, so that each character and each
/// pair of characters of a name starts one of its trigrams, and a search
/// of one or two characters is a range of trigrams. Names cannot hold
/// control characters (`check_plain_text`), and matches are confirmed on
/// the unpadded name anyway.
pub const NAME_PAD: char = '\u{1}';

/// How many subjects a list query matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    Exact(u64),
    /// At least this many; counting stopped at the count limit.
    AtLeast(u64),
}

impl Total {
    /// The number: exact, or the lower bound.
    pub fn value(self) -> u64 {
        match self {
            Total::Exact(n) | Total::AtLeast(n) => n,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Total::Exact(_))
    }
}

/// One page of subjects and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectPage {
    pub items: Vec<SubjectRecord>,
    pub total: Total,
}

/// A search as typed, and what each of its parts searches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    /// As typed: an sssid or bday prefix (case-sensitive).
    pub text: String,
    /// Lower-cased like the stored names, for the name substring.
    pub folded: String,
}

/// How the name index finds the candidates of a name substring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameCandidates {
    /// Three or more characters: names holding every one of these
    /// trigrams (distinct, in order of first appearance).
    AllOf(Vec<String>),
    /// One or two characters: names with a trigram from `from` to `to`
    /// (both included), i.e. starting with the text.
    Range { from: String, to: String },
}

impl SearchText {
    /// `None` for no search (absent or empty text).
    pub fn new(text: Option<&str>) -> Option<Self> {
        let text = text.filter(|t| !t.is_empty())?;
        Some(Self {
            text: text.to_owned(),
            folded: text.to_lowercase(),
        })
    }

    /// The exclusive upper bound of the strings that start with the text,
    /// for an index range `text <= x < end` (UTF-8 orders like code points).
    pub fn prefix_end(&self) -> String {
        format!("{}{}", self.text, char::MAX)
    }

    /// Whether the text can start a stored birth date (`YYYY-MM-DD`): when
    /// it cannot, the query leaves the bday part out.
    pub fn may_start_a_bday(&self) -> bool {
        self.text.chars().count() <= 10
            && self.text.chars().enumerate().all(|(i, c)| match i {
                4 | 7 => c == '-',
                _ => c.is_ascii_digit(),
            })
    }

    pub fn name_candidates(&self) -> NameCandidates {
        let chars: Vec<char> = self.folded.chars().collect();
        if chars.len() >= 3 {
            let mut trigrams: Vec<String> = Vec::new();
            for window in chars.windows(3) {
                let trigram: String = window.iter().collect();
                if !trigrams.contains(&trigram) {
                    trigrams.push(trigram);
                }
            }
            NameCandidates::AllOf(trigrams)
        } else {
            let mut to = self.folded.clone();
            to.extend(std::iter::repeat_n(char::MAX, 3 - chars.len()));
            NameCandidates::Range {
                from: self.folded.clone(),
                to,
            }
        }
    }
}

/// The trigrams a name is indexed by: those of the lower-cased name padded
/// with [`NAME_PAD`] twice, each once, sorted.
pub fn name_trigrams(folded_name: &str) -> Vec<String> {
    let chars: Vec<char> = folded_name.chars().chain([NAME_PAD, NAME_PAD]).collect();
    let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// One part of a filter; the parts of a filter are disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// No filter: every subject.
    All,
    /// Only a status: its subjects.
    Status,
    /// Sssids that start with the search text.
    SssidPrefix,
    /// Birth dates that start with the search text, sssids that do not.
    BdayPrefix,
    /// Names that hold the search text, in neither part above.
    Name,
}

/// The parts of a filter (each narrowed to the status, if any, when there
/// is a search).
pub fn parts(search: Option<&SearchText>, status: bool) -> Vec<Part> {
    match search {
        None if status => vec![Part::Status],
        None => vec![Part::All],
        Some(search) if search.may_start_a_bday() => {
            vec![Part::SssidPrefix, Part::BdayPrefix, Part::Name]
        }
        Some(_) => vec![Part::SssidPrefix, Part::Name],
    }
}

/// What each part is asked for: with one part, the page itself (and one
/// more subject, to tell whether there are more); with several, everything
/// up to the end of the page, for the merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: u64,
    pub limit: u64,
}

impl Window {
    pub fn of(offset: u64, limit: u64, parts: usize) -> Self {
        match parts {
            1 => Self {
                offset,
                limit: limit.saturating_add(1),
            },
            _ => Self {
                offset: 0,
                limit: offset.saturating_add(limit).saturating_add(1),
            },
        }
    }
}

/// The page at `offset` from the parts' windows (each in order, from the
/// start), and whether any subject follows it.
pub fn merged_page<K: Ord>(
    windows: Vec<Vec<(K, String)>>,
    descending: bool,
    offset: u64,
    limit: u64,
) -> (Vec<String>, bool) {
    let keys: Vec<_> = windows.into_iter().flatten().collect();
    let wanted = offset.saturating_add(limit);
    let more = keys.len() as u64 > wanted;
    (sorted_page(keys, descending, offset, limit), more)
}

/// How a page is chosen; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePlan {
    /// Sort the keys of every match, found through the filter's indexes.
    Collect,
    /// Walk the sort index, testing each subject, until the page is full.
    Walk,
}

/// Collecting a match (an index hit, then its sort key by sssid) costs
/// about as much as walking this many subjects of a sort index (measured
/// with SQLite at 100,000 and 1,000,000 subjects).
const ROWS_WALKED_PER_MATCH_COLLECTED: u64 = 3;

/// The cheaper plan for the page at `offset` of `limit` items, given the
/// counted `matches` (`None`: more than the count limit) among `subjects`.
/// The walk reads about `(offset + limit) * subjects / matches` subjects,
/// collecting reads every match.
pub fn page_plan(matches: Option<u64>, subjects: u64, offset: u64, limit: u64) -> PagePlan {
    let Some(matches) = matches else {
        // Frequent: at least one subject in `subjects / count_limit`.
        return PagePlan::Walk;
    };
    if matches == 0 {
        return PagePlan::Collect;
    }
    let walked = offset
        .saturating_add(limit)
        .saturating_add(1)
        .saturating_mul(subjects)
        / matches;
    if walked > matches.saturating_mul(ROWS_WALKED_PER_MATCH_COLLECTED) {
        PagePlan::Collect
    } else {
        PagePlan::Walk
    }
}

/// The number of matches from the parts' counts (`None`: a part passed
/// the limit): exact only within the limit, so that whether a total is
/// exact does not depend on how a search splits into parts; without a
/// filter, the store's own count, always exact.
pub fn counted_total(
    counts: impl IntoIterator<Item = Option<u64>>,
    count_limit: u64,
    filtered: bool,
) -> Option<u64> {
    let total: Option<u64> = counts.into_iter().sum();
    total.filter(|total| !filtered || *total <= count_limit)
}

/// The total to report for a page of `items` at `offset`: the count when
/// it stayed within the limit (`matches`), else what the page shows. Past
/// the limit a page asks for one subject more than it shows, and `more`
/// says whether it came: then the total is at least one past the page (and
/// past the limit); the last page makes it exact.
pub fn page_total(
    matches: Option<u64>,
    count_limit: u64,
    offset: u64,
    items: usize,
    more: bool,
) -> Total {
    let seen = offset.saturating_add(items as u64);
    match matches {
        Some(n) => Total::Exact(n),
        None if more => Total::AtLeast(seen.saturating_add(1).max(count_limit + 1)),
        None if items > 0 => Total::Exact(seen),
        // Past the end: more than the limit, not more than `offset`.
        None => Total::AtLeast(count_limit + 1),
    }
}

/// The keys from `offset` on (at most `limit`) among the sort keys of all
/// matches, ordered by key, then sssid, both in the same direction (as the
/// stores' indexes are; `None`, an unset date, first when ascending).
pub fn sorted_window<K: Ord>(
    mut keys: Vec<(K, String)>,
    descending: bool,
    offset: u64,
    limit: u64,
) -> Vec<(K, String)> {
    keys.sort_unstable();
    if descending {
        keys.reverse();
    }
    keys.into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}

/// The sssids of [`sorted_window`].
pub fn sorted_page<K: Ord>(
    keys: Vec<(K, String)>,
    descending: bool,
    offset: u64,
    limit: u64,
) -> Vec<String> {
    sorted_window(keys, descending, offset, limit)
        .into_iter()
        .map(|(_, sssid)| sssid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(text: &str) -> SearchText {
        SearchText::new(Some(text)).unwrap()
    }

    #[test]
    fn trigrams_cover_every_piece_of_a_name() {
        assert_eq!(
            name_trigrams("anna"),
            ["a\u{1}\u{1}", "ann", "na\u{1}", "nna"]
        );
        assert_eq!(name_trigrams("lu"), ["lu\u{1}", "u\u{1}\u{1}"]);
        assert_eq!(name_trigrams(""), Vec::<String>::new());
        // Every substring of a name is a prefix of one of its trigrams, or
        // holds all the trigrams of itself.
        let name = "ann-marie müller";
        let trigrams = name_trigrams(name);
        let chars: Vec<char> = name.chars().collect();
        for start in 0..chars.len() {
            for end in start + 1..=chars.len() {
                let piece: String = chars[start..end].iter().collect();
                match search(&piece).name_candidates() {
                    NameCandidates::AllOf(wanted) => {
                        assert!(wanted.iter().all(|t| trigrams.contains(t)), "{piece:?}")
                    }
                    NameCandidates::Range { from, to } => {
                        assert!(trigrams.iter().any(|t| *t >= from && *t <= to), "{piece:?}")
                    }
                }
            }
        }
    }

    #[test]
    fn candidates_of_short_and_long_searches() {
        assert_eq!(
            search("MüLl").name_candidates(),
            NameCandidates::AllOf(vec!["mül".into(), "üll".into()])
        );
        assert_eq!(
            search("aaaa").name_candidates(),
            NameCandidates::AllOf(vec!["aaa".into()])
        );
        assert_eq!(
            search("Ü").name_candidates(),
            NameCandidates::Range {
                from: "ü".into(),
                to: format!("ü{}{}", char::MAX, char::MAX)
            }
        );
        assert_eq!(SearchText::new(Some("")), None);
    }

    #[test]
    fn only_date_shaped_text_searches_birth_dates() {
        for text in ["1", "1980", "1980-", "1980-0", "1980-03-1", "1980-03-14"] {
            assert!(search(text).may_start_a_bday(), "{text}");
        }
        for text in [
            "meier",
            "S0012",
            "1980-03-141",
            "1980/03",
            "19a",
            "-",
            "١٩٨٠",
        ] {
            assert!(!search(text).may_start_a_bday(), "{text}");
        }
    }

    #[test]
    fn rare_matches_are_collected_frequent_ones_walked() {
        assert_eq!(page_plan(None, 1_000_000, 0, 50), PagePlan::Walk);
        assert_eq!(page_plan(Some(0), 1_000_000, 0, 50), PagePlan::Collect);
        assert_eq!(page_plan(Some(100), 1_000_000, 0, 50), PagePlan::Collect);
        assert_eq!(page_plan(Some(9_000), 1_000_000, 0, 50), PagePlan::Walk);
        // Deep pages of the same matches are cheaper to collect.
        assert_eq!(
            page_plan(Some(9_000), 1_000_000, 8_000, 50),
            PagePlan::Collect
        );
        // Every subject matches: the walk reads the page and stops.
        assert_eq!(page_plan(Some(20), 20, 0, 5), PagePlan::Walk);
    }

    #[test]
    fn totals_are_exact_within_the_limit_or_without_a_filter() {
        assert_eq!(counted_total([Some(3), Some(4)], 10, true), Some(7));
        assert_eq!(counted_total([Some(6), Some(7)], 10, true), None);
        assert_eq!(counted_total([Some(3), None], 10, true), None);
        assert_eq!(counted_total([Some(60)], 10, false), Some(60));
        assert_eq!(counted_total([], 10, true), Some(0));
    }

    #[test]
    fn totals_past_the_limit_follow_the_page() {
        assert_eq!(page_total(Some(7), 10, 0, 5, false), Total::Exact(7));
        // First pages of many matches: more than the limit.
        assert_eq!(page_total(None, 10, 0, 5, true), Total::AtLeast(11));
        // Past the limit: at least one more than the page shows.
        assert_eq!(page_total(None, 10, 20, 5, true), Total::AtLeast(26));
        // The last page knows.
        assert_eq!(page_total(None, 10, 20, 3, false), Total::Exact(23));
        assert_eq!(page_total(None, 10, 40, 0, false), Total::AtLeast(11));
    }

    #[test]
    fn searches_split_into_disjoint_parts() {
        assert_eq!(parts(None, false), [Part::All]);
        assert_eq!(parts(None, true), [Part::Status]);
        assert_eq!(
            parts(Some(&search("me")), true),
            [Part::SssidPrefix, Part::Name]
        );
        assert_eq!(
            parts(Some(&search("1980")), false),
            [Part::SssidPrefix, Part::BdayPrefix, Part::Name]
        );
    }

    #[test]
    fn parts_merge_into_the_page() {
        assert_eq!(
            Window::of(20, 5, 1),
            Window {
                offset: 20,
                limit: 6
            }
        );
        assert_eq!(
            Window::of(20, 5, 2),
            Window {
                offset: 0,
                limit: 26
            }
        );
        let windows = vec![
            vec![(Some("b"), "S2".to_owned()), (Some("d"), "S4".to_owned())],
            vec![(Some("a"), "S1".to_owned()), (Some("c"), "S3".to_owned())],
        ];
        assert_eq!(
            merged_page(windows.clone(), false, 1, 2),
            (vec!["S2".to_owned(), "S3".to_owned()], true)
        );
        assert_eq!(
            merged_page(windows, false, 2, 2),
            (vec!["S3".to_owned(), "S4".to_owned()], false)
        );
    }

    #[test]
    fn pages_of_sorted_keys_break_ties_by_sssid_in_the_same_direction() {
        let keys = || {
            vec![
                (Some("b"), "S3".to_owned()),
                (None, "S9".to_owned()),
                (Some("a"), "S2".to_owned()),
                (Some("b"), "S1".to_owned()),
            ]
        };
        assert_eq!(sorted_page(keys(), false, 0, 10), ["S9", "S2", "S1", "S3"]);
        assert_eq!(sorted_page(keys(), true, 0, 10), ["S3", "S1", "S2", "S9"]);
        assert_eq!(sorted_page(keys(), true, 1, 2), ["S1", "S2"]);
        assert!(sorted_page(keys(), true, 4, 2).is_empty());
    }
}
