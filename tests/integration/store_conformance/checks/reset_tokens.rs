//! Reset tokens: single use, superseded by a newer one, and one winner
//! among concurrent takes.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use idm::store::*;
use tokio::task::JoinSet;

use crate::store_conformance::base_time;

use super::user;

fn token(hash: &str, user: &str, at: DateTime<Utc>) -> ResetTokenRecord {
    ResetTokenRecord {
        token_hash: hash.into(),
        user_id: user.into(),
        created: at,
        expires: at + Duration::hours(2),
    }
}

/// Reset tokens belong to existing users (SQLite enforces it).
async fn users_with_ids<S: UserStore + ?Sized>(store: &S, ids: &[&str]) {
    for id in ids {
        let mut u = user(&format!("{id}@example.org"), false, base_time());
        u.id = (*id).to_owned();
        store.insert_user(&u).await.unwrap();
    }
}

pub async fn reset_tokens_are_single_use_and_superseded<S: ResetTokenStore + UserStore + ?Sized>(
    store: &S,
) {
    let t = base_time();
    users_with_ids(store, &["u1", "u2"]).await;
    store.put_reset_token(&token("h1", "u1", t)).await.unwrap();
    store.put_reset_token(&token("h2", "u2", t)).await.unwrap();
    let newer = token("h1b", "u1", t + Duration::seconds(1));
    store.put_reset_token(&newer).await.unwrap();
    assert_eq!(
        store.take_reset_token("h1").await.unwrap(),
        None,
        "superseded"
    );
    assert_eq!(store.take_reset_token("h1b").await.unwrap(), Some(newer));
    assert_eq!(
        store.take_reset_token("h1b").await.unwrap(),
        None,
        "single use"
    );
    store.delete_reset_tokens_for_user("u2").await.unwrap();
    assert_eq!(store.take_reset_token("h2").await.unwrap(), None);
    assert_eq!(store.take_reset_token("never").await.unwrap(), None);
}

pub async fn concurrent_reset_token_takes_have_one_winner<
    S: ResetTokenStore + UserStore + ?Sized + 'static,
>(
    stores: Vec<Arc<S>>,
) {
    let t = base_time();
    users_with_ids(&*stores[0], &["u"]).await;
    stores[0]
        .put_reset_token(&token("once", "u", t))
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let s = stores[i % stores.len()].clone();
        tasks.spawn(async move { s.take_reset_token("once").await.unwrap().is_some() });
    }
    assert_eq!(tasks.join_all().await.into_iter().filter(|w| *w).count(), 1);
}
