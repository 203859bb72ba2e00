//! Every study endpoint needs a staff token.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

use super::{consented_link, fetch_jwt};

#[tokio::test]
async fn study_endpoints_need_a_staff_token() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let link = consented_link(&app, &token, "S1").await;
    let jwt = fetch_jwt(&app, &token, &link).await;
    let routes = [
        ("GET", "/subject".to_owned()),
        ("POST", "/subject".to_owned()),
        ("GET", "/subject/S1".to_owned()),
        ("PUT", "/subject/S1".to_owned()),
        ("GET", "/subject/S1/audits".to_owned()),
        ("GET", "/subject/S1/links".to_owned()),
        ("POST", "/subject/S1/links".to_owned()),
        ("GET", format!("/link/{link}")),
        ("PUT", format!("/link/{link}")),
        ("GET", format!("/link/{link}/jwt")),
    ];
    for (method, path) in &routes {
        for auth in [
            None,
            Some(format!("Bearer {jwt}")),
            Some("JWT nonsense".into()),
        ] {
            let mut req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({"sssid": "S9", "name": "X", "bday": "1980-01-01"}));
            if let Some(value) = &auth {
                req = req.header("Authorization", value);
            }
            let r = req.send().await.unwrap();
            let message = expect_error(r, StatusCode::UNAUTHORIZED).await;
            if auth.is_none() {
                assert_eq!(message, "Authorization Required", "{method} {path}");
            }
        }
    }
    let r = app.get("/subject/S9", Some(&token)).await;
    expect_error(r, StatusCode::NOT_FOUND).await;
}
