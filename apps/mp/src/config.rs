//! The YAML configuration: one file (`config_version: 1`), every key overridable by an
//! `MP_<SECTION>_<KEY>` environment variable, and flags over both.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, usage};

/// The configuration version this build understands.
pub(crate) const CONFIG_VERSION: u32 = 1;

/// The whole configuration.
#[allow(clippy::struct_field_names)] // `config_version` is the file format's fixed key
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// The file format version.
    pub(crate) config_version: u32,
    /// Where the lake (`lake/`) and the metadata database (`marketpipe.db`) live.
    pub(crate) data_dir: PathBuf,
    /// Lake settings.
    pub(crate) lake: LakeConfig,
    /// Ingestion settings.
    pub(crate) ingest: IngestConfig,
    /// Validation thresholds.
    pub(crate) validation: marketpipe_domain::ValidationThresholds,
    /// Per-provider settings (base URLs, rate limits, credentials as `${VAR}` placeholders).
    pub(crate) providers: ProvidersConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            config_version: CONFIG_VERSION,
            data_dir: PathBuf::from("./data"),
            lake: LakeConfig::default(),
            ingest: IngestConfig::default(),
            validation: marketpipe_domain::ValidationThresholds::default(),
            providers: ProvidersConfig::default(),
        }
    }
}

/// `providers:` — one section per provider, so that a misspelt key is an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ProvidersConfig {
    /// `providers.alpaca`.
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) alpaca: AlpacaConfig,
    /// `providers.polygon` (Polygon, now Massive).
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) polygon: KeyedProviderConfig,
    /// `providers.finnhub`.
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) finnhub: KeyedProviderConfig,
    /// `providers.iex` (HIST files).
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) iex: IexConfig,
}

/// A section written with only comments under it (`alpaca:`) is YAML null: read it as the
/// defaults.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `providers.alpaca`. Unset values take the provider's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AlpacaConfig {
    /// API base URL (env `MP_ALPACA_BASE_URL` overrides it).
    pub(crate) base_url: Option<String>,
    /// Requests per minute (default: the free plan's 200).
    pub(crate) rate_limit_per_minute: Option<u32>,
    /// Per-request timeout in seconds.
    pub(crate) timeout_secs: Option<u64>,
    /// Retries of a transient failure.
    pub(crate) max_retries: Option<u32>,
    /// API key id; use a `${VAR}` placeholder, never the value.
    pub(crate) key_id: Option<String>,
    /// API secret; use a `${VAR}` placeholder, never the value.
    pub(crate) secret_key: Option<String>,
}

/// An HTTP provider authenticated by one API key (Polygon, Finnhub).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KeyedProviderConfig {
    /// API base URL (env `MP_<NAME>_BASE_URL` overrides it).
    pub(crate) base_url: Option<String>,
    /// Requests per minute (default: the provider's free plan).
    pub(crate) rate_limit_per_minute: Option<u32>,
    /// Per-request timeout in seconds.
    pub(crate) timeout_secs: Option<u64>,
    /// Retries of a transient failure.
    pub(crate) max_retries: Option<u32>,
    /// API key; use a `${VAR}` placeholder, never the value.
    pub(crate) api_key: Option<String>,
}

/// `providers.iex`: the exchange's HIST files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct IexConfig {
    /// Where HIST files are kept (env `MP_IEX_HIST_DIR` overrides it; default
    /// `<data_dir>/iex-hist`).
    pub(crate) hist_dir: Option<PathBuf>,
    /// The listing's base URL (default `https://iextrading.com`).
    pub(crate) base_url: Option<String>,
}

/// `lake:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LakeConfig {
    /// zstd, snappy, lz4, gzip, brotli or none.
    pub(crate) compression: String,
    /// Rows per Parquet row group.
    pub(crate) max_row_group_size: usize,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            compression: "zstd".into(),
            max_row_group_size: marketpipe_parquet::LakeOptions::DEFAULT_MAX_ROW_GROUP_SIZE,
        }
    }
}

