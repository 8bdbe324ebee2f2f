//! Walking the lake: listing partitions, and the integrity check's file inventory and checks.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{PartitionPeriod, Symbol, Timeframe};
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{IntegrityProblem, PartitionInfo, PartitionKey};

use crate::codec::read_file;
use crate::error::io_error;
use crate::layout::{
    LOCK_FILE, PART_FILE, frame_dir, frame_dir_name, is_legacy_month_dir, parse_frame_dir,
    parse_month_dir, parse_partition_dirs, parse_symbol_dir, parse_year_dir, partition_bounds,
    symbol_dir,
};
use crate::write::{PartitionLock, is_temp_name};

/// A directory entry: its name (UTF-8 names only) and whether it is a directory.
struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
}

/// The entries of `dir`; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<Entry>, LakeError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "cannot list the lake directory", e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error(dir, "cannot list the lake directory", e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let file_type = entry
            .file_type()
            .map_err(|e| io_error(&entry.path(), "cannot stat", e))?;
        out.push(Entry {
            name,
            path: entry.path(),
            is_dir: file_type.is_dir(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `path` relative to `root`, `/`-separated.
pub(crate) fn relative_to(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The stored partitions of `frame` for `symbols` (empty = all), sorted by key, each with
/// the file its rows are read from: the current location, or format 1's (`month=01`) while
/// the partition has not been moved.
pub(crate) fn list_partitions(
    root: &Path,
    frame: Timeframe,
    symbols: &[Symbol],
) -> Result<Vec<PartitionInfo>, LakeError> {
    let symbol_dirs: Vec<PathBuf> = if symbols.is_empty() {
        entries(&frame_dir(root, frame))?
            .into_iter()
            .filter(|e| e.is_dir && parse_symbol_dir(&e.name).is_some())
            .map(|e| e.path)
            .collect()
    } else {
        symbols
            .iter()
            .map(|s| symbol_dir(root, frame, *s))
            .collect()
    };
    let mut found: Vec<(PartitionKey, bool, PartitionInfo)> = Vec::new();
    for symbol_dir in symbol_dirs {
        let symbol_name = symbol_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        for year in entries(&symbol_dir)?.into_iter().filter(|e| e.is_dir) {
            if parse_year_dir(&year.name).is_none() {
                continue;
            }
            let mut leaf_dirs: Vec<(Vec<String>, PathBuf, bool)> = Vec::new();
            if frame.partition_period() == PartitionPeriod::Month {
                for month in entries(&year.path)?.into_iter().filter(|e| e.is_dir) {
                    if parse_month_dir(&month.name).is_some() {
                        let legacy = is_legacy_month_dir(&month.name);
                        let dirs = vec![symbol_name.clone(), year.name.clone(), month.name];
                        leaf_dirs.push((dirs, month.path, legacy));
                    }
                }
            } else {
                leaf_dirs.push((
                    vec![symbol_name.clone(), year.name.clone()],
                    year.path,
                    false,
                ));
            }
            for (dirs, dir, legacy) in leaf_dirs {
                let names: Vec<&str> = dirs.iter().map(String::as_str).collect();
                let Some(key) = parse_partition_dirs(frame, &names) else {
                    continue;
                };
                let file = dir.join(PART_FILE);
                match fs::metadata(&file) {
                    Ok(meta) if meta.is_file() => found.push((
                        key,
                        legacy,
                        PartitionInfo {
                            key,
                            path: relative_to(root, &file),
                            bytes: meta.len(),
                        },
                    )),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&file, "cannot stat the partition file", e)),
                }
            }
        }
    }
    // Current locations sort before format 1's, and the first of a key is kept.
    found.sort_by_key(|(key, legacy, _)| (*key, *legacy));
    found.dedup_by(|a, b| a.0 == b.0);
    Ok(found.into_iter().map(|(_, _, info)| info).collect())
}

/// Format-1 files (`month=01`) left beside the current file of their partition by an
/// interrupted upgrade: readers of the raw files would see those rows twice.
pub(crate) fn legacy_duplicates(
    root: &Path,
    frame: Option<Timeframe>,
) -> Result<Vec<IntegrityProblem>, LakeError> {
    let mut by_key: std::collections::BTreeMap<PartitionKey, Vec<PathBuf>> =
        std::collections::BTreeMap::new();
    for item in inventory(root, frame)? {
        if let Found::Partition(key, path) = item {
            by_key.entry(key).or_default().push(path);
        }
    }
    let current = |path: &Path| {
        path.parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .is_none_or(|n| !is_legacy_month_dir(n))
    };
    let mut problems = Vec::new();
    for paths in by_key.values().filter(|p| p.len() > 1) {
        if !paths.iter().any(|p| current(p)) {
            continue;
        }
        for legacy in paths.iter().filter(|p| !current(p)) {
            problems.push(IntegrityProblem {
                path: legacy.display().to_string(),
                problem: "a format-1 file left beside its partition's current file by an \
                          interrupted upgrade (readers of the raw files see its rows twice): \
                          run `mp lake upgrade`"
                    .to_owned(),
            });
        }
    }
    Ok(problems)
}

/// A file the integrity check looks at.
#[derive(Debug)]
pub(crate) enum Found {
    /// A `part-0.parquet` of a valid partition directory.
    Partition(PartitionKey, PathBuf),
    /// A `part-0.parquet` somewhere else under a frame directory.
    Misplaced(Timeframe, PathBuf),
    /// A temporary file whose partition no writer holds.
    StaleTemp(PathBuf),
    /// A lock file in a directory without a data file, that no writer holds.
    OrphanLock(PathBuf),
}

/// Every partition file and stale temporary file under the frame directories of `frames`
/// (or of every frame).
pub(crate) fn inventory(root: &Path, frame: Option<Timeframe>) -> Result<Vec<Found>, LakeError> {
    let frames: Vec<(Timeframe, PathBuf)> = match frame {
        Some(f) => vec![(f, frame_dir(root, f))],
        None => entries(root)?
            .into_iter()
            .filter(|e| e.is_dir)
            .filter_map(|e| parse_frame_dir(&e.name).map(|f| (f, e.path)))
            .collect(),
    };
    let mut found = Vec::new();
    for (frame, dir) in frames {
        walk(frame, &dir, &mut Vec::new(), &mut found)?;
    }
    Ok(found)
}

/// Deepest directory nesting below a frame directory that the walk follows.
const MAX_DEPTH: usize = 8;

fn walk(
    frame: Timeframe,
    dir: &Path,
    below_frame: &mut Vec<String>,
    found: &mut Vec<Found>,
) -> Result<(), LakeError> {
    let listed = entries(dir)?;
    let has_data = listed.iter().any(|e| !e.is_dir && e.name == PART_FILE);
    for entry in listed {
        if entry.is_dir {
            if below_frame.len() < MAX_DEPTH {
                below_frame.push(entry.name);
                walk(frame, &entry.path, below_frame, found)?;
                below_frame.pop();
            }
        } else if entry.name == PART_FILE {
            let names: Vec<&str> = below_frame.iter().map(String::as_str).collect();
            found.push(match parse_partition_dirs(frame, &names) {
                Some(key) => Found::Partition(key, entry.path),
                None => Found::Misplaced(frame, entry.path),
            });
        } else if is_temp_name(&entry.name) && !PartitionLock::is_held(dir) {
            found.push(Found::StaleTemp(entry.path));
        } else if entry.name == LOCK_FILE && !has_data && !PartitionLock::is_held(dir) {
            found.push(Found::OrphanLock(entry.path));
        }
    }
    Ok(())
}

/// What is wrong with a partition file's footer, if anything (the quick check).
pub(crate) fn check_partition_footer(key: &PartitionKey, path: &Path) -> Option<String> {
    match crate::codec::check_footer(path, key.symbol) {
        Ok(Some(_)) => None,
        Ok(None) => Some("the file disappeared during the check".to_owned()),
        Err(LakeError::Corrupt { message, .. }) => Some(message),
        Err(e) => Some(e.to_string()),
    }
}

/// What is wrong with a partition file, if anything: it must decode as bars of its
/// directory's symbol, sorted by strictly increasing `ts`, each inside the partition's period.
pub(crate) fn check_partition_file(key: &PartitionKey, path: &Path) -> Option<String> {
    let rows = match read_file(path, key.symbol) {
        Ok(Some(rows)) => rows.rows,
        Ok(None) => return Some("the file disappeared during the check".to_owned()),
        Err(LakeError::Corrupt { message, .. }) => return Some(message),
        Err(e) => return Some(e.to_string()),
    };
    if let Some(i) = rows
        .windows(2)
        .position(|w| w[1].bar.ts <= w[0].bar.ts)
        .map(|i| i + 1)
    {
        return Some(format!(
            "row {i}: ts {} is not after the previous row's {} (rows must be sorted by ts, \
             with unique ts)",
            rows[i].bar.ts,
            rows[i - 1].bar.ts
        ));
    }
    let Some((start, end)) = partition_bounds(key) else {
        return Some(format!("{key} is not a valid partition"));
    };
    if let Some((i, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.bar.ts < start || r.bar.ts >= end)
    {
        return Some(format!(
            "row {i}: ts {} (session date {}) is outside the partition {key}",
            row.bar.ts,
            ny_date(row.bar.ts)
        ));
    }
    None
}

/// The problem of a `part-0.parquet` outside a valid partition directory of `frame`.
pub(crate) fn misplaced_problem(frame: Timeframe) -> String {
    let month = match frame.partition_period() {
        PartitionPeriod::Month => "/month=<M>",
        PartitionPeriod::Year => "",
    };
    format!(
        "a partition file outside a valid {}/symbol=<SYM>/year=<YYYY>{month} directory",
        frame_dir_name(frame)
    )
}
