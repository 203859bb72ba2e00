//! Subjects: round trips with versions, and lists that search, filter by
//! the domain's standing, sort in reading order and page.

use chrono::Duration;
use idm::store::*;

use crate::store_conformance::base_time;

use super::subject;

fn subject_query(search: Option<&str>, status: Option<SubjectStatus>) -> SubjectQuery {
    SubjectQuery {
        search: search.map(str::to_owned),
        status,
        order_by: SubjectColumn::Sssid,
        descending: false,
        offset: 0,
        limit: 500,
    }
}

async fn sssids<S: SubjectStore + ?Sized>(store: &S, query: &SubjectQuery) -> Vec<String> {
    store
        .list_subjects(query)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.sssid)
        .collect()
}

pub async fn subjects_round_trip_and_versions<S: SubjectStore + ?Sized>(store: &S) {
    let t = base_time();
    let mut s = subject("S-1", "Ada Lovelace", "1815-12-10", t);
    s.email = Some("ada@example.org".into());
    s.date_invited = Some(t + Duration::milliseconds(1));
    store.insert_subject(&s).await.unwrap();
    assert_eq!(store.subject("S-1").await.unwrap(), Some(s.clone()));
    assert_eq!(
        store.subject("s-1").await.unwrap(),
        None,
        "sssids are case-sensitive"
    );
    assert!(matches!(
        store
            .insert_subject(&subject("S-1", "Other", "1990-01-01", t))
            .await,
        Err(StoreError::Duplicate(_))
    ));

    let mut next = s.clone();
    next.version = 1;
    next.email = None;
    next.name = "Ada King".into();
    next.date_consented = Some(t + Duration::seconds(2));
    next.changed = t + Duration::seconds(2);
    assert!(store.replace_subject(&next, 0).await.unwrap());
    assert_eq!(store.subject("S-1").await.unwrap(), Some(next.clone()));
    // A writer that read version 0 lost.
    let mut stale = s.clone();
    stale.version = 1;
    assert!(!store.replace_subject(&stale, 0).await.unwrap());
    assert_eq!(store.subject("S-1").await.unwrap(), Some(next));
    let mut unknown = subject("S-404", "Nobody", "1990-01-01", t);
    unknown.version = 1;
    assert!(!store.replace_subject(&unknown, 0).await.unwrap());
    assert_eq!(store.subject("S-404").await.unwrap(), None);
}

/// The status filter is the domain's `Journey::standing`, written again
/// in each store's query language: for every combination of set dates,
/// in either order in time (standing follows which dates are set, not
/// when), each status selects exactly the subjects of that standing.
pub async fn status_filter_agrees_with_the_domain_standing<S: SubjectStore + ?Sized>(store: &S) {
    let t = base_time();
    let mut all = Vec::new();
    for backwards in [false, true] {
        for dates in 0..16u8 {
            let sssid = format!("J-{}-{dates:02}", u8::from(backwards));
            let mut s = subject(&sssid, "Journey", "1980-01-01", t);
            let date = |step: u8| {
                let day = if backwards { 3 - step } else { step };
                (dates & (1 << step) != 0).then(|| t + Duration::days(i64::from(day) + 1))
            };
            s.date_invited = date(0);
            s.date_consented = date(1);
            s.date_enrolled = date(2);
            s.date_withdrawn = date(3);
            store.insert_subject(&s).await.unwrap();
            all.push(s);
        }
    }
    for status in SubjectStatus::ALL {
        let expected: Vec<String> = all
            .iter()
            .filter(|s| s.journey().standing() == status.standing())
            .map(|s| s.sssid.clone())
            .collect();
        assert!(!expected.is_empty(), "{status:?}");
        let page = store
            .list_subjects(&subject_query(None, Some(status)))
            .await
            .unwrap();
        let found: Vec<String> = page.items.into_iter().map(|s| s.sssid).collect();
        assert_eq!(found, expected, "{status:?}");
        assert_eq!(page.total, expected.len() as u64, "{status:?}");
    }
}

