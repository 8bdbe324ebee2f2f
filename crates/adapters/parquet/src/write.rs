//! The write protocol (docs/storage.md): lock the partition, merge, write a temporary file, fsync,
//! rename over the old file, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::SchemaRef;
use marketpipe_domain::{Bar, Timestamp};
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{
    LAKE_FORMAT_VERSION, OrphanKind, PartitionKey, PruneOutcome, WriteMeta, WriteOutcome,
};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::codec::{Rows, content_hash, encode, file_metadata, read_file, sort_dedup_last};
use crate::error::{io_error, write_failure};
use crate::layout::{
    LOCK_FILE, PART_FILE, TEMP_PREFIX, legacy_partition_file, partition_bounds, partition_dir,
    relative_path,
};
use crate::merge::merge;
use marketpipe_ports::layout::{FORMAT_MARKER, is_frame_dir_name};
use marketpipe_ports::telemetry;

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

/// What a run of the protocol is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose<'a> {
    /// Merge-upsert new bars with this provenance; the file is rewritten (in the current
    /// format) only when its content changes, so a re-run changes nothing.
    Merge(&'a WriteMeta),
    /// Rewrite the stored rows as they are in the current format when they are stored in an
    /// older one or at format 1's location (`mp lake upgrade`).
    Upgrade,
}

/// Runs the whole protocol for one partition (blocking). `Ok(None)` only for an upgrade of a
/// partition that has no file.
pub(crate) fn write_partition(
    ctx: &WriteContext<'_>,
    key: &PartitionKey,
    mut bars: Vec<Bar>,
    purpose: Purpose<'_>,
) -> Result<Option<WriteOutcome>, LakeError> {
    validate(key, &bars)?;
    let dir = partition_dir(ctx.root, key);
    let path = dir.join(PART_FILE);
    // Format 1 kept monthly partitions under `month=01`: read from there until moved.
    let legacy = legacy_partition_file(ctx.root, key).filter(|l| *l != path && l.is_file());
    if purpose == Purpose::Upgrade && legacy.is_none() && !path.is_file() {
        return Ok(None);
    }
    if matches!(purpose, Purpose::Merge(_)) {
        mark_new_lake(ctx.root)?;
    }
    create_dirs(&dir)?;
    let lock = PartitionLock::acquire(&dir)?;
    remove_stale_temps(&dir)?;

    // The current location wins over format 1's: a file there was written from the legacy
    // one (an upgrade interrupted before it removed the legacy file).
    let (mut stored, from_legacy) = match read_file(&path, key.symbol)? {
        Some(rows) => (rows, false),
        None => match &legacy {
            Some(legacy_path) => (
                read_file(legacy_path, key.symbol)?.unwrap_or_default(),
                true,
            ),
            None => (Rows::default(), false),
        },
    };
    if purpose == Purpose::Upgrade && stored.rows.is_empty() && stored.format_version == 0 {
        drop(lock);
        return Ok(None);
    }
    let outdated = stored.format_version != 0 && stored.format_version < LAKE_FORMAT_VERSION;
    let reordered = sort_dedup_last(&mut stored.rows, |r| r.bar.ts.nanos());
    sort_dedup_last(&mut bars, |b| b.ts.nanos());
    let stored_version = stored.format_version;
    let (rows, inserted, updated, changed) = match purpose {
        Purpose::Merge(meta) => {
            let merged = merge(stored, &bars, meta);
            let changed = reordered || merged.inserted > 0 || merged.updated > 0;
            (merged.rows, merged.inserted, merged.updated, changed)
        }
        Purpose::Upgrade => (stored, 0, 0, reordered || outdated || from_legacy),
    };
    if changed {
        write_atomically(ctx, key, &dir, &path, &rows)?;
    }
    if let Some(legacy_path) = legacy.as_deref().filter(|_| changed || !from_legacy) {
        // Only now that the current file is durable (or already held the rows).
        remove_legacy(legacy_path)?;
    }
    drop(lock);

    let outcome = WriteOutcome {
        key: *key,
        path: if changed || !from_legacy {
            relative_path(key)
        } else {
            legacy_relative_path(ctx.root, legacy.as_deref())
        },
        rows: rows.rows.len() as u64,
        inserted,
        updated,
        rewritten: changed,
        content_hash: content_hash(&rows),
        min_ts: rows.rows.first().map(|r| r.bar.ts),
        max_ts: rows.rows.last().map(|r| r.bar.ts),
        format_version: if changed || stored_version == 0 {
            LAKE_FORMAT_VERSION
        } else {
            stored_version
        },
    };
    tracing::debug!(
        partition = %key,
        rows = outcome.rows,
        inserted = outcome.inserted,
        updated = outcome.updated,
        rewritten = changed,
        format = outcome.format_version,
        "lake partition written"
    );
    Ok(Some(outcome))
}

