//! The one domain error type. The JSON API renders it as the error envelope
//! of SPEC section 1, the browser pages as an HTML page or fragment.

use axum::http::StatusCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// 401; the message is shown to the client.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts, try again in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected: the details are logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Gone(_) => StatusCode::GONE,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client may see. Internal details never leave the server.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "Internal server error".to_owned(),
            Error::Unavailable(_) => "Service temporarily unavailable".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Error::Internal(err.into())
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate(what) => Error::Conflict(format!("{what} already exists")),
            StoreError::Unavailable(why) => Error::Unavailable(why),
            // Kept whole so that a failure can be traced to the store.
            other @ StoreError::Other(_) => Error::Internal(other.into()),
        }
    }
}

/// Marks a response whose request failed in the database, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct StoreFailure;

impl Error {
    /// Whether the database (or its connection) failed.
    pub fn is_store_failure(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Internal(e) => e.downcast_ref::<StoreError>().is_some(),
            _ => false,
        }
    }
}
