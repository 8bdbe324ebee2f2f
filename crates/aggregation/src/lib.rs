//! # marketpipe-aggregation
//!
//! The aggregation context: it turns the lake's 1-minute partitions into the 5m,
//! 15m, 1h and 1d frames (and 30m, 4h on request). It is incremental — the partition manifest
//! says which 1m partitions changed since they were last aggregated to each frame, and only
//! those are read — and streaming: one symbol-year is one unit of work, read one monthly 1m
//! partition at a time, so memory is bounded by a partition, not by the dataset. Bars are
//! built by the domain's `resample` service (clock buckets up to 1h, New York 4h buckets, and
//! one 1d bar per exchange session date), written through the `BarStore` port by the lake's
//! write protocol, recorded in the manifest, and announced with `AggregationCompleted` or
//! `AggregationFailed`. Like every context it depends only on the ports and the domain.
//! The design: docs/architecture.md, Aggregation.

mod error;
mod report;
mod runner;

pub use error::AggregateError;
pub use report::{AggregationReport, FrameReport, UnitFailure};
pub use runner::{
    AGGREGATED_ORIGIN, AggregateDeps, AggregateOptions, AggregateProgress, AggregateRequest,
    Aggregator, DEFAULT_CONCURRENCY, NoProgress,
};

#[cfg(test)]
mod tests;
