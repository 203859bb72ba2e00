//! The browser console over real HTTP: sessions, CSRF, security headers,
//! forms and user management. Clients keep cookies like a browser and do
//! not follow redirects, so every 303 and Set-Cookie can be checked.

mod csrf;
mod field_errors;
mod forms;
mod headers;
mod sessions;
mod users;

use crate::common::*;

const STAFF: &str = "staff@example.org";
const STAFF_PASSWORD: &str = "plain staff passphrase";

async fn app_with_admin() -> TestApp {
    let app = spawn_app().await;
    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    app
}

async fn user_exists(app: &TestApp, username: &str) -> bool {
    app.state
        .services
        .users
        .get(&idm::service::Context::system(), username)
        .await
        .is_ok()
}

async fn is_admin(app: &TestApp, username: &str) -> bool {
    app.state
        .services
        .users
        .get(&idm::service::Context::system(), username)
        .await
        .unwrap()
        .admin
}

/// The reset key in the newest mail of the file transport's outbox.
async fn reset_key_from_outbox(app: &TestApp) -> String {
    app.state.services.background.idle().await;
    let outbox = app.dir.path().join("outbox");
    let mut mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    mails.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let raw = std::fs::read(mails.last().expect("a mail in the outbox")).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let start = text.find("/reset?k=").expect("a reset link") + "/reset?k=".len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

fn outbox_len(app: &TestApp) -> usize {
    std::fs::read_dir(app.dir.path().join("outbox")).map_or(0, |d| d.count())
}
