//! # marketpipe-ingestion
//!
//! The ingestion context: the use case behind `mp ingest`. It chooses the job a run works on
//! (resume, continue or create: [`select_job`]), plans a job as work items (symbol × month),
//! runs them with bounded concurrency, pages through the provider with the one
//! [`RetryPolicy`], writes each partition through the `BarStore` port, records the partition
//! and the daily summaries in the metadata store, checkpoints each finished item, records
//! the run's metrics, publishes domain events, and resumes a job from its checkpoints. Every
//! answer is recorded in the coverage map, and a backfill ([`plan_backfill`],
//! [`run_backfill`]) asks only for the sessions the map lacks. A running job records its
//! owner and heartbeats, so that a dead run is shown as interrupted. It
//! depends only on the ports and the domain: the app wires the concrete provider, lake and
//! store in as `Arc<dyn Port>`.

mod backfill;
mod coordinator;
mod coverage_map;
mod error;
mod gaps;
mod jobs;
mod report;

pub use backfill::{
    BackfillPlan, BackfillReport, BackfillRequest, PlanDeps, PlannedSession, SessionOutcome,
    plan_backfill, run_backfill,
};
pub use coordinator::{
    Coordinator, HEARTBEAT_INTERVAL, HEARTBEAT_LEASE, IngestDeps, IngestOptions, IngestProgress,
    NoProgress,
};
pub use error::{IngestError, ItemError};
pub use gaps::{CellState, GapsReport, GapsRequest, SymbolGaps, gaps};
pub use jobs::{
    JobChoice, JobRequest, RESUME_SEARCH, SelectedJob, cancel_job, create_job, find_unfinished,
    job_status, lease_nanos, load_resumable, mark_interrupted, resolve_feed, select_job,
};
pub use marketpipe_domain::RetryPolicy;
pub use report::{ItemReport, JobReport};

#[cfg(test)]
mod tests;
