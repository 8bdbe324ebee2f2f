//! # marketpipe-ingestion
//!
//! The ingestion context: the use case behind `mp ingest`. It chooses the job a run works on
//! (resume, continue or create: [`select_job`]), plans a job as work items (symbol × month),
//! runs them with bounded concurrency, pages through the provider with the one
//! [`RetryPolicy`], writes each partition through the `BarStore` port, records the partition
//! and the daily summaries in the metadata store, checkpoints each finished item, records
//! the run's metrics, publishes domain events, and resumes a job from its checkpoints. It
//! depends only on the ports and the domain: the app wires the concrete provider, lake and
//! store in as `Arc<dyn Port>`.

mod coordinator;
mod error;
mod jobs;
mod report;

pub use coordinator::{Coordinator, IngestDeps, IngestOptions, IngestProgress, NoProgress};
pub use error::{IngestError, ItemError};
pub use jobs::{
    JobChoice, JobRequest, RESUME_SEARCH, SelectedJob, create_job, find_unfinished, load_resumable,
    resolve_feed, select_job,
};
pub use marketpipe_domain::RetryPolicy;
pub use report::{ItemReport, JobReport};

#[cfg(test)]
mod tests;
