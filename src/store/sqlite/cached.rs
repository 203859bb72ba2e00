//! Statements from each connection's prepared-statement cache. Parsing and
//! planning a statement costs about as much as running one of our
//! single-row queries, and the hot paths (the user behind every staff
//! token, a subject by sssid, audit inserts) run the same few statements
//! over and over.

use rusqlite::{Connection, Params, Result, Row};

pub(crate) trait CachedStatements {
    /// `Connection::execute` with a cached statement.
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> Result<usize>;
    /// `Connection::query_row` with a cached statement.
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>;
}

impl CachedStatements for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
