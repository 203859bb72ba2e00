//! Configuration: defaults, then a TOML file (`--config` / `IDM_CONFIG`),
//! then `IDM_*` environment variables. Every TOML key is also an environment
//! variable: `port` is `IDM_PORT`, `token_secret_file` is `IDM_TOKEN_SECRET_FILE`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::{OsRandom, random_hex};
use crate::domain;
use crate::private_files;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// Each message is written as an .eml file into `<data_dir>/outbox`.
    #[default]
    File,
    Smtp,
    /// Mail is dropped (logged only); for deployments without mail.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    #[default]
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Empty: SQLite in the data folder; `sqlite://PATH`; `mongodb://...`.
    pub database_url: String,
    /// MongoDB database name.
    pub database_name: String,
    /// Base URL used in links, mails and as default link `iss`/`aud`.
    pub public_url: String,
    /// Allows weak secrets and plain-http secure cookies; never in production.
    pub dev_mode: bool,
    /// `max-age` of the `Strict-Transport-Security` header sent with an
    /// https `public_url`; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// Adds `includeSubDomains` to that header.
    pub hsts_include_subdomains: bool,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `idm=debug,tower_http=info`.
    pub log_level: String,

    pub token_secret: Option<SecretString>,
    pub token_secret_file: Option<PathBuf>,
    pub token_lifetime_secs: u64,

    pub link_secret: Option<SecretString>,
    pub link_secret_file: Option<PathBuf>,
    /// `iss` of link JWTs; defaults to `public_url`.
    pub link_issuer: Option<String>,
    /// `aud` of link JWTs; defaults to `public_url`.
    pub link_audience: Option<String>,
    pub link_lifetime_secs: u64,

    pub password_min_chars: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,

    /// Failed logins per account from one client address within
    /// `login_window_secs` before that address gets 429 for the account.
    pub login_account_limit: u32,
    /// Failed logins per client IP (any accounts) within `login_window_secs`
    /// before 429.
    pub login_ip_limit: u32,
    /// The first window of both limits above. An address's window on an
    /// account doubles with every `login_account_limit` failures the
    /// account has seen (up to `login_account_ceiling_window_secs`).
    pub login_window_secs: u64,
    /// Consecutive failed logins per account from all addresses together
    /// before every address gets 429 for it, until the ceiling window ends
    /// (a successful login or a password reset starts the count afresh).
    pub login_account_ceiling: u32,
    pub login_account_ceiling_window_secs: u64,

    pub session_idle_secs: u64,
    pub session_absolute_secs: u64,
    /// For development: a folder to serve the console's static files from
    /// (edits show without rebuilding). Unset, the copy built into the
    /// binary is served.
    pub static_dir: Option<PathBuf>,

    pub reset_token_lifetime_secs: u64,
    /// Reset emails per account within `reset_window_secs`; further requests
    /// get the same page but send nothing.
    pub reset_account_limit: u32,
    /// Reset requests per client IP within `reset_window_secs` before 429.
    pub reset_ip_limit: u32,
    /// New-password submissions on `/reset` per client IP within
    /// `reset_window_secs` before 429, whether their key is good or not.
    pub reset_submit_ip_limit: u32,
    pub reset_window_secs: u64,
    pub admin_email: Option<String>,
    pub mail_transport: MailTransportKind,
    pub mail_from: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    pub smtp_password_file: Option<PathBuf>,
    pub smtp_timeout_secs: u64,

    /// Reverse proxies whose `X-Forwarded-For` is believed (IPs or CIDRs;
    /// a list, or a comma-separated string in the environment). Requests
    /// from anyone else are taken at their socket address.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// After SIGTERM, how long in-flight requests may take before exit.
    pub shutdown_grace_secs: u64,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics_enabled: bool,
    /// Client addresses allowed to read `/metrics`.
    #[serde(deserialize_with = "networks")]
    pub metrics_allow: Vec<ipnet::IpNet>,
}

