//! The shortest path through the service: the first admin logs in and
//! reads its own account.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn admin_logs_in_and_reads_itself() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = app.get(&format!("/user/{ADMIN}"), Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let user: serde_json::Value = r.json().await.unwrap();
    let user = &user["data"];
    assert_eq!(user["username"], ADMIN);
    assert_eq!(user["admin"], true);
    assert!(
        user["last_login"].is_string(),
        "the login was recorded: {user}"
    );
    let text = user.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
}
