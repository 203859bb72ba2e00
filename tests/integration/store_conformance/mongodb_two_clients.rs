//! The same races between two independent MongoDB clients on one database,
//! as two `idm serve` instances behind a load balancer would run them.

use std::sync::Arc;

use idm::store::mongo::MongoStore;

use super::checks;

async fn two_clients() -> (Vec<Arc<MongoStore>>, crate::common::mongo::TestDatabase) {
    let db = crate::common::mongo::TestDatabase::new();
    let a = MongoStore::open(&db.uri, &db.name).await.unwrap();
    let b = MongoStore::open(&db.uri, &db.name).await.unwrap();
    (vec![Arc::new(a), Arc::new(b)], db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_admins_have_one_winner() {
    let (stores, _db) = two_clients().await;
    checks::users::concurrent_first_admins_have_one_winner(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_admin_survives_concurrent_removals() {
    let (stores, _db) = two_clients().await;
    checks::users::last_admin_survives_concurrent_removals(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_throttle_hits_all_count() {
    let (stores, _db) = two_clients().await;
    checks::throttle::concurrent_throttle_hits_all_count(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takes_never_exceed_the_limit() {
    let (stores, _db) = two_clients().await;
    checks::throttle::concurrent_takes_never_exceed_the_limit(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_link_replacements_have_one_winner() {
    let (stores, _db) = two_clients().await;
    checks::links::concurrent_link_replacements_have_one_winner(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reset_token_takes_have_one_winner() {
    let (stores, _db) = two_clients().await;
    checks::reset_tokens::concurrent_reset_token_takes_have_one_winner(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_one_chain() {
    let (stores, _db) = two_clients().await;
    checks::audits::concurrent_appends_form_one_chain(stores).await;
}