pub async fn subject_lists_search_filter_sort_and_page<S: SubjectStore + ?Sized>(store: &S) {
    let t = base_time();
    let day = |n: i64| Some(t + Duration::days(n));
    let mut invited = subject("A-10", "Ana Müller", "1980-05-01", t);
    invited.date_invited = day(1);
    let mut consented = subject("A-2", "Bob (Jr.)", "1975-01-31", t + Duration::seconds(1));
    consented.date_invited = day(1);
    consented.date_consented = day(2);
    let mut enrolled = subject("B-1", "carl.smith", "1980-12-24", t + Duration::seconds(2));
    enrolled.date_consented = day(2);
    enrolled.date_enrolled = day(3);
    let mut withdrawn = subject("b-1", "Dora", "2001-07-07", t + Duration::seconds(3));
    withdrawn.date_enrolled = day(3);
    withdrawn.date_withdrawn = day(4);
    let fresh = subject("C.1", "Eve", "1980-05-02", t + Duration::seconds(4));
    for s in [&invited, &consented, &enrolled, &withdrawn, &fresh] {
        store.insert_subject(s).await.unwrap();
    }

    let all = store
        .list_subjects(&subject_query(None, None))
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    // Search: sssid prefix (case-sensitive), name substring
    // (case-insensitive), bday prefix; always literal text.
    assert_eq!(
        sssids(store, &subject_query(Some("A-"), None)).await,
        ["A-10", "A-2"]
    );
    assert_eq!(
        sssids(store, &subject_query(Some("b-"), None)).await,
        ["b-1"]
    );
    assert_eq!(
        sssids(store, &subject_query(Some("MÜLLER"), None)).await,
        ["A-10"]
    );
    assert_eq!(
        sssids(store, &subject_query(Some("(jr.)"), None)).await,
        ["A-2"]
    );
    assert_eq!(
        sssids(store, &subject_query(Some("1980-05"), None)).await,
        ["A-10", "C.1"]
    );
    assert_eq!(
        sssids(store, &subject_query(Some("."), None)).await,
        ["A-2", "B-1"]
    );
    assert!(
        sssids(store, &subject_query(Some(".*"), None))
            .await
            .is_empty()
    );
    assert!(
        sssids(store, &subject_query(Some("10"), None))
            .await
            .is_empty(),
        "sssid matches are prefixes"
    );

    // Status is the latest state.
    let status = |s| subject_query(None, Some(s));
    assert_eq!(
        sssids(store, &status(SubjectStatus::Invited)).await,
        ["A-10"]
    );
    assert_eq!(
        sssids(store, &status(SubjectStatus::Consented)).await,
        ["A-2"]
    );
    assert_eq!(
        sssids(store, &status(SubjectStatus::Enrolled)).await,
        ["B-1"]
    );
    assert_eq!(
        sssids(store, &status(SubjectStatus::Withdrawn)).await,
        ["b-1"]
    );
    let filtered = store
        .list_subjects(&SubjectQuery {
            search: Some("1980".into()),
            ..status(SubjectStatus::Enrolled)
        })
        .await
        .unwrap();
    assert_eq!(filtered.total, 1);

    // Ordering with the sssid as tie breaker, both directions.
    let ordered = |order_by, descending| SubjectQuery {
        order_by,
        descending,
        ..subject_query(None, None)
    };
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::Sssid, false)).await,
        ["A-10", "A-2", "B-1", "C.1", "b-1"]
    );
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::Sssid, true)).await,
        ["b-1", "C.1", "B-1", "A-2", "A-10"]
    );
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::Bday, false)).await,
        ["A-2", "A-10", "C.1", "B-1", "b-1"]
    );
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::Created, true)).await,
        ["C.1", "b-1", "B-1", "A-2", "A-10"]
    );
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::Name, false)).await,
        ["A-10", "A-2", "B-1", "b-1", "C.1"],
        "names sort ignoring letter case, ties by sssid"
    );
    // Unset dates sort first ascending; ties by sssid.
    assert_eq!(
        sssids(store, &ordered(SubjectColumn::DateConsented, false)).await,
        ["A-10", "C.1", "b-1", "A-2", "B-1"]
    );
    for column in [
        SubjectColumn::Changed,
        SubjectColumn::DateInvited,
        SubjectColumn::DateEnrolled,
        SubjectColumn::DateWithdrawn,
    ] {
        assert_eq!(sssids(store, &ordered(column, false)).await.len(), 5);
    }

    // A search sorts and pages its matches like a plain listing: by
    // sssid, by name (from the name index), by another column, with
    // and without a status filter.
    let searched = |order_by, descending, status| SubjectQuery {
        order_by,
        descending,
        ..subject_query(Some("1980"), status)
    };
    assert_eq!(
        sssids(store, &searched(SubjectColumn::Sssid, true, None)).await,
        ["C.1", "B-1", "A-10"]
    );
    assert_eq!(
        sssids(store, &searched(SubjectColumn::Name, true, None)).await,
        ["C.1", "B-1", "A-10"]
    );
    assert_eq!(
        sssids(store, &searched(SubjectColumn::Bday, false, None)).await,
        ["A-10", "C.1", "B-1"]
    );
    assert_eq!(
        sssids(
            store,
            &searched(SubjectColumn::Name, false, Some(SubjectStatus::Enrolled))
        )
        .await,
        ["B-1"]
    );
    let searched_page = |offset| SubjectQuery {
        offset,
        limit: 1,
        ..searched(SubjectColumn::Name, false, None)
    };
    let second = store.list_subjects(&searched_page(1)).await.unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.items[0].sssid, "B-1");
    let past_the_end = store.list_subjects(&searched_page(3)).await.unwrap();
    assert!(past_the_end.items.is_empty());
    assert_eq!(past_the_end.total, 3, "a page past the end still counts");

    // Pages.
    let page = store
        .list_subjects(&SubjectQuery {
            offset: 1,
            limit: 2,
            ..ordered(SubjectColumn::Sssid, false)
        })
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(
        page.items
            .iter()
            .map(|s| s.sssid.as_str())
            .collect::<Vec<_>>(),
        ["A-2", "B-1"]
    );
}

