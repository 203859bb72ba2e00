//! The day a journey step happened on: recorded as given, "today" in
//! the browser's time zone, and no day in the future or before 1900.

use chrono::Duration;
use idm::clock::Clock;
use reqwest::StatusCode;
use serde_json::Value;

use super::{
    STAFF, STAFF_PASSWORD, audit_actions, field_error, input_value, staff_app, subject, utc_day,
};

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