/// `ingest:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct IngestConfig {
    /// Provider used when `--provider` is not given.
    pub(crate) provider: String,
    /// Work items in flight at once.
    pub(crate) concurrency: usize,
    /// Keep 04:00–20:00 ET bars instead of 09:30–16:00.
    pub(crate) extended_hours: bool,
    /// Retries of a transient provider failure.
    pub(crate) max_retries: u32,
    /// Backoff before the first retry, in milliseconds (doubled each time, with jitter).
    pub(crate) retry_base_delay_ms: u64,
    /// Longest single wait before a retry, in milliseconds.
    pub(crate) retry_max_delay_ms: u64,
    /// Bars asked per page (0: the provider's maximum). Smaller pages mean more requests.
    pub(crate) page_size: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            provider: "fake".into(),
            concurrency: 4,
            extended_hours: false,
            max_retries: 5,
            retry_base_delay_ms: 250,
            retry_max_delay_ms: 60_000,
            page_size: 0,
        }
    }
}

/// The commented example written by `mp config init`. A test loads it with `load` so that it
/// can never drift from what the loader accepts.
pub(crate) const EXAMPLE: &str = r"# MarketPipe configuration (mp config init).
# Every key is optional; the values below are the defaults.
# Any key can be overridden by an environment variable MP_<SECTION>_<KEY>
# (e.g. MP_INGEST_CONCURRENCY=8, MP_LAKE_COMPRESSION=snappy, MP_DATA_DIR=/srv/mp),
# and flags override both. Unknown keys are errors.
config_version: 1

# Where the Parquet lake (lake/) and the metadata database (marketpipe.db) live.
data_dir: ./data

lake:
  # Parquet compression: zstd, snappy, lz4, gzip, brotli or none.
  compression: zstd
  # Rows per Parquet row group.
  max_row_group_size: 131072

ingest:
  # Provider used when --provider is not given (see `mp ingest --help`).
  provider: fake
  # Requests (a month of up to the provider's symbols per request) in flight at once.
  concurrency: 4
  # Keep extended hours (04:00-20:00 ET) instead of regular hours (09:30-16:00 ET).
  extended_hours: false
  # Retries of a transient provider failure (timeouts, 5xx, 429), with exponential backoff
  # and full jitter between retry_base_delay_ms and retry_max_delay_ms.
  max_retries: 5
  retry_base_delay_ms: 250
  retry_max_delay_ms: 60000
  # Bars asked per page; 0 asks for the provider's maximum (Alpaca 10000, Polygon 50000).
  page_size: 0

validation:
  # A bar whose high or low is more than this many percent from the previous close.
  price_jump_pct: 10.0
  # A bar whose robust z-score (median/MAD) of log volume exceeds this.
  volume_outlier_score: 8.0
  # This many consecutive zero-volume bars or more are reported as a run.
  zero_volume_run: 30
  # Which hours bars must lie in when validating symbols x dates: regular or extended.
  # (A job is validated against the hours it was ingested with.)
  session: regular

# Providers. Credentials come from the environment (ALPACA_KEY_ID / ALPACA_SECRET_KEY,
# POLYGON_API_KEY or MASSIVE_API_KEY, FINNHUB_API_KEY) or from ${VAR} placeholders here;
# never write a key's value into this file. Unset values take each provider's defaults
# (see `mp providers list` and docs/providers.md).
providers:
  alpaca:
    # base_url: https://data.alpaca.markets     # or env MP_ALPACA_BASE_URL
    # rate_limit_per_minute: 200                # free plan; 10000 with Algo Trader Plus
    # timeout_secs: 30
    # max_retries: 5
    # key_id: ${MY_ALPACA_KEY_ID}               # only to read the key from another variable
    # secret_key: ${MY_ALPACA_SECRET}
  polygon:
    # base_url: https://api.massive.com         # or env MP_POLYGON_BASE_URL
    # rate_limit_per_minute: 5                  # free plan
    # api_key: ${MY_POLYGON_KEY}
  finnhub:
    # base_url: https://finnhub.io/api/v1       # or env MP_FINNHUB_BASE_URL
    # rate_limit_per_minute: 60
    # api_key: ${MY_FINNHUB_KEY}
  iex:
    # Where the exchange's HIST files are kept (or env MP_IEX_HIST_DIR);
    # default <data_dir>/iex-hist. `mp iex fetch --date YYYY-MM-DD` downloads one day.
    # hist_dir: ./data/iex-hist
