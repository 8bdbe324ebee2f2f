//! Provider settings from the configuration, the environment they are resolved against,
//! and the errors of setting a provider up.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use marketpipe_ports::{BoxError, RateLimit};
use thiserror::Error;
use url::Url;

use crate::secret::Secret;

/// What the configuration says about one provider. Every field is optional; adapters fall
/// back to their documented defaults.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Base URL (scheme, host, optional path prefix), e.g. the simulator's address in tests.
    /// `MP_<PROVIDER>_BASE_URL` overrides it.
    pub base_url: Option<String>,
    /// The request budget of the account's plan, replacing the provider's documented free
    /// tier (a limit of 0 requests means "no client-side limit").
    pub rate_limit: Option<RateLimit>,
    /// Connect and whole-request timeout (default 30 s).
    pub timeout: Option<Duration>,
    /// Retries after the first attempt (default 5).
    pub max_retries: Option<u32>,
    /// The first backoff ceiling of the retry policy (default 250 ms; it doubles per retry).
    pub retry_base_delay: Option<Duration>,
    /// The longest single retry wait, for backoff and `Retry-After` alike (default 60 s).
    pub retry_max_delay: Option<Duration>,
    /// Credentials by config key (`key_id`, `secret_key`, `api_key`). Values may be or hold
    /// `${VAR}` placeholders, expanded from the environment.
    pub credentials: BTreeMap<String, String>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credential values are never printed, placeholders included: only the keys show.
        let credentials: BTreeMap<&str, &str> = self
            .credentials
            .keys()
            .map(|k| (k.as_str(), "***"))
            .collect();
        f.debug_struct("ProviderSettings")
            .field("base_url", &self.base_url.as_deref().map(redact_url_text))
            .field("rate_limit", &self.rate_limit)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("credentials", &credentials)
            .finish()
    }
}

