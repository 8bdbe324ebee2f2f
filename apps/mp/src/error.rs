//! The app's error type and its single mapping to exit codes: 0 done, 1 failed, 2 usage.

use std::fmt;

/// A command's failure, classified for the exit code.
#[derive(Debug)]
pub(crate) enum AppError {
    /// The user asked for something invalid (bad value, unknown name): exit 2.
    Usage(anyhow::Error),
    /// The work failed: exit 1.
    Failed(anyhow::Error),
}

impl AppError {
    /// The same kind of error, with `context` said before its cause.
    pub(crate) fn context(self, context: String) -> Self {
        match self {
            Self::Usage(e) => Self::Usage(e.context(context)),
            Self::Failed(e) => Self::Failed(e.context(context)),
        }
    }

    pub(crate) const fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `{:#}` prints the whole context chain on one line.
            Self::Usage(e) | Self::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Wraps a bad-input error so that it exits with 2.
pub(crate) fn usage<E: Into<anyhow::Error>>(e: E) -> AppError {
    AppError::Usage(e.into())
}

/// Whether the failure is only a closed stdout (`mp … | head`), which is not an error.
pub(crate) fn is_broken_pipe(e: &AppError) -> bool {
    let (AppError::Usage(inner) | AppError::Failed(inner)) = e;
    inner
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_pipes() {
        assert_eq!(usage(anyhow::anyhow!("bad")).exit_code(), 2);
        let pipe = AppError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 1);
        assert!(is_broken_pipe(&pipe));
        assert!(!is_broken_pipe(&usage(anyhow::anyhow!("x"))));
        let chained = AppError::Failed(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(chained.to_string(), "outer: inner");
    }
}
