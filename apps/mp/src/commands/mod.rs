//! One module per subcommand.

pub(crate) mod aggregate;
pub(crate) mod calendar;
pub(crate) mod config;
pub(crate) mod ingest;
pub(crate) mod jobs;
pub(crate) mod lake;
pub(crate) mod migrate;
pub(crate) mod providers;
pub(crate) mod query;
pub(crate) mod shell;
pub(crate) mod validate;

use std::path::PathBuf;

use crate::config::Config;

/// What every command that touches data needs.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The resolved configuration.
    pub(crate) config: Config,
    /// The resolved data directory.
    pub(crate) data_dir: PathBuf,
    /// Whether progress should be silent (`-q`).
    pub(crate) quiet: bool,
}
