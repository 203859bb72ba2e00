//! Staff accounts, tokens and the JSON error envelope (SPEC sections 1-3),
//! over real HTTP against a real server with a fresh SQLite file.

mod detail;
mod envelope;
mod invitations;
mod login_limits;
mod mfa;
mod roles;
mod setup;
mod tokens;
mod users;

use crate::common::*;
use serde_json::json;

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "another fine passphrase";

async fn new_user(app: &TestApp, token: &str, username: &str, admin: bool) -> reqwest::Response {
    app.post_json(
        "/user",
        Some(token),
        &json!({"username": username, "password": STAFF_PASSWORD, "admin": admin}),
    )
    .await
}