";

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The resolved values.
    pub(crate) config: Config,
    /// The file read, if any.
    pub(crate) source: Option<PathBuf>,
}

/// Loads `path` (or the defaults when `None`), then applies `MP_*` environment overrides
/// from `env`. Unknown keys, bad values and unreadable files are usage errors that name them.
pub(crate) fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, AppError> {
    let mut value = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))
                .map_err(usage)?;
            parse_yaml(&text)
                .with_context(|| format!("invalid config file {}", p.display()))
                .map_err(usage)?
        }
        None => serde_json::to_value(Config::default()).map_err(|e| AppError::Failed(e.into()))?,
    };
    // Fill the defaults in so that every key exists for the environment overlay.
    let defaults =
        serde_json::to_value(Config::default()).map_err(|e| AppError::Failed(e.into()))?;
    merge_missing(&mut value, &defaults);
    overlay_env(&mut value, "MP", env).map_err(usage)?;
    let config: Config = serde_json::from_value(value)
        .context("invalid configuration after applying MP_* environment variables")
        .map_err(usage)?;
    if config.config_version != CONFIG_VERSION {
        tracing::warn!(
            found = config.config_version,
            expected = CONFIG_VERSION,
            "unknown config_version; reading it as version 1"
        );
    }
    Ok(Loaded {
        config,
        source: path.map(Path::to_path_buf),
    })
}

fn parse_yaml(text: &str) -> anyhow::Result<Value> {
    let config: Config = serde_yaml_ng::from_str(text)?;
    Ok(serde_json::to_value(config)?)
}

fn merge_missing(value: &mut Value, defaults: &Value) {
    if let (Value::Object(v), Value::Object(d)) = (value, defaults) {
        for (k, dv) in d {
            match v.get_mut(k) {
                Some(existing) => merge_missing(existing, dv),
                None => {
                    v.insert(k.clone(), dv.clone());
                }
            }
        }
    }
}

/// Replaces each leaf `a.b_c` by `MP_A_B_C` when that variable is set. The text is read as a
/// YAML scalar, so `8` is a number and `true` a boolean.
fn overlay_env(
    value: &mut Value,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let name = format!("{prefix}_{}", k.to_ascii_uppercase());
                overlay_env(v, &name, env)?;
            }
        }
        leaf => {
            if let Some(text) = env(prefix) {
                let parsed: Value = if matches!(leaf, Value::String(_)) {
                    Value::String(text.clone())
                } else {
                    serde_yaml_ng::from_str(&text)
                        .with_context(|| format!("{prefix}={text:?} is not a valid value"))?
                };
                let same_kind = match (&*leaf, &parsed) {
                    (Value::Number(_), Value::Number(_)) | (Value::Bool(_), Value::Bool(_)) => true,
                    (Value::Number(_) | Value::Bool(_), _) => false,
                    _ => true,
                };
                if !same_kind {
                    anyhow::bail!(
                        "{prefix}={text:?}: expected {}",
                        if leaf.is_boolean() {
                            "true or false"
                        } else {
                            "a number"
                        }
                    );
                }
                *leaf = parsed;
            }
        }
    }
    Ok(())
}

/// The resolved configuration as YAML, secrets masked.
pub(crate) fn show(config: &Config) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(config)?;
    mask_secrets(&mut value);
    Ok(serde_yaml_ng::to_string(&value)?)
}

/// Masks any string under a key that names a secret (`*key*`, `*secret*`, `*token*`,
/// `*password*`), unless it is a `${VAR}` placeholder, which names a variable, not a value.
fn mask_secrets(value: &mut Value) {
    if let Value::Object(map) = value {
        for (k, v) in map.iter_mut() {
            let lower = k.to_ascii_lowercase();
            let secret = ["key", "secret", "token", "password"]
                .iter()
                .any(|s| lower.contains(s));
            match v {
                Value::String(s) if secret && !s.is_empty() && !s.starts_with("${") => {
                    *s = "****".into();
                }
                _ => mask_secrets(v),
            }
        }
    }
}

