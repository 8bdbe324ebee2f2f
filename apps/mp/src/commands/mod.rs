//! One module per subcommand.

pub(crate) mod aggregate;
pub(crate) mod backfill;
pub(crate) mod calendar;
pub(crate) mod config;
pub(crate) mod gaps;
pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod jobs;
pub(crate) mod lake;
pub(crate) mod metrics;
pub(crate) mod migrate;
pub(crate) mod providers;
pub(crate) mod prune;
pub(crate) mod query;
pub(crate) mod shell;
pub(crate) mod symbols;
pub(crate) mod universe;
pub(crate) mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use marketpipe_domain::Symbol;
use marketpipe_ports::Clock;

use crate::config::Config;
use crate::error::{AppError, usage};

/// What every command that touches data needs.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The resolved configuration.
    pub(crate) config: Config,
    /// The resolved data directory.
    pub(crate) data_dir: PathBuf,
    /// Whether progress should be silent (`-q`).
    pub(crate) quiet: bool,
    /// Now: the system clock, or the instant `MP_NOW` names (tests, reruns of a past day).
    pub(crate) clock: Arc<dyn Clock>,
}

/// The symbols of `--symbols LIST` and `--symbols-file FILE`, in order, without repeats.
pub(crate) fn symbols_from(
    list: Option<&str>,
    file: Option<&Path>,
) -> Result<Vec<Symbol>, AppError> {
    let mut symbols: Vec<Symbol> = Vec::new();
    if let Some(list) = list {
        symbols.extend(Symbol::parse_list(list).map_err(usage)?);
    }
    if let Some(file) = file {
        for s in read_symbols_file(file)? {
            if !symbols.contains(&s) {
                symbols.push(s);
            }
        }
    }
    if symbols.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no symbols given: pass --symbols or --symbols-file"
        )));
    }
    Ok(symbols)
}

/// A file of symbols: one or more per line, comma- or space-separated; `#` starts a comment.
fn read_symbols_file(path: &Path) -> Result<Vec<Symbol>, AppError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read symbols file {}", path.display()))
        .map_err(usage)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        for token in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let s = Symbol::new(token)
                .with_context(|| format!("{}:{}", path.display(), n + 1))
                .map_err(usage)?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so that a reader never sees half a file and a failure leaves none behind.
pub(crate) fn write_file_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::write(&temp, contents).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
