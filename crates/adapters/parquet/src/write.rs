//! The write protocol (docs/storage.md): lock the partition, merge, write a temporary file, fsync,
//! rename over the old file, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::SchemaRef;
use marketpipe_domain::Bar;
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{PartitionKey, WriteMeta, WriteOutcome};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::codec::{Rows, content_hash, encode, read_file, sort_dedup_last};
use crate::error::{io_error, write_failure};
use crate::layout::{
    LOCK_FILE, PART_FILE, TEMP_PREFIX, partition_bounds, partition_dir, relative_path,
};
use crate::merge::merge;

/// Distinguishes temporary files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What the protocol needs from the lake.
pub(crate) struct WriteContext<'a> {
    /// The lake root.
    pub(crate) root: &'a Path,
    /// The Arrow schema of written files.
    pub(crate) schema: &'a SchemaRef,
    /// The Parquet writer properties.
    pub(crate) props: &'a WriterProperties,
}

/// Runs the whole protocol for one partition (blocking).
pub(crate) fn write_partition(
    ctx: &WriteContext<'_>,
    key: &PartitionKey,
    mut bars: Vec<Bar>,
    meta: &WriteMeta,
) -> Result<WriteOutcome, LakeError> {
    validate(key, &bars)?;
    let dir = partition_dir(ctx.root, key);
    create_dirs(&dir)?;
    let lock = PartitionLock::acquire(&dir)?;
    remove_stale_temps(&dir)?;

    let path = dir.join(PART_FILE);
    let mut stored = read_file(&path, key.symbol)?.unwrap_or_default();
    let reordered = sort_dedup_last(&mut stored.rows, |r| r.bar.ts.nanos());
    sort_dedup_last(&mut bars, |b| b.ts.nanos());
    let merged = merge(stored, &bars, meta);
    let rewritten = reordered || merged.inserted > 0 || merged.updated > 0;
    if rewritten {
        write_atomically(ctx, &dir, &path, &merged.rows)?;
    }
    drop(lock);

    let rows = &merged.rows.rows;
    let outcome = WriteOutcome {
        key: *key,
        path: relative_path(key),
        rows: rows.len() as u64,
        inserted: merged.inserted,
        updated: merged.updated,
        rewritten,
        content_hash: content_hash(&merged.rows),
        min_ts: rows.first().map(|r| r.bar.ts),
        max_ts: rows.last().map(|r| r.bar.ts),
    };
    tracing::debug!(
        partition = %key,
        rows = outcome.rows,
        inserted = outcome.inserted,
        updated = outcome.updated,
        rewritten,
        "lake partition written"
    );
    Ok(outcome)
}

/// Every bar must be of the key's symbol and period, with counts that fit Parquet's INT64.
fn validate(key: &PartitionKey, bars: &[Bar]) -> Result<(), LakeError> {
    let invalid = |message: String| LakeError::InvalidBars {
        partition: key.to_string(),
        message,
    };
    let (start, end) = partition_bounds(key).ok_or_else(|| {
        invalid(format!(
            "not a partition of frame {}: {}",
            key.frame,
            match key.month {
                Some(m) => format!("year {} month {m}", key.year),
                None => format!("year {} without a month", key.year),
            }
        ))
    })?;
    let too_large = |v: u64| i64::try_from(v).is_err();
    for (i, bar) in bars.iter().enumerate() {
        if bar.symbol != key.symbol {
            return Err(invalid(format!(
                "bar {i} at {} is of symbol {}, not {}",
                bar.ts, bar.symbol, key.symbol
            )));
        }
        if bar.ts < start || bar.ts >= end {
            return Err(invalid(format!(
                "bar {i} at {} belongs to partition {}",
                bar.ts,
                PartitionKey::for_bar(key.frame, bar.symbol, bar.ts)
            )));
        }
        if too_large(bar.volume) || bar.trade_count.is_some_and(too_large) {
            return Err(invalid(format!(
                "bar {i} at {}: volume {} or trade count {:?} exceeds {}",
                bar.ts,
                bar.volume,
                bar.trade_count,
                i64::MAX
            )));
        }
    }
    Ok(())
}

/// Creates the partition directory and fsyncs the parent of every directory it created, so
/// that a renamed file cannot be lost with a directory entry after a power failure.
fn create_dirs(dir: &Path) -> Result<(), LakeError> {
    let mut missing: Vec<&Path> = Vec::new();
    let mut current = Some(dir);
    while let Some(d) = current {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        current = d.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)
        .map_err(|e| io_error(dir, "cannot create the partition directory", e))?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Flushes a directory's entries (renames, new files) to disk.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot fsync the directory", e))
}

/// Directories cannot be opened for fsync on this platform; rename is durable on its own.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), LakeError> {
    Ok(())
}

/// An exclusive advisory lock on a partition, held by every writer of it across threads and
/// processes (`flock`: per open file, so two opens in one process exclude each other too).
/// Released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct PartitionLock {
    _file: File,
}

impl PartitionLock {
    /// Waits for the lock of the partition in `dir`.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LakeError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, "cannot open the partition lock file", e))?;
        file.lock()
            .map_err(|e| io_error(&path, "cannot lock the partition", e))?;
        Ok(Self { _file: file })
    }

    /// Whether a writer holds the lock of the partition in `dir` right now.
    pub(crate) fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
            return false;
        };
        matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
    }
}

/// Whether a file name is a temporary file of the write protocol.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// Deletes temporary files left by a writer that crashed (the caller holds the lock, so no
/// live writer owns one).
fn remove_stale_temps(dir: &Path) -> Result<(), LakeError> {
    let entries =
        fs::read_dir(dir).map_err(|e| io_error(dir, "cannot list the partition directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "cannot list the partition directory", e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_temp_name) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "removed a stale temporary lake file");
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, "cannot remove a stale temporary file", e)),
            }
        }
    }
    Ok(())
}

/// Removes the temporary file unless it was renamed into place.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: a leftover is removed by the next write of the partition.
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes `rows` to a temporary file, fsyncs it, renames it over `path`, fsyncs `dir`.
fn write_atomically(
    ctx: &WriteContext<'_>,
    dir: &Path,
    path: &Path,
    rows: &Rows,
) -> Result<(), LakeError> {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{counter}", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io_error(&temp, "cannot create the temporary file", e))?;
    let mut guard = TempGuard(Some(temp.clone()));

    let batch = encode(rows, ctx.schema)
        .map_err(|e| write_failure(path, format!("cannot encode the bars: {e}"), e))?;
    let mut writer =
        ArrowWriter::try_new(file, SchemaRef::clone(ctx.schema), Some(ctx.props.clone()))
            .map_err(|e| write_failure(&temp, format!("cannot start the Parquet file: {e}"), e))?;
    writer
        .write(&batch)
        .map_err(|e| write_failure(&temp, format!("cannot write the Parquet file: {e}"), e))?;
    let file = writer
        .into_inner()
        .map_err(|e| write_failure(&temp, format!("cannot finish the Parquet file: {e}"), e))?;
    file.sync_all()
        .map_err(|e| io_error(&temp, "cannot fsync the temporary file", e))?;
    drop(file);
    fs::rename(&temp, path)
        .map_err(|e| io_error(path, "cannot rename the temporary file into place", e))?;
    guard.0 = None;
    sync_dir(dir)
}