/// Checks that `dir` can be created and written, naming it when not.
pub(crate) fn ensure_writable_dir(dir: &Path) -> Result<(), AppError> {
    let fail = |e: std::io::Error| {
        usage(anyhow::anyhow!(
            "data dir {} cannot be written ({e}); pass a writable --data-dir or set MP_DATA_DIR",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".mp-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

/// Refuses a zero concurrency and similar nonsense with a message naming the key.
pub(crate) fn validate(config: &Config) -> anyhow::Result<()> {
    if config.ingest.concurrency == 0 {
        bail!("ingest.concurrency must be at least 1 (got 0)");
    }
    if config.lake.max_row_group_size == 0 {
        bail!("lake.max_row_group_size must be at least 1 (got 0)");
    }
    let v = &config.validation;
    if !(v.price_jump_pct.is_finite() && v.price_jump_pct > 0.0) {
        bail!(
            "validation.price_jump_pct must be a positive number (got {})",
            v.price_jump_pct
        );
    }
    if !(v.volume_outlier_score.is_finite() && v.volume_outlier_score > 0.0) {
        bail!(
            "validation.volume_outlier_score must be a positive number (got {})",
            v.volume_outlier_score
        );
    }
    if v.zero_volume_run == 0 {
        bail!("validation.zero_volume_run must be at least 1 (got 0)");
    }
    config
        .lake
        .compression
        .parse::<marketpipe_parquet::LakeCompression>()
        .map_err(|e| anyhow::anyhow!("lake.compression: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_loads_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mp.yaml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let loaded = load(Some(&path), &no_env).unwrap();
        assert_eq!(loaded.config, Config::default());
        validate(&loaded.config).unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mp.yaml");
        std::fs::write(&path, "config_version: 1\ningest:\n  concurrancy: 3\n").unwrap();
        let err = load(Some(&path), &no_env).unwrap_err().to_string();
        assert!(err.contains("concurrancy"), "{err}");
        assert!(err.contains("mp.yaml"), "{err}");
        let err = load(Some(&dir.path().join("missing.yaml")), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.yaml"), "{err}");
        let err = load(None, &|k| {
            (k == "MP_INGEST_CONCURRENCY").then(|| "lots".into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("MP_INGEST_CONCURRENCY=\"lots\""), "{err}");
    }

    #[test]
    fn environment_overrides_file() {
        let env = |k: &str| match k {
            "MP_INGEST_CONCURRENCY" => Some("8".to_owned()),
            "MP_LAKE_COMPRESSION" => Some("snappy".to_owned()),
            "MP_INGEST_EXTENDED_HOURS" => Some("true".to_owned()),
            "MP_DATA_DIR" => Some("/srv/mp".to_owned()),
            _ => None,
        };
        let c = load(None, &env).unwrap().config;
        assert_eq!(c.ingest.concurrency, 8);
        assert_eq!(c.lake.compression, "snappy");
        assert!(c.ingest.extended_hours);
        assert_eq!(c.data_dir, PathBuf::from("/srv/mp"));
    }

    #[test]
    fn validation_and_masking() {
        let mut c = Config::default();
        c.ingest.concurrency = 0;
        assert!(
            validate(&c)
                .unwrap_err()
                .to_string()
                .contains("ingest.concurrency")
        );
        let mut c = Config::default();
        c.lake.compression = "zip".into();
        assert!(validate(&c).unwrap_err().to_string().contains("zip"));
        let mut v =
            serde_json::json!({"a": {"api_key": "s3cr3t", "secret_key": "${X}", "name": "n"}});
        mask_secrets(&mut v);
        assert_eq!(v["a"]["api_key"], "****");
        assert_eq!(v["a"]["secret_key"], "${X}");
        assert_eq!(v["a"]["name"], "n");
        assert!(
            show(&Config::default())
                .unwrap()
                .contains("compression: zstd")
        );
    }
}
