//! Staff tokens: the JWTs that are refused, both header schemes, and
//! tokens that end at once when their account changes.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{STAFF, STAFF_PASSWORD, new_user};

#[tokio::test]
async fn tokens_die_at_once_on_delete_demotion_and_password_change() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = format!("/user/{STAFF}");

    new_user(&app, &admin, STAFF, true).await;
    let token = app.login(STAFF, STAFF_PASSWORD).await;
    assert_eq!(app.get(&me, Some(&token)).await.status(), StatusCode::OK);
    let r = app
        .put_json(&me, Some(&admin), &json!({"admin": false}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;

    let token = app.login(STAFF, STAFF_PASSWORD).await;
    let r = app
        .put_json(
            &me,
            Some(&admin),
            &json!({"password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
    let r = app
        .post_json(
            "/auth",
            None,
            &json!({"username": STAFF, "password": STAFF_PASSWORD}),
        )
        .await;
    expect_error(r, StatusCode::UNAUTHORIZED).await;

    let token = app.login(STAFF, "a brand new passphrase").await;
    let r = app
        .delete_json("/user", Some(&admin), &json!({"username": STAFF}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
    // Re-creating the name does not revive the old token.
    new_user(&app, &admin, STAFF, false).await;
    expect_error(app.get(&me, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
}

fn sign(claims: &Value, alg: Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_jwt_matrix_is_rejected() {
    let app = spawn_app().await;
    let good = app.admin_token().await;
    let key = app
        .config
        .token_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .as_bytes()
        .to_vec();
    let link_key = app
        .config
        .link_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .as_bytes()
        .to_vec();
    let me = format!("/user/{ADMIN}");
    let parts: Vec<&str> = good.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let now = app.clock.now_ts();

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        edit(&mut c);
        c
    };
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs512_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let rs256_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let edited_payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(&|c| c["exp"] = json!(now + 999_999))).unwrap());
    let cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "alg none with signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "HS512 token with our key",
            sign(&claims, Algorithm::HS512, &key),
        ),
        (
            "HS512 header on HS256 signature",
            format!("{hs512_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "RS256 header on HS256 signature",
            format!("{rs256_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "edited payload",
            format!("{}.{edited_payload}.{}", parts[0], parts[2]),
        ),
        (
            "expired",
            sign(
                &with(&|c| c["exp"] = json!(now - 1)),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "future nbf",
            sign(
                &with(&|c| c["nbf"] = json!(now + 3600)),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "missing exp",
            sign(
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "wrong key",
            sign(
                &claims,
                Algorithm::HS256,
                b"a different key of plenty of bytes!!",
            ),
        ),
        (
            "staff claims with the link secret",
            sign(&claims, Algorithm::HS256, &link_key),
        ),
        (
            "link-style token",
            sign(
                &json!({"jti": "abc", "iss": "http://idm.test", "aud": "http://idm.test",
                        "iat": now, "exp": now + 3600, "sub": "Jane", "birthdate": "1990-01-01"}),
                Algorithm::HS256,
                &link_key,
            ),
        ),
        ("not a jwt", "garbage".to_owned()),
    ];
    for (name, token) in cases {
        let r = app.get(&me, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name} was accepted");
        expect_error(r, StatusCode::UNAUTHORIZED).await;
    }
    // The same claims, properly signed, work: the cases above fail for the
    // reason they name.
    assert_eq!(
        app.get(&me, Some(&sign(&claims, Algorithm::HS256, &key)))
            .await
            .status(),
        StatusCode::OK
    );

    // Expiry follows the (injected) clock.
    app.clock
        .advance(Duration::hours(12) + Duration::seconds(1));
    expect_error(app.get(&me, Some(&good)).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn both_schemes_are_accepted_and_the_header_is_required() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let url = app.url(&format!("/user/{ADMIN}"));
    for scheme in ["JWT", "Bearer", "jwt", "bearer", "BEARER"] {
        let r = app
            .client
            .get(&url)
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme}");
    }
    let r = app.client.get(&url).send().await.unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        expect_error(r, StatusCode::UNAUTHORIZED).await,
        "Authorization Required"
    );
    for header in [
        format!("Basic {token}"),
        token.clone(),
        "JWT".to_owned(),
        "JWT ".to_owned(),
    ] {
        let r = app
            .client
            .get(&url)
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED).await;
    }
}