/// Accepts `["10.0.0.0/8", "127.0.0.1"]` or `"10.0.0.0/8, 127.0.0.1"`; a
/// bare address is a single-host network.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Text(String),
        List(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::Text(text) => text.split(',').map(str::to_owned).collect(),
        OneOrMany::List(list) => list,
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR network"))
                })
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 9096,
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            database_name: "idm".into(),
            public_url: "http://127.0.0.1:9096".into(),
            dev_mode: false,
            hsts_max_age_secs: 365 * 24 * 3600,
            hsts_include_subdomains: true,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            token_secret: None,
            token_secret_file: None,
            token_lifetime_secs: 12 * 3600,
            link_secret: None,
            link_secret_file: None,
            link_issuer: None,
            link_audience: None,
            link_lifetime_secs: 24 * 3600,
            password_min_chars: 8,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            login_account_limit: 10,
            login_ip_limit: 100,
            login_window_secs: 300,
            login_account_ceiling: 100,
            login_account_ceiling_window_secs: 24 * 3600,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            static_dir: None,
            reset_token_lifetime_secs: 2 * 3600,
            reset_account_limit: 3,
            reset_ip_limit: 20,
            reset_submit_ip_limit: 20,
            reset_window_secs: 3600,
            admin_email: None,
            mail_transport: MailTransportKind::File,
            mail_from: None,
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            smtp_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            shutdown_grace_secs: 20,
            metrics_enabled: true,
            metrics_allow: vec![
                ipnet::IpNet::new_assert(std::net::Ipv4Addr::new(127, 0, 0, 0).into(), 8),
                ipnet::IpNet::new_assert(std::net::Ipv6Addr::LOCALHOST.into(), 128),
            ],
        }
    }
}

/// Where the data lives, decided from `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Mongo { url: String, database: String },
}

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

