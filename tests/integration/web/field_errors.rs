//! Every console form shows each problem the service finds next to the
//! field it is about, all fields at once, as a plain post and as htmx; the
//! JSON API names the fields in its error envelope. (The reset form and
//! the step date are checked in the recovery and screen tests.)

use crate::common::browser::{Browser, Page};
use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The message shown next to the field `{form}-{field}`, which must be
/// marked invalid and described by it.
fn message_at(page: &Page, form: &str, field: &str) -> Option<String> {
    let id = format!("{form}-{field}");
    let marker = format!(r#"<p class="error" id="{id}-error">"#);
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find("</p>")? + start;
    let input_start = page.body.find(&format!(r#"id="{id}""#))?;
    let input = &page.body[input_start..page.body[input_start..].find('>')? + input_start];
    assert!(
        input.contains(r#"aria-invalid="true""#) && input.contains(&format!("{id}-error")),
        "the field {id} is not marked invalid: {input}"
    );
    Some(page.body[start..end].to_owned())
}

/// Each field with the message expected next to it (`None`: no message).
type Expected<'a> = &'a [(&'a str, Option<&'a str>)];

fn assert_messages(page: &Page, form: &str, expected: Expected) {
    for (field, message) in expected {
        assert_eq!(
            message_at(page, form, field).as_deref(),
            *message,
            "{form}-{field} in {}",
            page.body
        );
    }
}

/// An app with an admin signed in to the console (and an API token).
async fn signed_in_admin() -> (TestApp, Browser, String, String) {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let browser = Browser::new(&app);
    let csrf = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    (app, browser, csrf, token)
}

#[tokio::test]
async fn the_first_admin_form_shows_every_problem_at_its_field() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let csrf = browser.get("/init").await.csrf();
    let cases: [(&str, &str, &str, Expected); 3] = [
        (
            "not-an-email",
            "short",
            "short",
            &[
                (
                    "email",
                    Some("Enter an email address like name@example.org."),
                ),
                (
                    "password",
                    Some("Choose a password of at least 8 characters."),
                ),
                ("password2", None),
            ],
        ),
        (
            "",
            "a long good passphrase",
            "a different passphrase",
            &[
                ("email", Some("Enter an email address.")),
                ("password", None),
                ("password2", Some("The passwords do not match.")),
            ],
        ),
        (
            "first@example.org",
            "password123",
            "password123",
            &[
                ("email", None),
                (
                    "password",
                    Some("This password is too common. Choose another one."),
                ),
            ],
        ),
    ];
    for (email, password, password2, expected) in cases {
        let form = [
            ("email", email),
            ("password", password),
            ("password2", password2),
        ];
        let mut plain = form.to_vec();
        plain.push(("csrf_token", &csrf));
        let page = browser.post("/init", &plain).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{email}");
        assert_messages(&page, "init", expected);
        let fragment = browser.post_htmx("/init", &csrf, &form).await;
        assert_eq!(fragment.status, StatusCode::BAD_REQUEST, "{email}");
        assert!(fragment.body.starts_with("<form"), "{}", fragment.body);
        assert_messages(&fragment, "init", expected);
    }
    // Nothing was created by any of them: the form is still offered.
    let again = browser.get("/init").await;
    assert!(again.body.contains(r#"id="init-form""#), "{}", again.body);
}

#[tokio::test]
async fn the_new_subject_form_shows_every_problem_at_its_field() {
    let (app, browser, csrf, token) = signed_in_admin().await;
    let page = browser
        .post(
            "/subjects",
            &[
                ("csrf_token", &csrf),
                ("sssid", " S1"),
                ("name", ""),
                ("bday", "31.12.1980"),
                ("email", "not an address"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_messages(
        &page,
        "new-subject",
        &[
            (
                "sssid",
                Some("Remove the blanks at the start or end of the SSSID."),
            ),
            ("name", Some("Enter a name.")),
            ("bday", Some("Enter a birth date like 1980-12-31.")),
            (
                "email",
                Some("Enter an email address like name@example.org, or leave the field empty."),
            ),
        ],
    );
    // One field wrong: only that one is marked, the others keep their values.
    let page = browser
        .post(
            "/subjects",
            &[
                ("csrf_token", &csrf),
                ("sssid", "S1"),
                ("name", "Ada Lovelace"),
                ("bday", "1899-12-31"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_messages(
        &page,
        "new-subject",
        &[
            ("sssid", None),
            ("name", None),
            (
                "bday",
                Some("Enter a birth date between 1900-01-01 and 2100-12-31."),
            ),
        ],
    );
    assert!(page.body.contains(r#"value="Ada Lovelace""#));
    // A taken SSSID is the SSSID field's problem.
    app.add_subject("S2", "Grace Hopper", "1906-12-09").await;
    let page = browser
        .post(
            "/subjects",
            &[
                ("csrf_token", &csrf),
                ("sssid", "S2"),
                ("name", "Someone Else"),
                ("bday", "1990-01-01"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_messages(
        &page,
        "new-subject",
        &[(
            "sssid",
            Some("This SSSID is already taken. Choose another one."),
        )],
    );
    let (sssids, _) = app.list_subjects(&token, "").await;
    assert_eq!(sssids, ["S2"], "nothing else was created");
}

#[tokio::test]
async fn the_subject_edit_form_shows_every_problem_at_its_field() {
    let (app, browser, csrf, token) = signed_in_admin().await;
    app.add_subject("S1", "Ada Lovelace", "1980-02-29").await;
    let form = [("name", " "), ("bday", "2101-01-01"), ("email", "x@")];
    let expected: Expected = &[
        ("name", Some("Enter a name.")),
        (
            "bday",
            Some("Enter a birth date between 1900-01-01 and 2100-12-31."),
        ),
        (
            "email",
            Some("Enter an email address like name@example.org, or leave the field empty."),
        ),
    ];
    let mut plain = form.to_vec();
    plain.push(("csrf_token", &csrf));
    let page = browser.post("/subjects/S1", &plain).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_messages(&page, "edit-subject", expected);
    let panel = browser.post_htmx("/subjects/S1", &csrf, &form).await;
    assert_eq!(panel.status, StatusCode::BAD_REQUEST);
    assert!(panel.body.starts_with(r#"<div id="subject-panel">"#));
    assert_messages(&panel, "edit-subject", expected);
    let subject: Value = app
        .get("/subject/S1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subject["data"]["name"], "Ada Lovelace", "nothing changed");
}

#[tokio::test]
async fn the_new_user_form_shows_both_problems_at_once() {
    let (_app, browser, csrf, _) = signed_in_admin().await;
    let form = [("username", "nobody"), ("password", "short")];
    let mut plain = form.to_vec();
    plain.push(("csrf_token", &csrf));
    for page in [
        browser.post("/users", &plain).await,
        browser.post_htmx("/users", &csrf, &form).await,
    ] {
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert_messages(
            &page,
            "new-user",
            &[
                (
                    "username",
                    Some("Enter an email address like name@example.org."),
                ),
                (
                    "password",
                    Some("Choose a password of at least 8 characters."),
                ),
            ],
        );
    }
}

/// The API keeps its envelope and message; `fields` names each field.
#[tokio::test]
async fn the_api_names_the_fields_of_a_bad_request() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let one = app
        .post_json(
            "/subject",
            Some(&token),
            &json!({"sssid": "S1", "name": "Ada", "bday": "1980-13-01"}),
        )
        .await;
    assert_eq!(one.status(), StatusCode::BAD_REQUEST);
    let body: Value = one.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "status": 400,
            "message": "bday must be a date like 1980-12-31, got \"1980-13-01\"",
            "fields": {"bday": "bday must be a date like 1980-12-31, got \"1980-13-01\""},
        }})
    );
    let several = app
        .post_json("/subject", Some(&token), &json!({"sssid": "", "bday": "x"}))
        .await;
    let body: Value = several.json().await.unwrap();
    let fields = body["error"]["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["bday", "name", "sssid"], "{body}");
    // Errors that are not about fields have no `fields`.
    let missing = app.get("/subject/NOPE", Some(&token)).await;
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"].get("fields").is_none(), "{body}");
}
