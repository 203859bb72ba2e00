mod common;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn admin_logs_in_and_reads_itself() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = app.get(&format!("/user/{ADMIN}"), Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
}