/// `NotInvited` is the state before any step: a consent recorded
/// without an invitation is consented, not "not invited".
pub async fn not_invited_lists_subjects_with_no_step_yet<S: SubjectStore + ?Sized>(store: &S) {
    let t = base_time();
    let later = Some(t + Duration::days(1));
    let fresh = subject("N-1", "Nora", "1980-01-01", t);
    let also_fresh = subject("N-2", "Ned", "1990-01-01", t);
    let mut invited = subject("I-1", "Ida", "1980-01-02", t);
    invited.date_invited = later;
    let mut consented_directly = subject("C-1", "Cleo", "1980-01-03", t);
    consented_directly.date_consented = later;
    let mut withdrawn_directly = subject("W-1", "Walt", "1980-01-04", t);
    withdrawn_directly.date_withdrawn = later;
    for s in [
        &fresh,
        &also_fresh,
        &invited,
        &consented_directly,
        &withdrawn_directly,
    ] {
        store.insert_subject(s).await.unwrap();
    }
    let not_invited = subject_query(None, Some(SubjectStatus::NotInvited));
    assert_eq!(sssids(store, &not_invited).await, ["N-1", "N-2"]);
    let page = store.list_subjects(&not_invited).await.unwrap();
    assert_eq!(page.total, 2);
    // With a search, sorted by another column, and paged.
    let searched = SubjectQuery {
        order_by: SubjectColumn::Bday,
        descending: true,
        ..subject_query(Some("N"), Some(SubjectStatus::NotInvited))
    };
    assert_eq!(sssids(store, &searched).await, ["N-2", "N-1"]);
    let second = store
        .list_subjects(&SubjectQuery {
            offset: 1,
            limit: 1,
            ..searched.clone()
        })
        .await
        .unwrap();
    assert_eq!((second.items[0].sssid.as_str(), second.total), ("N-1", 2));
    assert!(
        sssids(
            store,
            &subject_query(Some("Ida"), Some(SubjectStatus::NotInvited))
        )
        .await
        .is_empty()
    );
    // Recording the invitation takes a subject off the list.
    let mut next = fresh.clone();
    next.version = 1;
    next.date_invited = later;
    assert!(store.replace_subject(&next, 0).await.unwrap());
    assert_eq!(sssids(store, &not_invited).await, ["N-2"]);
}

/// Names sort as readers expect: diacritics and letter case ignored
/// (Åsa among the a's, Émilie among the e's, Zoë among the z's), ties
/// broken by sssid in the same direction, with or without a search;
/// renames move a subject.
pub async fn names_sort_in_reading_order_with_ties_by_sssid<S: SubjectStore + ?Sized>(store: &S) {
    let t = base_time();
    for (sssid, name) in [
        ("S-1", "Zoë Zander"),
        ("S-2", "Émilie Martin"),
        ("S-3", "Åsa Berg"),
        ("S-4", "adam Smith"),
        ("S-5", "Bob Brown"),
        ("S-6", "emilie martin"),
        ("S-0", "Émilie Martin"),
    ] {
        store
            .insert_subject(&subject(sssid, name, "1980-01-01", t))
            .await
            .unwrap();
    }
    let by_name = |descending, search: Option<&str>| SubjectQuery {
        order_by: SubjectColumn::Name,
        descending,
        ..subject_query(search, None)
    };
    assert_eq!(
        sssids(store, &by_name(false, None)).await,
        ["S-4", "S-3", "S-5", "S-0", "S-2", "S-6", "S-1"]
    );
    assert_eq!(
        sssids(store, &by_name(true, None)).await,
        ["S-1", "S-6", "S-2", "S-0", "S-5", "S-3", "S-4"]
    );
    // A search ("S-" matches every sssid) orders its matches the same.
    assert_eq!(
        sssids(store, &by_name(false, Some("S-"))).await,
        ["S-4", "S-3", "S-5", "S-0", "S-2", "S-6", "S-1"]
    );
    let page = store
        .list_subjects(&SubjectQuery {
            offset: 1,
            limit: 2,
            ..by_name(false, Some("S-"))
        })
        .await
        .unwrap();
    assert_eq!(
        (
            page.items
                .iter()
                .map(|s| s.sssid.as_str())
                .collect::<Vec<_>>(),
            page.total
        ),
        (vec!["S-3", "S-5"], 7)
    );
    // Renaming Zoë to Ångström moves her among the a's.
    let mut zoe = store.subject("S-1").await.unwrap().unwrap();
    let expected = zoe.version;
    zoe.version += 1;
    zoe.name = "Ångström".into();
    assert!(store.replace_subject(&zoe, expected).await.unwrap());
    assert_eq!(
        sssids(store, &by_name(false, None)).await,
        ["S-4", "S-1", "S-3", "S-5", "S-0", "S-2", "S-6"]
    );
}
