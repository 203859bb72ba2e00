//! What a driver error means for the service: a duplicate, a database that
//! cannot be used right now (`503`, worth retrying), or a bug (`500`).
//!
//! During a failover the server answers with "not primary" or "interrupted"
//! codes; when the driver's one automatic retry also fails (or the
//! operation is not retryable) those errors reach us, sometimes without the
//! `RetryableWriteError` label. They are all "unavailable": the request may
//! be repeated once a primary is elected.

use mongodb::error::{Error, ErrorKind, WriteFailure};

use crate::store::StoreError;

/// The MongoDB error code of a unique index violation.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// The MongoDB error code for a collection that does not exist.
pub(crate) const NAMESPACE_NOT_FOUND: i32 = 26;

/// Server codes that say "this server cannot serve the operation now":
/// not the primary (any more), stepping down, shutting down, recovering,
/// unreachable peers, a write concern or time limit not met in time.
/// From the server's error_codes.yml and the drivers' SDAM and retryable
/// reads/writes specifications.
const UNAVAILABLE_CODES: &[(i32, &str)] = &[
    (6, "HostUnreachable"),
    (7, "HostNotFound"),
    (50, "MaxTimeMSExpired"),
    (64, "WriteConcernFailed"),
    (89, "NetworkTimeout"),
    (91, "ShutdownInProgress"),
    (133, "FailedToSatisfyReadPreference"),
    (134, "ReadConcernMajorityNotAvailableYet"),
    (189, "PrimarySteppedDown"),
    (262, "ExceededTimeLimit"),
    (9001, "SocketException"),
    (10058, "LegacyNotPrimary"),
    (10107, "NotWritablePrimary"),
    (11600, "InterruptedAtShutdown"),
    (11602, "InterruptedDueToReplStateChange"),
    (13435, "NotPrimaryNoSecondaryOk"),
    (13436, "NotPrimaryOrSecondary"),
];

/// Labels the server or driver put on errors worth retrying.
const RETRY_LABELS: &[&str] = &[
    "RetryableWriteError",
    "TransientTransactionError",
    "RetryableError",
    "SystemOverloadedError",
];

/// Maps driver errors onto the store's error kinds: unique-index violations
/// become `Duplicate`, anything that says the server cannot be used right
/// now becomes `Unavailable`, the rest `Other`. Never panics.
pub(crate) fn classify(err: Error) -> StoreError {
    if is_duplicate_key(&err) {
        // The server's message names the duplicated value; callers name
        // what was duplicated in words a client may see.
        return StoreError::Duplicate("record".into());
    }
    if let Some(why) = unavailable(&err) {
        return StoreError::Unavailable(why);
    }
    StoreError::Other(anyhow::Error::new(err).context("mongodb"))
}

fn is_duplicate_key(err: &Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .iter()
            .flatten()
            .any(|w| w.code == DUPLICATE_KEY),
        _ => false,
    }
}

/// Why the database cannot be used right now, if that is what `err` says.
fn unavailable(err: &Error) -> Option<String> {
    let why = match err.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => {
            "mongodb: no usable server (server selection timed out)".to_owned()
        }
        ErrorKind::Io(e) => format!("mongodb: network error: {e}"),
        ErrorKind::ConnectionPoolCleared { .. } => {
            "mongodb: connection to the server was lost".to_owned()
        }
        ErrorKind::DnsResolve { message, .. } => {
            format!("mongodb: cannot resolve the server name: {message}")
        }
        ErrorKind::Authentication { .. } => {
            "mongodb: authentication failed; check the user, password and authSource in database_url"
                .to_owned()
        }
        ErrorKind::Shutdown => "mongodb: the client is shutting down".to_owned(),
        _ => {
            if let Some((code, name)) = unavailable_code(err) {
                format!("mongodb: {name} ({code}): {err}")
            } else if RETRY_LABELS.iter().any(|label| err.contains_label(label)) {
                format!("mongodb: transient error: {err}")
            } else {
                // A retried operation reports its last error; the first
                // may be the telling one.
                let source = std::error::Error::source(err)?.downcast_ref::<Error>()?;
                return unavailable(source);
            }
        }
    };
    Some(why)
}

