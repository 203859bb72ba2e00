//! The one place an internal error is logged: the details go to the log
//! with the request id; the visitor or client reads only the id to quote.
//! Both renderers (JSON envelope and error page) use it.

use std::fmt::Display;

use crate::http::request_id::current_request_id;

/// Logs `err` and returns the generic message for a 500.
pub fn log_internal(err: &impl Display) -> String {
    let request_id = current_request_id().unwrap_or_else(|| "unknown".into());
    tracing::error!(request_id = %request_id, error = %err, "internal error");
    internal_error_message(&request_id)
}

/// The public message of a 500: nothing but the request id.
pub fn internal_error_message(request_id: &str) -> String {
    format!("Internal server error (request id {request_id})")
}
