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
}

impl IngestError {
    /// Whether the caller asked for something impossible (an unknown or finished job, a
    /// zero concurrency, dates outside the calendar), as opposed to a failure while working.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Self::JobNotFound(_)
                | Self::NotResumable { .. }
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
