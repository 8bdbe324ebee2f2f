//! Wiring: the concrete adapters behind the ports, from the resolved configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use marketpipe_domain::Timestamp;
use marketpipe_fake::FakeProvider;
use marketpipe_parquet::{LakeCompression, LakeOptions, ParquetLake};
use marketpipe_ports::{
    Clock, MarketDataProvider, ProviderInfo, RateLimit, ShiftedClock, SystemClock,
};
use marketpipe_provider_kit::{Env, ProcessEnv, ProviderSettings, SetupError};
use marketpipe_sqlite::SqliteStore;

use crate::commands::Context;
use crate::config::{Config, KeyedProviderConfig};
use crate::error::{AppError, usage};

/// Whether a provider's credentials are set (never their value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// The provider needs none.
    NotNeeded,
    /// Found in the configuration or the environment.
    Present,
    /// Needed but not found.
    Missing,
}

impl Credentials {
    /// `not needed`, `present` or `missing`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::NotNeeded => "not needed",
            Self::Present => "present",
            Self::Missing => "missing",
        }
    }
}

/// One registered provider.
pub(crate) struct ProviderEntry {
    /// The registry name (`--provider NAME`).
    pub(crate) name: &'static str,
    /// Capabilities and documented limits, before any configuration.
    pub(crate) info: fn() -> ProviderInfo,
    /// Whether the credentials are set.
    pub(crate) credentials: fn(&Config, &dyn Env) -> Credentials,
    /// The variables that set its credentials (`None`: it needs none).
    pub(crate) credential_variables: Option<&'static str>,
    /// Builds the adapter from the configuration, the data directory and the environment.
    pub(crate) build: ProviderFactory,
}

/// Builds a provider's adapter from the context and the environment.
pub(crate) type ProviderFactory =
    fn(&Context, &dyn Env) -> Result<Arc<dyn MarketDataProvider>, SetupError>;

/// The provider registry: adding a provider is one adapter crate and one entry here
/// (docs/adding-a-provider.md).
pub(crate) const PROVIDERS: &[ProviderEntry] = &[
    ProviderEntry {
        name: marketpipe_fake::NAME,
        info: || FakeProvider::new().info(),
        credentials: |_, _| Credentials::NotNeeded,
        credential_variables: None,
        build: |_, _| Ok(Arc::new(FakeProvider::new())),
    },
    ProviderEntry {
        name: marketpipe_alpaca::NAME,
        info: marketpipe_alpaca::info,
        credential_variables: Some(marketpipe_alpaca::CREDENTIAL_VARIABLES),
        credentials: |c, env| {
            present(marketpipe_alpaca::credentials_present(
                &alpaca_settings(c),
                env,
            ))
        },
        build: |ctx, env| {
            Ok(Arc::new(marketpipe_alpaca::AlpacaProvider::new(
                &alpaca_settings(&ctx.config),
                env,
            )?))
        },
    },
    ProviderEntry {
        name: marketpipe_polygon::NAME,
        info: marketpipe_polygon::info,
        credential_variables: Some(marketpipe_polygon::CREDENTIAL_VARIABLES),
        credentials: |c, env| {
            present(marketpipe_polygon::credentials_present(
                &keyed_settings(&c.providers.polygon, c),
                env,
            ))
        },
        build: |ctx, env| {
            let settings = keyed_settings(&ctx.config.providers.polygon, &ctx.config);
            Ok(Arc::new(marketpipe_polygon::PolygonProvider::new(
                &settings, env,
            )?))
        },
    },
    ProviderEntry {
        name: marketpipe_finnhub::NAME,
        info: marketpipe_finnhub::info,
        credential_variables: Some(marketpipe_finnhub::CREDENTIAL_VARIABLES),
        credentials: |c, env| {
            present(marketpipe_finnhub::credentials_present(
                &keyed_settings(&c.providers.finnhub, c),
                env,
            ))
        },
        build: |ctx, env| {
            let settings = keyed_settings(&ctx.config.providers.finnhub, &ctx.config);
            Ok(Arc::new(marketpipe_finnhub::FinnhubProvider::new(
                &settings, env,
            )?))
        },
    },
    ProviderEntry {
        name: marketpipe_iex::NAME,
        info: || marketpipe_iex::IexHistProvider::new(PathBuf::new()).info(),
        credentials: |_, _| Credentials::NotNeeded,
        credential_variables: None,
        build: |ctx, env| {
            Ok(Arc::new(marketpipe_iex::IexHistProvider::new(
                iex_hist_dir(ctx, env),
            )))
        },
    },
];

const fn present(yes: bool) -> Credentials {
    if yes {
        Credentials::Present
    } else {
        Credentials::Missing
    }
}

