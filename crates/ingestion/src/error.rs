//! The ingestion context's error.

use marketpipe_domain::DomainError;
use marketpipe_ports::RepositoryError;
use thiserror::Error;

/// Why a job could not be created, run or resumed. A work item's own failure is not an
/// error here: it fails the job, which is reported in the `JobReport`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// No job with that id.
    #[error("job {0} not found (see `mp jobs list`)")]
    JobNotFound(String),
    /// A job that cannot be resumed.
    #[error("job {job_id} is {state}: a completed job has nothing left to resume")]
    NotResumable {
        /// The job.
        job_id: String,
        /// Its state.
        state: String,
    },
    /// A work item's task panicked or was aborted; the job was marked failed.
    #[error("{0}")]
    TaskFailed(String),
    /// A domain rule refused the operation.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Repository(#[from] RepositoryError),
}
