//! The secrets of TOTP two-factor sign-in, and how they are kept.
//!
//! - The TOTP secret (160 random bits) is sealed with ChaCha20-Poly1305
//!   under a key derived from the staff-token secret, with the user id as
//!   associated data: a database dump alone reveals no secret, and a
//!   sealed secret copied to another account does not open there.
//! - Recovery codes (50 random bits each) are stored as HMAC-SHA256 under
//!   another key derived from the same secret, so a dump alone cannot be
//!   searched for them either.
//! - Codes follow RFC 6238 (SHA-1, 6 digits, 30 s steps, one step of drift
//!   either way); the store records the last accepted step, so each code
//!   works once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use totp_rs::{Algorithm, Totp};

use crate::clock::RandomSource;
use crate::error::{Error, Result};

/// Random bytes in a TOTP secret (RFC 4226 recommends 160 bits).
const SECRET_BYTES: usize = 20;
/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (10 × 5 bits), shown as `xxxxx-xxxxx`.
const RECOVERY_CHARS: usize = 10;
/// Crockford's base 32: digits and lower-case letters without i, l, o
/// and u (typed `i`, `l` and `o` are read as 1, 1 and 0).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const SEAL_LABEL: &[u8] = b"idm: totp secrets v1";
const RECOVERY_LABEL: &[u8] = b"idm: recovery codes v1";
const SEALED_PREFIX: &str = "v1:";
/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "C3-PRO IDM";

type HmacSha256 = Hmac<Sha256>;

#[allow(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; new_from_slice cannot fail for it"
)]
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// What a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// A TOTP code of this time step.
    Totp(i64),
    /// A recovery code (with this hash, still to be spent).
    Recovery,
}

/// A new enrolment: the secret and the codes shown once.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub recovery_codes: Vec<String>,
    pub sealed_secret: String,
    pub recovery_hashes: Vec<String>,
}

pub struct SecondFactorKeys {
    seal: SecretSlice<u8>,
    recovery: SecretSlice<u8>,
}

impl std::fmt::Debug for SecondFactorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecondFactorKeys(***)")
    }
}

impl SecondFactorKeys {
    pub fn derive(token_secret: &SecretString) -> Self {
        let secret = token_secret.expose_secret().as_bytes();
        Self {
            seal: hmac(secret, SEAL_LABEL).to_vec().into(),
            recovery: hmac(secret, RECOVERY_LABEL).to_vec().into(),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.seal.expose_secret()))
    }

    /// A new secret and recovery codes for `username` (user id `user_id`).
    pub fn enrol(
        &self,
        random: &dyn RandomSource,
        user_id: &str,
        username: &str,
    ) -> Result<Enrolment> {
        let mut secret = vec![0u8; SECRET_BYTES];
        random.fill(&mut secret);
        let totp = totp(secret.clone(), username)?;
        let recovery_codes: Vec<String> =
            (0..RECOVERY_CODES).map(|_| recovery_code(random)).collect();
        Ok(Enrolment {
            secret_base32: totp.secret().to_base32(),
            otpauth_uri: totp.to_url().map_err(Error::internal)?,
            recovery_hashes: recovery_codes
                .iter()
                .map(|c| self.recovery_hash(user_id, c))
                .collect(),
            recovery_codes,
            sealed_secret: self.seal(random, user_id, &secret)?,
        })
    }

    fn seal(&self, random: &dyn RandomSource, user_id: &str, secret: &[u8]) -> Result<String> {
        let mut nonce = [0u8; 12];
        random.fill(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| Error::internal(anyhow::anyhow!("cannot seal a TOTP secret")))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(bytes)))
    }

    fn open(&self, user_id: &str, sealed: &str) -> Result<Vec<u8>> {
        let unreadable = || {
            Error::internal(anyhow::anyhow!(
                "the TOTP secret of user {user_id} cannot be opened (was token_secret changed?)"
            ))
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD_NO_PAD.decode(b64).ok())
            .filter(|b| b.len() > 12)
            .ok_or_else(unreadable)?;
        let (nonce, sealed) = bytes.split_at(12);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| unreadable())
    }

    /// The keyed hash the store keeps for a recovery code.
    pub fn recovery_hash(&self, user_id: &str, code: &str) -> String {
        let normal = normalize_recovery(code);
        hex::encode(hmac(
            self.recovery.expose_secret(),
            format!("{user_id}:{normal}").as_bytes(),
        ))
    }

    /// Which kind of code `code` is and whether it is right: a TOTP code
    /// is checked against the sealed secret at `now` (giving its step, to
    /// be taken once), anything else is taken for a recovery code (its
    /// hash is for the caller to spend). `None`: a wrong TOTP code.
    pub fn check(
        &self,
        user_id: &str,
        username: &str,
        sealed: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CodeKind>> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if !(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())) {
            return Ok(Some(CodeKind::Recovery));
        }
        let secret = self.open(user_id, sealed)?;
        let now = u64::try_from(now.timestamp()).unwrap_or(0);
        Ok(totp(secret, username)?
            .check(&code, now)
            .and_then(|step| i64::try_from(step).ok())
            .map(CodeKind::Totp))
    }
}

