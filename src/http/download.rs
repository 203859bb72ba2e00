//! Streamed CSV downloads, for the API and the console alike.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use crate::service::csv::CsvChunks;

/// The media type of every CSV answer.
pub const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// A file name for a download about `id`: characters that could trouble a
/// file system or the header become `_`.
pub fn download_name(prefix: &str, id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{id}.csv")
}

/// A streamed download named `filename`.
pub fn csv_response(chunks: CsvChunks, filename: &str) -> Response {
    let body = Body::from_stream(chunks.map_err(|e| {
        // The status was sent with the first bytes: the download is cut
        // short, and the cause is logged.
        tracing::error!(error = %e, "a CSV export stopped early");
        Box::new(e) as Box<dyn std::error::Error + Send + Sync>
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Study data: not kept by a shared cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
