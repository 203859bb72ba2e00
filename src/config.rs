//! Configuration: defaults, then a TOML file (`--config` / `IDM_CONFIG`),
//! then `IDM_*` environment variables. Every TOML key is also an environment
//! variable: `port` is `IDM_PORT`, `token_secret_file` is `IDM_TOKEN_SECRET_FILE`.

use std::path::PathBuf;

use anyhow::bail;
use secrecy::SecretString;
use serde::Deserialize;

mod database;
mod load;
mod secrets;

pub use database::{
    DEFAULT_MONGO_DATABASE, DatabaseTimeouts, StoreLocation, check_read_preference, mongo_database,
};
pub use secrets::{Secrets, random_secret, secret_weakness};

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

/// Which accounts must sign in with a second factor (`mfa_required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MfaRequired {
    #[default]
    None,
    Admins,
    All,
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
    /// MongoDB database name; empty: the one the URL names, else `idm`.
    pub database_name: String,
    /// The longest one database call may take (retries and the wait for a
    /// new MongoDB primary included) before the request answers 503.
    pub database_timeout_secs: u64,
    /// How long `/readyz` waits for the database before answering 503.
    pub readyz_timeout_secs: u64,
    /// MongoDB: how long an operation waits for a usable primary (longer
    /// than an election). The URL's `serverSelectionTimeoutMS` wins.
    pub mongodb_server_selection_timeout_secs: u64,
    /// MongoDB: how long the server waits for a majority to acknowledge a
    /// write (`wtimeout`). The URL's `wtimeoutMS` wins.
    pub mongodb_write_timeout_secs: u64,
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
    /// Subject lists count their matches exactly up to this many; past it
    /// the API's `X-Total-Count` is a lower bound (`X-Total-Count-Exact:
    /// false`) and the console says "more than". Keeps every search and
    /// filter as cheap at a million subjects as at ten thousand.
    pub subject_count_limit: u64,
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
    /// How long the link of an invitation mail works.
    pub invite_token_lifetime_secs: u64,
    /// Accounts that must have a second factor: `none`, `admins` or `all`.
    /// Until they set one up, such accounts reach only their account page.
    pub mfa_required: MfaRequired,
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
            database_name: String::new(),
            database_timeout_secs: 20,
            readyz_timeout_secs: 2,
            mongodb_server_selection_timeout_secs: 15,
            mongodb_write_timeout_secs: 10,
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
            subject_count_limit: crate::store::DEFAULT_COUNT_LIMIT,
            static_dir: None,
            reset_token_lifetime_secs: 2 * 3600,
            reset_account_limit: 3,
            reset_ip_limit: 20,
            reset_submit_ip_limit: 20,
            reset_window_secs: 3600,
            invite_token_lifetime_secs: 72 * 3600,
            mfa_required: MfaRequired::None,
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

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = self.public_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("public_url must start with http:// or https://, got {url:?}");
        }
        self.validate_database()?;
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
            (
                "invite_token_lifetime_secs",
                self.invite_token_lifetime_secs,
            ),
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
        if self.subject_count_limit == 0 {
            bail!("subject_count_limit must be at least 1");
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
