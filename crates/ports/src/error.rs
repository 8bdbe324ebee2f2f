//! Port errors. Each enum tells retryable failures from permanent ones, and carries the
//! adapter's own error only as a boxed `source`, so no reqwest, sqlx or parquet type leaks
//! through a port.

use std::time::Duration;

use thiserror::Error;

/// An adapter's underlying error, type-erased.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A market-data provider's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// Credentials missing, wrong, or not entitled to the data asked for. Permanent.
    #[error("{provider}: not authorised: {message}")]
    Auth {
        /// The provider.
        provider: String,
        /// What the provider said (never the key).
        message: String,
    },
    /// The provider throttled us. Retryable after `retry_after` when known.
    #[error("{provider}: rate limited{}", retry_after.map(|d| format!(" (retry after {} ms)", d.as_millis())).unwrap_or_default())]
    RateLimited {
        /// The provider.
        provider: String,
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The resource does not exist (unknown endpoint or symbol). Permanent.
    #[error("{provider}: not found: {what}")]
    NotFound {
        /// The provider.
        provider: String,
        /// What was not found.
        what: String,
    },
    /// The provider rejected the request's parameters. Permanent.
    #[error("{provider}: bad request: {message}")]
    BadRequest {
        /// The provider.
        provider: String,
        /// What the provider said.
        message: String,
    },
    /// A timeout, dropped connection or 5xx. Retryable.
    #[error("{provider}: transient failure: {message}")]
    Transient {
        /// The provider.
        provider: String,
        /// What happened.
        message: String,
        /// The adapter's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A response we could not parse. Permanent for this request.
    #[error("{provider}: malformed response: {message}")]
    Malformed {
        /// The provider.
        provider: String,
        /// What was wrong.
        message: String,
        /// The parser's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The provider cannot do what was asked (a timeframe, a feed). Permanent.
    #[error("{provider}: unsupported: {what}")]
    Unsupported {
        /// The provider.
        provider: String,
        /// What is unsupported.
        what: String,
    },
}

impl ProviderError {
    /// Whether trying the same request again may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// How long the provider asked us to wait, when it said.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A bar lake's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LakeError {
    /// A file that cannot be read or whose content is inconsistent. Permanent; the file is
    /// left untouched for inspection.
    #[error("corrupt lake file {path}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
        /// The reader's error.
        #[source]
        source: Option<BoxError>,
    },
    /// An I/O failure on a path (permissions, disk full, …).
    #[error("lake I/O error on {path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What failed.
        message: String,
        /// Whether trying again may succeed (e.g. interrupted, would block).
        retryable: bool,
        /// The OS error.
        #[source]
        source: Option<BoxError>,
    },
    /// Bars that cannot be written as asked (another symbol than the partition's, a `ts`
    /// outside the partition's period).
    #[error("invalid bars for {partition}: {message}")]
    InvalidBars {
        /// The partition.
        partition: String,
        /// What is wrong.
        message: String,
    },
}

impl LakeError {
    /// Whether trying again may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Io {
                retryable: true,
                ..
            }
        )
    }
}

