//! What clients see of a total past the count limit: the API's
//! `X-Total-Count` stays a number an old pager can use (a lower bound that
//! always reaches one page further while there is one) and
//! `X-Total-Count-Exact` says whether it is exact; the console says "more

use crate::common::browser::Browser;
use crate::common::{ADMIN, ADMIN_PASSWORD, TestApp, spawn_app_with, test_config};
use chrono::Duration;
use reqwest::StatusCode;

/// An app that counts exactly up to 5, with 12 subjects "Person 00".. and
/// one other.
async fn app_with_twelve_people() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        subject_count_limit: 5,
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    for n in 0..12 {
        app.add_subject(&format!("S{n:02}"), &format!("Person {n:02}"), "1970-01-01")
            .await;
        app.clock.advance(Duration::seconds(1));
    }
    app.add_subject("X1", "Grace Hopper", "1906-12-09").await;
    app
}

/// The sssids, `X-Total-Count` and `X-Total-Count-Exact` of a list.
async fn list(app: &TestApp, token: &str, query: &str) -> (Vec<String>, u64, String) {
    let r = app.get(&format!("/subject?{query}"), Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let header = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
    let (total, exact) = (
        header("x-total-count").parse().unwrap(),
        header("x-total-count-exact"),
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let sssids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sssid"].as_str().unwrap().to_owned())
        .collect();
    (sssids, total, exact)
}

#[tokio::test]
async fn past_the_count_limit_the_total_is_a_lower_bound_a_pager_can_follow() {
    let app = app_with_twelve_people().await;
    let token = app.admin_token().await;
    let sssids = |from: usize, to: usize| -> Vec<String> {
        (from..to).map(|n| format!("S{n:02}")).collect()
    };

    // Within the limit: exact, as before.
    let (got, total, exact) = list(&app, &token, "search=hopper").await;
    assert_eq!(
        (got, total, exact.as_str()),
        (vec!["X1".to_owned()], 1, "true")
    );
    // No filter: the store's own count, exact whatever the limit.
    let (_, total, exact) = list(&app, &token, "perpage=5").await;
    assert_eq!((total, exact.as_str()), (13, "true"));

    // Past it, an old pager that reads X-Total-Count as the total finds a
    // next page on every page but the last, and the last is exact.
    let (got, total, exact) = list(&app, &token, "search=person&perpage=5").await;
    assert_eq!((got, total, exact.as_str()), (sssids(0, 5), 6, "false"));
    let (got, total, exact) = list(&app, &token, "search=person&perpage=5&offset=5").await;
    assert_eq!((got, total, exact.as_str()), (sssids(5, 10), 11, "false"));
    let (got, total, exact) = list(&app, &token, "search=person&perpage=5&offset=10").await;
    assert_eq!((got, total, exact.as_str()), (sssids(10, 12), 12, "true"));
    // A page past the end knows only that there are more than the limit.
    let (got, total, exact) = list(&app, &token, "search=person&perpage=5&offset=15").await;
    assert_eq!((got.len(), total, exact.as_str()), (0, 6, "false"));
    // Descending, from the other end.
    let (got, total, exact) = list(
        &app,
        &token,
        "search=PERSON&perpage=4&offset=4&orderdir=DESC",
    )
    .await;
    let mut want = sssids(4, 8);
    want.reverse();
    assert_eq!((got, total, exact.as_str()), (want, 9, "false"));
}

#[tokio::test]
async fn the_console_says_more_than_and_pages_on_past_the_count_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        subject_count_limit: 5,
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    for n in 0..60 {
        app.add_subject(&format!("S{n:02}"), &format!("Person {n:02}"), "1970-01-01")
            .await;
    }
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let browser = Browser::new(&app).on_page("/subjects");
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let url = |n: u64| format!("/subjects?q=person&sort=sssid&dir=asc&page={n}");
    let page = |n: u64| {
        let browser = &browser;
        async move { browser.get_htmx(&url(n), "subjects-list").await.body }
    };
    let link = |n: u64| format!(r#"href="{}""#, url(n).replace('&', "&amp;"));

    // Past the limit of 5: "more than" what the page shows, no last page,
    // and Next works.
    let first = page(1).await;
    assert!(first.contains("More than 25 subjects · page 1<"), "{first}");
    assert!(
        first.contains(">S24<") && !first.contains(">S25<"),
        "{first}"
    );
    assert!(
        first.contains(&link(2)) && first.contains(r#"rel="next""#),
        "{first}"
    );
    assert!(
        !first.contains(r#"rel="last""#),
        "no last page while the total is a bound"
    );
    assert!(
        first.contains(r#"aria-label="Subjects by SSSID, ascending, page 1""#),
        "{first}"
    );
    let second = page(2).await;
    assert!(
        second.contains("More than 50 subjects · page 2<"),
        "{second}"
    );
    assert!(
        second.contains(">S25<") && second.contains(&link(3)),
        "{second}"
    );
    // The last page is exact again, with no Next.
    let third = page(3).await;
    assert!(third.contains("60 subjects · page 3 of 3"), "{third}");
    assert!(
        third.contains(">S59<") && !third.contains(r#"rel="next""#),
        "{third}"
    );
    assert!(
        third.contains(&link(2)) && third.contains(r#"rel="prev""#),
        "{third}"
    );
    // Past the end: no Next, a way back.
    let past = page(9).await;
    assert!(past.contains("No subject on this page."), "{past}");
    assert!(
        !past.contains(r#"rel="next""#) && past.contains(r#"rel="first""#),
        "{past}"
    );
    // Without JavaScript the whole page has the same pager.
    let plain = browser.get(&url(2)).await;
    assert!(
        plain.body.contains("More than 50 subjects · page 2<"),
        "{}",
        plain.body
    );
    // Without a filter the total is exact whatever the limit.
    let all = browser
        .get_htmx("/subjects?sort=sssid&dir=asc", "subjects-list")
        .await
        .body;
    assert!(all.contains("60 subjects · page 1 of 3"), "{all}");
}
