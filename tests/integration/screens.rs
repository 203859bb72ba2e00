//! The study screens over real HTTP: subjects list, search, sort and pages,
//! the new-subject and edit forms, journey steps with confirmation, QR
//! invitations, CSRF refusals and security headers. Clients keep cookies
//! like a browser and do not follow redirects.

use crate::common::browser::{Browser, Page, assert_no_inline_code, assert_security_headers};
use crate::common::*;
use chrono::Duration;
use idm::clock::Clock;
use idm::service::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "plain staff passphrase";

/// An app with a (non-admin) staff member signed in: every screen is for
/// any staff member.
async fn staff_app() -> (TestApp, Browser, String) {
    let app = spawn_app().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app).on_page("/subjects");
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    (app, browser, csrf)
}

async fn consent(app: &TestApp, sssid: &str) {
    app.state
        .services
        .subjects
        .record_step(
            &Context::system(),
            sssid,
            idm::service::subjects::JourneyDate::Consented,
            None,
        )
        .await
        .expect("consent recorded");
}

async fn subject(app: &TestApp, sssid: &str) -> idm::service::subjects::SubjectView {
    app.state
        .services
        .subjects
        .get(&Context::system(), sssid)
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp, sssid: &str) -> Vec<(String, Option<String>)> {
    app.state
        .services
        .subjects
        .audits(&Context::system(), sssid)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.actor))
        .collect()
}

async fn links_of(app: &TestApp, sssid: &str) -> Vec<idm::service::links::LinkView> {
    app.state
        .services
        .links
        .for_subject(&Context::system(), sssid)
        .await
        .unwrap()
}

/// The link id in a printable-invitation URL.
fn link_id_of(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_owned()
}

