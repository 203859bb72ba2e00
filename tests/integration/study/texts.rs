//! Stored texts: line breaks and other line-ending characters are refused
//! in subject and link fields, by hand and at establish.

use crate::common::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::{PATIENT, audit_actions, create_subject, data, establish, issued_link};

/// Texts that would split or disguise a line of the log or the audit trail.
const LINE_BREAKERS: [&str; 7] = [
    "a\r\nFAKE",
    "a\nFAKE",
    "a\rFAKE",
    "a\u{2028}FAKE",
    "a\u{2029}FAKE",
    "a\u{85}FAKE",
    "a\u{202E}FAKE",
];

async fn expect_line_break_refused(r: Response, field: &str, sent: &str) {
    let message = expect_error(r, StatusCode::BAD_REQUEST).await;
    assert!(
        message.starts_with(&format!("{field} must not contain control characters")),
        "{field} = {sent:?}: {message}"
    );
}

#[tokio::test]
async fn subject_texts_with_line_breaks_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    create_subject(&app, &token, "S1", "Ada Lovelace").await;
    for bad in LINE_BREAKERS {
        let email = format!("{bad}@example.org");
        for (field, body) in [
            (
                "sssid",
                json!({"sssid": bad, "name": "Ada", "bday": "1980-02-29"}),
            ),
            (
                "name",
                json!({"sssid": "S2", "name": bad, "bday": "1980-02-29"}),
            ),
            (
                "email",
                json!({"sssid": "S2", "name": "Ada", "bday": "1980-02-29", "email": email}),
            ),
        ] {
            let r = app.post_json("/subject", Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
        for (field, body) in [
            ("name", json!({"name": bad})),
            ("email", json!({"email": email})),
        ] {
            let r = app.put_json("/subject/S1", Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
    }
    let (sssids, total) = app.list_subjects(&token, "").await;
    assert_eq!((sssids, total), (vec!["S1".to_owned()], 1));
    let actions = audit_actions(&app, &token, "S1").await;
    assert_eq!(actions, [("create".to_owned(), json!(ADMIN))]);
}

#[tokio::test]
async fn link_texts_with_line_breaks_are_refused_by_hand_and_at_establish() {
    let app = spawn_app().await;
    let (token, link, jwt) = issued_link(&app).await;
    let path = format!("/link/{link}");
    let bearer = format!("Bearer {jwt}");
    for bad in LINE_BREAKERS {
        for (field, body) in [
            ("linked_to", json!({"linked_to": bad})),
            (
                "linked_system",
                json!({"linked_to": "dev-7", "linked_system": bad}),
            ),
        ] {
            let r = app.put_json(&path, Some(&token), &body).await;
            expect_line_break_refused(r, field, bad).await;
        }
        for (field, identifier) in [
            (
                "identifier[0].value",
                json!({"system": "urn:app", "value": bad}),
            ),
            (
                "identifier[0].system",
                json!({"system": bad, "value": "app-1"}),
            ),
        ] {
            let patient = json!({"resourceType": "Patient", "identifier": [identifier]});
            let r = establish(&app, Some(&bearer), &patient.to_string()).await;
            expect_line_break_refused(r, field, bad).await;
        }
    }
    let stored = data(app.get(&path, Some(&token)).await).await;
    assert!(stored.get("linked_on").is_none(), "nothing was linked");
    // The refusals left the link usable.
    let r = establish(&app, Some(&bearer), PATIENT).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let actions = audit_actions(&app, &token, "S1").await;
    assert!(
        actions.iter().all(|(action, _)| !action.contains("FAKE")),
        "{actions:?}"
    );
    assert!(actions.contains(&("[Link] link to app-install-1".into(), Value::Null)));
}
