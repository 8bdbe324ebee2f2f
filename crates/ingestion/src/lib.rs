//! # marketpipe-ingestion
//!
//! The ingestion context (DESIGN §4): it plans a job as work items (symbol × month), runs them
//! with bounded concurrency, pages through the provider with retries, writes each partition
//! through the `BarStore` port, records the partition and the daily summaries in the metadata
//! store, checkpoints each finished item, publishes domain events, and resumes a job from its
//! checkpoints. It depends only on the ports and the domain: the app wires the concrete
//! provider, lake and store in as `Arc<dyn Port>`.

mod coordinator;
mod error;
mod report;
mod retry;

pub use coordinator::{Coordinator, IngestDeps, IngestOptions, IngestProgress, NoProgress};
pub use error::IngestError;
pub use report::{ItemReport, JobReport};
pub use retry::RetryPolicy;

#[cfg(test)]
mod tests;
