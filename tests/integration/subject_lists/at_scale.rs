//! Subject lists return exactly what the literal rules of SPEC section 4
//! say (an sssid prefix, a name substring ignoring letter case, a bday
//! prefix; the latest status; sorted by the column, ties by sssid in the
//! same direction), page by page, through both page plans (collecting the
//! matches, walking the sort index) and past the count limit, with the
//! totals `store::subject_list` promises, on SQLite and on MongoDB.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::subject_list::{PagePlan, page_plan};
use idm::store::{
    SubjectColumn, SubjectQuery, SubjectRecord, SubjectStatus, SubjectStore, Total, name_sort_key,
};
use mongodb::bson::{Document, doc};

/// Names with what folding, trigrams and padding could get wrong: letter
/// case beyond ASCII, one- and two-letter names, names that hold date- or
/// sssid-like text, wildcard characters, repeated letters.
const NAMES: &[&str] = &[
    "Anna Meier",
    "ÄRGER Zoë",
    "Lu",
    "X",
    "Straße Weiß",
    "Room 1980-03",
    "s0 Sam",
    "a*b?c[d]",
    "Percent 100%",
    "Ann-Marie Annabelle",
    "ÅSA ÖSTLUND",
    "Meier-Müller",
    "aaaa",
    "Émilie Meier",
    "Say \"Hi\"",
];

/// What is searched: frequent and rare, one and two letters, text that is
/// also an sssid or bday prefix, and nothing.
const SEARCHES: &[&str] = &[
    "a",
    "ä",
    "Ä",
    "me",
    "meier",
    "MEIER-M",
    "lu",
    "x",
    "ß",
    "ss",
    "S0",
    "S00",
    "1980",
    "1980-0",
    "1980-03-1",
    "0",
    "*",
    "\"hi",
    "aaa",
    "ann-marie annabelle",
    "nobody at all",
];

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// 60 subjects: every name four times (sssids `S000`.. and a few odd
/// ones), births in 1980 and 1990, journey dates in every combination, and
/// times with ties so the sssid must break them.
fn subjects() -> Vec<SubjectRecord> {
    let mut subjects = Vec::new();
    for i in 0..60_i64 {
        let sssid = match i {
            7 => "1980-X".to_owned(),
            8 => "s0-lower".to_owned(),
            9 => "Ä1".to_owned(),
            _ => format!("S{i:03}"),
        };
        let name = NAMES[i as usize % NAMES.len()];
        let bday = NaiveDate::from_ymd_opt(
            1980 + 10 * (i % 2) as i32,
            1 + (i % 12) as u32,
            1 + (i % 28) as u32,
        )
        .unwrap();
        let mut s = SubjectRecord::new(sssid, name.to_owned(), bday, None, at(i % 7));
        s.changed = at(100 + i % 5);
        s.date_invited = (i % 5 != 0).then(|| at(200 + i % 3));
        s.date_consented = (i % 5 >= 2).then(|| at(300 + i % 4));
        s.date_enrolled = (i % 5 >= 3).then(|| at(400 + i % 2));
        s.date_withdrawn = (i % 10 == 4).then(|| at(500));
        subjects.push(s);
    }
    subjects
}

/// The latest status by the domain rule.
fn status_of(s: &SubjectRecord) -> SubjectStatus {
    let standing = s.journey().standing();
    SubjectStatus::ALL
        .into_iter()
        .find(|status| status.standing() == standing)
        .unwrap()
}

/// The sort key of `column` as text that orders like the stored column
/// (unset dates first).
fn key(s: &SubjectRecord, column: SubjectColumn) -> Option<String> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    match column {
        SubjectColumn::Sssid => None,
        SubjectColumn::Name => Some(name_sort_key(&s.name)),
        SubjectColumn::Bday => s.bday.map(|b| b.to_string()),
        SubjectColumn::Created => time(Some(s.created)),
        SubjectColumn::Changed => time(Some(s.changed)),
        SubjectColumn::DateInvited => time(s.date_invited),
        SubjectColumn::DateConsented => time(s.date_consented),
        SubjectColumn::DateEnrolled => time(s.date_enrolled),
        SubjectColumn::DateWithdrawn => time(s.date_withdrawn),
    }
}

