//! The subjects list: literal search, sorting, filters and pages with the
//! total; its columns, rows and markup.

use chrono::Duration;
use reqwest::StatusCode;

use super::{consent, record_step, staff_app};

#[tokio::test]
async fn list_searches_literally_sorts_filters_and_pages_with_the_total() {
    let (app, browser, _) = staff_app().await;
    for n in 0..30 {
        app.add_subject(
            &format!("S{n:02}"),
            &format!("Person {n:02} Smith"),
            "1970-01-01",
        )
        .await;
        app.clock.advance(Duration::seconds(1));
    }
    app.add_subject("X1", "Grace (Hopper).*", "1906-12-09")
        .await;
    app.clock.advance(Duration::seconds(1));
    consent(&app, "S05").await;

    // Most recently changed first by default: S05 (just consented), X1.
    let all = browser.get("/subjects").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(
        all.body.contains("31 subjects · page 1 of 2"),
        "{}",
        all.body
    );
    let s05 = all.body.find(">S05<").unwrap();
    let x1 = all.body.find(">X1<").unwrap();
    let s29 = all.body.find(">S29<").unwrap();
    assert!(s05 < x1 && x1 < s29, "recent first");
    assert!(!all.body.contains(">S00<"), "S00 is on page 2");

    let page2 = browser
        .get_htmx("/subjects?sort=changed&dir=desc&page=2", "subjects-list")
        .await;
    assert!(
        page2.body.starts_with(r#"<div id="subjects-list" "#),
        "a fragment"
    );
    assert!(page2.body.contains("page 2 of 2") && page2.body.contains(">S00<"));

    // Search by a name fragment, in any letter case.
    let found = browser.get_htmx("/subjects?q=hopp", "subjects-list").await;
    assert!(
        found.body.contains("1 subject · page 1 of 1"),
        "{}",
        found.body
    );
    assert!(found.body.contains(">X1<"));
    // Literal text, never a pattern.
    let literal = browser
        .get_htmx("/subjects?q=(hopper).*", "subjects-list")
        .await;
    assert!(literal.body.contains(">X1<"));
    let pattern = browser
        .get_htmx("/subjects?q=P.rson", "subjects-list")
        .await;
    assert!(
        pattern.body.contains("No subject matches."),
        "{}",
        pattern.body
    );
    // sssid prefix.
    let prefix = browser.get_htmx("/subjects?q=S1", "subjects-list").await;
    assert!(prefix.body.contains("10 subjects"), "{}", prefix.body);

    // Sorting by name, descending, is offered by the header link.
    let by_name = browser.get("/subjects?sort=name&dir=asc").await;
    assert!(by_name.body.contains(r#"aria-sort="ascending""#));
    assert!(
        by_name.body.contains("sort=name&amp;dir=desc"),
        "the header flips the order"
    );
    let desc = browser.get("/subjects?sort=name&dir=desc").await;
    let p29 = desc.body.find("Person 29").unwrap();
    let p28 = desc.body.find("Person 28").unwrap();
    assert!(p29 < p28);

    // Status filter.
    let consented = browser
        .get_htmx("/subjects?status=consented", "subjects-list")
        .await;
    assert!(consented.body.contains("1 subject ·") && consented.body.contains(">S05<"));
    // An edited URL shows the default list rather than an error.
    let odd = browser
        .get("/subjects?sort=password&dir=sideways&status=lost&page=x")
        .await;
    assert_eq!(odd.status, StatusCode::OK);
    assert!(odd.body.contains("31 subjects · page 1 of 2"));
}

/// The start tag of the element whose attributes hold `marker`.
fn start_tag<'a>(body: &'a str, marker: &str) -> &'a str {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"));
    let start = body[..at].rfind('<').unwrap();
    &body[start..at + body[at..].find('>').unwrap() + 1]
}

/// The text of the table cell labelled `label` in the row of `sssid`.
fn cell(body: &str, sssid: &str, label: &str) -> String {
    let at = body.find(&format!(">{sssid}<")).unwrap();
    let row_start = body[..at].rfind("<tr>").unwrap();
    let row = &body[row_start..body[row_start..].find("</tr>").unwrap() + row_start];
    let start = row.find(&format!(r#"data-label="{label}">"#)).unwrap();
    let cell = &row[start..];
    cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()].to_owned()
}

#[tokio::test]
async fn list_shows_the_invited_column_and_filters_the_not_yet_invited() {
    use idm::service::subjects::JourneyDate;
    let (app, browser, _) = staff_app().await;
    app.add_subject("P-1", "Pending Person", "1970-01-01").await;
    app.add_subject("I-1", "Invited Person", "1970-01-01").await;
    record_step(&app, "I-1", JourneyDate::Invited).await;
    // Consent without an invitation: past the invitation all the same.
    app.add_subject("C-1", "Consented Person", "1970-01-01")
        .await;
    consent(&app, "C-1").await;

    let list = browser.get("/subjects").await;
    // A sortable Invited column, newest first when first clicked.
    assert!(
        list.body
            .contains(r#"href="/subjects?sort=date_invited&amp;dir=desc""#)
            && list.body.contains(">Invited</a>"),
        "{}",
        list.body
    );
    let today = app.start.format("%Y-%m-%d").to_string();
    assert!(cell(&list.body, "I-1", "Invited").contains(&today));
    assert!(cell(&list.body, "P-1", "Invited").contains("—"));
    assert!(cell(&list.body, "C-1", "Invited").contains("—"));
    // Ids and dates are marked to stay on one line.
    assert!(
        list.body
            .contains(r#"<td class="sssid" data-label="SSSID">"#)
    );
    assert!(
        list.body
            .contains(r#"<td class="date" data-label="Invited">"#)
    );

    // The status filter offers "Not yet invited": nothing recorded yet.
    assert!(
        list.body
            .contains(r#"<option value="not-invited">Not yet invited</option>"#),
        "{}",
        list.body
    );
    let not_invited = browser
        .get_htmx("/subjects?status=not-invited", "subjects-list")
        .await;
    assert!(
        not_invited.body.contains("1 subject · page 1 of 1"),
        "{}",
        not_invited.body
    );
    assert!(not_invited.body.contains(">P-1<"));
    assert!(!not_invited.body.contains(">I-1<") && !not_invited.body.contains(">C-1<"));
    // Kept in the links of the filtered list, and selected on its page.
    assert!(not_invited.body.contains("status=not-invited&amp;sort="));
    let page = browser.get("/subjects?status=not-invited").await;
    assert!(
        page.body
            .contains(r#"<option value="not-invited" selected>Not yet invited</option>"#)
    );
}

/// What keeps history, order and focus right in the browser: the search
/// box replaces the URL while the filter, the headers and the pager push
/// it; the order travels with the list (a header click changes it); the
/// list is a labelled region that can take focus, named by its order
/// and page; a loading indicator is wired to every list request.
#[tokio::test]
async fn list_markup_keeps_history_order_and_focus_in_step() {
    let (app, browser, _) = staff_app().await;
    for (sssid, name) in [
        ("S-1", "Zoë"),
        ("S-2", "Émilie"),
        ("S-3", "Åsa"),
        ("S-4", "Bob"),
    ] {
        app.add_subject(sssid, name, "1970-01-01").await;
    }
    let list = browser.get("/subjects?sort=name&dir=asc").await;
    let tag = |marker: &str| start_tag(&list.body, marker).to_owned();
    let search = tag(r#"id="subject-search""#);
    assert!(search.contains(r#"hx-replace-url="true""#), "{search}");
    assert!(
        search.contains(r#"hx-trigger="input changed delay:300ms""#),
        "{search}"
    );
    assert!(
        search.contains(r#"hx-sync="closest form:replace""#),
        "{search}"
    );
    assert!(!search.contains("hx-push-url"), "{search}");
    let form = tag(r#"id="subject-filter""#);
    assert!(form.contains(r#"hx-replace-url="true""#), "{form}");
    assert!(form.contains(r#"hx-sync="this:replace""#), "{form}");
    let status = tag(r#"id="subject-status""#);
    assert!(status.contains(r#"hx-push-url="true""#), "{status}");
    for wired in [&search, &form, &status] {
        assert!(
            wired.contains(r##"hx-indicator="#subjects-loading""##),
            "{wired}"
        );
    }
    let indicator = tag(r#"id="subjects-loading""#);
    assert!(
        indicator.contains("htmx-indicator") && indicator.contains(r#"role="status""#),
        "{indicator}"
    );
    assert!(
        tag(r#"id="main""#).contains("hx-history-elt"),
        "Back/Forward restore the page's main"
    );

    let fragment = browser
        .get_htmx("/subjects?sort=name&dir=desc", "subjects-list")
        .await;
    assert!(fragment.body.starts_with(
        r#"<div id="subjects-list" role="region" aria-label="Subjects by Name, descending, page 1 of 1" tabindex="-1">"#
    ), "{}", fragment.body);
    assert!(
        fragment
            .body
            .contains(r#"<input type="hidden" form="subject-filter" name="sort" value="name">"#)
    );
    assert!(
        fragment
            .body
            .contains(r#"<input type="hidden" form="subject-filter" name="dir" value="desc">"#)
    );
    // Names in reading order: diacritics and letter case do not count.
    let at = |name: &str| fragment.body.find(&format!(">{name}<")).unwrap();
    assert!(at("Zoë") < at("Émilie") && at("Émilie") < at("Bob") && at("Bob") < at("Åsa"));
}

#[tokio::test]
async fn list_rows_show_status_consent_action_and_qr_button() {
    let (app, browser, _) = staff_app().await;
    app.add_subject("P1", "Pending Person", "1970-01-01").await;
    app.add_subject("C1", "Consented Person", "1970-01-01")
        .await;
    consent(&app, "C1").await;
    let page = browser.get("/subjects").await;
    let row = |sssid: &str| {
        let at = page.body.find(&format!(">{sssid}<")).unwrap();
        let start = page.body[..at].rfind("<tr>").unwrap();
        let end = page.body[at..].find("</tr>").unwrap() + at;
        page.body[start..end].to_owned()
    };
    let pending = row("P1");
    assert!(pending.contains("status-pending") && pending.contains("Pending"));
    assert!(pending.contains("Record consent…"));
    assert!(!pending.contains("QR code"), "no QR code before consent");
    let consented = row("C1");
    assert!(consented.contains("status-consented") && consented.contains("Consented"));
    assert!(
        consented.contains(&app.start.format("%Y-%m-%d").to_string()),
        "consent date"
    );
    assert!(consented.contains(r#"aria-label="Show the QR code for C1""#));
    assert!(consented.contains("born 1970-01-01"));
    // The start page shows the recent subjects too.
    let home = browser.get("/home").await;
    assert!(home.body.contains("Recent subjects") && home.body.contains(">C1<"));
    // Its short table keeps to the columns that fit beside the welcome.
    assert!(!home.body.contains(r#"data-label="Invited""#));
    assert!(page.body.contains(r#"data-label="Invited""#));
}