/// `IDM_` variables that name no setting. `IDM_CONFIG` names the file and
/// `IDM_TEST_*` belong to the test suite.
fn unknown_variables(
    names: impl Iterator<Item = std::ffi::OsString>,
    known: &[&str],
) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .filter_map(|name| name.into_string().ok())
        .filter(|name| {
            name.strip_prefix("IDM_").is_some_and(|key| {
                key != "CONFIG"
                    && !key.starts_with("TEST_")
                    && !known.contains(&key.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    unknown.sort();
    unknown
}

/// ` (did you mean PREFIXkey?)` for the known key closest to `key`, if any
/// is close enough to be a likely typo.
fn did_you_mean(key: &str, known: &[&str], prefix: &str) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| {
            let k = if prefix.is_empty() {
                k.to_string()
            } else {
                k.to_ascii_uppercase()
            };
            format!(" (did you mean {prefix}{k}?)")
        })
        .unwrap_or_default()
}

impl Config {
    /// Reads the layered configuration. `file` wins over `IDM_CONFIG`.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("IDM_CONFIG").map(PathBuf::from));
        let known = serde_aux::serde_introspection::serde_introspect::<Config>();
        if let Some(path) = &file {
            if !path.exists() {
                bail!("configuration file {} does not exist", path.display());
            }
            // A misspelt key would otherwise be ignored and its default used
            // without a word: refuse to start instead.
            let keys = Figment::from(Toml::file_exact(path))
                .extract::<figment::value::Dict>()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if let Some(unknown) = keys.keys().find(|k| !known.contains(&k.as_str())) {
                bail!(
                    "unknown setting `{unknown}` in {}{}",
                    path.display(),
                    did_you_mean(unknown, known, "")
                );
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        for unknown in unknown_variables(std::env::vars_os().map(|(k, _)| k), known) {
            // Warned, not refused: a deployment's environment may carry
            // other programs' IDM_ variables. Logging is not set up yet.
            eprintln!(
                "warning: ignoring unknown environment variable {unknown}{}",
                did_you_mean(&unknown["IDM_".len()..].to_ascii_lowercase(), known, "IDM_")
            );
        }
        figment = figment.merge(Env::prefixed("IDM_").only(known));
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let url = self.public_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("public_url must start with http:// or https://, got {url:?}");
        }
        self.store_location()?;
        if self.password_min_chars == 0 {
            bail!("password_min_chars must be at least 1");
        }
        if self.argon2_memory_kib < 19456 && !self.dev_mode {
            bail!("argon2_memory_kib below 19456 (the OWASP minimum) is only allowed in dev_mode");
        }
        if self.argon2_iterations < 2 && !self.dev_mode {
            bail!("argon2_iterations below 2 is only allowed in dev_mode");
        }
        for (name, value) in [
            ("token_lifetime_secs", self.token_lifetime_secs),
            ("link_lifetime_secs", self.link_lifetime_secs),
            ("login_window_secs", self.login_window_secs),
            (
                "login_account_ceiling_window_secs",
                self.login_account_ceiling_window_secs,
            ),
            ("reset_token_lifetime_secs", self.reset_token_lifetime_secs),
            ("session_idle_secs", self.session_idle_secs),
            ("session_absolute_secs", self.session_absolute_secs),
            ("reset_window_secs", self.reset_window_secs),
        ] {
            if value == 0 {
                bail!("{name} must be greater than 0");
            }
        }
        for (name, value) in [
            ("login_account_limit", self.login_account_limit),
            ("login_ip_limit", self.login_ip_limit),
            ("reset_submit_ip_limit", self.reset_submit_ip_limit),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // Otherwise one address alone could lock every address out.
        if self.login_account_ceiling <= self.login_account_limit {
            bail!(
                "login_account_ceiling ({}) must be greater than login_account_limit ({})",
                self.login_account_ceiling,
                self.login_account_limit
            );
        }
        if self.login_account_ceiling_window_secs < self.login_window_secs {
            bail!("login_account_ceiling_window_secs must be at least login_window_secs");
        }
        Ok(())
    }

    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    pub fn link_issuer(&self) -> String {
        self.link_issuer
            .clone()
            .unwrap_or_else(|| self.public_url().to_owned())
    }

    pub fn link_audience(&self) -> String {
        self.link_audience
            .clone()
            .unwrap_or_else(|| self.public_url().to_owned())
    }

    pub fn serves_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The `Strict-Transport-Security` header value: browsers that saw it
    /// use https only for this host, for `max-age` seconds, so a network
    /// attacker cannot strip TLS on a later visit. None over plain http
    /// (browsers ignore it there, and it would be wrong) or when disabled.
    /// Never `preload`: that is a commitment for the whole domain, made by
    /// its owner on hstspreload.org, not by one service.
    pub fn strict_transport_security(&self) -> Option<String> {
        if !self.serves_https() || self.hsts_max_age_secs == 0 {
            return None;
        }
        let subdomains = if self.hsts_include_subdomains {
            "; includeSubDomains"
        } else {
            ""
        };
        Some(format!("max-age={}{subdomains}", self.hsts_max_age_secs))
    }

    pub fn store_location(&self) -> anyhow::Result<StoreLocation> {
        let url = self.database_url.trim();
        if url.is_empty() {
            return Ok(StoreLocation::Sqlite(self.data_dir.join("idm.sqlite3")));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!(
                    "database_url sqlite:// needs a file path, e.g. sqlite:///var/lib/idm/idm.sqlite3"
                );
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            return Ok(StoreLocation::Mongo {
                url: url.to_owned(),
                database: self.database_name.clone(),
            });
        }
        bail!("database_url must be empty, sqlite://PATH, mongodb://... or mongodb+srv://...")
    }

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

    fn refusal(config: Config) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn login_limits_must_leave_the_owner_a_way_in() {
        Config::default().validate().unwrap();
        // One address alone must not be able to reach the account ceiling.
        let message = refusal(Config {
            login_account_ceiling: 10,
            ..Config::default()
        });
        assert!(message.contains("login_account_ceiling"), "{message}");
        let message = refusal(Config {
            login_account_limit: 0,
            ..Config::default()
        });
        assert!(message.contains("login_account_limit"), "{message}");
        let message = refusal(Config {
            login_account_ceiling_window_secs: 60,
            ..Config::default()
        });
        assert!(
            message.contains("login_account_ceiling_window_secs"),
            "{message}"
        );
    }

    #[test]
    fn metrics_are_readable_from_loopback_by_default() {
        let networks: Vec<String> = Config::default()
            .metrics_allow
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(networks, ["127.0.0.0/8", "::1/128"]);
    }

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

    #[test]
    fn hsts_only_over_https_and_configurable() {
        let mut config = Config::default();
        assert_eq!(config.strict_transport_security(), None, "http");
        config.public_url = "https://idm.example.org".into();
        assert_eq!(
            config.strict_transport_security().as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
        config.hsts_include_subdomains = false;
        config.hsts_max_age_secs = 63_072_000;
        assert_eq!(
            config.strict_transport_security().as_deref(),
            Some("max-age=63072000")
        );
        config.hsts_max_age_secs = 0;
        assert_eq!(config.strict_transport_security(), None, "disabled");
    }
}
