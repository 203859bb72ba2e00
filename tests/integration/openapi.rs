//! The OpenAPI description at `/openapi.json` against the real server: it
//! lists every route, the routes it lists exist and are protected as it
//! says, real responses have the documented shapes, and the API page is
//! served from static/ under the CSP. scripts/schemathesis.sh fuzzes the
//! same description from outside.

use std::collections::BTreeSet;

use crate::common::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every JSON route of SPEC sections 1-6 plus the extras, as
/// (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/status"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/auth"),
    ("get", "/user"),
    ("post", "/user"),
    ("delete", "/user"),
    ("get", "/user/{username}"),
    ("put", "/user/{username}"),
    ("get", "/user/{username}/audits"),
    ("post", "/user/{username}/reset"),
    ("post", "/user/{username}/invitation"),
    ("post", "/user/{username}/mfa"),
    ("delete", "/user/{username}/mfa"),
    ("post", "/user/{username}/mfa/confirm"),
    ("get", "/user/{username}/sessions"),
    ("post", "/user/{username}/sessions/revoke"),
    ("post", "/user/{username}/unlock"),
    ("get", "/subject"),
    ("post", "/subject"),
    ("get", "/subject/{sssid}"),
    ("put", "/subject/{sssid}"),
    ("get", "/subject/{sssid}/audits"),
    ("get", "/audit"),
    ("post", "/subject/import"),
    ("get", "/subject/{sssid}/links"),
    ("post", "/subject/{sssid}/links"),
    ("get", "/link/{id}"),
    ("put", "/link/{id}"),
    ("get", "/link/{id}/jwt"),
    ("post", "/establish"),
    ("get", "/audit/verify"),
    ("post", "/subject/{sssid}/corrections"),
    ("post", "/subject/{sssid}/erasure"),
];

async fn description(app: &TestApp) -> Value {
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op));
        }
    }
    ops
}

fn secured_by(op: &Value) -> Vec<&str> {
    op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|req| req.as_object().unwrap().keys().map(String::as_str))
        .collect()
}

#[tokio::test]
async fn the_description_lists_exactly_the_json_routes() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    let ids: Vec<&str> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().expect("an operationId"))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds are unique: {ids:?}");
}

#[tokio::test]
async fn every_error_is_documented_as_the_envelope_and_auth_as_bearer() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(envelope["required"], json!(["error"]));
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], json!(["status", "message"]));

    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents a success"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorEnvelope",
                    "{method} {path} {status}"
                );
            }
        }
        let schemes = secured_by(op);
        if !schemes.is_empty() {
            assert!(
                responses.contains_key("401"),
                "{method} {path} documents 401"
            );
        }
        if op.get("requestBody").is_some() {
            assert!(
                responses.contains_key("413"),
                "{method} {path} documents 413"
            );
            // Only /establish reads its body whatever the content type.
            assert_eq!(
                responses.contains_key("415"),
                path != "/establish",
                "{method} {path} and 415"
            );
        }
    }
    assert!(
        operations(&doc)
            .iter()
            .any(|(m, p, op)| m == "post" && p == "/auth" && op["responses"].get("429").is_some()),
        "login throttling is documented"
    );

    for scheme in ["staff_token", "link_token"] {
        let def = &doc["components"]["securitySchemes"][scheme];
        assert_eq!(def["type"], "http", "{scheme}");
        assert_eq!(def["scheme"], "bearer", "{scheme}");
    }
}

/// A concrete path for a template; the values need not exist.
fn concrete(path: &str) -> String {
    path.replace("{username}", "nobody@example.org")
        .replace("{sssid}", "S-404")
        .replace("{id}", "0000")
}

#[tokio::test]
async fn documented_operations_exist_and_are_protected_as_documented() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    for (method, path, op) in operations(&doc) {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app
            .client
            .request(method.clone(), app.url(&concrete(&path)))
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            op["responses"].get(status.as_str()).is_some(),
            "{method} {path} answered the undocumented {status}"
        );
        let schemes = secured_by(op);
        if schemes.contains(&"staff_token") {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(r.headers().contains_key("www-authenticate"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["message"], "Authorization Required");
        } else if schemes.contains(&"link_token") {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        } else if method == Method::GET {
            assert!(status.is_success(), "{method} {path}: {status}");
        }
    }
}

/// Checks `value` against the part of JSON Schema the description uses:
/// `$ref`, `type` (one or several), `properties` with `required`, `items`
/// and `additionalProperties` (`false`, or the schema of a map's values). Response objects must not carry
/// fields the description does not name.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return if options.iter().any(|s| conforms(doc, s, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: matches none of oneOf"))
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let integer_as_number = actual == "integer" && types.contains(&"number");
    if !(types.contains(&actual) || integer_as_number) {
        return Err(format!("{at}: {actual} where the schema says {types:?}"));
    }
    if let Value::Object(fields) = value {
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !fields.contains_key(name) {
                return Err(format!("{at}: missing required {name}"));
            }
        }
        for (name, field) in fields {
            // A map (`additionalProperties` with a schema) takes any name.
            let field_schema = properties
                .get(name)
                .or_else(|| Some(&schema["additionalProperties"]).filter(|s| s.is_object()));
            match field_schema {
                Some(field_schema) => conforms(doc, field_schema, field, &format!("{at}.{name}"))?,
                None => return Err(format!("{at}: undocumented field {name}")),
            }
        }
    }
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The documented JSON schema of `method path` for `status`.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents {status} as JSON"
    );
    schema
}

