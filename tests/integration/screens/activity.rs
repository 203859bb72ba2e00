//! A subject's activity log: sentences on the page, the API's own texts
//! in the API.

use idm::clock::Clock;
use reqwest::StatusCode;
use serde_json::Value;

use super::{STAFF, STAFF_PASSWORD, link_id_of, staff_app, utc_day};

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
            r#"name: "Ada Lovelace" -> "Ada; King"; email: "" -> "ada@example.org""#.to_owned(),
            "[Link] create".to_owned(),
            "[Link] create JWT".to_owned(),
            "[Link] link to app-install-1".to_owned(),
            format!("enrolled: {}", app.at(app.clock.now() - app.start)),
        ]
    );
}
