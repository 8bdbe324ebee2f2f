//! Blocking file work of the store (run on tokio's blocking pool): the atomic replace,
//! directory listing and reading, and the mapping of I/O failures to `RepositoryError`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use marketpipe_domain::{Finding, JobId, Symbol, Timestamp};
use marketpipe_ports::RepositoryError;

use crate::format;
use crate::name::parse_report_name;

/// The extension of report files.
pub(crate) const EXTENSION: &str = "csv";

/// Distinguishes the temporary files of concurrent saves within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Maps an I/O failure on `path`: interrupted, would-block and timed-out are retryable.
pub(crate) fn io_error(what: &str, path: &Path, e: io::Error) -> RepositoryError {
    let message = format!("{what} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            RepositoryError::Unavailable {
                message,
                source: Some(Box::new(e)),
            }
        }
        _ => RepositoryError::Backend {
            message,
            source: Some(Box::new(e)),
        },
    }
}

/// The modification time of a file as a `Timestamp` (saturating outside 1677–2262).
fn mtime(meta: &fs::Metadata, path: &Path) -> Result<Timestamp, RepositoryError> {
    let modified = meta
        .modified()
        .map_err(|e| io_error("cannot read the modification time of", path, e))?;
    let nanos = match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    };
    Ok(Timestamp::from_nanos(nanos))
}

/// Writes `content` to `target` atomically: a temporary file in the same directory, synced,
/// renamed over the target, then the directory synced so that the rename survives a crash.
pub(crate) fn replace(
    dir: &Path,
    target: &Path,
    name: &str,
    content: &[u8],
) -> Result<(), RepositoryError> {
    fs::create_dir_all(dir).map_err(|e| io_error("cannot create the reports directory", dir, e))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(
        ".{name}.{EXTENSION}.tmp-{}-{n}",
        std::process::id()
    ));
    let written = write_synced(&temp, content).and_then(|()| {
        fs::rename(&temp, target).map_err(|e| io_error("cannot rename the report onto", target, e))
    });
    if let Err(e) = written {
        // Best effort: the temporary file is useless now, and list() ignores it anyway.
        if let Err(cleanup) = fs::remove_file(&temp)
            && cleanup.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %temp.display(), error = %cleanup, "cannot remove a temporary report file");
        }
        return Err(e);
    }
    sync_dir(dir)
}

fn write_synced(path: &Path, content: &[u8]) -> Result<(), RepositoryError> {
    let err = |e| io_error("cannot write the report file", path, e);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    file.write_all(content).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), RepositoryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync the reports directory", dir, e))
}

/// Directories cannot be opened for syncing outside Unix; the rename is all there is.
#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)]
fn sync_dir(_dir: &Path) -> Result<(), RepositoryError> {
    Ok(())
}

/// A report file read back: its findings and modification time.
pub(crate) struct ReadReport {
    pub(crate) findings: Vec<Finding>,
    pub(crate) modified: Timestamp,
}

/// Reads and parses a report file; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<ReadReport>, RepositoryError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot open the report file", path, e)),
    };
    let err = |e| io_error("cannot read the report file", path, e);
    let meta = file.metadata().map_err(err)?;
    let modified = mtime(&meta, path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(err)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        // The line of the first bad byte: one more than the line breaks before it.
        let line = e.as_bytes()[..valid].split(|&b| b == b'\n').count();
        corrupt(path, line, "not valid UTF-8")
    })?;
    let findings = format::parse(&text).map_err(|e| corrupt(path, e.line, &e.message))?;
    Ok(Some(ReadReport { findings, modified }))
}

fn corrupt(path: &Path, line: usize, message: &str) -> RepositoryError {
    RepositoryError::Corrupt {
        message: format!("report file {} line {line}: {message}", path.display()),
    }
}

/// A report file found in the directory.
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) run_id: JobId,
    pub(crate) symbol: Symbol,
    pub(crate) path: PathBuf,
}

/// The report files of `dir` (`<name>.csv` whose stem is a report name); empty when the
/// directory does not exist. Temporary and other files are ignored.
pub(crate) fn scan(dir: &Path) -> Result<Vec<Listed>, RepositoryError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("cannot list the reports directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("cannot list the reports directory", dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if path.extension().and_then(|x| x.to_str()) != Some(EXTENSION) {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Ok((run_id, symbol)) = parse_report_name(stem) else {
            continue;
        };
        out.push(Listed {
            name: stem.to_owned(),
            run_id,
            symbol,
            path,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn retryable_io_kinds_are_unavailable() {
        let p = Path::new("/r/x.csv");
        for kind in [
            io::ErrorKind::Interrupted,
            io::ErrorKind::WouldBlock,
            io::ErrorKind::TimedOut,
        ] {
            let e = io_error("reading", p, io::Error::from(kind));
            assert!(e.is_retryable(), "{e:?}");
            assert!(e.to_string().contains("/r/x.csv"), "{e}");
        }
        let e = io_error(
            "reading",
            p,
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(
            matches!(&e, RepositoryError::Backend { message, .. } if message.contains("/r/x.csv"))
        );
    }

    #[test]
    fn mtimes_before_the_epoch_are_negative() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let before = UNIX_EPOCH - Duration::from_secs(90);
        file.set_modified(before).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(mtime(&meta, &path).unwrap().nanos(), -90_000_000_000);
    }
}
