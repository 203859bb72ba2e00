//! The study screens over real HTTP: subjects list, search, sort and pages,
//! the new-subject and edit forms, journey steps with confirmation, QR
//! invitations, CSRF refusals and security headers. Clients keep cookies
//! like a browser and do not follow redirects.

mod activity;
mod invitations;
mod list;
mod new_subject;
mod one_subject;
mod security;
mod step_days;

use crate::common::browser::{Browser, Page};
use crate::common::*;
use chrono::Duration;
use idm::clock::Clock;
use idm::service::Context;

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

async fn record_step(app: &TestApp, sssid: &str, step: idm::service::subjects::JourneyDate) {
    app.state
        .services
        .subjects
        .record_step(&Context::system(), sssid, step, None)
        .await
        .expect("step recorded");
}

/// The day `days` after the test clock's today in UTC, as a date field
/// sends it.
fn utc_day(app: &TestApp, days: i64) -> String {
    (app.clock.now() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}
