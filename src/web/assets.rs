//! The console's static files (`static/`): built into the binary, so
//! `idm serve` finds them from any working directory, and served under
//! content-hashed names that browsers may keep for a year.
//!
//! - `/static/console.<hash>.css`: the name pages link to ([`url`]), where
//!   `<hash>` is the start of the file's SHA-256. A new build with other
//!   contents has another name, so the old one never needs to expire.
//! - `/static/console.css`: the plain name, for the API page
//!   (`/static/api/`) and older clients; cached briefly.
//!
//! `static_dir` set to an existing folder serves that folder instead (for
//! editing CSS without rebuilding): everything is revalidated on each use
//! there, since the files may change under the same name.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::config::Config;
use crate::error::Error;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Embedded;

/// Hex digits of the SHA-256 in a hashed name: 64 bits tell a file's
/// versions apart.
const HASH_CHARS: usize = 16;

/// For hashed names of the built-in files: their contents never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For plain names: the file may change with the next release.
const SHORT: &str = "public, max-age=300";
/// For files read from `static_dir`, which may change at any time.
const REVALIDATE: &str = "no-cache";

/// The URL of the static file `name` (a path inside `static/`, e.g.
/// `htmx/htmx.min.js`): its hashed name when built in, else the plain one.
pub fn url(name: &str) -> String {
    match Embedded::get(name) {
        Some(file) => format!(
            "/static/{}",
            hashed_name(name, &short_hash(&file.metadata.sha256_hash()))
        ),
        None => format!("/static/{name}"),
    }
}

fn short_hash(sha256: &[u8]) -> String {
    let mut hex = hex::encode(sha256);
    hex.truncate(HASH_CHARS);
    hex
}

/// `dir/name.ext` → `dir/name.<hash>.ext`; without an extension the hash
/// is appended.
fn hashed_name(name: &str, hash: &str) -> String {
    let file_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[file_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let dot = file_start + dot;
            format!("{}.{hash}{}", &name[..dot], &name[dot..])
        }
        _ => format!("{name}.{hash}"),
    }
}

/// The plain name and the hash of a hashed name, if `path` is one.
fn split_hash(path: &str) -> Option<(String, &str)> {
    let file_start = path.rfind('/').map_or(0, |i| i + 1);
    let file = &path[file_start..];
    let is_hash = |s: &str| {
        s.len() == HASH_CHARS
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // name.<hash>.ext
    if let Some((rest, ext)) = file.rsplit_once('.')
        && let Some((stem, hash)) = rest.rsplit_once('.')
        && !stem.is_empty()
        && is_hash(hash)
    {
        return Some((format!("{}{stem}.{ext}", &path[..file_start]), hash));
    }
    // name.<hash>
    let (stem, hash) = file.rsplit_once('.')?;
    (!stem.is_empty() && is_hash(hash)).then(|| (format!("{}{stem}", &path[..file_start]), hash))
}

/// Where the files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticFiles {
    /// The copy built into the binary (the default).
    Embedded,
    /// A folder on disk (`static_dir`), read on every request.
    Folder(PathBuf),
}

impl StaticFiles {
    /// `static_dir` when it names an existing folder, else the built-in copy.
    pub fn from_config(config: &Config) -> Self {
        match config
            .static_dir
            .as_deref()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            Some(dir) if dir.is_dir() => {
                tracing::info!(static_dir = %dir.display(), "serving the console's static files from disk");
                Self::Folder(dir.to_path_buf())
            }
            Some(dir) => {
                tracing::warn!(static_dir = %dir.display(), "static_dir is not a folder; serving the built-in static files");
                Self::Embedded
            }
            None => Self::Embedded,
        }
    }

    /// The file's contents and its content hash (for the ETag).
    async fn read(&self, path: &str) -> Option<(Cow<'static, [u8]>, String)> {
        match self {
            Self::Embedded => Embedded::get(path).map(|file| {
                let hash = short_hash(&file.metadata.sha256_hash());
                (file.data, hash)
            }),
            Self::Folder(dir) => {
                let file = dir.join(path);
                if !tokio::fs::metadata(&file).await.ok()?.is_file() {
                    return None;
                }
                let body = tokio::fs::read(&file).await.ok()?;
                let hash = short_hash(&Sha256::digest(&body));
                Some((Cow::Owned(body), hash))
            }
        }
    }

    async fn is_folder(&self, path: &str) -> bool {
        match self {
            Self::Embedded => Embedded::get(&format!("{path}/index.html")).is_some(),
            Self::Folder(dir) => tokio::fs::metadata(dir.join(path))
                .await
                .is_ok_and(|m| m.is_dir()),
        }
    }
}

