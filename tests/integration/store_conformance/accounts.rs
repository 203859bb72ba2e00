//! Conformance of the account lifecycle store (`AccountStore`) on SQLite
//! and MongoDB: roles and states with the last-active-admin rule, single
//! use of TOTP steps and recovery codes, and sessions found by their user.
//! Also how records written before these fields existed read back.
use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use idm::domain::{AccountState, Role};
use idm::store::mongo::MongoStore;
use idm::store::sqlite::SqliteStore;
use idm::store::*;

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
    let store = MongoStore::open(&db.uri, &db.name).await.unwrap();
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(db),
    }
}

fn base_time() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

mod checks {
    use super::*;

    pub fn account(name: &str, role: Role, state: AccountState) -> AccountRecord {
        let at = base_time();
        AccountRecord {
            user: UserRecord {
                id: format!("id-{name}"),
                username: name.to_owned(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                admin: role == Role::Admin,
                token_version: 0,
                created: at,
                changed: at,
                last_login: None,
            },
            role,
            state,
            totp: None,
        }
    }

    fn change() -> AccountChange {
        AccountChange::at(base_time() + Duration::seconds(1))
    }

    async fn done<S: AccountStore + ?Sized>(
        store: &S,
        name: &str,
        change: &AccountChange,
    ) -> AccountRecord {
        match store.change_account(name, change).await.unwrap() {
            AccountWriteOutcome::Done(a) => a,
            other => panic!("{name}: {other:?}"),
        }
    }

    pub async fn accounts_round_trip_and_list<S: Store + ?Sized>(store: &S) {
        let monitor = account("mon@example.org", Role::Monitor, AccountState::Invited);
        store.insert_account(&monitor).await.unwrap();
        assert!(matches!(
            store.insert_account(&monitor).await,
            Err(StoreError::Duplicate(_))
        ));
        assert_eq!(
            store.account_by_username("mon@example.org").await.unwrap(),
            Some(monitor.clone())
        );
        assert_eq!(
            store.account_by_id("id-mon@example.org").await.unwrap(),
            Some(monitor.clone())
        );
        // A user inserted the old way is an active account of its flag's role.
        let old = account("old@example.org", Role::Admin, AccountState::Active);
        store.insert_user(&old.user).await.unwrap();
        let read = store
            .account_by_username("old@example.org")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, old);
        let page = store
            .list_accounts(&UserQuery {
                search: Some("o".into()),
                offset: 0,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items, vec![monitor, old]);
        // An invited admin is no admin that keeps the system running.
        assert!(store.admin_exists().await.unwrap());
    }

    pub async fn roles_and_states_with_the_last_active_admin_rule<S: Store + ?Sized>(store: &S) {
        for a in [
            account("a@example.org", Role::Admin, AccountState::Active),
            account("b@example.org", Role::Admin, AccountState::Disabled),
            account("c@example.org", Role::Admin, AccountState::Invited),
            account("s@example.org", Role::Staff, AccountState::Active),
        ] {
            store.insert_account(&a).await.unwrap();
        }
        // Disabled and invited admins do not count: a stays.
        for refused in [
            AccountChange {
                state: Some(AccountState::Disabled),
                ..change()
            },
            AccountChange {
                role: Some(Role::Monitor),
                ..change()
            },
        ] {
            assert_eq!(
                store
                    .change_account("a@example.org", &refused)
                    .await
                    .unwrap(),
                AccountWriteOutcome::LastAdmin
            );
        }
        assert_eq!(
            store.delete_user("a@example.org").await.unwrap(),
            UserWriteOutcome::LastAdmin
        );
        assert_eq!(
            store
                .update_user(
                    "a@example.org",
                    &UserUpdate {
                        admin: Some(false),
                        password_hash: None,
                        revoke_tokens: false,
                        changed: base_time(),
                    }
                )
                .await
                .unwrap(),
            UserWriteOutcome::LastAdmin
        );
        // Once b is active again, a may be disabled and b demoted no more.
        let b = done(
            store,
            "b@example.org",
            &AccountChange {
                state: Some(AccountState::Active),
                ..change()
            },
        )
        .await;
        assert!(b.is_active_admin());
        let a = done(
            store,
            "a@example.org",
            &AccountChange {
                state: Some(AccountState::Disabled),
                revoke_tokens: true,
                ..change()
            },
        )
        .await;
        assert_eq!((a.state, a.user.token_version), (AccountState::Disabled, 1));
        assert_eq!(
            store
                .change_account(
                    "b@example.org",
                    &AccountChange {
                        role: Some(Role::Staff),
                        ..change()
                    }
                )
                .await
                .unwrap(),
            AccountWriteOutcome::LastAdmin
        );
        // Staff become monitors and back; the admin flag follows the role.
        let s = done(
            store,
            "s@example.org",
            &AccountChange {
                role: Some(Role::Monitor),
                ..change()
            },
        )
        .await;
        assert_eq!((s.role, s.user.admin), (Role::Monitor, false));
        let s = store
            .user_by_username("s@example.org")
            .await
            .unwrap()
            .unwrap();
        assert!(!s.admin);
        // The old-style update keeps a monitor a monitor, and an admin it
        // demotes becomes staff.
        let old_style = |admin| UserUpdate {
            admin: Some(admin),
            password_hash: None,
            revoke_tokens: false,
            changed: base_time(),
        };
        store
            .update_user("s@example.org", &old_style(false))
            .await
            .unwrap();
        let read = |name: &'static str| async move {
            store.account_by_username(name).await.unwrap().unwrap()
        };
        assert_eq!(read("s@example.org").await.role, Role::Monitor);
        store
            .update_user("s@example.org", &old_style(true))
            .await
            .unwrap();
        assert_eq!(read("s@example.org").await.role, Role::Admin);
        store
            .update_user("s@example.org", &old_style(false))
            .await
            .unwrap();
        assert_eq!(read("s@example.org").await.role, Role::Staff);
        assert_eq!(
            store
                .change_account("nobody@example.org", &change())
                .await
                .unwrap(),
            AccountWriteOutcome::NotFound
        );
    }