/// Where environment variables come from: the process in production, a map in tests.
pub trait Env: Send + Sync {
    /// The variable's value, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables (tests, or a caller that has read the environment itself).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    /// From `(name, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl fmt::Debug for MapEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The map may hold credentials: names only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Setting a provider up failed. Every message says what to do about it, and none carries a
/// credential's value.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Credentials are neither in the configuration nor in the environment.
    #[error(
        "{provider}: no credentials: set {variables} in the environment, or put them under \
         the provider's credentials in the configuration file (a `${{VAR}}` placeholder works)"
    )]
    MissingCredentials {
        /// The provider.
        provider: String,
        /// The environment variables to set, e.g. `ALPACA_KEY_ID and ALPACA_SECRET_KEY (or
        /// APCA_API_KEY_ID / APCA_API_SECRET_KEY)`.
        variables: String,
    },
    /// A `${VAR}` placeholder names a variable that is not set (or is empty).
    #[error(
        "environment variable {variable} is not set, but the configuration refers to it as \
         ${{{variable}}}: export {variable}, or replace the placeholder"
    )]
    UnsetPlaceholder {
        /// The variable.
        variable: String,
    },
    /// A `${` without its closing `}` in a configured value (which is not shown: it may be
    /// a credential).
    #[error(
        "a configured value has an unterminated placeholder `${{{start}…`: write it as \
         ${{NAME}}"
    )]
    InvalidPlaceholder {
        /// The text after `${`, up to 32 characters of a variable name.
        start: String,
    },
    /// The base URL is not an absolute `http`/`https` URL.
    #[error(
        "{provider}: invalid base URL {value:?} (from {setting}): {reason}; expected an \
         absolute http:// or https:// URL such as {example}"
    )]
    InvalidBaseUrl {
        /// The provider.
        provider: String,
        /// Where the value came from (`MP_ALPACA_BASE_URL`, or the configuration key).
        setting: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// The provider's default, as an example of a valid value.
        example: String,
    },
    /// The HTTP client could not be built (e.g. no TLS roots could be loaded).
    #[error("{provider}: cannot set up the HTTP client: {message}")]
    Client {
        /// The provider.
        provider: String,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// Replaces every `${VAR}` in `value` with the variable's value from `env`. An unset or
/// empty variable is an error naming the variable (never the value being expanded). Text
/// without placeholders is returned unchanged; a `$` not followed by `{` is kept as is.
pub fn expand_placeholders(value: &str, env: &dyn Env) -> Result<String, SetupError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else {
            let start: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(32)
                .collect();
            return Err(SetupError::InvalidPlaceholder { start });
        };
        let name = after[..close].trim();
        match env.var(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(SetupError::UnsetPlaceholder {
                    variable: name.to_owned(),
                });
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One credential: the configured value under `config_key` (placeholders expanded) when it
/// is set and non-empty, else the first of `env_vars` that is set and non-empty, else
/// `None`. `provider` is only used to name the provider in errors.
pub fn resolve_secret(
    provider: &str,
    settings: &ProviderSettings,
    config_key: &str,
    env_vars: &[&str],
    env: &dyn Env,
) -> Result<Option<Secret>, SetupError> {
    if let Some(raw) = settings.credentials.get(config_key) {
        let value = expand_placeholders(raw, env)?;
        let value = value.trim();
        if !value.is_empty() {
            return Ok(Some(Secret::new(value)));
        }
        tracing::debug!(
            provider,
            key = config_key,
            "configured credential is empty; trying the environment"
        );
    }
    Ok(env_vars
        .iter()
        .filter_map(|name| env.var(name))
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .map(Secret::new))
}

/// The environment variable that overrides a provider's base URL: `MP_<PROVIDER>_BASE_URL`,
/// upper case, any character other than a letter or digit becoming `_`.
pub fn base_url_variable(provider: &str) -> String {
    let name: String = provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("MP_{name}_BASE_URL")
}

/// The provider's base URL: `MP_<PROVIDER>_BASE_URL` when set, else the configured
/// `base_url` (placeholders expanded), else `default`. The value must be an absolute `http`
/// or `https` URL with a host; an invalid one is an error naming it and where it came from.
pub fn resolve_base_url(
    provider: &str,
    settings: &ProviderSettings,
    default: &str,
    env: &dyn Env,
) -> Result<Url, SetupError> {
    let variable = base_url_variable(provider);
    let (setting, value) = if let Some(v) = env.var(&variable).filter(|v| !v.trim().is_empty()) {
        (variable, v.trim().to_owned())
    } else if let Some(v) = settings
        .base_url
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        (
            format!("the base_url of provider {provider} in the configuration"),
            expand_placeholders(v.trim(), env)?,
        )
    } else {
        ("the built-in default".to_owned(), default.to_owned())
    };
    let invalid = |reason: String| SetupError::InvalidBaseUrl {
        provider: provider.to_owned(),
        setting: setting.clone(),
        value: redact_url_text(&value),
        reason,
        example: default.to_owned(),
    };
    let url = Url::parse(&value).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL takes no query or fragment".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL; use the provider's key settings".to_owned(),
        ));
    }
    Ok(url)
}

