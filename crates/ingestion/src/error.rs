//! The ingestion context's errors.

use std::sync::Arc;

use marketpipe_domain::{DomainError, JobId, JobState};
use marketpipe_ports::{LakeError, PartitionKey, ProviderError, RepositoryError};
use thiserror::Error;

/// Why a job could not be created, run or resumed. A work item's own failure is not an
/// error here: it fails the job, which is reported in the `JobReport`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// No job with that id.
    #[error("job {0} not found (see `mp jobs list`)")]
    JobNotFound(JobId),
    /// A job that cannot be resumed.
    #[error("job {job_id} is {state}: a completed job has nothing left to resume")]
    NotResumable {
        /// The job.
        job_id: JobId,
        /// Its state.
        state: JobState,
    },
    /// A job whose owner is alive: it cannot be taken over.
    #[error(
        "job {job_id} is running (pid {pid} on {host}); wait for it, or stop it with `mp jobs kill {job_id}`"
    )]
    AlreadyRunning {
        /// The job.
        job_id: JobId,
        /// Its owner's host.
        host: String,
        /// Its owner's pid.
        pid: u32,
    },
    /// A job that has already ended (nothing to stop or mark).
    #[error("job {job_id} is already {state}")]
    AlreadyFinished {
        /// The job.
        job_id: JobId,
        /// Its state.
        state: JobState,
    },
    /// A feed the provider does not have.
    #[error("--feed {feed:?} is not a feed of {provider}; its feeds are {}", feeds.join(", "))]
    UnknownFeed {
        /// The provider.
        provider: String,
        /// The feed asked for.
        feed: String,
        /// The provider's feeds.
        feeds: Vec<String>,
    },
    /// Zero work items in flight would never finish.
    #[error("concurrency must be at least 1 (got 0)")]
    BadConcurrency,
    /// A work item's task panicked or was aborted; the job was marked failed.
    #[error("work item task failed: {0}")]
    TaskFailed(#[source] tokio::task::JoinError),
    /// A domain rule refused the operation (a date outside the calendar, a state change
    /// the job's state machine forbids).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Repository(#[from] RepositoryError),
    /// The lake could not be read (a backfill checks it against the manifest).
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
}

impl IngestError {
    /// Whether the caller asked for something impossible (an unknown or finished job, a
    /// zero concurrency, dates outside the calendar), as opposed to a failure while working.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Self::JobNotFound(_)
                | Self::NotResumable { .. }
                | Self::AlreadyFinished { .. }
                | Self::AlreadyRunning { .. }
                | Self::UnknownFeed { .. }
                | Self::BadConcurrency
        ) || matches!(
            self,
            Self::Domain(DomainError::CalendarOutOfRange { .. } | DomainError::InvalidRange { .. })
        )
    }
}

/// Why one work item failed. It is checkpointed (as its text) and fails the job; the other
/// items go on, unless the provider refused the credentials.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The provider failed (after the retries it allows). Shared by every item of the
    /// batch whose request failed.
    #[error("{0}")]
    Provider(Arc<ProviderError>),
    /// Writing the partition failed (for example a corrupt stored file that cannot be merged).
    #[error("{0}")]
    Lake(Arc<LakeError>),
    /// Recording the written partition in the manifest failed.
    #[error("recording partition {key}: {source}")]
    Manifest {
        /// The partition.
        key: PartitionKey,
        /// The store's error.
        source: Arc<RepositoryError>,
    },
    /// The partition's bars could not be summarised (out of order or mixed symbols).
    #[error("daily summaries of {key}: {source}")]
    Summarise {
        /// The partition.
        key: PartitionKey,
        /// The domain's error.
        source: DomainError,
    },
    /// Recording the item's sessions in the coverage map failed (the bars are stored).
    #[error("recording the coverage of {symbol} {dates}: {source}")]
    Coverage {
        /// The symbol.
        symbol: marketpipe_domain::Symbol,
        /// The item's dates.
        dates: marketpipe_domain::DateRange,
        /// The store's error.
        source: Arc<RepositoryError>,
    },
    /// Storing the daily summaries failed.
    #[error("storing daily summaries of {key}: {source}")]
    Summaries {
        /// The partition.
        key: PartitionKey,
        /// The store's error.
        source: Arc<RepositoryError>,
    },
}

impl ItemError {
    /// The provider refused our credentials: no later request can succeed either.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Provider(e) if matches!(**e, ProviderError::Auth { .. }))
    }
}