    pub async fn totp_steps_and_recovery_codes_work_once<S: Store + ?Sized>(store: &S) {
        let a = account("t@example.org", Role::Staff, AccountState::Active);
        store.insert_account(&a).await.unwrap();
        let id = a.user.id.as_str();
        assert!(!store.take_totp_step(id, 5).await.unwrap(), "no factor yet");
        let enrol = AccountChange {
            totp: Some(Some(TotpRecord {
                sealed_secret: "v1:sealed".into(),
                confirmed: false,
                last_step: None,
            })),
            recovery_hashes: Some(vec!["h1".into(), "h2".into()]),
            ..change()
        };
        let enrolled = done(store, "t@example.org", &enrol).await;
        assert_eq!(enrolled.totp.as_ref().unwrap().last_step, None);
        assert_eq!(store.recovery_codes_left(id).await.unwrap(), 2);
        assert!(store.take_totp_step(id, 5).await.unwrap());
        assert!(!store.take_totp_step(id, 5).await.unwrap(), "same step");
        assert!(!store.take_totp_step(id, 4).await.unwrap(), "earlier step");
        assert!(store.take_totp_step(id, 6).await.unwrap());
        let read = store.account_by_id(id).await.unwrap().unwrap();
        assert_eq!(read.totp.unwrap().last_step, Some(6));
        assert!(store.take_recovery_code(id, "h1").await.unwrap());
        assert!(!store.take_recovery_code(id, "h1").await.unwrap());
        assert!(!store.take_recovery_code(id, "nope").await.unwrap());
        assert_eq!(store.recovery_codes_left(id).await.unwrap(), 1);
        // Concurrent uses of one step and one code: one winner each.
        let (x, y) = futures::join!(store.take_totp_step(id, 9), store.take_totp_step(id, 9));
        assert!(x.unwrap() ^ y.unwrap());
        let (x, y) = futures::join!(
            store.take_recovery_code(id, "h2"),
            store.take_recovery_code(id, "h2")
        );
        assert!(x.unwrap() ^ y.unwrap());
        // A new enrolment replaces the codes; removal clears everything.
        done(store, "t@example.org", &enrol).await;
        assert_eq!(store.recovery_codes_left(id).await.unwrap(), 2);
        let removed = done(
            store,
            "t@example.org",
            &AccountChange {
                totp: Some(None),
                ..change()
            },
        )
        .await;
        assert_eq!(removed.totp, None);
        assert_eq!(store.recovery_codes_left(id).await.unwrap(), 0);
        assert!(!store.take_totp_step(id, 100).await.unwrap());
    }

