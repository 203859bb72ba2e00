//! The integration tests, one binary: the real server on port 0 against a
//! fresh SQLite file per test (or MongoDB with `IDM_TEST_BACKEND=mongodb`),
//! driven over real HTTP. One module per area; `common` is the harness.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap fails the test with its message

mod common;

mod accounts;
mod cli;
mod data;
mod mongo;
mod openapi;
mod operations;
mod perf;
mod properties;
mod records;
mod recovery;
mod screens;
mod session_end;
mod smoke;
mod static_files;
mod store_conformance;
mod study;
mod subject_lists;
mod web;