fn totp(secret: Vec<u8>, username: &str) -> Result<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(username)
        .build()
        .map_err(Error::internal)
}

fn recovery_code(random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; RECOVERY_CHARS];
    random.fill(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A recovery code as typed: letter case, blanks, dashes and the
/// look-alikes of Crockford's alphabet do not matter.
fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    fn keys() -> SecondFactorKeys {
        SecondFactorKeys::derive(&SecretString::from("a".repeat(64)))
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account_and_key() {
        let enrolment = keys().enrol(&OsRandom, "id-1", "a@example.org").unwrap();
        assert!(!enrolment.sealed_secret.contains(&enrolment.secret_base32));
        let opened = keys().open("id-1", &enrolment.sealed_secret).unwrap();
        assert_eq!(
            totp_rs::Secret::from(opened).to_base32(),
            enrolment.secret_base32
        );
        assert!(keys().open("id-2", &enrolment.sealed_secret).is_err());
        let other = SecondFactorKeys::derive(&SecretString::from("b".repeat(64)));
        assert!(other.open("id-1", &enrolment.sealed_secret).is_err());
        assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
        assert!(enrolment.otpauth_uri.contains(&enrolment.secret_base32));
    }

    #[test]
    fn codes_are_checked_with_one_step_of_drift() {
        let k = keys();
        let e = k.enrol(&OsRandom, "id-1", "a@example.org").unwrap();
        let now = Utc::now();
        let secret = k.open("id-1", &e.sealed_secret).unwrap();
        let t = totp(secret, "a@example.org").unwrap();
        let at = |secs: i64| {
            t.generate(u64::try_from(now.timestamp() + secs).unwrap())
                .to_string()
        };
        let check = |code: &str| k.check("id-1", "a@example.org", &e.sealed_secret, code, now);
        let step = now.timestamp() / 30;
        assert_eq!(check(&at(0)).unwrap(), Some(CodeKind::Totp(step)));
        assert_eq!(check(&at(-30)).unwrap(), Some(CodeKind::Totp(step - 1)));
        assert_eq!(check(&at(30)).unwrap(), Some(CodeKind::Totp(step + 1)));
        assert_eq!(check(&at(-90)).unwrap(), None);
        assert_eq!(check("abcde-fghjk").unwrap(), Some(CodeKind::Recovery));
        assert_eq!(normalize_recovery("O1-iL"), "0111");
    }

    #[test]
    fn recovery_codes_are_hashed_with_a_key_and_forgive_typing() {
        let k = keys();
        let e = k.enrol(&OsRandom, "id-1", "a@example.org").unwrap();
        assert_eq!(e.recovery_codes.len(), RECOVERY_CODES);
        let code = &e.recovery_codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(k.recovery_hash("id-1", code), e.recovery_hashes[0]);
        assert_eq!(
            k.recovery_hash(
                "id-1",
                &format!(" {} ", code.to_uppercase().replace('-', ""))
            ),
            e.recovery_hashes[0]
        );
        assert_ne!(k.recovery_hash("id-2", code), e.recovery_hashes[0]);
        assert!(!e.recovery_hashes[0].contains(&normalize_recovery(code)));
    }
}