/// A metadata store's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The record does not exist.
    #[error("{entity} {key} not found")]
    NotFound {
        /// What kind of record.
        entity: &'static str,
        /// Its key.
        key: String,
    },
    /// A uniqueness or state conflict.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// The store is busy or unreachable (locked database, lost connection). Retryable.
    #[error("metadata store unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// Stored data that cannot be decoded into domain types.
    #[error("corrupt metadata: {message}")]
    Corrupt {
        /// What is wrong.
        message: String,
    },
    /// Any other store failure (SQL error, migration failure). Permanent.
    #[error("metadata store error: {message}")]
    Backend {
        /// What happened.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl RepositoryError {
    /// Whether trying again may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A query engine's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A statement that would write or reach outside the lake. Nothing was run.
    #[error("refused: {reason} (only reading statements run; statement: {statement})")]
    Refused {
        /// The statement (possibly shortened).
        statement: String,
        /// Why it was refused.
        reason: String,
    },
    /// SQL the engine could not run (syntax error, unknown column): the statement is at
    /// fault.
    #[error("query failed: {message}")]
    Invalid {
        /// The engine's message.
        message: String,
    },
    /// A valid statement that failed while it ran over the lake: a file that cannot be read
    /// (corrupt, truncated, unreadable), an I/O error, memory. The statement is not at fault;
    /// running it again fails the same way until the cause is fixed.
    #[error("query failed while reading the lake: {message}")]
    Execution {
        /// The engine's message (it names the file when one is at fault).
        message: String,
        /// The engine's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The engine itself failed.
    #[error("query engine error: {message}")]
    Backend {
        /// What happened.
        message: String,
        /// The engine's error.
        #[source]
        source: Option<BoxError>,
    },
}

/// An event publisher's failure.
#[derive(Debug, Error)]
#[error("could not publish {event}: {message}")]
pub struct PublishError {
    /// The event's name.
    pub event: &'static str,
    /// What happened.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let p = |e: ProviderError| (e.is_retryable(), e.retry_after(), e.to_string());
        let (r, after, msg) = p(ProviderError::RateLimited {
            provider: "alpaca".into(),
            retry_after: Some(Duration::from_millis(1500)),
        });
        assert!(r);
        assert_eq!(after, Some(Duration::from_millis(1500)));
        assert_eq!(msg, "alpaca: rate limited (retry after 1500 ms)");
        let (r, after, msg) = p(ProviderError::RateLimited {
            provider: "x".into(),
            retry_after: None,
        });
        assert!(r && after.is_none());
        assert_eq!(msg, "x: rate limited");
        let io = std::io::Error::other("reset");
        let transient = ProviderError::Transient {
            provider: "polygon".into(),
            message: "connection reset".into(),
            source: Some(Box::new(io)),
        };
        assert!(transient.is_retryable());
        assert!(std::error::Error::source(&transient).is_some());
        for permanent in [
            ProviderError::Auth {
                provider: "a".into(),
                message: "bad key".into(),
            },
            ProviderError::NotFound {
                provider: "a".into(),
                what: "ZZZ".into(),
            },
            ProviderError::BadRequest {
                provider: "a".into(),
                message: "m".into(),
            },
            ProviderError::Malformed {
                provider: "a".into(),
                message: "m".into(),
                source: None,
            },
            ProviderError::Unsupported {
                provider: "a".into(),
                what: "4h".into(),
            },
        ] {
            assert!(!permanent.is_retryable(), "{permanent}");
            assert!(permanent.retry_after().is_none());
        }
    }

    #[test]
    fn lake_repository_query_errors() {
        let corrupt = LakeError::Corrupt {
            path: "lake/x.parquet".into(),
            message: "bad footer".into(),
            source: None,
        };
        assert!(!corrupt.is_retryable());
        assert!(corrupt.to_string().contains("lake/x.parquet"));
        let busy = LakeError::Io {
            path: "p".into(),
            message: "m".into(),
            retryable: true,
            source: None,
        };
        assert!(busy.is_retryable());
        let bad = LakeError::InvalidBars {
            partition: "1m/AAPL/2024-01".into(),
            message: "MSFT bar".into(),
        };
        assert!(!bad.is_retryable() && bad.to_string().contains("1m/AAPL/2024-01"));
        assert!(
            RepositoryError::Unavailable {
                message: "locked".into(),
                source: None
            }
            .is_retryable()
        );
        for e in [
            RepositoryError::NotFound {
                entity: "job",
                key: "j1".into(),
            },
            RepositoryError::Conflict {
                message: "m".into(),
            },
            RepositoryError::Corrupt {
                message: "m".into(),
            },
            RepositoryError::Backend {
                message: "m".into(),
                source: None,
            },
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
        let q = QueryError::Refused {
            statement: "COPY t TO 'x'".into(),
            reason: "COPY writes files".into(),
        };
        assert!(q.to_string().starts_with("refused: COPY writes files"));
        assert_eq!(
            QueryError::Invalid {
                message: "syntax".into()
            }
            .to_string(),
            "query failed: syntax"
        );
        let b = QueryError::Backend {
            message: "oom".into(),
            source: None,
        };
        assert!(b.to_string().contains("oom"));
        let x = QueryError::Execution {
            message: "no magic bytes in lake/x.parquet".into(),
            source: Some(Box::new(std::io::Error::other("corrupt"))),
        };
        assert!(x.to_string().contains("lake/x.parquet"));
        assert!(std::error::Error::source(&x).is_some());
        let pe = PublishError {
            event: "bars_ingested",
            message: "closed".into(),
        };
        assert_eq!(pe.to_string(), "could not publish bars_ingested: closed");
    }
}