/// A URL for a message: user info and query (which may hold credentials) replaced by `***`.
fn redact_url_text(value: &str) -> String {
    let Ok(mut url) = Url::parse(value) else {
        return value.to_owned();
    };
    if !url.username().is_empty() {
        let _ = url.set_username("***");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        url.set_query(Some("***"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MapEnv {
        MapEnv::from_pairs([
            ("ALPACA_KEY_ID", "from-env"),
            ("APCA_API_KEY_ID", "apca"),
            ("MY_KEY", "k3y"),
            ("EMPTY", ""),
        ])
    }

    #[test]
    fn expands_placeholders() {
        let env = env();
        assert_eq!(expand_placeholders("${MY_KEY}", &env).unwrap(), "k3y");
        assert_eq!(
            expand_placeholders("a-${MY_KEY}-${ MY_KEY }-$x", &env).unwrap(),
            "a-k3y-k3y-$x"
        );
        assert_eq!(expand_placeholders("plain", &env).unwrap(), "plain");
        let err = expand_placeholders("x${NOPE}y", &env).unwrap_err();
        assert!(matches!(&err, SetupError::UnsetPlaceholder { variable } if variable == "NOPE"));
        assert!(err.to_string().contains("export NOPE"), "{err}");
        assert!(matches!(
            expand_placeholders("${EMPTY}", &env),
            Err(SetupError::UnsetPlaceholder { .. })
        ));
        let err = expand_placeholders("secretvalue${MY_KEY", &env).unwrap_err();
        assert!(matches!(err, SetupError::InvalidPlaceholder { .. }));
        assert!(!err.to_string().contains("secretvalue"));
    }

    #[test]
    fn secret_resolution_order() {
        let env = env();
        let mut settings = ProviderSettings::default();
        let vars = ["ALPACA_KEY_ID", "APCA_API_KEY_ID"];
        let got = resolve_secret("alpaca", &settings, "key_id", &vars, &env).unwrap();
        assert_eq!(got.unwrap().expose(), "from-env");
        let got = resolve_secret("alpaca", &settings, "key_id", &vars[1..], &env).unwrap();
        assert_eq!(got.unwrap().expose(), "apca");
        assert!(
            resolve_secret("alpaca", &settings, "key_id", &["NONE", "EMPTY"], &env)
                .unwrap()
                .is_none()
        );
        settings
            .credentials
            .insert("key_id".into(), "${MY_KEY}".into());
        let got = resolve_secret("alpaca", &settings, "key_id", &vars, &env).unwrap();
        assert_eq!(got.unwrap().expose(), "k3y");
        settings.credentials.insert("key_id".into(), "  ".into());
        let got = resolve_secret("alpaca", &settings, "key_id", &vars, &env).unwrap();
        assert_eq!(got.unwrap().expose(), "from-env");
        settings
            .credentials
            .insert("key_id".into(), "${UNSET_VAR}".into());
        assert!(resolve_secret("alpaca", &settings, "key_id", &vars, &env).is_err());
    }

    #[test]
    fn base_url_precedence_and_validation() {
        let default = "https://data.alpaca.markets";
        let mut settings = ProviderSettings::default();
        let none = MapEnv::default();
        let url = resolve_base_url("alpaca", &settings, default, &none).unwrap();
        assert_eq!(url.as_str(), "https://data.alpaca.markets/");
        settings.base_url = Some("http://127.0.0.1:9/".into());
        let url = resolve_base_url("alpaca", &settings, default, &none).unwrap();
        assert_eq!(url.port(), Some(9));
        let env = MapEnv::from_pairs([("MP_ALPACA_BASE_URL", "http://localhost:7")]);
        let url = resolve_base_url("alpaca", &settings, default, &env).unwrap();
        assert_eq!(url.port(), Some(7));
        let env = MapEnv::from_pairs([("MP_ALPACA_BASE_URL", "not a url")]);
        let err = resolve_base_url("alpaca", &settings, default, &env).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"not a url\"") && msg.contains("MP_ALPACA_BASE_URL"),
            "{msg}"
        );
        settings.base_url = Some("ftp://x".into());
        let msg = resolve_base_url("alpaca", &settings, default, &none)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ftp://x") && msg.contains("base_url"), "{msg}");
        settings.base_url = Some("https://x/?apiKey=SECRET1".into());
        let msg = resolve_base_url("alpaca", &settings, default, &none)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("https://x/?***") && !msg.contains("SECRET1"),
            "{msg}"
        );
        settings.base_url = Some("https://me:SECRET2@x/".into());
        let msg = resolve_base_url("alpaca", &settings, default, &none)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("SECRET2"), "{msg}");
        assert_eq!(base_url_variable("iex-hist"), "MP_IEX_HIST_BASE_URL");
    }

    #[test]
    fn debug_hides_credentials() {
        let mut settings = ProviderSettings::default();
        settings
            .credentials
            .insert("api_key".into(), "supersecret".into());
        let text = format!("{settings:?}");
        assert!(
            !text.contains("supersecret") && text.contains("api_key"),
            "{text}"
        );
        let env = MapEnv::from_pairs([("K", "supersecret")]);
        assert!(!format!("{env:?}").contains("supersecret"));
    }
}
