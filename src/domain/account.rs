//! What a staff account may do (its role) and whether it may sign in at
//! all (its state).

use std::fmt;

use crate::error::{Error, Result};

/// A staff account's role. `admin` manages accounts and does everything
/// staff do; `staff` work with subjects and links; `monitor` (a sponsor's
/// clinical monitor, an auditor) reads subjects, links and audits and
/// changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Staff,
    Monitor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Staff, Role::Monitor];

    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "staff" => Ok(Role::Staff),
            "monitor" => Ok(Role::Monitor),
            _ => Err(Error::invalid(
                "role",
                "role must be one of admin, staff, monitor",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Monitor => "monitor",
        }
    }

    /// The role of an account stored before roles existed, or by a store
    /// that keeps only the admin flag, and the stored word if any: the
    /// admin flag decides whether it is an admin, the word only tells
    /// staff from monitors.
    pub fn from_stored(admin: bool, stored: Option<&str>) -> Self {
        match (admin, stored) {
            (true, _) => Role::Admin,
            (false, Some("monitor")) => Role::Monitor,
            (false, _) => Role::Staff,
        }
    }

    /// Whether the role may change study data (subjects, links).
    pub fn may_write(self) -> bool {
        self != Role::Monitor
    }

    /// The name people read ("Administrator").
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Administrator",
            Role::Staff => "Staff",
            Role::Monitor => "Monitor (read only)",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Created by an invitation; no password has been chosen yet.
    Invited,
    Active,
    /// Cannot sign in or reset its password; its tokens and sessions ended
    /// when it was disabled.
    Disabled,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Invited => "invited",
            AccountState::Active => "active",
            AccountState::Disabled => "disabled",
        }
    }

    /// A stored word; anything else (a document written before states
    /// existed) is an active account.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            Some("invited") => AccountState::Invited,
            Some("disabled") => AccountState::Disabled,
            _ => AccountState::Active,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AccountState::Invited => "Invited",
            AccountState::Active => "Active",
            AccountState::Disabled => "Disabled",
        }
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_read_back_from_old_records() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
            assert_eq!(
                Role::from_stored(role == Role::Admin, Some(role.as_str())),
                role
            );
        }
        assert_eq!(Role::parse(" Monitor ").unwrap(), Role::Monitor);
        assert!(Role::parse("root").is_err());
        assert_eq!(Role::from_stored(true, None), Role::Admin);
        assert_eq!(Role::from_stored(false, None), Role::Staff);
        // The admin flag wins over a stale word.
        assert_eq!(Role::from_stored(true, Some("monitor")), Role::Admin);
        assert_eq!(Role::from_stored(false, Some("admin")), Role::Staff);
        assert!(!Role::Monitor.may_write() && Role::Staff.may_write());
    }

    #[test]
    fn states_missing_from_old_records_are_active() {
        assert_eq!(AccountState::from_stored(None), AccountState::Active);
        for state in [
            AccountState::Invited,
            AccountState::Active,
            AccountState::Disabled,
        ] {
            assert_eq!(AccountState::from_stored(Some(state.as_str())), state);
        }
    }
}
