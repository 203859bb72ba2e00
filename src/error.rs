//! The one domain error type. The JSON API renders it as the error envelope
//! of SPEC section 1, the browser pages as an HTML page or fragment.

use axum::http::StatusCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// 400 for values that break a rule, each with the request field it
    /// concerns, so a page can show every message next to its field. The
    /// JSON envelope's `message` is the messages joined, which for one
    /// field is the same text clients always got.
    #[error("{}", FieldError::joined(.0))]
    Invalid(Vec<FieldError>),
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
            Error::BadRequest(_) | Error::Invalid(_) => StatusCode::BAD_REQUEST,
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

    /// A value of one field breaks a rule.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// This error with the field errors of `other` added, so that a
    /// request hears of every broken rule at once.
    pub fn with<T>(self, other: Result<T>) -> Self {
        match (self, other) {
            (Error::Invalid(mut fields), Err(Error::Invalid(more))) => {
                fields.extend(more);
                Error::Invalid(fields)
            }
            (this, _) => this,
        }
    }

    /// The fields this error is about, with their messages; empty for
    /// errors that concern the request as a whole.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

/// One field's broken rule: the field as the API names it (`sssid`, `bday`,
/// `username`...) and the API's message about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn joined(errors: &[FieldError]) -> String {
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        messages.join("; ")
    }
}

/// Checks several fields and reports every broken rule at once, instead of
/// only the first.
#[derive(Debug, Default)]
pub struct Validation {
    fields: Vec<FieldError>,
    /// An error that is not about a field ends the request as it is.
    other: Option<Error>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value when `result` holds one; otherwise notes the problem.
    pub fn check<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Invalid(fields)) => {
                self.fields.extend(fields);
                None
            }
            Err(other) => {
                self.other.get_or_insert(other);
                None
            }
        }
    }

    /// Notes a field problem found by the caller.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.fields.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Ok` when every check passed.
    pub fn finish(self) -> Result<()> {
        match (self.other, self.fields.is_empty()) {
            (Some(other), _) => Err(other),
            (None, true) => Ok(()),
            (None, false) => Err(Error::Invalid(self.fields)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invalid_field_reads_as_its_message() {
        let error = Error::invalid("sssid", "sssid is required");
        assert_eq!(error.to_string(), "sssid is required");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.field_errors()[0].field, "sssid");
    }

    #[test]
    fn a_validation_reports_every_broken_field() {
        let mut validation = Validation::new();
        let name: Option<u8> = validation.check(Err(Error::invalid("name", "name is required")));
        assert_eq!(name, None);
        assert_eq!(validation.check(Ok(7)), Some(7));
        validation.add("bday", "bday must be a date like 1980-12-31, got \"\"");
        let error = validation.finish().unwrap_err();
        let fields: Vec<&str> = error
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["name", "bday"]);
        assert_eq!(
            error.to_string(),
            "name is required; bday must be a date like 1980-12-31, got \"\""
        );
        assert!(Validation::new().finish().is_ok());
    }

    #[test]
    fn an_error_not_about_a_field_wins() {
        let mut validation = Validation::new();
        validation.check::<()>(Err(Error::invalid("name", "name is required")));
        validation.check::<()>(Err(Error::Forbidden("no".into())));
        assert!(matches!(validation.finish(), Err(Error::Forbidden(_))));
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
