//! The new-subject form: wrong input comes back with errors next to the
//! fields, and odd ids and names survive URLs and escaping.

use reqwest::StatusCode;

use super::{STAFF, audit_actions, field_error, input_value, staff_app};

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
