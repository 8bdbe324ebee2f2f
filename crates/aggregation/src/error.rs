//! The aggregation context's errors.

use marketpipe_domain::{DomainError, Timeframe};
use marketpipe_ports::{LakeError, RepositoryError};
use thiserror::Error;

/// Why an aggregation could not run or finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// A frame that is not built from 1m bars (1m itself).
    #[error("cannot aggregate to {0}: choose among 5m, 15m, 30m, 1h, 4h, 1d")]
    BadFrame(Timeframe),
    /// No frame was asked for.
    #[error("no frames to aggregate: pass at least one of 5m, 15m, 30m, 1h, 4h, 1d")]
    NoFrames,
    /// Concurrency of zero.
    #[error("concurrency must be at least 1 (got 0)")]
    BadConcurrency,
    /// The lake could not be read or written.
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
    /// The manifest could not be read or written.
    #[error("manifest: {0}")]
    Manifest(#[from] RepositoryError),
    /// Stored bars the domain rejects (out of order, mixed symbols).
    #[error("{0}")]
    Domain(#[from] DomainError),
    /// A unit of work panicked or was cancelled.
    #[error("aggregation task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}
