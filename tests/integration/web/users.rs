//! User management in the console: with plain forms and with htmx
//! fragments, a literal search with pages, actions named by their visible
//! text, the 403 page for staff, and reset emails sent by admins.

use crate::common::browser::{Browser, Page};
use crate::common::*;
use reqwest::StatusCode;

use super::{
    STAFF, STAFF_PASSWORD, app_with_admin, is_admin, outbox_len, reset_key_from_outbox, user_exists,
};

/// Buttons and links named by `aria-label`: each name holds the visible
/// text, so people who use speech input can say what they see.
fn assert_names_hold_visible_text(page: &Page, what: &str) {
    let mut rest = page.body.as_str();
    let mut checked = 0;
    while let Some(at) = rest.find("aria-label=\"") {
        let tag_start = rest[..at].rfind('<').unwrap();
        let label_start = at + "aria-label=\"".len();
        let label_end = label_start + rest[label_start..].find('"').unwrap();
        let label = &rest[label_start..label_end];
        let tag = &rest[tag_start + 1..];
        let name = &tag[..tag.find([' ', '>']).unwrap()];
        let content_start = label_end + rest[label_end..].find('>').unwrap() + 1;
        let content_end = content_start + rest[content_start..].find("</").unwrap();
        let visible = rest[content_start..content_end]
            .trim()
            .trim_end_matches('…');
        if matches!(name, "button" | "a") && !visible.is_empty() {
            assert!(
                label.to_lowercase().contains(&visible.to_lowercase()),
                "{what}: the {name} showing {visible:?} is named {label:?}"
            );
            checked += 1;
        }
        rest = &rest[label_end..];
    }
    assert!(checked > 0, "{what}: no named buttons or links");
}

#[tokio::test]
async fn user_actions_are_named_with_their_visible_text() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = browser.get("/users").await;
    assert!(page.body.contains(&format!(
        r#"aria-label="Send reset email to {STAFF}">Send reset email</button>"#
    )));
    assert_names_hold_visible_text(&page, "users");
}

#[tokio::test]
async fn admin_manages_users_with_plain_forms() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = browser
        .post(
            "/users",
            &[
                ("csrf_token", &token),
                ("username", "New@Example.org"),
                ("password", "a good long passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let list = browser.get(r.location()).await;
    assert!(
        list.body
            .contains("Created new@example.org as staff member.")
    );
    assert!(list.body.contains("new@example.org"));
    assert!(!is_admin(&app, "new@example.org").await);

    let r = browser
        .post(
            "/users/admin",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("admin", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(is_admin(&app, "new@example.org").await);
    let r = browser
        .post(
            "/users/admin",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("admin", "false"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!is_admin(&app, "new@example.org").await);

    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", "new@example.org")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        browser
            .get("/users")
            .await
            .body
            .contains("Deleted new@example.org.")
    );
    assert!(!user_exists(&app, "new@example.org").await);

    // The rules of the service hold here too.
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", ADMIN)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("last admin"));
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", "nobody@example.org")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_manages_users_with_htmx_fragments() {
    let app = app_with_admin().await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = browser
        .post_htmx(
            "/users",
            &token,
            &[
                ("username", "new@example.org"),
                ("password", "a good long passphrase"),
                ("admin", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("<div id=\"users-panel\""));
    assert!(r.body.contains("Created new@example.org as administrator."));
    assert!(is_admin(&app, "new@example.org").await);
    let r = browser
        .post_htmx(
            "/users/admin",
            &token,
            &[("username", "new@example.org"), ("admin", "false")],
        )
        .await;
    assert!(r.body.contains("is no longer an administrator"));
    let r = browser
        .post_htmx("/users/delete", &token, &[("username", "new@example.org")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Deleted new@example.org."));
    assert!(!user_exists(&app, "new@example.org").await);
    let r = browser
        .post_htmx("/users/delete", &token, &[("username", ADMIN)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.starts_with("<div id=\"users-panel\"") && r.body.contains("last admin"));
}

#[tokio::test]
async fn user_list_searches_literally_and_pages() {
    let app = app_with_admin().await;
    for i in 0..23 {
        app.create_user(
            &format!("person{i:02}@study.example"),
            STAFF_PASSWORD,
            false,
        )
        .await;
    }
    app.create_user("x_y@other.example", STAFF_PASSWORD, false)
        .await;
    let browser = Browser::new(&app);
    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let first = browser.get("/users?q=study").await;
    assert!(
        first.body.contains("23 users · page 1 of 2"),
        "{}",
        first.body
    );
    assert!(first.body.contains("person00@study.example"));
    assert!(!first.body.contains("person20@study.example"));
    assert!(first.body.contains("href=\"/users?q=study&amp;page=2\""));
    let second = browser
        .get_htmx("/users?q=study&page=2", "users-list")
        .await;
    assert!(second.body.starts_with("<div id=\"users-list\""));
    assert!(second.body.contains("person22@study.example"));
    assert!(!second.body.contains("person00@study.example"));
    // `_` is a literal underscore, not a wildcard.
    let literal = browser.get_htmx("/users?q=x_y", "users-list").await;
    assert!(
        literal.body.contains("1 user · page 1 of 1"),
        "{}",
        literal.body
    );
    let none = browser.get_htmx("/users?q=%25", "users-list").await;
    assert!(none.body.contains("No user matches"));
}

#[tokio::test]
async fn staff_get_the_403_page_for_user_management() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(STAFF, STAFF_PASSWORD).await;
    let home = browser.get("/home").await;
    assert!(
        !home.body.contains("href=\"/users\""),
        "no link to user management"
    );
    let page = browser.get("/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Access denied"));
    assert!(page.body.contains("Signed in as"));
    let r = browser
        .post(
            "/users",
            &[
                ("csrf_token", &token),
                ("username", "new@example.org"),
                ("password", "a good long passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!user_exists(&app, "new@example.org").await);
    let r = browser
        .post(
            "/users/delete",
            &[("csrf_token", &token), ("username", ADMIN)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(user_exists(&app, ADMIN).await);
}

#[tokio::test]
async fn admins_send_reset_emails_from_the_users_page() {
    let app = app_with_admin().await;
    app.create_user(STAFF, STAFF_PASSWORD, false).await;
    let browser = Browser::new(&app);
    let token = browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let list = browser.get("/users").await;
    assert!(
        list.body.contains("action=\"/users/reset\""),
        "the button is there"
    );

    let r = browser
        .post_htmx("/users/reset", &token, &[("username", STAFF)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("reset link was sent"), "{}", r.body);
    let key = reset_key_from_outbox(&app).await;
    assert_eq!(key.len(), 64);
    let link = browser.get(&format!("/reset?k={key}")).await;
    let page = browser.get(link.location()).await;
    assert!(
        page.body.contains(STAFF),
        "the link is for the staff member"
    );

    // Plain form post: redirect with a flash message.
    let r = browser
        .post(
            "/users/reset",
            &[("csrf_token", &token), ("username", STAFF)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = browser
        .post_htmx("/users/reset", &token, &[("username", "ghost@example.org")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Staff may not.
    let staff = Browser::new(&app);
    let staff_token = staff.sign_in(STAFF, STAFF_PASSWORD).await;
    let before = outbox_len(&app);
    let r = staff
        .post_htmx("/users/reset", &staff_token, &[("username", ADMIN)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.state.services.background.idle().await;
    assert_eq!(outbox_len(&app), before);
}
