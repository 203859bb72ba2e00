//! Optimistic read-modify-write of versioned records (subjects, links):
//! read, decide from what was read, and write only if nobody wrote in
//! between (the version check of the stores' `replace_*`), else read again.
//! This keeps set-once fields set once and lets exactly one of concurrent
//! writers win, without a lock, on one instance or many.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::store::{LinkRecord, Store, StoreResult, SubjectRecord};

/// How often an optimistic write is retried after losing a race before the
/// caller is told to try again. Races need a concurrent writer of the same
/// record, so a handful of rounds is plenty.
pub(crate) const MAX_WRITE_ATTEMPTS: usize = 16;

pub(crate) fn concurrent_change() -> Error {
    Error::Conflict("the record was changed by someone else at the same time; try again".into())
}

/// A record with an optimistic-concurrency counter, and how its store reads
/// it and replaces it conditionally.
#[async_trait]
pub(crate) trait Versioned: Sized + Send + Sync {
    fn version(&self) -> i64;
    fn set_version(&mut self, version: i64);
    async fn read(store: &dyn Store, key: &str) -> StoreResult<Option<Self>>;
    /// Writes `self` only if the stored version is still `expected`.
    async fn replace(&self, store: &dyn Store, expected: i64) -> StoreResult<bool>;
}

#[async_trait]
impl Versioned for SubjectRecord {
    fn version(&self) -> i64 {
        self.version
    }

    fn set_version(&mut self, version: i64) {
        self.version = version;
    }

    async fn read(store: &dyn Store, sssid: &str) -> StoreResult<Option<Self>> {
        store.subject(sssid).await
    }

    async fn replace(&self, store: &dyn Store, expected: i64) -> StoreResult<bool> {
        store.replace_subject(self, expected).await
    }
}

#[async_trait]
impl Versioned for LinkRecord {
    fn version(&self) -> i64 {
        self.version
    }

    fn set_version(&mut self, version: i64) {
        self.version = version;
    }

    async fn read(store: &dyn Store, id: &str) -> StoreResult<Option<Self>> {
        store.link(id).await
    }

    async fn replace(&self, store: &dyn Store, expected: i64) -> StoreResult<bool> {
        store.replace_link(self, expected).await
    }
}

/// What one attempt decided from the record it read.
pub(crate) enum Edit<R, K, W> {
    /// Nothing to write; `K` is the answer.
    Unchanged(K),
    /// Write `next` (its version is set by [`edit`]); `then` is what the
    /// caller needs once it is written (audit texts, dates to derive).
    Write { next: R, then: W },
}

/// Reads the record `key` (`missing()` if there is none), lets `decide`
/// answer or propose the next record, and writes it if nobody wrote in
/// between; a lost race reads and decides again. Returns the decision that
/// was carried out: `Unchanged`, or `Write` with `next` as stored.
/// `decide` may be called several times, so it must not have effects
/// beyond reading; a decision that needs no I/O is wrapped in
/// [`std::future::ready`].
pub(crate) async fn edit<R, K, W, F>(
    store: &dyn Store,
    key: &str,
    missing: fn() -> Error,
    mut decide: impl FnMut(R) -> F,
) -> Result<Edit<R, K, W>>
where
    R: Versioned,
    F: Future<Output = Result<Edit<R, K, W>>>,
{
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let current = R::read(store, key).await?.ok_or_else(missing)?;
        let expected = current.version();
        match decide(current).await? {
            Edit::Write { mut next, then } => {
                next.set_version(expected + 1);
                if next.replace(store, expected).await? {
                    return Ok(Edit::Write { next, then });
                }
            }
            unchanged @ Edit::Unchanged(_) => return Ok(unchanged),
        }
    }
    Err(concurrent_change())
}
