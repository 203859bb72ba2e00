//! One conformance suite for every store implementation: the checks in
//! `checks` are written once against the store traits, and the macros at
//! the bottom run them against SQLite (a fresh file) and MongoDB (a fresh
//! database on the server in `IDM_TEST_MONGODB_URI`).
//!
//! Timestamps are whole milliseconds near the real time: that is the
//! precision every store keeps, and MongoDB's TTL monitor leaves them alone.

mod accounts;
mod checks;
mod mongodb_two_clients;

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;

/// A store plus whatever keeps its data alive until the test ends.
pub struct Fixture<S: ?Sized> {
    pub store: Arc<S>,
    _keep: Box<dyn Any + Send>,
}

async fn sqlite() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("idm.sqlite3"))
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

async fn mongodb() -> Fixture<MongoStore> {
    let db = crate::common::mongo::TestDatabase::new();
    let store = MongoStore::open(&db.uri, &db.name)
        .await
        .expect("MongoDB store opens");
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(db),
    }
}

fn base_time() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

/// Users, audits and throttling: implemented by every store.
macro_rules! core_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn users_round_trip() {
                checks::users::users_round_trip(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn concurrent_inserts_of_one_username_have_one_winner() {
                checks::users::concurrent_inserts_of_one_username_have_one_winner(
                    $open().await.store,
                )
                .await;
            }

            #[tokio::test]
            async fn first_admin_only_once() {
                checks::users::first_admin_only_once(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn no_first_admin_once_an_admin_exists() {
                checks::users::no_first_admin_once_an_admin_exists(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_first_admins_have_one_winner() {
                let f = $open().await;
                checks::users::concurrent_first_admins_have_one_winner(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn list_users_searches_literally_and_pages() {
                checks::users::list_users_searches_literally_and_pages(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn user_updates_and_last_admin_rule() {
                checks::users::user_updates_and_last_admin_rule(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn last_admin_survives_concurrent_removals() {
                let f = $open().await;
                checks::users::last_admin_survives_concurrent_removals(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn audits_keep_order_and_targets() {
                checks::audits::audits_keep_order_and_targets(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn audits_between_pages_through_a_time_range() {
                checks::audit_ranges::audits_between_pages_through_a_time_range(
                    &*$open().await.store,
                )
                .await;
            }

            #[tokio::test]
            async fn audit_chain_verifies() {
                checks::audits::audit_chain_verifies(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_appends_form_one_chain() {
                let f = $open().await;
                checks::audits::concurrent_appends_form_one_chain(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn throttle_windows() {
                checks::throttle::throttle_windows(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn old_throttle_windows_are_purged() {
                checks::throttle::old_throttle_windows_are_purged(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_throttle_hits_all_count() {
                let f = $open().await;
                checks::throttle::concurrent_throttle_hits_all_count(vec![f.store.clone()]).await;
            }

            #[tokio::test]
            async fn throttle_takes_stop_at_the_limit() {
                checks::throttle::throttle_takes_stop_at_the_limit(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn throttle_windows_are_cleared_by_prefix() {
                checks::throttle::throttle_windows_are_cleared_by_prefix(&*$open().await.store)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_takes_never_exceed_the_limit() {
                let f = $open().await;
                checks::throttle::concurrent_takes_never_exceed_the_limit(vec![f.store.clone()])
                    .await;
            }
        }
    };
}

/// Subjects, links and reset tokens.
macro_rules! study_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn subjects_round_trip_and_versions() {
                checks::subjects::subjects_round_trip_and_versions(&*$open().await.store).await;
            }

            #[tokio::test]
            async fn subject_lists_search_filter_sort_and_page() {
                checks::subjects::subject_lists_search_filter_sort_and_page(&*$open().await.store)
                    .await;
            }

            #[tokio::test]
            async fn status_filter_agrees_with_the_domain_standing() {
                checks::subjects::status_filter_agrees_with_the_domain_standing(
                    &*$open().await.store,
                )
                .await;
            }

            #[tokio::test]
            async fn not_invited_lists_subjects_with_no_step_yet() {
                checks::subjects::not_invited_lists_subjects_with_no_step_yet(
                    &*$open().await.store,
                )
                .await;
            }

            #[tokio::test]
            async fn names_sort_in_reading_order_with_ties_by_sssid() {
                checks::subjects::names_sort_in_reading_order_with_ties_by_sssid(
                    &*$open().await.store,
                )
                .await;
            }

            #[tokio::test]
            async fn links_round_trip_and_versions() {
                checks::links::links_round_trip_and_versions(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_link_replacements_have_one_winner() {
                let f = $open().await;
                checks::links::concurrent_link_replacements_have_one_winner(vec![f.store.clone()])
                    .await;
            }

            #[tokio::test]
            async fn reset_tokens_are_single_use_and_superseded() {
                checks::reset_tokens::reset_tokens_are_single_use_and_superseded(
                    &*$open().await.store,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_reset_token_takes_have_one_winner() {
                let f = $open().await;
                checks::reset_tokens::concurrent_reset_token_takes_have_one_winner(vec![
                    f.store.clone(),
                ])
                .await;
            }
        }
    };
}

/// Browser sessions (tower-sessions records).
macro_rules! session_conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn sessions_expire_and_overwrite() {
                checks::sessions::sessions_expire_and_overwrite(&*$open().await.store).await;
            }
        }
    };
}

core_conformance!(sqlite_core, sqlite);
core_conformance!(mongodb_core, mongodb);
study_conformance!(sqlite_study, sqlite);
study_conformance!(mongodb_study, mongodb);
session_conformance!(sqlite_sessions, sqlite);
session_conformance!(mongodb_sessions, mongodb);