/// Removes the rows before `cut` from one partition under its lock: deletes the file when
/// every row is before the cut, rewrites it (temporary file, fsync, rename) with the rest
/// when it straddles the cut, and leaves it alone otherwise. A format-1 file is read where it
/// is; its remaining rows are written in the current format at the current location.
pub(crate) fn prune_partition(
    ctx: &WriteContext<'_>,
    key: &PartitionKey,
    cut: Timestamp,
    dry_run: bool,
) -> Result<PruneOutcome, LakeError> {
    let dir = partition_dir(ctx.root, key);
    let path = dir.join(PART_FILE);
    let legacy = legacy_partition_file(ctx.root, key).filter(|l| *l != path && l.is_file());
    // A partition still only in format 1's place is locked there (where its writers lock).
    let lock_dir = if path.is_file() {
        dir.clone()
    } else {
        match legacy.as_deref().and_then(Path::parent) {
            Some(legacy_dir) => legacy_dir.to_path_buf(),
            None => return Ok(PruneOutcome::Untouched),
        }
    };
    let lock = PartitionLock::acquire(&lock_dir)?;
    let (mut stored, from_legacy) = match read_file(&path, key.symbol)? {
        Some(rows) => (rows, false),
        None => match &legacy {
            Some(legacy_path) => (
                read_file(legacy_path, key.symbol)?.unwrap_or_default(),
                true,
            ),
            None => return Ok(PruneOutcome::Untouched),
        },
    };
    sort_dedup_last(&mut stored.rows, |r| r.bar.ts.nanos());
    let before = stored.rows.partition_point(|r| r.bar.ts < cut);
    if before == 0 {
        return Ok(PruneOutcome::Untouched);
    }
    let removed = before as u64;
    if before == stored.rows.len() {
        if !dry_run {
            remove_stale_temps(&lock_dir)?;
            match fs::remove_file(&path) {
                Ok(()) => sync_dir(&dir)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, "cannot remove the partition file", e)),
            }
            if let Some(legacy_path) = legacy.as_deref() {
                remove_legacy(legacy_path)?;
            }
            if cfg!(unix) {
                lock.remove_file(&lock_dir)?;
                remove_empty_dirs(ctx.root, &lock_dir);
            } else {
                drop(lock);
            }
            tracing::debug!(partition = %key, rows = removed, "partition removed by prune");
            return Ok(PruneOutcome::Removed { rows: removed });
        }
        drop(lock);
        tracing::debug!(partition = %key, rows = removed, "partition would be removed by prune");
        return Ok(PruneOutcome::Removed { rows: removed });
    }
    stored.rows.drain(..before);
    if !dry_run {
        create_dirs(&dir)?;
        remove_stale_temps(&dir)?;
        write_atomically(ctx, key, &dir, &path, &stored)?;
        if from_legacy && let Some(legacy_path) = legacy.as_deref() {
            remove_legacy(legacy_path)?;
        }
    }
    drop(lock);
    let outcome = WriteOutcome {
        key: *key,
        path: relative_path(key),
        rows: stored.rows.len() as u64,
        inserted: 0,
        updated: 0,
        rewritten: !dry_run,
        content_hash: content_hash(&stored),
        min_ts: stored.rows.first().map(|r| r.bar.ts),
        max_ts: stored.rows.last().map(|r| r.bar.ts),
        format_version: LAKE_FORMAT_VERSION,
    };
    tracing::debug!(partition = %key, removed, kept = outcome.rows, dry_run, "partition rewritten by prune");
    Ok(PruneOutcome::Rewritten { removed, outcome })
}

/// Removes an orphaned temporary or lock file under its partition's lock, unless a writer
/// made it live again meanwhile (a data file appeared). Whether it was removed.
pub(crate) fn remove_orphan(path: &Path, kind: OrphanKind) -> Result<bool, LakeError> {
    let Some(dir) = path.parent() else {
        return Ok(false);
    };
    if kind == OrphanKind::Temp {
        // Taking the lock waits for any writer; its own temporary files are gone after it.
        let lock = PartitionLock::acquire(dir)?;
        let removed = match fs::remove_file(path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_error(path, "cannot remove the temporary file", e)),
        };
        drop(lock);
        return Ok(removed);
    }
    let lock = PartitionLock::acquire(dir)?;
    if dir.join(PART_FILE).is_file() || !cfg!(unix) {
        return Ok(false);
    }
    lock.remove_file(dir)?;
    Ok(true)
}

/// Removes `dir` and its parents up to (not including) the frame directory while they are
/// empty (best effort: a directory a writer just filled stays).
fn remove_empty_dirs(root: &Path, dir: &Path) {
    let mut current = Some(dir);
    while let Some(d) = current {
        let is_frame_or_root = d == root
            || d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_frame_dir_name);
        if is_frame_or_root || fs::remove_dir(d).is_err() {
            return;
        }
        if let Some(parent) = d.parent() {
            let _ = sync_dir(parent);
        }
        current = d.parent();
    }
}

