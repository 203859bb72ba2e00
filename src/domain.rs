//! Validated value types. Anything that has rules is parsed once, at the
//! edge, into one of these; the service layer never sees raw strings for them.

use std::fmt;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

mod account;
mod secret_strength;
mod study;
pub use account::{AccountState, Role};
pub use secret_strength::{MIN_SECRET_BITS, estimated_entropy_bits};
pub use study::*;

/// Refuses text that could split or disguise a line of a log, an audit
/// entry or a mail header once stored: control characters (Unicode
/// category Cc: CR, LF, tab, NEL, ...), the line and paragraph separators
/// U+2028 and U+2029, and the bidirectional embedding, override and
/// isolate controls (U+202A-U+202E, U+2066-U+2069), which make a line
/// display differently from what it holds. Joiners (U+200C, U+200D) and
/// the direction marks (U+200E, U+200F) stay allowed: names in several
/// scripts and emoji need them. Every text the service stores from a client
/// goes through this, so no value can forge an audit line.
pub fn check_plain_text(field: &str, value: &str) -> Result<()> {
    match value.chars().find(|&c| breaks_lines(c)) {
        None => Ok(()),
        Some(c) => Err(Error::invalid(
            field,
            format!(
                "{field} must not contain control characters, line breaks or direction overrides (found U+{:04X})",
                u32::from(c)
            ),
        )),
    }
}

fn breaks_lines(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A staff username: an email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(Error::invalid("username", "username is required"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "username",
                format!("username must be at most {} characters", Self::MAX_LEN),
            ));
        }
        check_plain_text("username", &value)?;
        if !looks_like_email(&value) {
            return Err(Error::invalid(
                "username",
                "username must be an email address like name@example.org",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For values read back from our own store, which were validated on the
    /// way in.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted
/// domain, no whitespace or control characters. Deliverability is what the
/// reset mail proves; this only catches typos and junk.
fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let allowed = |c: char| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"@".contains(c);
    !local.is_empty()
        && local.len() <= 64
        && local.chars().all(allowed)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// A plaintext password on its way to be hashed or verified. It never prints.
#[derive(Clone)]
pub struct Password(SecretString);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// The most bytes we accept, so hashing cost cannot be driven up.
    pub const MAX_BYTES: usize = 1024;

    /// A password as typed at login: only the size limit applies, the policy
    /// is for setting passwords.
    pub fn for_login(raw: String) -> Option<Self> {
        (raw.len() <= Self::MAX_BYTES).then(|| Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The rules for a new password (SPEC section 2), the same wherever a
/// password is set: API, CLI, first-admin and reset pages.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_chars: usize,
}

impl PasswordPolicy {
    /// The rules of `check`, for a person about to choose a password.
    pub fn description(&self) -> String {
        format!(
            "At least {} characters; a phrase of several words is easiest to remember. \
             Your email address and common passwords are not accepted.",
            self.min_chars
        )
    }

    pub fn check(&self, raw: String, username: &Username) -> Result<Password> {
        self.check_rules(&raw, Some(username))?;
        Ok(Password(SecretString::from(raw)))
    }

    /// The rules that do not need the username, for a form whose username
    /// is itself invalid: both fields' problems are reported at once.
    pub fn check_without_username(&self, raw: &str) -> Result<()> {
        self.check_rules(raw, None)
    }

    fn check_rules(&self, raw: &str, username: Option<&Username>) -> Result<()> {
        if raw.len() > Password::MAX_BYTES {
            return Err(Error::invalid(
                "password",
                format!("password must be at most {} bytes", Password::MAX_BYTES),
            ));
        }
        let chars = raw.chars().count();
        if chars < self.min_chars {
            return Err(Error::invalid(
                "password",
                format!("password must be at least {} characters", self.min_chars),
            ));
        }
        let lowered = raw.to_lowercase();
        if username.is_some_and(|u| lowered == u.as_str()) {
            return Err(Error::invalid(
                "password",
                "password must not be the same as the username",
            ));
        }
        if common_passwords().contains(lowered.as_str()) {
            return Err(Error::invalid(
                "password",
                "this password is too common; choose another one",
            ));
        }
        Ok(())
    }
}

/// The 20,000 most common passwords (Django's list by Royce Williams), bundled
/// so the check works offline.
fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static LIST: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    #[allow(
        clippy::expect_used,
        reason = "the list is built into the binary; the unit tests read it"
    )]
    LIST.get_or_init(|| {
        use std::io::Read;
        let gz: &[u8] = include_bytes!("../assets/common-passwords.txt.gz");
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .expect("the bundled password list is valid gzip");
        let text: &'static str = Box::leak(text.into_boxed_str());
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_lowercased() {
        let u = Username::parse("  Alice@Example.ORG ").unwrap();
        assert_eq!(u.as_str(), "alice@example.org");
    }

    #[test]
    fn bad_usernames_are_rejected() {
        for bad in [
            "",
            "alice",
            "a@b",
            "@example.org",
            "a b@example.org",
            "a@exa mple.org",
            "a@@x.org",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn policy_counts_code_points_and_rejects_common_and_username() {
        let policy = PasswordPolicy { min_chars: 8 };
        let user = Username::parse("alice@example.org").unwrap();
        assert!(
            policy.check("ääääääää".into(), &user).is_ok(),
            "8 code points, 16 bytes"
        );
        assert!(policy.check("äääääää".into(), &user).is_err());
        assert!(policy.check("password".into(), &user).is_err());
        assert!(
            policy.check("Password1".into(), &user).is_err(),
            "list check ignores case"
        );
        assert!(policy.check("ALICE@example.org".into(), &user).is_err());
        assert!(policy.check("x".repeat(1025), &user).is_err());
        assert!(policy.check("correct horse battery".into(), &user).is_ok());
        assert!(
            PasswordPolicy { min_chars: 12 }
                .description()
                .starts_with("At least 12 characters;"),
            "the description names the configured minimum"
        );
    }

    #[test]
    fn plain_text_refuses_what_could_split_or_disguise_a_line() {
        for bad in [
            "a\rb",
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{202E}b",
            "a\u{2066}b",
        ] {
            let err = check_plain_text("name", bad).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{bad:?}");
            assert!(
                err.to_string().starts_with("name must not contain"),
                "{err}"
            );
        }
        let err = check_plain_text("linked_to", "a\r\nFAKE").unwrap_err();
        assert!(err.to_string().contains("U+000D"), "{err}");
        for good in [
            "Ada Lovelace",
            "Zoë",
            "محمد",
            "می\u{200C}خواهم",
            "👩\u{200D}🔬",
            "a\u{200F}b",
        ] {
            assert!(check_plain_text("name", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn usernames_with_line_breaks_say_so() {
        let err = Username::parse("a\r\nb@example.org").unwrap_err();
        assert!(err.to_string().contains("line breaks"), "{err}");
        assert!(Username::parse("a\u{2028}b@example.org").is_err());
        assert_eq!(
            Username::parse("a@example.org\r\n").unwrap().as_str(),
            "a@example.org",
            "surrounding blanks are trimmed, as before"
        );
    }

    #[test]
    fn password_debug_does_not_print_the_secret() {
        let p = Password::for_login("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