/// The HTTP settings shared by every HTTP provider's section.
fn http_settings(
    base_url: Option<&String>,
    rate_limit_per_minute: Option<u32>,
    timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    config: &Config,
) -> ProviderSettings {
    ProviderSettings {
        base_url: base_url.cloned(),
        rate_limit: rate_limit_per_minute.map(RateLimit::per_minute),
        timeout: timeout_secs.map(Duration::from_secs),
        max_retries: Some(max_retries.unwrap_or(config.ingest.max_retries)),
        // The one retry policy: the same base and maximum delay as the coordinator's.
        retry_base_delay: Some(Duration::from_millis(config.ingest.retry_base_delay_ms)),
        retry_max_delay: Some(Duration::from_millis(config.ingest.retry_max_delay_ms)),
        credentials: BTreeMap::new(),
    }
}

pub(crate) fn alpaca_settings(config: &Config) -> ProviderSettings {
    let c = &config.providers.alpaca;
    let mut settings = http_settings(
        c.base_url.as_ref(),
        c.rate_limit_per_minute,
        c.timeout_secs,
        c.max_retries,
        config,
    );
    for (key, value) in [("key_id", &c.key_id), ("secret_key", &c.secret_key)] {
        if let Some(value) = value {
            settings.credentials.insert(key.to_owned(), value.clone());
        }
    }
    settings
}

pub(crate) fn keyed_settings(c: &KeyedProviderConfig, config: &Config) -> ProviderSettings {
    let mut settings = http_settings(
        c.base_url.as_ref(),
        c.rate_limit_per_minute,
        c.timeout_secs,
        c.max_retries,
        config,
    );
    if let Some(key) = &c.api_key {
        settings
            .credentials
            .insert("api_key".to_owned(), key.clone());
    }
    settings
}

/// Where IEX HIST files are: `MP_IEX_HIST_DIR`, else `providers.iex.hist_dir`, else
/// `<data_dir>/iex-hist`.
pub(crate) fn iex_hist_dir(ctx: &Context, env: &dyn Env) -> PathBuf {
    env.var(marketpipe_iex::HIST_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| ctx.config.providers.iex.hist_dir.clone())
        .unwrap_or_else(|| ctx.data_dir.join("iex-hist"))
}

/// Names of the known providers, for messages.
pub(crate) fn provider_names() -> Vec<&'static str> {
    PROVIDERS.iter().map(|p| p.name).collect()
}

/// The registry entry of `name`; an unknown name is a usage error listing the known ones.
pub(crate) fn provider_entry(name: &str) -> Result<&'static ProviderEntry, AppError> {
    PROVIDERS.iter().find(|p| p.name == name).ok_or_else(|| {
        usage(anyhow::anyhow!(
            "unknown provider {name:?}; known providers: {}",
            provider_names().join(", ")
        ))
    })
}

/// Builds the named provider from the process environment. A set-up problem (missing
/// credentials, a bad base URL) is a usage error that says what to set.
pub(crate) fn provider(name: &str, ctx: &Context) -> Result<Arc<dyn MarketDataProvider>, AppError> {
    let entry = provider_entry(name)?;
    (entry.build)(ctx, &ProcessEnv).map_err(|e| usage(anyhow::Error::new(e)))
}

/// The variable that sets the clock: `MP_NOW=2024-03-08T21:00:00Z` makes every command run
/// as if started at that instant (tests, a rerun of a past day's schedule).
pub(crate) const NOW_VAR: &str = "MP_NOW";

/// The clock commands read: the system's, or one starting at `MP_NOW`.
pub(crate) fn clock(env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn Clock>, AppError> {
    match env(NOW_VAR).filter(|v| !v.is_empty()) {
        None => Ok(Arc::new(SystemClock)),
        Some(text) => {
            let start = Timestamp::parse_rfc3339(&text).map_err(|e| {
                usage(anyhow::anyhow!(
                    "{NOW_VAR}={text:?}: {e}; give an RFC 3339 instant such as 2024-03-08T21:00:00Z, or unset it"
                ))
            })?;
            Ok(Arc::new(ShiftedClock::starting_at(start)))
        }
    }
}

/// The resolved data directory: the flag or `MP_DATA_DIR`, else the config's.
pub(crate) fn data_dir(flag: Option<&Path>, config: &Config) -> PathBuf {
    flag.map_or_else(|| config.data_dir.clone(), Path::to_path_buf)
}

/// The metadata database file.
pub(crate) fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("marketpipe.db")
}

/// Opens (creating and migrating) the metadata store.
pub(crate) async fn open_store(data_dir: &Path) -> Result<SqliteStore, AppError> {
    let path = database_path(data_dir);
    SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the metadata database {}", path.display()))
        .map_err(AppError::Failed)
}

/// The lake under `<data_dir>/lake`.
pub(crate) fn lake(data_dir: &Path, config: &Config) -> Result<ParquetLake, AppError> {
    let compression: LakeCompression = config
        .lake
        .compression
        .parse()
        .map_err(|e| usage(anyhow::anyhow!("lake.compression: {e}")))?;
    Ok(ParquetLake::new(
        data_dir.join("lake"),
        LakeOptions {
            compression,
            max_row_group_size: config.lake.max_row_group_size,
            ..LakeOptions::default()
        },
    ))
}
