//! Reading the layered configuration: defaults, the TOML file, `IDM_*`
//! variables; a misspelt key is refused (file) or warned about (variable).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::Config;

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
}
