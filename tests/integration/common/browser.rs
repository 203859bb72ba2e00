//! A browser-like HTTP client for page tests: its own cookie jar, no
//! redirects followed (so every 303 and Set-Cookie can be checked), and the
//! headers a same-origin page or htmx sends.

use std::sync::Arc;

use base64::Engine;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode, Url};

use super::TestApp;

/// A browser-like client: its own cookie jar, same-origin headers on posts.
pub struct Browser {
    pub base: String,
    jar: Arc<Jar>,
    pub client: Client,
    /// The page htmx names in `HX-Current-URL` on fragment requests.
    htmx_page: &'static str,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(r: Response) -> Self {
        Self {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf-token" content=""#;
        let start = self.body.find(marker).expect("page has a csrf meta tag") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The SVG inside the first `data:` QR image.
    pub fn qr_svg(&self) -> String {
        let marker = "data:image/svg+xml;base64,";
        let start = self.body.find(marker).expect("a QR image") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.body[start..end])
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.set_cookie_named("idm_session")
    }

    /// The `Set-Cookie` header of the cookie `name`, attributes included.
    pub fn set_cookie_named(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .unwrap();
        Self {
            base: app.base.clone(),
            jar,
            client,
            htmx_page: "/users",
        }
    }

    /// The same browser, as if its fragment requests came from `page`.
    pub fn on_page(self, page: &'static str) -> Self {
        Self {
            htmx_page: page,
            ..self
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The session cookie value the browser would send now.
    pub fn session_cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&Url::parse(&self.base).unwrap())?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("idm_session="))
            .map(str::to_owned)
    }

    pub async fn get(&self, path: &str) -> Page {
        Page::from(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn get_htmx(&self, path: &str, target: &str) -> Page {
        let r = self
            .client
            .get(self.url(path))
            .header("HX-Request", "true")
            .header("HX-Target", target)
            .header("HX-Current-URL", self.url(self.htmx_page))
            .send()
            .await
            .unwrap();
        Page::from(r).await
    }

    /// A form post as a same-origin browser page sends it.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(self.url(path))
            .header("Origin", &self.base)
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap();
        Page::from(r).await
    }

    /// The same post made by htmx: token in the header, fragment wanted.
    pub async fn post_htmx(&self, path: &str, csrf: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(self.url(path))
            .header("Origin", &self.base)
            .header("Sec-Fetch-Site", "same-origin")
            .header("HX-Request", "true")
            .header("X-CSRF-Token", csrf)
            .form(form)
            .send()
            .await
            .unwrap();
        Page::from(r).await
    }

    /// Signs in through the login form and returns the signed-in page's
    /// CSRF token.
    pub async fn sign_in(&self, username: &str, password: &str) -> String {
        let csrf = self.get("/login").await.csrf();
        let r = self
            .post(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.body);
        self.get("/home").await.csrf()
    }
}

pub fn assert_security_headers(page: &Page, what: &str) {
    let h = |name: &str| {
        page.headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let csp = h("content-security-policy");
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp} lacks {directive}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(!h("referrer-policy").is_empty(), "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
}

/// No inline script, event handler or inline style: the CSP blocks them.
pub fn assert_no_inline_code(page: &Page, what: &str) {
    let body = page.body.to_lowercase();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i..tag_end];
        assert!(tag.contains(" src="), "{what}: inline script {tag}");
        assert!(
            rest[tag_end + 1..].starts_with("</script>"),
            "{what}: script with a body"
        );
        rest = &rest[tag_end..];
    }
    for bad in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        " style=",
        "javascript:",
        "<style",
        "hx-on",
    ] {
        assert!(!body.contains(bad), "{what}: contains {bad}");
    }
}
