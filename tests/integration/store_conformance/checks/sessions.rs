//! Browser session records: they expire and are overwritten.

use chrono::Duration;
use idm::store::*;

use crate::store_conformance::base_time;

pub async fn sessions_expire_and_overwrite<S: SessionRecordStore + ?Sized>(store: &S) {
    let t = base_time();
    let session = |id: &str, data: &str, expires| SessionRecord {
        id: id.into(),
        data: data.into(),
        expires,
    };
    let a = session("a", r#"{"user":"1"}"#, t + Duration::minutes(30));
    store.create_session(&a).await.unwrap();
    assert!(matches!(
        store.create_session(&session("a", "{}", t)).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(store.load_session("a", t).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store
            .load_session("a", t + Duration::minutes(30))
            .await
            .unwrap(),
        None,
        "expired at its expiry time"
    );
    let a2 = session("a", r#"{"user":"2"}"#, t + Duration::hours(1));
    store.save_session(&a2).await.unwrap();
    assert_eq!(store.load_session("a", t).await.unwrap(), Some(a2));
    let b = session("b", "{}", t + Duration::minutes(1));
    store.save_session(&b).await.unwrap();
    assert_eq!(store.load_session("b", t).await.unwrap(), Some(b));
    store
        .save_session(&session("c", "{}", t + Duration::minutes(2)))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_expired_sessions(t + Duration::minutes(5))
            .await
            .unwrap(),
        2
    );
    assert!(store.load_session("a", t).await.unwrap().is_some());
    store.delete_session("a").await.unwrap();
    assert_eq!(store.load_session("a", t).await.unwrap(), None);
    store.delete_session("never").await.unwrap();
}