/// The failover code in `err`: a command's code, or a write-concern error's
/// (write errors proper carry document-level codes such as duplicates).
fn unavailable_code(err: &Error) -> Option<(i32, &'static str)> {
    let code = match err.kind.as_ref() {
        ErrorKind::Command(e) => e.code,
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => e.code,
        ErrorKind::InsertMany(e) => e.write_concern_error.as_ref()?.code,
        ErrorKind::BulkWrite(e) => e.write_concern_errors.first()?.code,
        _ => return None,
    };
    UNAVAILABLE_CODES
        .iter()
        .find(|(known, _)| *known == code)
        .copied()
}

/// Runs an idempotent multi-document write (a `delete_many` or
/// `update_many`) once more when a failover interrupted it: the driver
/// retries only single-document writes by itself.
pub(crate) async fn retry_idempotent<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    match write().await.map_err(classify) {
        Err(StoreError::Unavailable(why)) => {
            tracing::info!(error = %why, "retrying an idempotent write once");
            write().await.map_err(classify)
        }
        done => done,
    }
}

pub(crate) fn is_missing_collection(err: &Error) -> bool {
    matches!(err.kind.as_ref(), ErrorKind::Command(c) if c.code == NAMESPACE_NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{Document, doc, from_document};
    use mongodb::error::{CommandError, WriteConcernError, WriteError};

    fn command(code: i32) -> Error {
        let e: CommandError =
            from_document(doc! { "code": code, "codeName": "X", "errmsg": "m" }).unwrap();
        Error::from(ErrorKind::Command(e))
    }

    fn write_concern(reply: Document) -> Error {
        let e: WriteConcernError = from_document(reply).unwrap();
        Error::from(ErrorKind::Write(WriteFailure::WriteConcernError(e)))
    }

    fn is_unavailable(err: Error) -> bool {
        matches!(classify(err), StoreError::Unavailable(_))
    }

    #[test]
    fn failover_codes_without_labels_are_unavailable() {
        for code in [10107, 13435, 11602, 189, 91, 11600, 13436, 10058, 262, 50] {
            assert!(is_unavailable(command(code)), "code {code}");
        }
        let timeout = write_concern(
            doc! { "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out" },
        );
        assert!(is_unavailable(timeout));
        let stepped_down = write_concern(doc! { "code": 189, "errmsg": "stepped down" });
        assert!(is_unavailable(stepped_down));
    }

    #[test]
    fn retry_labels_make_any_code_unavailable() {
        let labelled = write_concern(
            doc! { "code": 12345, "errmsg": "m", "errorLabels": ["RetryableWriteError"] },
        );
        assert!(is_unavailable(labelled));
    }

    #[test]
    fn network_failures_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_unavailable(Error::from(io)));
    }

    #[test]
    fn duplicates_and_bugs_are_not_unavailable() {
        assert!(matches!(
            classify(command(DUPLICATE_KEY)),
            StoreError::Duplicate(_)
        ));
        let e: WriteError = from_document(doc! { "code": DUPLICATE_KEY, "errmsg": "dup" }).unwrap();
        let dup = Error::from(ErrorKind::Write(WriteFailure::WriteError(e)));
        assert!(matches!(classify(dup), StoreError::Duplicate(_)));
        // A bad query (e.g. an invalid regex) is a bug: 500, not 503.
        assert!(matches!(classify(command(2)), StoreError::Other(_)));
        assert!(matches!(classify(command(51091)), StoreError::Other(_)));
        // A write error proper with a failover-looking code is about the
        // document, not the server.
        let e: WriteError = from_document(doc! { "code": 10107, "errmsg": "x" }).unwrap();
        let document_level = Error::from(ErrorKind::Write(WriteFailure::WriteError(e)));
        assert!(matches!(classify(document_level), StoreError::Other(_)));
    }
}
