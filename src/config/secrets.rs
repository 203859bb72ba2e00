//! The keys the service signs with: configured values, files, or secrets
//! generated once into the data folder; and how strong a secret must be.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use super::{Config, StoreLocation};
use crate::clock::{OsRandom, random_hex};
use crate::domain;
use crate::private_files;

/// The keys the service signs with, resolved from values, files or the
/// generated defaults.
pub struct Secrets {
    pub token_key: SecretString,
    pub link_secret: SecretString,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

/// Secrets shorter than this many bytes are refused outside dev mode: an
/// HS256 key should be at least as long as the hash (RFC 7518, 3.2).
const MIN_SECRET_BYTES: usize = 32;

/// A fresh signing secret: 32 random bytes as 64 hex characters, what the
/// service generates and what `idm secret` prints.
pub fn random_secret() -> String {
    random_hex(&OsRandom, 32)
}

/// Why `secret` is too weak to sign with, if it is: too short, or less
/// than about 128 bits of estimated entropy (repeats, runs like `abcd` and
/// common passwords count for little).
pub fn secret_weakness(secret: &str) -> Option<String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "it has {} bytes, at least {MIN_SECRET_BYTES} are needed",
            secret.len()
        ));
    }
    let bits = domain::estimated_entropy_bits(secret);
    (bits < domain::MIN_SECRET_BITS).then(|| {
        format!(
            "it is too predictable (about {bits:.0} bits of entropy, at least {:.0} are needed)",
            domain::MIN_SECRET_BITS
        )
    })
}

impl Config {
    /// Resolves the staff-token key and the link secret: a value, else a
    /// file, else (embedded store only) a random secret generated once into
    /// the data folder.
    pub fn resolve_secrets(&self) -> anyhow::Result<Secrets> {
        let embedded = matches!(self.store_location()?, StoreLocation::Sqlite(_));
        let token_key = self.resolve_secret(
            "token_secret",
            self.token_secret.as_ref(),
            self.token_secret_file.as_deref(),
            embedded,
        )?;
        let link_secret = self.resolve_secret(
            "link_secret",
            self.link_secret.as_ref(),
            self.link_secret_file.as_deref(),
            embedded,
        )?;
        if token_key.expose_secret() == link_secret.expose_secret() {
            bail!("token_secret and link_secret must differ: the mobile app holds the link secret");
        }
        Ok(Secrets {
            token_key,
            link_secret,
        })
    }

    /// Reads a secret from the configured file, if any.
    pub fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?;
        Ok(SecretString::from(text.trim().to_owned()))
    }

    fn resolve_secret(
        &self,
        name: &str,
        value: Option<&SecretString>,
        file: Option<&Path>,
        embedded: bool,
    ) -> anyhow::Result<SecretString> {
        let secret = match (value, file) {
            (Some(v), _) => v.clone(),
            (None, Some(path)) => Self::read_secret_file(path)?,
            (None, None) if embedded => self.generated_secret(name)?,
            (None, None) => bail!(
                "{name} is not set: with MongoDB every instance must share it, so set IDM_{} or IDM_{}_FILE",
                name.to_uppercase(),
                name.to_uppercase()
            ),
        };
        if let Some(why) = secret_weakness(secret.expose_secret())
            && !self.dev_mode
        {
            bail!(
                "{name} is too weak: {why}. Make a random one with `idm secret` (or `openssl rand -hex 32`), or set dev_mode for local experiments"
            );
        }
        Ok(secret)
    }

    /// The secret kept in `<data_dir>/secrets/<name>`, created (mode 0600) on
    /// first use.
    fn generated_secret(&self, name: &str) -> anyhow::Result<SecretString> {
        let dir = self.data_dir.join("secrets");
        let path = dir.join(name);
        if path.exists() {
            return Self::read_secret_file(&path);
        }
        // The data folder is usually created here, on the first start, before
        // the store would: it must be private from the start.
        private_files::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let value = random_secret();
        match private_files::create_new(&path) {
            Ok(mut file) => {
                file.write_all(value.as_bytes())?;
                file.sync_all()?;
                tracing::warn!(
                    path = %path.display(),
                    "generated a new random {name}; keep this file (and back it up) or issued tokens stop working"
                );
                Ok(SecretString::from(value))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::read_secret_file(&path)
            }
            Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_repetitive_or_patterned_secrets_are_weak() {
        let forty_a = "a".repeat(40);
        for weak in [
            "secret",
            "changeme",
            forty_a.as_str(),
            "changemechangemechangemechangeme",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(secret_weakness(weak).is_some(), "{weak} accepted");
        }
        assert!(secret_weakness("secret").unwrap().contains("bytes"));
        assert!(
            secret_weakness(&forty_a)
                .unwrap()
                .contains("bits of entropy")
        );
    }

    #[test]
    fn generated_secrets_are_strong() {
        for _ in 0..200 {
            let secret = random_secret();
            assert_eq!(secret.len(), 64);
            assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(secret_weakness(&secret), None);
        }
    }

    #[test]
    fn weak_secrets_refuse_to_start_with_advice_unless_in_dev_mode() {
        let mut config = Config {
            token_secret: Some("changemechangemechangemechangeme".into()),
            link_secret: Some(random_secret().into()),
            ..Config::default()
        };
        let err = format!("{:#}", config.resolve_secrets().unwrap_err());
        assert!(err.contains("token_secret is too weak"), "{err}");
        assert!(err.contains("idm secret"), "{err}");
        assert!(
            !err.contains("changeme"),
            "the secret is never shown: {err}"
        );
        config.dev_mode = true;
        assert!(config.resolve_secrets().is_ok());
    }
}