async fn check(doc: &Value, method: &str, template: &str, r: reqwest::Response) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let schema = response_schema(doc, method, template, status);
    if let Err(problem) = conforms(doc, schema, &body, "body") {
        panic!("{method} {template} {status}: {problem}\n{body:#}");
    }
}

#[tokio::test]
async fn real_responses_have_the_documented_shapes() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    let token = app.admin_token().await;
    let t = Some(token.as_str());

    for path in ["/", "/status", "/healthz", "/readyz"] {
        check(&doc, "get", path, app.get(path, None).await).await;
    }
    let r = app
        .post_json(
            "/auth",
            None,
            &json!({"username": "x@example.org", "password": "wrong"}),
        )
        .await;
    check(&doc, "post", "/auth", r).await;

    let r = app
        .post_json(
            "/user",
            t,
            &json!({"username": "staff@example.org", "password": "a staff password", "admin": false}),
        )
        .await;
    check(&doc, "post", "/user", r).await;
    check(&doc, "get", "/user", app.get("/user", t).await).await;
    let r = app.get("/user/staff@example.org", t).await;
    check(&doc, "get", "/user/{username}", r).await;
    let r = app.get("/user/staff@example.org/audits", t).await;
    check(&doc, "get", "/user/{username}/audits", r).await;
    let r = app
        .post_json(
            "/user",
            t,
            &json!({"username": "staff@example.org", "password": "x"}),
        )
        .await;
    check(&doc, "post", "/user", r).await;

    let r = app
        .post_json(
            "/subject",
            t,
            &json!({"sssid": "S1", "name": "Ada", "bday": "1980-12-10", "date_consented": "2024-05-01"}),
        )
        .await;
    check(&doc, "post", "/subject", r).await;
    let r = app
        .post_json(
            "/subject",
            t,
            &json!({"sssid": "S1", "name": "Ada", "bday": "1980-12-10"}),
        )
        .await;
    check(&doc, "post", "/subject", r).await;
    check(
        &doc,
        "get",
        "/subject",
        app.get("/subject?perpage=5&orderdir=DESC", t).await,
    )
    .await;
    check(
        &doc,
        "get",
        "/subject",
        app.get("/subject?ordercol=nope", t).await,
    )
    .await;
    check(
        &doc,
        "get",
        "/subject/{sssid}",
        app.get("/subject/S1", t).await,
    )
    .await;
    check(
        &doc,
        "get",
        "/subject/{sssid}",
        app.get("/subject/S404", t).await,
    )
    .await;

    let r = app.post_json("/subject/S1/links", t, &json!({})).await;
    let link: Value = r.json().await.unwrap();
    let id = link["data"]["_id"].as_str().unwrap().to_owned();
    let jwt = app.get(&format!("/link/{id}/jwt"), t).await;
    assert_eq!(jwt.status(), StatusCode::OK);
    assert!(
        doc["paths"]["/link/{id}/jwt"]["get"]["responses"]["200"]["content"]["application/jwt"]
            .is_object()
    );
    let r = app.get(&format!("/link/{id}"), t).await;
    check(&doc, "get", "/link/{id}", r).await;
    let r = app.get("/subject/S1/links", t).await;
    check(&doc, "get", "/subject/{sssid}/links", r).await;
    let r = app.get("/subject/S1/audits", t).await;
    check(&doc, "get", "/subject/{sssid}/audits", r).await;
    let r = app.post_json("/subject/S404/links", t, &json!({})).await;
    check(&doc, "post", "/subject/{sssid}/links", r).await;
    let r = app
        .put_json("/subject/S1", t, &json!({"colour": "red"}))
        .await;
    check(&doc, "put", "/subject/{sssid}", r).await;
}

#[test]
fn the_conformance_check_can_fail() {
    let doc = json!({"components": {"schemas": {"E": {
        "type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}
    }}}});
    let schema = json!({"$ref": "#/components/schemas/E"});
    assert!(conforms(&doc, &schema, &json!({"a": "x"}), "b").is_ok());
    assert!(conforms(&doc, &schema, &json!({"a": 1}), "b").is_err());
    assert!(conforms(&doc, &schema, &json!({}), "b").is_err());
    assert!(conforms(&doc, &schema, &json!({"a": "x", "b": 1}), "b").is_err());
    assert!(conforms(&doc, &schema, &json!([]), "b").is_err());
}

#[tokio::test]
async fn the_api_page_is_served_from_static_under_the_csp() {
    let app = spawn_app().await;
    let r = app.get("/static/api/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"<script src="/static/api/api.js" defer></script>"#));
    assert!(page.contains(r#"href="/openapi.json""#));
    // No inline script or style: the CSP would block them.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(
        !page.contains("<style") && !page.contains("style="),
        "{page}"
    );
    for asset in ["/static/api/api.js", "/static/api/api.css"] {
        let r = app.get(asset, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("innerHTML"),
            "{asset} builds the DOM with text only"
        );
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
}