/// The sssids SPEC section 4 lists for `query` (all pages), computed by
/// hand from the literal rules.
fn expected(subjects: &[SubjectRecord], query: &SubjectQuery) -> Vec<String> {
    let mut hits: Vec<_> = subjects
        .iter()
        .filter(|s| match query.search.as_deref() {
            None => true,
            Some(text) => {
                s.sssid.starts_with(text)
                    || s.name.to_lowercase().contains(&text.to_lowercase())
                    || s.bday.is_some_and(|b| b.to_string().starts_with(text))
            }
        })
        .filter(|s| query.status.is_none_or(|status| status_of(s) == status))
        .map(|s| (key(s, query.order_by), s.sssid.clone()))
        .collect();
    hits.sort();
    if query.descending {
        hits.reverse();
    }
    hits.into_iter().map(|(_, sssid)| sssid).collect()
}

/// The total promised for the page of `shown` items at `offset` of `all`
/// matches, counting up to `limit`: exact within the limit (or without a
/// filter), else a lower bound one past the page (and past the limit)
/// until the last page.
fn expected_total(all: usize, filtered: bool, limit: u64, offset: u64, shown: usize) -> Total {
    let (all, seen) = (all as u64, offset + shown as u64);
    if all <= limit || !filtered {
        Total::Exact(all)
    } else if seen < all {
        Total::AtLeast((seen + 1).max(limit + 1))
    } else if shown > 0 {
        Total::Exact(all)
    } else {
        Total::AtLeast(limit + 1)
    }
}

/// Pages through `query` (from offset 0, one page past the end) and checks
/// every page and total. Returns the plans the pages took, as the store
/// decides them from the same numbers.
async fn page_through(
    store: &dyn SubjectStore,
    subjects: &[SubjectRecord],
    query: &SubjectQuery,
    count_limit: u64,
) -> Vec<PagePlan> {
    let want = expected(subjects, query);
    let mut plans = Vec::new();
    let mut offset = 0;
    loop {
        let q = SubjectQuery {
            offset,
            ..query.clone()
        };
        let page = store.list_subject_page(&q, count_limit).await.unwrap();
        let got: Vec<_> = page.items.iter().map(|s| s.sssid.clone()).collect();
        let from = (offset as usize).min(want.len());
        let to = (from + q.limit as usize).min(want.len());
        assert_eq!(got, want[from..to], "{q:?} with count limit {count_limit}");
        let filtered = q.search.is_some() || q.status.is_some();
        assert_eq!(
            page.total,
            expected_total(want.len(), filtered, count_limit, offset, got.len()),
            "total of {q:?} with count limit {count_limit}"
        );
        let counted = (want.len() as u64 <= count_limit || !filtered).then_some(want.len() as u64);
        plans.push(page_plan(counted, subjects.len() as u64, offset, q.limit));
        if got.is_empty() {
            return plans;
        }
        offset += q.limit;
    }
}

