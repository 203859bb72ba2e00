//! The console's static files over real HTTP: built into the binary,
//! linked from pages under content-hashed names cached for a year, the
//! plain names still served (the API page uses them), and the `static_dir`
//! development override. Also `/`, which sends a browser to where it can
//! start and answers every other client as the API always did.

use std::path::Path;

use crate::common::browser::{Browser, Page};
use crate::common::*;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A file of the repository's `static/` folder.
fn repo_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("static")
            .join(name),
    )
    .unwrap()
}

/// The first 16 hex digits of the SHA-256 of `bytes`.
fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_owned()
}

/// Every `/static/...` URL a page links to (stylesheet, scripts, icon).
fn linked_static_urls(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/static/"))
        .map(str::to_owned)
        .collect()
}

async fn fetch(app: &TestApp, path: &str, if_none_match: Option<&str>) -> (Page, Vec<u8>) {
    let mut request = app.client.get(app.url(path));
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    let page = Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    (page, bytes)
}

fn header<'a>(page: &'a Page, name: &str) -> &'a str {
    page.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

// ------------------------------------------------------------ hashed names

#[tokio::test]
async fn pages_link_each_file_under_its_content_hash_and_it_is_cached_for_a_year() {
    let app = spawn_app().await;
    let page = Browser::new(&app).get("/login").await;
    let links = linked_static_urls(&page.body);
    let files = [
        ("console.css", "text/css"),
        ("app.js", "text/javascript"),
        ("htmx/htmx.min.js", "text/javascript"),
        ("favicon.svg", "image/svg+xml"),
    ];
    assert_eq!(links.len(), files.len(), "{links:?}");
    for (name, content_type) in files {
        let contents = repo_file(name);
        let (stem, extension) = name.rsplit_once('.').unwrap();
        let url = format!("/static/{stem}.{}.{extension}", content_hash(&contents));
        assert!(links.contains(&url), "{url} not linked: {links:?}");

        let (r, body) = fetch(&app, &url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
        assert_eq!(header(&r, "cache-control"), IMMUTABLE, "{url}");
        assert!(
            header(&r, "content-type").starts_with(content_type),
            "{url}: {}",
            header(&r, "content-type")
        );
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{url}");
        assert_eq!(body, contents, "{url}");
    }
}

#[tokio::test]
async fn a_hash_of_another_release_gets_the_current_file_but_not_for_keeps() {
    let app = spawn_app().await;
    let (r, body) = fetch(&app, "/static/console.0000000000000000.css", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(body, repo_file("console.css"));
}

// ------------------------------------------------------------ plain names

#[tokio::test]
async fn plain_names_are_served_with_short_caching_and_revalidation() {
    let app = spawn_app().await;
    for (path, file, content_type) in [
        (
            "/static/console.css",
            "console.css",
            "text/css; charset=utf-8",
        ),
        ("/static/app.js", "app.js", "text/javascript; charset=utf-8"),
        (
            "/static/htmx/htmx.min.js",
            "htmx/htmx.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/static/favicon.svg", "favicon.svg", "image/svg+xml"),
        ("/static/api/", "api/index.html", "text/html; charset=utf-8"),
        (
            "/static/api/api.js",
            "api/api.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/static/api/api.css",
            "api/api.css",
            "text/css; charset=utf-8",
        ),
    ] {
        let (r, body) = fetch(&app, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(header(&r, "cache-control"), "public, max-age=300", "{path}");
        assert_eq!(header(&r, "content-type"), content_type, "{path}");
        assert_eq!(body, repo_file(file), "{path}");
        let etag = header(&r, "etag").to_owned();
        assert_eq!(etag, format!("\"{}\"", content_hash(&body)), "{path}");

        let (again, body) = fetch(&app, path, Some(&etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty(), "{path}");
        assert_eq!(header(&again, "etag"), etag, "{path}");

        let (changed, _) = fetch(&app, path, Some("\"0000000000000000\"")).await;
        assert_eq!(changed.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_folder_without_its_slash_is_sent_to_it() {
    let app = spawn_app().await;
    let r = Browser::new(&app).get("/static/api").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.location(), "/static/api/");
}

#[tokio::test]
async fn unknown_files_are_not_found() {
    let app = spawn_app().await;
    for path in [
        "/static/nope.css",
        "/static/nope.0123456789abcdef.css",
        "/static/api/nope.js",
        "/static/htmx/",
        "/static/..%2FCargo.toml",
        "/static/api/..%2F..%2FCargo.toml",
    ] {
        let r = app.get(path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
}

// ------------------------------------------------------------ static_dir

#[tokio::test]
async fn static_dir_serves_that_folder_and_picks_up_edits() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let folder = parent.path().join("static");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(parent.path().join("secret.txt"), "not to be served").unwrap();
    std::fs::write(folder.join("console.css"), "body { color: rebeccapurple; }").unwrap();
    let config = idm::Config {
        static_dir: Some(folder.clone()),
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;

    // Pages link the same hashed name; it is the folder's file, revalidated.
    let page = Browser::new(&app).get("/login").await;
    let css = linked_static_urls(&page.body)
        .into_iter()
        .find(|url| url.ends_with(".css"))
        .unwrap();
    let (r, body) = fetch(&app, &css, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(body, b"body { color: rebeccapurple; }");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(header(&r, "content-type"), "text/css; charset=utf-8");

    std::fs::write(folder.join("console.css"), "body { color: teal; }").unwrap();
    let (r, body) = fetch(&app, "/static/console.css", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(body, b"body { color: teal; }");
    assert_eq!(header(&r, "cache-control"), "no-cache");

    // Only that folder: no built-in file, nothing beside it.
    for path in ["/static/app.js", "/static/..%2Fsecret.txt"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn static_dir_that_is_no_folder_falls_back_to_the_built_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = idm::Config {
        static_dir: Some(dir.path().join("no-such-folder")),
        ..test_config(&dir)
    };
    let app = spawn_app_with(dir, config).await;
    let (r, body) = fetch(&app, "/static/console.css", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "public, max-age=300");
    assert_eq!(body, repo_file("console.css"));
}

// ------------------------------------------------------------ GET /

async fn visit_root(browser: &Browser) -> Page {
    Page::from(
        browser
            .client
            .get(browser.url("/"))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn root_answers_api_clients_with_ready_whatever_the_state() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for signed_up in [false, true] {
        if signed_up {
            app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
        }
        for accept in [None, Some("*/*"), Some("application/json")] {
            let mut request = client.get(app.url("/"));
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let r = Page::from(request.send().await.unwrap()).await;
            assert_eq!(r.status, StatusCode::OK, "{accept:?}");
            assert_eq!(r.body, r#"{"status":"ready"}"#, "{accept:?}");
            assert!(header(&r, "content-type").starts_with("application/json"));
            assert_eq!(header(&r, "vary"), "accept");
            assert_eq!(r.set_cookie(), None, "{accept:?}: no session for a probe");
        }
    }
}

#[tokio::test]
async fn root_sends_a_browser_to_init_then_login_then_home() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);

    let r = visit_root(&browser).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/init");
    assert_eq!(header(&r, "vary"), "accept");

    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let r = visit_root(&browser).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");

    browser.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let r = visit_root(&browser).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/home");
}

#[tokio::test]
async fn login_points_to_init_only_while_no_admin_exists() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    let page = browser.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("No administrator exists yet"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"href="/init""#), "{}", page.body);

    app.create_user(ADMIN, ADMIN_PASSWORD, true).await;
    let page = browser.get("/login").await;
    assert!(!page.body.contains("No administrator exists yet"));
    assert!(!page.body.contains(r#"href="/init""#));
}
