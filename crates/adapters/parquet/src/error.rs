//! Mapping of I/O and Parquet failures to the port's `LakeError`.

use std::io;
use std::path::Path;

use marketpipe_ports::error::LakeError;

/// An I/O failure on `path`; interrupted, would-block and timed-out operations are retryable.
pub(crate) fn io_error(path: &Path, what: &str, e: io::Error) -> LakeError {
    LakeError::Io {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
        retryable: matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        source: Some(Box::new(e)),
    }
}

/// A file whose content is not a valid partition.
pub(crate) fn corrupt(path: &Path, message: impl Into<String>) -> LakeError {
    LakeError::Corrupt {
        path: path.display().to_string(),
        message: message.into(),
        source: None,
    }
}

/// A file the Parquet reader rejected.
pub(crate) fn corrupt_with<E>(path: &Path, message: impl Into<String>, source: E) -> LakeError
where
    E: std::error::Error + Send + Sync + 'static,
{
    LakeError::Corrupt {
        path: path.display().to_string(),
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

/// A failure while encoding or writing a new file (not an OS error of its own).
pub(crate) fn write_failure<E>(path: &Path, message: impl Into<String>, source: E) -> LakeError
where
    E: std::error::Error + Send + Sync + 'static,
{
    LakeError::Io {
        path: path.display().to_string(),
        message: message.into(),
        retryable: false,
        source: Some(Box::new(source)),
    }
}

/// A blocking worker that panicked or was cancelled.
pub(crate) fn worker_failure(path: &Path, e: &tokio::task::JoinError) -> LakeError {
    LakeError::Io {
        path: path.display().to_string(),
        message: format!("the lake worker task failed: {e}"),
        retryable: false,
        source: None,
    }
}