async fn lists_follow_the_literal_rules(store: &dyn SubjectStore) {
    let subjects = subjects();
    for s in &subjects {
        store.insert_subject(s).await.unwrap();
    }
    let query = |search: Option<&str>, status, order_by, descending, limit| SubjectQuery {
        search: search.map(str::to_owned),
        status,
        order_by,
        descending,
        offset: 0,
        limit,
    };
    let mut plans = Vec::new();
    // Every search, alone and within a status, in one page with exact
    // totals, by sssid; then page by page past a small count limit.
    for search in SEARCHES.iter().map(|s| Some(*s)).chain([None]) {
        for status in [
            None,
            Some(SubjectStatus::Consented),
            Some(SubjectStatus::NotInvited),
        ] {
            let all = query(search, status, SubjectColumn::Sssid, false, 500);
            plans.extend(page_through(store, &subjects, &all, 10_000).await);
            let paged = query(search, status, SubjectColumn::Sssid, true, 4);
            plans.extend(page_through(store, &subjects, &paged, 5).await);
        }
    }
    // Every order, both directions, for a frequent, a rare, a short and a
    // date search, a status and no filter, in small pages, with a count
    // limit the frequent ones pass.
    for column in SubjectColumn::ALL {
        for descending in [false, true] {
            for (search, status) in [
                (None, None),
                (Some("meier"), None),
                (Some("a"), None),
                (Some("x"), None),
                (Some("1980-0"), None),
                (None, Some(SubjectStatus::Enrolled)),
                (Some("me"), Some(SubjectStatus::Consented)),
            ] {
                for limit in [2, 7] {
                    let q = query(search, status, column, descending, limit);
                    plans.extend(page_through(store, &subjects, &q, 6).await);
                }
            }
        }
    }
    // Both plans ran, exact and past the limit.
    assert!(plans.contains(&PagePlan::Collect) && plans.contains(&PagePlan::Walk));

    // Renames reach the search, statuses follow new dates.
    let mut renamed = subjects.clone();
    let s = &mut renamed[3];
    let mut updated = s.clone();
    updated.name = "Quentin Quux".into();
    updated.date_withdrawn = Some(at(600));
    updated.version += 1;
    assert!(store.replace_subject(&updated, s.version).await.unwrap());
    *s = updated;
    for (search, status) in [
        (Some("quux"), None),
        (Some("x"), None),
        (Some(NAMES[3]), None),
        (None, Some(SubjectStatus::Withdrawn)),
    ] {
        let q = query(search, status, SubjectColumn::Name, false, 3);
        page_through(store, &renamed, &q, 5).await;
    }
}

#[tokio::test]
async fn sqlite_lists_follow_the_literal_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("idm.sqlite3"))
        .await
        .unwrap();
    lists_follow_the_literal_rules(&store).await;
}

#[tokio::test]
async fn mongodb_lists_follow_the_literal_rules() {
    let db = crate::common::mongo::TestDatabase::new();
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    lists_follow_the_literal_rules(&store).await;
}

/// Subjects stored before the search fields existed (no folded name, no
/// trigrams, no status) get them when the store opens, so they are found,
/// filtered and counted like new ones; the indexes the plan check trusts
/// are all there.
#[tokio::test]
async fn mongodb_subjects_stored_before_the_search_fields_get_them_at_start() {
    use futures::StreamExt as _;
    let db = crate::common::mongo::TestDatabase::new();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let collection = client.database(&db.name).collection::<Document>("subjects");
    let time = mongodb::bson::DateTime::from_millis(1_780_000_000_000);
    for (sssid, name, consented) in [("S1", "Anna Meier", true), ("S2", "Bo Lu", false)] {
        let mut d = doc! {
            "_id": sssid, "sssid": sssid, "name": name, "name_sort": name.to_lowercase(),
            "bday": "1980-01-01", "created": time, "changed": time, "version": 3_i64,
        };
        if consented {
            d.insert("date_consented", time);
        }
        collection.insert_one(d).await.unwrap();
    }
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    for (search, status, want) in [
        (Some("MEIER"), None, vec!["S1"]),
        (Some("u"), None, vec!["S2"]),
        (None, Some(SubjectStatus::Consented), vec!["S1"]),
        (None, Some(SubjectStatus::NotInvited), vec!["S2"]),
    ] {
        let q = SubjectQuery {
            search: search.map(str::to_owned),
            status,
            order_by: SubjectColumn::Sssid,
            descending: false,
            offset: 0,
            limit: 10,
        };
        let page = store.list_subject_page(&q, 10).await.unwrap();
        let got: Vec<_> = page.items.iter().map(|s| s.sssid.as_str()).collect();
        assert_eq!(
            (got, page.total),
            (want.clone(), Total::Exact(want.len() as u64)),
            "{q:?}"
        );
    }
    // The upgrade kept each document's version (it is no client write).
    let s1 = store.subject("S1").await.unwrap().unwrap();
    assert_eq!(s1.version, 3);

    let mut names = Vec::new();
    let mut cursor = collection.list_indexes().await.unwrap();
    while let Some(index) = cursor.next().await {
        names.push(index.unwrap().keys);
    }
    for index in idm::store::mongo::subject_list::subject_indexes() {
        assert!(
            names.contains(&index.keys),
            "{} is missing: {names:?}",
            index.name
        );
    }
}