/// The `/static/...` routes.
pub fn router(files: StaticFiles) -> axum::Router<AppState> {
    Router::new()
        .route("/static/{*path}", get(serve))
        .with_state(Arc::new(files))
}

/// A relative path of plain names: no `..`, `.`, empty or absolute parts,
/// no backslashes or control characters (the folder is read from disk).
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.contains('\\')
                && !part.chars().any(char::is_control)
        })
}

async fn serve(
    State(files): State<Arc<StaticFiles>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    // A folder's page, as `/static/api/`.
    let path = if path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path
    };
    if !is_safe(&path) {
        return Error::NotFound("Not found".into()).into_response();
    }
    if let Some(file) = files.read(&path).await {
        let caching = match *files {
            StaticFiles::Embedded => SHORT,
            StaticFiles::Folder(_) => REVALIDATE,
        };
        return file_response(&path, file, caching, &headers);
    }
    if let Some((name, hash)) = split_hash(&path)
        && let Some(file) = files.read(&name).await
    {
        // Another hash (a page of another release, as in a rolling update)
        // still gets the file, but not for keeps; so does every file read
        // from disk, whose hash in the page is the built-in copy's.
        let caching = match *files {
            StaticFiles::Embedded if file.1 == hash => IMMUTABLE,
            _ => REVALIDATE,
        };
        return file_response(&name, file, caching, &headers);
    }
    if files.is_folder(&path).await {
        return Redirect::permanent(&format!("/static/{path}/")).into_response();
    }
    Error::NotFound("Not found".into()).into_response()
}

fn file_response(
    name: &str,
    (body, hash): (Cow<'static, [u8]>, String),
    caching: &'static str,
    request: &HeaderMap,
) -> Response {
    let etag = format!("\"{hash}\"");
    let mut response = if if_none_match(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(caching));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&content_type(Path::new(name))) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Whether the browser's copy (`If-None-Match`) is the current one.
fn if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text =
        mime.type_() == mime_guess::mime::TEXT || mime.essence_str() == "application/javascript";
    if text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_go_back_to_their_file() {
        let hash = "0123456789abcdef";
        for (name, hashed) in [
            ("app.js", "app.0123456789abcdef.js"),
            ("htmx/htmx.min.js", "htmx/htmx.min.0123456789abcdef.js"),
            ("htmx/LICENSE", "htmx/LICENSE.0123456789abcdef"),
            (".hidden", ".hidden.0123456789abcdef"),
        ] {
            assert_eq!(hashed_name(name, hash), hashed);
            assert_eq!(split_hash(hashed), Some((name.to_owned(), hash)));
        }
        for plain in [
            "app.js",
            "htmx/htmx.min.js",
            "app.0123456789ABCDEF.js",
            "app.0123456789abcde.js",
            ".0123456789abcdef",
        ] {
            assert_eq!(split_hash(plain), None, "{plain}");
        }
    }

    #[test]
    fn the_pages_files_are_built_in_under_their_hash() {
        for name in ["console.css", "app.js", "htmx/htmx.min.js", "favicon.svg"] {
            let url = url(name);
            let (plain, hash) = split_hash(url.strip_prefix("/static/").unwrap()).unwrap();
            assert_eq!(plain, name);
            let on_disk = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("static")
                    .join(name),
            )
            .unwrap();
            assert_eq!(hash, short_hash(&Sha256::digest(&on_disk)), "{name}");
        }
        assert_eq!(url("not-there.js"), "/static/not-there.js");
    }

    #[test]
    fn only_plain_relative_paths_are_read() {
        for good in ["app.js", "api/index.html", "htmx/htmx.min.js"] {
            assert!(is_safe(good), "{good}");
        }
        for bad in [
            "",
            "../Cargo.toml",
            "api/../../x",
            "/etc/passwd",
            "a//b",
            "./app.js",
            "a\\b",
            "a\nb",
        ] {
            assert!(!is_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn text_types_name_their_charset() {
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=utf-8");
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert!(content_type(Path::new("a.js")).ends_with("javascript; charset=utf-8"));
        assert_eq!(content_type(Path::new("a.svg")), "image/svg+xml");
        assert_eq!(
            content_type(Path::new("LICENSE")),
            "application/octet-stream"
        );
    }
}
