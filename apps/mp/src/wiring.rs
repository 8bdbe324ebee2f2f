//! Wiring: the concrete adapters behind the ports, from the resolved configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use marketpipe_fake::FakeProvider;
use marketpipe_parquet::{LakeCompression, LakeOptions, ParquetLake};
use marketpipe_ports::MarketDataProvider;
use marketpipe_sqlite::SqliteStore;

use crate::config::Config;
use crate::error::{AppError, usage};

/// A provider factory: builds the adapter from the configuration.
type ProviderFactory = fn(&Config) -> anyhow::Result<Arc<dyn MarketDataProvider>>;

/// The provider registry: adding a provider is one adapter crate and one line here.
const PROVIDERS: &[(&str, ProviderFactory)] = &[("fake", |_| Ok(Arc::new(FakeProvider::new())))];

/// Names of the known providers, for messages.
pub(crate) fn provider_names() -> Vec<&'static str> {
    PROVIDERS.iter().map(|(name, _)| *name).collect()
}

/// Builds the named provider; an unknown name is a usage error listing the known ones.
pub(crate) fn provider(
    name: &str,
    config: &Config,
) -> Result<Arc<dyn MarketDataProvider>, AppError> {
    let (_, factory) = PROVIDERS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        usage(anyhow::anyhow!(
            "unknown provider {name:?}; known providers: {}",
            provider_names().join(", ")
        ))
    })?;
    factory(config).map_err(usage)
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
        },
    ))
}