    pub async fn sessions_are_found_by_their_user<S: Store + ?Sized>(store: &S) {
        let now = base_time();
        let session = |id: &str, user: Option<&str>, expires: DateTime<Utc>| SessionRecord {
            id: id.into(),
            data: match user {
                Some(u) => {
                    format!(r#"{{"auth":{{"user_id":"{u}","token_version":0}},"csrf":"x"}}"#)
                }
                None => r#"{"csrf":"x"}"#.into(),
            },
            expires,
        };
        let later = now + Duration::minutes(30);
        store
            .create_session(&session("s1", Some("u1"), later))
            .await
            .unwrap();
        store
            .create_session(&session("s2", Some("u1"), later + Duration::minutes(1)))
            .await
            .unwrap();
        store
            .create_session(&session("s3", Some("u2"), later))
            .await
            .unwrap();
        store
            .create_session(&session("s4", None, later))
            .await
            .unwrap();
        store
            .create_session(&session("old", Some("u1"), now - Duration::minutes(1)))
            .await
            .unwrap();
        let ids = |sessions: Vec<SessionRecord>| -> Vec<String> {
            sessions.into_iter().map(|s| s.id).collect()
        };
        assert_eq!(
            ids(store.sessions_of_user("u1", now).await.unwrap()),
            ["s2", "s1"]
        );
        // A session that signs in later is found too (saved over).
        store
            .save_session(&session("s4", Some("u1"), later))
            .await
            .unwrap();
        assert_eq!(store.sessions_of_user("u1", now).await.unwrap().len(), 3);
        assert!(
            store
                .delete_sessions_of_user("u1", Some("s2"))
                .await
                .unwrap()
                >= 2
        );
        assert_eq!(
            ids(store.sessions_of_user("u1", now).await.unwrap()),
            ["s2"]
        );
        store.delete_sessions_of_user("u1", None).await.unwrap();
        assert!(store.sessions_of_user("u1", now).await.unwrap().is_empty());
        assert_eq!(
            ids(store.sessions_of_user("u2", now).await.unwrap()),
            ["s3"]
        );
    }
}

macro_rules! account_conformance {
    ($name:ident, $fixture:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn accounts_round_trip_and_list() {
                let f = $fixture().await;
                checks::accounts_round_trip_and_list(f.store.as_ref()).await;
            }

            #[tokio::test]
            async fn roles_and_states_with_the_last_active_admin_rule() {
                let f = $fixture().await;
                checks::roles_and_states_with_the_last_active_admin_rule(f.store.as_ref()).await;
            }

            #[tokio::test]
            async fn totp_steps_and_recovery_codes_work_once() {
                let f = $fixture().await;
                checks::totp_steps_and_recovery_codes_work_once(f.store.as_ref()).await;
            }

            #[tokio::test]
            async fn sessions_are_found_by_their_user() {
                let f = $fixture().await;
                checks::sessions_are_found_by_their_user(f.store.as_ref()).await;
            }
        }
    };
}

account_conformance!(sqlite_accounts, sqlite);
account_conformance!(mongodb_accounts, mongodb);

/// A user document of an older version (no role, no state) reads as an
/// active account whose role follows its admin flag.
#[tokio::test]
async fn mongodb_documents_without_lifecycle_fields_read_as_active() {
    let f = mongodb().await;
    let store = f.store.as_ref();
    for (name, admin) in [("old-admin@example.org", true), ("old@example.org", false)] {
        store
            .database()
            .collection::<mongodb::bson::Document>("users")
            .insert_one(mongodb::bson::doc! {
                "_id": format!("id-{name}"), "username": name, "password_hash": "$2b$12$x",
                "admin": admin, "token_version": 0_i64,
                "created": mongodb::bson::DateTime::now(), "changed": mongodb::bson::DateTime::now(),
                "rev": 0_i64,
            })
            .await
            .unwrap();
        let account = store.account_by_username(name).await.unwrap().unwrap();
        assert_eq!(account.state, AccountState::Active);
        assert_eq!(account.role, if admin { Role::Admin } else { Role::Staff });
        assert_eq!(account.totp, None);
    }
}
