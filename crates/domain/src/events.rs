//! Domain events: facts that happened, published through the `EventPublisher` port so that
//! handlers can record metrics and logs.

use serde::{Deserialize, Serialize};

use crate::aggregate::DailySummary;
use crate::job::JobId;
use crate::symbol::Symbol;
use crate::time::{DateRange, Timestamp};
use crate::timeframe::Timeframe;

/// Everything the domain announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DomainEvent {
    /// A job started or resumed.
    IngestionJobStarted {
        /// The job.
        job_id: JobId,
        /// Its provider.
        provider: String,
        /// Symbols in the job.
        symbols: usize,
        /// Work items left to run.
        work_items: usize,
        /// When.
        at: Timestamp,
    },
    /// One work item's bars were written and checkpointed.
    BarsIngested {
        /// The job.
        job_id: JobId,
        /// The symbol.
        symbol: Symbol,
        /// The dates covered.
        dates: DateRange,
        /// Bars written.
        bars: u64,
    },
    /// Every work item of a job is done.
    IngestionJobCompleted {
        /// The job.
        job_id: JobId,
        /// Bars written by the job.
        bars: u64,
        /// When.
        at: Timestamp,
    },
    /// A job ended with failed items or was aborted.
    IngestionJobFailed {
        /// The job.
        job_id: JobId,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A job was cancelled.
    IngestionJobCancelled {
        /// The job.
        job_id: JobId,
        /// When.
        at: Timestamp,
    },
    /// A symbol's session was summarised.
    DailySummaryClosed {
        /// The summary.
        summary: DailySummary,
    },
    /// A validation run finished (whatever it found).
    ValidationCompleted {
        /// The validated job, when a job was validated.
        job_id: Option<JobId>,
        /// Bars examined.
        bars: u64,
        /// Error-severity findings.
        errors: u64,
        /// Warning-severity findings.
        warnings: u64,
        /// When.
        at: Timestamp,
    },
    /// A validation run could not finish.
    ValidationFailed {
        /// The job, when a job was validated.
        job_id: Option<JobId>,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Aggregation wrote its frames.
    AggregationCompleted {
        /// The frames built.
        frames: Vec<Timeframe>,
        /// Partitions written.
        partitions: u64,
        /// Bars written.
        bars: u64,
        /// When.
        at: Timestamp,
    },
    /// Aggregation could not finish.
    AggregationFailed {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent {
    /// The event's stable snake-case name (as in logs and metrics).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::IngestionJobStarted { .. } => "ingestion_job_started",
            Self::BarsIngested { .. } => "bars_ingested",
            Self::IngestionJobCompleted { .. } => "ingestion_job_completed",
            Self::IngestionJobFailed { .. } => "ingestion_job_failed",
            Self::IngestionJobCancelled { .. } => "ingestion_job_cancelled",
            Self::DailySummaryClosed { .. } => "daily_summary_closed",
            Self::ValidationCompleted { .. } => "validation_completed",
            Self::ValidationFailed { .. } => "validation_failed",
            Self::AggregationCompleted { .. } => "aggregation_completed",
            Self::AggregationFailed { .. } => "aggregation_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_tags() {
        let at = Timestamp::from_nanos(0);
        let id = JobId::new("j").unwrap();
        let events = [
            DomainEvent::IngestionJobCompleted {
                job_id: id.clone(),
                bars: 1,
                at,
            },
            DomainEvent::IngestionJobFailed {
                job_id: id.clone(),
                reason: "x".into(),
                at,
            },
            DomainEvent::IngestionJobCancelled {
                job_id: id.clone(),
                at,
            },
            DomainEvent::ValidationCompleted {
                job_id: None,
                bars: 1,
                errors: 0,
                warnings: 0,
                at,
            },
            DomainEvent::ValidationFailed {
                job_id: Some(id.clone()),
                reason: "x".into(),
                at,
            },
            DomainEvent::AggregationCompleted {
                frames: vec![Timeframe::M5],
                partitions: 1,
                bars: 1,
                at,
            },
            DomainEvent::AggregationFailed {
                reason: "x".into(),
                at,
            },
            DomainEvent::IngestionJobStarted {
                job_id: id.clone(),
                provider: "fake".into(),
                symbols: 1,
                work_items: 1,
                at,
            },
            DomainEvent::BarsIngested {
                job_id: id,
                symbol: Symbol::new("A").unwrap(),
                dates: DateRange::parse("2024-01-02", "2024-01-02").unwrap(),
                bars: 1,
            },
        ];
        for e in events {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["event"], e.name());
            assert_eq!(serde_json::from_value::<DomainEvent>(json).unwrap(), e);
        }
    }
}