/// The error text shown next to `field` in a form with `prefix`.
fn field_error(page: &Page, prefix: &str, field: &str) -> Option<String> {
    let marker = format!(r#"id="{prefix}-{field}-error">"#);
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find('<').unwrap() + start;
    Some(page.body[start..end].to_owned())
}

fn input_value(page: &Page, id: &str) -> Option<String> {
    let start = page.body.find(&format!(r#"id="{id}""#))?;
    let tag_end = page.body[start..].find('>').unwrap() + start;
    let tag = &page.body[start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    Some(tag[v..v + tag[v..].find('"').unwrap()].to_owned())
}

// ------------------------------------------------------------ headers

#[tokio::test]
async fn subject_screens_send_security_headers_and_have_no_inline_code() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    let qr = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(qr.status, StatusCode::SEE_OTHER);
    let pages = vec![
        ("home", browser.get("/home").await),
        ("list", browser.get("/subjects").await),
        (
            "list fragment",
            browser.get_htmx("/subjects?q=ada", "subjects-list").await,
        ),
        ("new", browser.get("/subjects/new").await),
        (
            "new error",
            browser.post("/subjects", &[("csrf_token", &csrf)]).await,
        ),
        ("subject", browser.get("/subjects/S1").await),
        (
            "confirm",
            browser.get("/subjects/S1/record?step=withdrawn").await,
        ),
        (
            "overlay",
            browser
                .post_htmx("/subjects/S1/invitation", &csrf, &[])
                .await,
        ),
        ("printable", browser.get(qr.location()).await),
        ("unknown subject", browser.get("/subjects/nobody").await),
    ];
    for (what, page) in &pages {
        assert_security_headers(page, what);
        assert_no_inline_code(page, what);
    }
    assert_eq!(pages[9].1.status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------ access

#[tokio::test]
async fn signed_out_visitors_are_sent_to_login_and_change_nothing() {
    let app = spawn_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let anon = Browser::new(&app).on_page("/subjects");
    for path in [
        "/subjects",
        "/subjects/new",
        "/subjects/S1",
        "/subjects/S1/record?step=consented",
    ] {
        let page = anon.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login?next="), "{path}");
    }
    // With a valid CSRF token of an anonymous session, posts still need a
    // signed-in staff member.
    let csrf = anon.get("/login").await.csrf();
    for (path, form) in [
        ("/subjects/S1/record", vec![("step", "consented")]),
        ("/subjects/S1/invitation", vec![]),
        (
            "/subjects/S1",
            vec![("name", "Mallory"), ("bday", "1980-01-01")],
        ),
        (
            "/subjects",
            vec![("sssid", "S2"), ("name", "Eve"), ("bday", "1980-01-01")],
        ),
    ] {
        let mut body = form.clone();
        body.push(("csrf_token", &csrf));
        let page = anon.post(path, &body).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login"), "{path}");
    }
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.name.as_str(), s1.date_consented),
        ("Ada Lovelace", None)
    );
    assert!(links_of(&app, "S1").await.is_empty());
    assert!(
        app.state
            .services
            .subjects
            .get(&Context::system(), "S2")
            .await
            .is_err()
    );
}

/// Posts `form` with the forged variants a cross-site attacker could send;
/// each must be refused with the 403 page.
async fn assert_forgeries_refused(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    form: &[(&str, &str)],
) {
    let stranger_token = Browser::new(app)
        .on_page("/subjects")
        .get("/login")
        .await
        .csrf();
    let wrong: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf_token", stranger_token.as_str())])
        .collect();
    let attempts = [
        (
            "no token",
            Some(app.base.as_str()),
            Some("same-origin"),
            form.to_vec(),
        ),
        (
            "another session's token",
            Some(app.base.as_str()),
            Some("same-origin"),
            wrong,
        ),
        (
            "foreign Origin",
            Some("https://evil.example"),
            None,
            form.to_vec(),
        ),
        ("cross-site fetch", None, Some("cross-site"), form.to_vec()),
    ];
    for (what, origin, site, body) in attempts {
        let mut req = browser.client.post(browser.url(path)).form(&body);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        if let Some(site) = site {
            req = req.header("Sec-Fetch-Site", site);
        }
        let page = Page::from(req.send().await.unwrap()).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "{path}: {what} was accepted"
        );
        assert!(
            page.body.contains("This form could not be sent safely"),
            "{path}: {what}"
        );
    }
}

#[tokio::test]
async fn forged_posts_to_subject_screens_are_refused_and_change_nothing() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects",
        &[("sssid", "S2"), ("name", "Eve"), ("bday", "1980-01-01")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1",
        &[("name", "Mallory"), ("bday", "1980-01-01")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1/record",
        &[("step", "consented")],
    )
    .await;
    assert_forgeries_refused(
        &app,
        &browser,
        "/subjects/S1/record",
        &[("step", "withdrawn")],
    )
    .await;
    let s1 = subject(&app, "S1").await;
    assert_eq!(s1.name, "Ada Lovelace", "forged edit");
    assert_eq!(
        (s1.date_consented, s1.date_withdrawn),
        (None, None),
        "forged step"
    );
    assert!(
        app.state
            .services
            .subjects
            .get(&Context::system(), "S2")
            .await
            .is_err(),
        "forged create"
    );
    consent(&app, "S1").await;
    assert_forgeries_refused(&app, &browser, "/subjects/S1/invitation", &[]).await;
    assert!(
        links_of(&app, "S1").await.is_empty(),
        "forged QR code made a link"
    );
    // The genuine post works, as form field and as htmx header.
    let r = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn get_requests_change_nothing() {
    let (app, browser, _) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    for step in ["invited", "consented", "withdrawn"] {
        let page = browser
            .get(&format!("/subjects/S1/record?step={step}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{step}");
        assert!(page.body.contains("Record that"), "{step}");
    }
    assert_eq!(
        browser.get("/subjects/S1/invitation").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.date_invited, s1.date_consented, s1.date_withdrawn),
        (None, None, None)
    );
    assert_eq!(audit_actions(&app, "S1").await.len(), 1, "only the create");
}

// ------------------------------------------------------------ new subject

#[tokio::test]
async fn wrong_input_on_new_subject_rerenders_the_form_with_errors_next_to_fields() {
    let (app, browser, csrf) = staff_app().await;
    let page = browser
        .post(
            "/subjects",
            &[
                ("csrf_token", &csrf),
                ("sssid", " S1"),
                ("name", "  "),
                ("bday", "1899-12-31"),
                ("email", "not an address"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        field_error(&page, "new-subject", "sssid")
            .unwrap()
            .contains("blanks")
    );
    assert!(
        field_error(&page, "new-subject", "name")
            .unwrap()
            .contains("Enter a name.")
    );
    assert!(
        field_error(&page, "new-subject", "bday")
            .unwrap()
            .contains("1900")
    );
    assert!(
        field_error(&page, "new-subject", "email")
            .unwrap()
            .contains("email")
    );
    assert!(page.body.contains(r#"aria-invalid="true""#));
    // What was typed stays.
    assert_eq!(
        input_value(&page, "new-subject-sssid").as_deref(),
        Some(" S1")
    );
    assert_eq!(
        input_value(&page, "new-subject-email").as_deref(),
        Some("not an address")
    );

    let ok = [
        ("csrf_token", csrf.as_str()),
        ("sssid", "S1"),
        ("name", "Ada Lovelace"),
        ("bday", "1980-02-29"),
        ("email", ""),
    ];
    let created = browser.post("/subjects", &ok).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/subjects/S1");
    let shown = browser.get("/subjects/S1").await;
    assert!(shown.body.contains("Created subject S1."));
    assert_eq!(
        audit_actions(&app, "S1").await,
        vec![("create".to_owned(), Some(STAFF.to_owned()))]
    );

    let duplicate = browser.post("/subjects", &ok).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(
        field_error(&duplicate, "new-subject", "sssid").as_deref(),
        Some("This SSSID is already taken. Choose another one.")
    );
}

#[tokio::test]
async fn odd_sssids_and_names_round_trip_through_urls_and_are_escaped() {
    let (_app, browser, csrf) = staff_app().await;
    for sssid in ["new", "A/B?c#d e", "Zürich%2F1"] {
        let r = browser
            .post(
                "/subjects",
                &[
                    ("csrf_token", &csrf),
                    ("sssid", sssid),
                    ("name", "<script>alert(1)</script>"),
                    ("bday", "1980-01-01"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{sssid}: {}", r.body);
        let page = browser.get(r.location()).await;
        assert_eq!(page.status, StatusCode::OK, "{sssid} at {}", r.location());
        assert!(
            page.body
                .contains(&format!("SSSID {}", maud::html! { (sssid) }.into_string())),
            "{sssid}"
        );
        assert!(!page.body.contains("<script>alert"), "unescaped name");
        assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    // The form for new subjects is still where it was.
    assert!(
        browser
            .get("/subjects/new")
            .await
            .body
            .contains("Create subject")
    );
}

// ------------------------------------------------------------ the list

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

async fn record_step(app: &TestApp, sssid: &str, step: idm::service::subjects::JourneyDate) {
    app.state
        .services
        .subjects
        .record_step(&Context::system(), sssid, step, None)
        .await
        .expect("step recorded");
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

// ------------------------------------------------------------ one subject

#[tokio::test]
async fn editing_goes_through_the_service_with_errors_next_to_fields() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let bad = browser
        .post_htmx(
            "/subjects/S1",
            &csrf,
            &[("name", "Ada King"), ("bday", "29.02.1980"), ("email", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.starts_with(r#"<div id="subject-panel">"#));
    assert!(
        field_error(&bad, "edit-subject", "bday")
            .unwrap()
            .contains("Enter a birth date like 1980-12-31.")
    );
    assert_eq!(
        input_value(&bad, "edit-subject-name").as_deref(),
        Some("Ada King")
    );
    assert_eq!(subject(&app, "S1").await.name, "Ada Lovelace");

    let ok = browser
        .post(
            "/subjects/S1",
            &[
                ("csrf_token", &csrf),
                ("name", "Ada King"),
                ("bday", "1980-02-29"),
                ("email", "ada@example.org"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let s1 = subject(&app, "S1").await;
    assert_eq!(
        (s1.name.as_str(), s1.email.as_deref()),
        ("Ada King", Some("ada@example.org"))
    );
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Changes saved."));
    assert!(
        page.body
            .contains("Name changed to “Ada King”. Email address changed to “ada@example.org” — by staff@example.org"),
        "activity: {}",
        page.body
    );
    assert_eq!(
        audit_actions(&app, "S1").await[1],
        (
            r#"name: "Ada King"; email: "ada@example.org""#.to_owned(),
            Some(STAFF.to_owned())
        )
    );
}

#[tokio::test]
async fn recording_steps_asks_first_and_audits_like_the_api() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let confirm = browser
        .get_htmx("/subjects/S1/record?step=consented", "confirm-area")
        .await;
    assert!(confirm.body.contains("gave consent?"));
    assert!(confirm.body.contains(r#"name="step" value="consented""#));
    assert!(
        subject(&app, "S1").await.date_consented.is_none(),
        "asking changed something"
    );

    let done = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "consented")])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("Consent recorded."));
    let s1 = subject(&app, "S1").await;
    assert_eq!(s1.date_consented, Some(app.clock.now()));
    assert_eq!(
        audit_actions(&app, "S1").await.last().unwrap(),
        &(
            format!("consented: {}", app.at(Duration::zero())),
            Some(STAFF.to_owned())
        )
    );
    // A second consent is refused and said so.
    app.clock.advance(Duration::minutes(5));
    let again = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "consented")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .body
            .contains("Consent was already recorded; nothing was changed."),
        "{}",
        again.body
    );
    assert_eq!(subject(&app, "S1").await.date_consented, s1.date_consented);
    let bad = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "enrolled")],
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "enrolment comes from the app"
    );
}

#[tokio::test]
async fn withdrawal_is_recorded_once_and_a_second_attempt_shows_the_conflict() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let first = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "withdrawn")],
        )
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Withdrawal recorded."));
    assert!(page.body.contains("status-withdrawn"));
    // The same instant (a double click, a stale second tab): still refused,
    // not silently absorbed.
    let second = browser
        .post(
            "/subjects/S1/record",
            &[("csrf_token", &csrf), ("step", "withdrawn")],
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.body.contains("flash-error"));
    assert!(
        second
            .body
            .contains("The withdrawal was already recorded; nothing was changed."),
        "{}",
        second.body
    );
    app.clock.advance(Duration::minutes(10));
    let later = browser
        .post_htmx("/subjects/S1/record", &csrf, &[("step", "withdrawn")])
        .await;
    assert_eq!(later.status, StatusCode::CONFLICT);
    assert!(later.body.contains("withdrawal was already recorded"));
    let withdrawals = audit_actions(&app, "S1")
        .await
        .into_iter()
        .filter(|(a, _)| a.starts_with("withdrawn:"))
        .count();
    assert_eq!(withdrawals, 1);
    // Concurrent attempts: exactly one is recorded.
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let form = [("csrf_token", csrf.as_str()), ("step", "withdrawn")];
    let attempts = (0..8).map(|_| browser.post("/subjects/S2/record", &form));
    let statuses: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|p| p.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::CONFLICT)
    );
    let withdrawals = audit_actions(&app, "S2")
        .await
        .into_iter()
        .filter(|(a, _)| a.starts_with("withdrawn:"))
        .count();
    assert_eq!(withdrawals, 1);
    // No QR code for a withdrawn subject.
    let qr = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(qr.status, StatusCode::PRECONDITION_FAILED);
    assert!(
        qr.body.contains("Subject has not yet been consented") || qr.body.contains("withdrawn")
    );
}

/// The withdrawal question says what it does to the links; one unused
/// link can be revoked on its own, after a question, with a plain POST.
#[tokio::test]
async fn one_unused_link_can_be_revoked_and_the_withdrawal_says_what_it_does() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    let staff = Context::system();
    let links = &app.state.services.links;
    let revoked = links.invitation(&staff, "S1").await.unwrap();
    let kept = links.create(&staff, "S1").await.unwrap();
    let revoke_path = format!("/subjects/S1/links/{}/revoke", revoked.link.id);

    let page = browser.get("/subjects/S1").await;
    assert!(
        page.body.contains(&format!(r#"href="{revoke_path}""#)),
        "{}",
        page.body
    );
    let question = browser.get(&revoke_path).await;
    assert_eq!(question.status, StatusCode::OK);
    assert!(question.body.contains("Its QR code stops working"));
    assert!(question.body.contains("The subject is not withdrawn"));
    assert!(
        links_of(&app, "S1")
            .await
            .iter()
            .all(|l| l.withdrawn_on.is_none()),
        "asking changes nothing"
    );

    let done = browser.post(&revoke_path, &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("Link revoked"), "{}", page.body);
    assert!(!page.body.contains(&format!(r#"href="{revoke_path}""#)));
    let stored = links.get(&staff, &revoked.link.id).await.unwrap();
    assert!(stored.withdrawn_on.is_some());
    assert!(subject(&app, "S1").await.date_withdrawn.is_none());
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {}", revoked.token))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let again = browser.post_htmx(&revoke_path, &csrf, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("already been withdrawn"));
    // Another subject's path to the link: not found, nothing changes.
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let other = format!("/subjects/S2/links/{}/revoke", kept.id);
    assert_eq!(
        browser.post(&other, &[("csrf_token", &csrf)]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        links
            .get(&staff, &kept.id)
            .await
            .unwrap()
            .withdrawn_on
            .is_none()
    );

    let confirm = browser.get("/subjects/S1/record?step=withdrawn").await;
    for said in [
        "QR codes that were not used yet stop working",
        "Links the app already made stay in the subject&#39;s history",
        "Nothing is deleted.",
    ] {
        assert!(
            confirm.body.contains(said) || confirm.body.contains(&said.replace("&#39;", "'")),
            "{said}: {}",
            confirm.body
        );
    }
}

/// The day `days` after the test clock's today in UTC, as a date field
/// sends it.
fn utc_day(app: &TestApp, days: i64) -> String {
    (app.clock.now() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn steps_are_recorded_with_the_day_they_happened_on() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    // The date field starts at the server's today and allows no later day.
    let confirm = browser
        .get_htmx("/subjects/S1/record?step=consented", "confirm-area")
        .await;
    let today = utc_day(&app, 0);
    assert_eq!(
        input_value(&confirm, "step-date").as_deref(),
        Some(today.as_str())
    );
    assert!(confirm.body.contains(&format!(r#"max="{today}""#)));
    assert!(
        confirm
            .body
            .contains(r#"<label for="step-date">Consent given on</label>"#)
    );

    // A paper consent from yesterday, recorded from Zurich (UTC+1): noon
    // there, so the day reads the same in the console and in the API.
    let yesterday = utc_day(&app, -1);
    let done = browser
        .post_htmx(
            "/subjects/S1/record",
            &csrf,
            &[
                ("step", "consented"),
                ("date", &yesterday),
                ("utc_offset", "60"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Consent recorded."));
    let consented = format!("{yesterday}T11:00:00Z");
    let token = app.login(STAFF, STAFF_PASSWORD).await;
    let api = app.get("/subject/S1", Some(&token)).await;
    let api: Value = api.json().await.unwrap();
    assert_eq!(api["data"]["date_consented"], consented.as_str());
    assert_eq!(
        audit_actions(&app, "S1").await.last().unwrap(),
        &(format!("consented: {consented}"), Some(STAFF.to_owned()))
    );

    // Today is recorded as now, without a date field (old forms) too.
    let invited = browser
        .post(
            "/subjects/S1/record",
            &[
                ("csrf_token", &csrf),
                ("step", "invited"),
                ("date", &today),
                ("utc_offset", "0"),
            ],
        )
        .await;
    assert_eq!(invited.status, StatusCode::SEE_OTHER);
    assert_eq!(
        subject(&app, "S1").await.date_invited,
        Some(app.clock.now())
    );
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let withdrawn = browser
        .post_htmx("/subjects/S2/record", &csrf, &[("step", "withdrawn")])
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK);
    assert_eq!(
        subject(&app, "S2").await.date_withdrawn,
        Some(app.clock.now())
    );
}

#[tokio::test]
async fn today_is_the_day_in_the_browsers_time_zone() {
    let (app, browser, _) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    // 23:30 UTC: in Zurich it is already 00:30 the next day.
    let now = app.clock.now();
    let half_past_eleven = now.date_naive().and_hms_opt(23, 30, 0).unwrap().and_utc();
    let wait = half_past_eleven - now;
    app.clock.advance(if wait < Duration::zero() {
        wait + Duration::days(1)
    } else {
        wait
    });
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let zurich_today = utc_day(&app, 1);
    let in_utc = browser
        .post_htmx(
            "/subjects/S1/record",
            &csrf,
            &[
                ("step", "consented"),
                ("date", &zurich_today),
                ("utc_offset", "0"),
            ],
        )
        .await;
    assert_eq!(in_utc.status, StatusCode::BAD_REQUEST, "tomorrow in UTC");
    let in_zurich = browser
        .post_htmx(
            "/subjects/S1/record",
            &csrf,
            &[
                ("step", "consented"),
                ("date", &zurich_today),
                ("utc_offset", "60"),
            ],
        )
        .await;
    assert_eq!(in_zurich.status, StatusCode::OK, "{}", in_zurich.body);
    assert_eq!(
        subject(&app, "S1").await.date_consented,
        Some(app.clock.now())
    );
}

#[tokio::test]
async fn a_step_day_in_the_future_or_before_1900_is_refused_next_to_the_field() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let today = utc_day(&app, 0);
    let tomorrow = utc_day(&app, 1);
    let cases = [
        (
            tomorrow.as_str(),
            format!("Enter a date that is not in the future: today is {today}."),
        ),
        ("1899-12-31", "Enter a date from 1900-01-01 on.".to_owned()),
        ("yesterday", format!("Enter the date like {today}.")),
        ("", format!("Enter the date like {today}.")),
    ];
    for (date, sentence) in &cases {
        let form = [("step", "consented"), ("date", date), ("utc_offset", "0")];
        // A plain post: the confirmation again, as a page.
        let mut plain = form.to_vec();
        plain.push(("csrf_token", &csrf));
        let page = browser.post("/subjects/S1/record", &plain).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{date}");
        assert!(page.body.starts_with("<!DOCTYPE html>"));
        assert_eq!(
            field_error(&page, "step", "date").as_deref(),
            Some(sentence.as_str()),
            "{date}"
        );
        assert!(page.body.contains(r#"aria-describedby="step-date-error""#));
        assert_eq!(
            input_value(&page, "step-date").as_deref(),
            Some(*date),
            "kept"
        );
        // htmx: the panel, with the confirmation still open.
        let panel = browser.post_htmx("/subjects/S1/record", &csrf, &form).await;
        assert_eq!(panel.status, StatusCode::BAD_REQUEST, "{date}");
        assert!(panel.body.starts_with(r#"<div id="subject-panel">"#));
        assert!(panel.body.contains(r#"role="alertdialog""#));
        assert_eq!(
            field_error(&panel, "step", "date").as_deref(),
            Some(sentence.as_str())
        );
    }
    assert_eq!(subject(&app, "S1").await.date_consented, None);
    assert_eq!(audit_actions(&app, "S1").await.len(), 1, "only the create");
}

#[tokio::test]
async fn the_activity_log_reads_as_sentences_while_the_api_keeps_its_texts() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let yesterday = utc_day(&app, -1);
    browser
        .post_htmx(
            "/subjects/S1/record",
            &csrf,
            &[
                ("step", "consented"),
                ("date", &yesterday),
                ("utc_offset", "0"),
            ],
        )
        .await;
    let edited = browser
        .post_htmx(
            "/subjects/S1",
            &csrf,
            &[
                ("name", "Ada; King"),
                ("bday", "1980-02-29"),
                ("email", "ada@example.org"),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK);
    let shown = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    let token = app.login(STAFF, STAFF_PASSWORD).await;
    let jwt = app
        .get(
            &format!("/link/{}/jwt", link_id_of(shown.location())),
            Some(&token),
        )
        .await
        .text()
        .await
        .unwrap();
    let established = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {jwt}"))
        .header("Content-Type", "application/json")
        .body(r#"{"resourceType":"Patient","identifier":[{"system":"urn:c3pro:app","value":"app-install-1"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(established.status(), StatusCode::NO_CONTENT);

    let page = browser.get("/subjects/S1").await;
    let start = page.body.find(r#"<table id="activity">"#).unwrap();
    let activity = &page.body[start..start + page.body[start..].find("</table>").unwrap()];
    let consented = format!("{yesterday}T12:00:00+00:00");
    let now = app.clock.now().to_rfc3339();
    for sentence in [
        "<td data-label=\"What happened\">Subject created</td>".to_owned(),
        format!(
            r#"Consent recorded, dated <time datetime="{consented}" data-show="day">{yesterday}</time> — by {STAFF}"#
        ),
        format!(
            "Name changed to “Ada; King”. Email address changed to “ada@example.org” — by {STAFF}"
        ),
        format!("Link created — by {STAFF}"),
        format!("QR code shown — by {STAFF}"),
        "App linked (app-install-1)</td>".to_owned(),
        format!(r#"Enrolment recorded, dated <time datetime="{now}" data-show="day">"#),
    ] {
        assert!(
            activity.contains(&sentence),
            "no {sentence:?} in {activity}"
        );
    }
    for raw in ["consented: ", "[Link]", "name: "] {
        assert!(
            !activity.contains(raw),
            "raw audit text {raw:?} in {activity}"
        );
    }
    // When it happened: the UTC text, which app.js shows in the browser's zone.
    assert!(activity.contains(&format!(
        r#"<time datetime="{now}">{}</time>"#,
        app.clock.now().format("%Y-%m-%d %H:%M UTC")
    )));

    // The API's audit texts stay as SPEC section 6 has them.
    let audits: Value = app
        .get("/subject/S1/audits", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audits["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create".to_owned(),
            format!("consented: {yesterday}T12:00:00Z"),
            r#"name: "Ada; King"; email: "ada@example.org""#.to_owned(),
            "[Link] create".to_owned(),
            "[Link] create JWT".to_owned(),
            "[Link] link to app-install-1".to_owned(),
            format!("enrolled: {}", app.at(app.clock.now() - app.start)),
        ]
    );
}

// ------------------------------------------------------------ QR invitations

#[tokio::test]
async fn showing_the_qr_twice_reuses_the_same_unexpired_link() {
    let (app, browser, csrf) = staff_app().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let early = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(early.status, StatusCode::PRECONDITION_FAILED);
    assert!(early.body.contains("Subject has not yet been consented"));
    consent(&app, "S1").await;

    let first = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("<dialog") && first.body.contains("Invitation for Ada Lovelace"));
    let expiry = (app.start + Duration::days(1))
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(first.body.contains(&expiry), "expiry shown");
    // Sessions end long before links expire: sign in again.
    app.clock.advance(Duration::hours(23));
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let second = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_eq!(first.qr_svg(), second.qr_svg(), "the same token");
    let plain = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    let links = links_of(&app, "S1").await;
    assert_eq!(links.len(), 1, "one link for three views");
    assert_eq!(
        plain.location(),
        format!("/subjects/S1/invitations/{}", links[0].id)
    );
    let actions: Vec<_> = audit_actions(&app, "S1")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "[Link] create").count(), 1);
    assert_eq!(
        actions.iter().filter(|a| *a == "[Link] create JWT").count(),
        1
    );

    // Once it expired, the next view makes a new link.
    app.clock.advance(Duration::hours(1));
    let csrf = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let third = browser
        .post_htmx("/subjects/S1/invitation", &csrf, &[])
        .await;
    assert_ne!(first.qr_svg(), third.qr_svg());
    assert_eq!(links_of(&app, "S1").await.len(), 2);
}

#[tokio::test]
async fn invitation_reuses_only_links_that_can_still_be_established() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let staff = Context::system();
    let links = &app.state.services.links;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    consent(&app, "S1").await;
    // A link made through the API and never shown is reused and issued.
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    let made: Value = r.json().await.unwrap();
    let made_id = made["data"]["_id"].as_str().unwrap().to_owned();
    let first = links.invitation(&staff, "S1").await.unwrap();
    assert_eq!(first.link.id, made_id);
    assert!(first.link.exp.is_some());
    // An established link is not reused.
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {}", first.token))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let second = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(second.link.id, made_id);
    let again = links.invitation(&staff, "S1").await.unwrap();
    assert_eq!(
        (&again.link.id, &again.token),
        (&second.link.id, &second.token)
    );
    // Nor an expired one.
    app.clock.advance(Duration::hours(24));
    let third = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(third.link.id, second.link.id);
    assert_eq!(links_of(&app, "S1").await.len(), 3);
    // Nor a revoked one; revoking it is no withdrawal.
    links
        .update(
            &staff,
            &third.link.id,
            idm::service::links::LinkFields {
                withdrawn_on: Some("2026-11-29T12:00:00Z".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let fourth = links.invitation(&staff, "S1").await.unwrap();
    assert_ne!(fourth.link.id, third.link.id);
    // The subject's withdrawal: no more invitations.
    record_step(&app, "S1", idm::service::subjects::JourneyDate::Withdrawn).await;
    assert!(matches!(
        links.invitation(&staff, "S1").await,
        Err(idm::error::Error::PreconditionFailed(_))
    ));
    // Unknown subject, anonymous caller.
    assert!(matches!(
        links.invitation(&staff, "nobody").await,
        Err(idm::error::Error::NotFound(_))
    ));
    assert!(matches!(
        links
            .invitation(&Context::anonymous(None, None), "S1")
            .await,
        Err(idm::error::Error::Unauthorized(_))
    ));
}

#[tokio::test]
async fn printable_invitation_shows_the_token_and_changes_nothing() {
    let (app, browser, csrf) = staff_app().await;
    let token = {
        app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
        app.login(ADMIN, ADMIN_PASSWORD).await
    };
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    consent(&app, "S1").await;
    consent(&app, "S2").await;
    // A link never shown as a QR code is not issued by reading a page.
    let r = app
        .post_json("/subject/S1/links", Some(&token), &json!({}))
        .await;
    let unissued: Value = r.json().await.unwrap();
    let unissued = unissued["data"]["_id"].as_str().unwrap().to_owned();
    let page = browser
        .get(&format!("/subjects/S1/invitations/{unissued}"))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        links_of(&app, "S1").await[0].exp.is_none(),
        "a GET issued the JWT"
    );

    let shown = browser
        .post("/subjects/S1/invitation", &[("csrf_token", &csrf)])
        .await;
    let link_id = link_id_of(shown.location());
    let printable = browser.get(shown.location()).await;
    assert_eq!(printable.status, StatusCode::OK);
    for text in [
        "Your invitation to the study",
        "Ada Lovelace",
        "1980-02-29",
        &(app.start + Duration::days(1))
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        "data-print",
    ] {
        assert!(printable.body.contains(text), "{text}");
    }
    let jwt = app
        .get(&format!("/link/{link_id}/jwt"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    assert!(printable.qr_svg().starts_with("<?xml"), "an SVG QR code");
    // Another subject's path does not show this link.
    assert_eq!(
        browser
            .get(&format!("/subjects/S2/invitations/{link_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Once used, the page says it is gone.
    let r = app
        .client
        .post(app.url("/establish"))
        .header("Authorization", format!("Bearer {jwt}"))
        .json(&json!({"resourceType": "Patient", "identifier": [{"value": "phone-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let gone = browser.get(shown.location()).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert!(gone.body.contains("already been established"));
    let page = browser.get("/subjects/S1").await;
    assert!(page.body.contains("status-enrolled") && page.body.contains("Linked "));
    assert!(
        page.body.contains("App linked (phone-1)</td>"),
        "the app's entry names no staff member"
    );
}
