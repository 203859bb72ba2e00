//! The checks, written once against the store traits; the runners in
//! `store_conformance` call each on every store.

pub(super) mod audit_ranges;
pub(super) mod audits;
pub(super) mod links;
pub(super) mod reset_tokens;
pub(super) mod sessions;
pub(super) mod subjects;
pub(super) mod throttle;
pub(super) mod users;

use chrono::{DateTime, NaiveDate, Utc};
use idm::store::*;

fn user(name: &str, admin: bool, at: DateTime<Utc>) -> UserRecord {
    UserRecord {
        id: format!("id-{name}"),
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        admin,
        token_version: 0,
        created: at,
        changed: at,
        last_login: None,
    }
}

fn subject(sssid: &str, name: &str, bday: &str, at: DateTime<Utc>) -> SubjectRecord {
    SubjectRecord {
        sssid: sssid.into(),
        name: name.into(),
        bday: Some(NaiveDate::parse_from_str(bday, "%Y-%m-%d").unwrap()),
        email: None,
        date_invited: None,
        date_consented: None,
        date_enrolled: None,
        date_withdrawn: None,
        created: at,
        changed: at,
        version: 0,
    }
}