/// Writes the format marker when the lake has no frame directory yet (a new lake: every file
/// it will hold is of the current format); a lake of older files gets it from the upgrade.
fn mark_new_lake(root: &Path) -> Result<(), LakeError> {
    if root.join(FORMAT_MARKER).is_file() {
        return Ok(());
    }
    let has_frames = match fs::read_dir(root) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_str().is_some_and(is_frame_dir_name)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_error(root, "cannot list the lake root", e)),
    };
    if has_frames {
        return Ok(());
    }
    write_format_marker(root)
}

/// Writes `<root>/.lake-format` (the current format version) by rename, durably.
pub(crate) fn write_format_marker(root: &Path) -> Result<(), LakeError> {
    create_dirs(root)?;
    let marker = root.join(FORMAT_MARKER);
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = root.join(format!(
        "{FORMAT_MARKER}.tmp-{}-{counter}",
        std::process::id()
    ));
    let write = || -> io::Result<()> {
        let mut file = File::create(&temp)?;
        io::Write::write_all(&mut file, format!("{LAKE_FORMAT_VERSION}\n").as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &marker)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        io_error(&marker, "cannot write the lake format marker", e)
    })?;
    sync_dir(root)
}

/// A format-1 file's path relative to the lake root, `/`-separated.
fn legacy_relative_path(root: &Path, legacy: Option<&Path>) -> String {
    legacy
        .and_then(|p| p.strip_prefix(root).ok())
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

/// Removes a format-1 file whose rows now live at the current location, then its lock file
/// and directory when nothing else is left there (no current writer uses that lock).
fn remove_legacy(legacy: &Path) -> Result<(), LakeError> {
    match fs::remove_file(legacy) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(legacy, "cannot remove the format-1 file", e)),
    }
    let Some(dir) = legacy.parent() else {
        return Ok(());
    };
    sync_dir(dir)?;
    let lock = dir.join(LOCK_FILE);
    if lock.is_file() {
        // Best effort: a leftover lock file of an emptied directory harms no reader.
        let _ = fs::remove_file(&lock);
    }
    if fs::remove_dir(dir).is_ok()
        && let Some(parent) = dir.parent()
    {
        sync_dir(parent)?;
    }
    Ok(())
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
        if bar.ts.nanos() % 1_000 != 0 {
            return Err(invalid(format!(
                "bar {i} at {} has a sub-microsecond time ({} ns): the lake stores whole \
                 microseconds",
                bar.ts,
                bar.ts.nanos()
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

/// Whether `path` is still the file `file` has open (same device and inode).
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Lock files are never removed where inodes cannot be compared (see `prune_partition`).
#[cfg(not(unix))]
fn still_linked(_file: &File, _path: &Path) -> bool {
    true
}

/// An exclusive advisory lock on a partition, held by every writer of it across threads and
/// processes (`flock`: per open file, so two opens in one process exclude each other too).
/// Released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct PartitionLock {
    _file: File,
}

impl PartitionLock {
    /// Waits for the lock of the partition in `dir`. A prune removes the lock file of a
    /// partition it deleted while holding the lock; a writer that was waiting on that file
    /// then holds a lock nobody else sees, so it checks that the path still names the file
    /// it locked, and starts again when not.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LakeError> {
        let path = dir.join(LOCK_FILE);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_error(&path, "cannot open the partition lock file", e))?;
            file.lock()
                .map_err(|e| io_error(&path, "cannot lock the partition", e))?;
            if still_linked(&file, &path) {
                return Ok(Self { _file: file });
            }
        }
    }

    /// Removes the lock file while holding it (the partition's file is gone): writers
    /// waiting on it start again on a new one ([`Self::acquire`]).
    pub(crate) fn remove_file(self, dir: &Path) -> Result<(), LakeError> {
        let path = dir.join(LOCK_FILE);
        let removed = match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, "cannot remove the partition lock file", e)),
        };
        // Released only after the unlink.
        drop(self);
        removed
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
    key: &PartitionKey,
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
    for kv in file_metadata(key) {
        writer.append_key_value_metadata(kv);
    }
    writer
        .write(&batch)
        .map_err(|e| write_failure(&temp, format!("cannot write the Parquet file: {e}"), e))?;
    let file = writer
        .into_inner()
        .map_err(|e| write_failure(&temp, format!("cannot finish the Parquet file: {e}"), e))?;
    file.sync_all()
        .map_err(|e| io_error(&temp, "cannot fsync the temporary file", e))?;
    let bytes = file.metadata().map_or(0, |m| m.len());
    drop(file);
    fs::rename(&temp, path)
        .map_err(|e| io_error(path, "cannot rename the temporary file into place", e))?;
    guard.0 = None;
    sync_dir(dir)?;
    let frame = key.frame.as_str();
    metrics::counter!(telemetry::PARTITIONS_WRITTEN.name, telemetry::LABEL_FRAME => frame)
        .increment(1);
    metrics::counter!(telemetry::BYTES_WRITTEN.name, telemetry::LABEL_FRAME => frame)
        .increment(bytes);
    Ok(())
}
