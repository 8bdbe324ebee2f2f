//! Metadata-store ports: jobs and their checkpoints, the partition manifest, daily
//! summaries, metrics history and validation reports. SQLite and PostgreSQL adapters
//! implement all of them; one contract suite runs against both.

use std::fmt;

use async_trait::async_trait;
use marketpipe_domain::{
    DailySummary, DateRange, Finding, IngestionJob, JobId, JobKind, JobOwner, JobState, RuleId,
    Severity, Symbol, Timeframe, Timestamp, WorkItem,
};
use serde::{Deserialize, Serialize};

use crate::error::RepositoryError;
use crate::lake::{PartitionKey, WriteOutcome};

/// A job as listed by `mp jobs list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job.
    pub id: JobId,
    /// Its provider.
    pub provider: String,
    /// Its state.
    pub state: JobState,
    /// Symbols in the job.
    pub symbols: usize,
    /// Work items done / total.
    pub items_done: usize,
    /// Total work items.
    pub items_total: usize,
    /// Bars written so far.
    pub bars: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// What created it.
    pub kind: JobKind,
    /// The process that runs (or last ran) it.
    pub owner: Option<JobOwner>,
    /// When its owner last said it was alive.
    pub heartbeat_at: Option<Timestamp>,
}

/// Ingestion jobs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobRepository: Send + Sync + fmt::Debug {
    /// Stores a new job with its planned work items.
    async fn create(&self, job: &IngestionJob) -> Result<(), RepositoryError>;
    /// Stores the job's state, times, failure, owner and heartbeat (not its items: see
    /// `WorkItemRepository`).
    async fn save_state(&self, job: &IngestionJob) -> Result<(), RepositoryError>;
    /// Records that the job's owner is alive at `at` (only while the job is running).
    async fn heartbeat(&self, id: &JobId, at: Timestamp) -> Result<(), RepositoryError>;
    /// Loads a job with its items.
    async fn get(&self, id: &JobId) -> Result<Option<IngestionJob>, RepositoryError>;
    /// The newest jobs first, at most `limit`.
    async fn list(&self, limit: usize) -> Result<Vec<JobSummary>, RepositoryError>;
}

/// What a metadata retention prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetadataPruned {
    /// Finished jobs (completed, failed or cancelled) removed.
    pub jobs: u64,
    /// Their work items.
    pub work_items: u64,
    /// Metric samples.
    pub metrics: u64,
    /// Validation reports.
    pub reports: u64,
    /// The reports' findings.
    pub findings: u64,
    /// Bytes the database file shrank by when compacted (0 in a dry run).
    pub bytes_reclaimed: u64,
}

/// Retention of the metadata store: forgetting old finished work.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MetadataRetention: Send + Sync + fmt::Debug {
    /// Removes jobs that finished before `before` (with their items), metric samples and
    /// validation reports (with their findings) made before it, then compacts the store;
    /// with `dry_run`, only counts them. Running jobs and the partition manifest are never
    /// touched.
    async fn prune_metadata(
        &self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<MetadataPruned, RepositoryError>;

    /// Removes only the jobs that finished before `before`, with their items (`mp jobs
    /// cleanup`); with `dry_run`, only counts them. Nothing is compacted.
    async fn prune_jobs(
        &self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<MetadataPruned, RepositoryError>;
}

/// Work items: the checkpoints that let a killed job resume.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkItemRepository: Send + Sync + fmt::Debug {
    /// Stores one item's status, bar count and error (a checkpoint).
    async fn save_item(&self, job: &JobId, item: &WorkItem) -> Result<(), RepositoryError>;
    /// Every item of a job, in plan order.
    async fn items(&self, job: &JobId) -> Result<Vec<WorkItem>, RepositoryError>;
}

/// A stored partition as the manifest knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The partition.
    pub key: PartitionKey,
    /// The file, relative to the lake root.
    pub path: String,
    /// Rows stored.
    pub rows: u64,
    /// First `ts`.
    pub min_ts: Option<Timestamp>,
    /// Last `ts`.
    pub max_ts: Option<Timestamp>,
    /// Hash of the bar content.
    pub content_hash: String,
    /// The job that last wrote it.
    pub job_id: Option<JobId>,
    /// When it was last written.
    pub written_at: Timestamp,
    /// The lake format of the file (`LAKE_FORMAT_VERSION` for every file written now).
    pub format_version: u32,
}

impl PartitionRecord {
    /// The record of a partition as a write left it (write protocol step 5).
    pub fn written(outcome: &WriteOutcome, job_id: Option<JobId>, written_at: Timestamp) -> Self {
        Self {
            key: outcome.key,
            path: outcome.path.clone(),
            rows: outcome.rows,
            min_ts: outcome.min_ts,
            max_ts: outcome.max_ts,
            content_hash: outcome.content_hash.clone(),
            job_id,
            written_at,
            format_version: outcome.format_version,
        }
    }
}

/// The partition manifest: drives incremental aggregation and gap detection.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PartitionManifest: Send + Sync + fmt::Debug {
    /// Inserts or replaces the record of a partition.
    async fn record(&self, record: &PartitionRecord) -> Result<(), RepositoryError>;
    /// One partition's record.
    async fn get(&self, key: &PartitionKey) -> Result<Option<PartitionRecord>, RepositoryError>;
    /// Forgets a partition whose file is gone (a retention prune), with its aggregation
    /// marks. Removing an unknown partition is not an error.
    async fn remove(&self, key: &PartitionKey) -> Result<(), RepositoryError>;
    /// The records of `frame` for `symbols` (empty = all).
    async fn list(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionRecord>, RepositoryError>;
    /// 1m partitions whose content changed since they were last aggregated to `target`.
    async fn stale_for(&self, target: Timeframe) -> Result<Vec<PartitionRecord>, RepositoryError>;
    /// Records that `source` with `content_hash` has been aggregated to `target`.
    async fn mark_aggregated(
        &self,
        source: &PartitionKey,
        target: Timeframe,
        content_hash: &str,
    ) -> Result<(), RepositoryError>;
}

/// Daily summaries (one per symbol and session).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DailySummaryRepository: Send + Sync + fmt::Debug {
    /// Inserts or replaces summaries.
    async fn upsert(&self, summaries: &[DailySummary]) -> Result<(), RepositoryError>;
    /// A symbol's summaries over `dates`, in date order.
    async fn list(
        &self,
        symbol: Symbol,
        dates: DateRange,
    ) -> Result<Vec<DailySummary>, RepositoryError>;
    /// Every symbol's last `sessions` summaries dated on or before `as_of`, by symbol and
    /// date (fewer for a symbol with fewer sessions).
    async fn latest_sessions(
        &self,
        as_of: chrono::NaiveDate,
        sessions: usize,
    ) -> Result<Vec<DailySummary>, RepositoryError>;
}

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// Metric name (`ingest_bars_total`, `provider_requests_total`, …).
    pub name: String,
    /// Labels such as provider and feed, sorted by key.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// When it was measured.
    pub at: Timestamp,
}

/// Metrics history, for `mp metrics`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MetricsRepository: Send + Sync + fmt::Debug {
    /// Appends samples.
    async fn record(&self, samples: &[MetricSample]) -> Result<(), RepositoryError>;
    /// Samples of `name` since `since`, oldest first.
    async fn history(
        &self,
        name: &str,
        since: Timestamp,
    ) -> Result<Vec<MetricSample>, RepositoryError>;
    /// Every metric name recorded.
    async fn names(&self) -> Result<Vec<String>, RepositoryError>;
}

/// A validation report: one job's (or ad-hoc run's) findings for one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The job validated, or an ad-hoc run id.
    pub run_id: JobId,
    /// The symbol.
    pub symbol: Symbol,
    /// The frame validated.
    pub frame: Timeframe,
    /// Bars examined.
    pub bars_checked: u64,
    /// When the report was made.
    pub created_at: Timestamp,
    /// What the rules found.
    pub findings: Vec<Finding>,
}

impl ValidationReport {
    /// The report's name: `<run_id>_<symbol>`, also its CSV file stem.
    pub fn name(&self) -> String {
        format!("{}_{}", self.run_id, self.symbol)
    }

    /// Counts per (rule, severity), sorted.
    pub fn counts(&self) -> Vec<(RuleId, Severity, u64)> {
        let mut counts: std::collections::BTreeMap<(RuleId, Severity), u64> =
            std::collections::BTreeMap::new();
        for f in &self.findings {
            *counts.entry((f.rule, f.severity)).or_default() += 1;
        }
        counts.into_iter().map(|((r, s), n)| (r, s, n)).collect()
    }

    /// The summary row of this report.
    pub fn summary(&self) -> ReportSummary {
        let count = |sev| self.findings.iter().filter(|f| f.severity == sev).count() as u64;
        ReportSummary {
            name: self.name(),
            run_id: self.run_id.clone(),
            symbol: self.symbol,
            bars_checked: self.bars_checked,
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            created_at: self.created_at,
        }
    }
}

/// A stored report, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// `<run_id>_<symbol>`.
    pub name: String,
    /// The job or run.
    pub run_id: JobId,
    /// The symbol.
    pub symbol: Symbol,
    /// Bars examined.
    pub bars_checked: u64,
    /// Error-severity findings.
    pub errors: u64,
    /// Warning-severity findings.
    pub warnings: u64,
    /// When.
    pub created_at: Timestamp,
}

/// Validation reports (CSV files and/or metadata rows).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ValidationReportRepository: Send + Sync + fmt::Debug {
    /// Stores a report, atomically replacing an earlier one of the same name.
    async fn save(&self, report: &ValidationReport) -> Result<ReportSummary, RepositoryError>;
    /// Every stored report, newest first.
    async fn list(&self) -> Result<Vec<ReportSummary>, RepositoryError>;
    /// One report by name.
    async fn get(&self, name: &str) -> Result<Option<ValidationReport>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketpipe_domain::validation::Finding;

    #[test]
    fn report_name_counts_and_summary() {
        let sym = Symbol::new("AAPL").unwrap();
        let finding = |rule: RuleId| Finding {
            symbol: sym,
            ts: Timestamp::EPOCH,
            rule,
            severity: rule.severity(),
            detail: String::new(),
        };
        let report = ValidationReport {
            run_id: JobId::new("job1").unwrap(),
            symbol: sym,
            frame: Timeframe::M1,
            bars_checked: 10,
            created_at: Timestamp::EPOCH,
            findings: vec![
                finding(RuleId::DuplicateTs),
                finding(RuleId::DuplicateTs),
                finding(RuleId::PriceJump),
            ],
        };
        assert_eq!(report.name(), "job1_AAPL");
        assert_eq!(
            report.counts(),
            [
                (RuleId::DuplicateTs, Severity::Error, 2),
                (RuleId::PriceJump, Severity::Warning, 1)
            ]
        );
        let s = report.summary();
        assert_eq!((s.errors, s.warnings, s.bars_checked), (2, 1, 10));
    }

    #[tokio::test]
    async fn repositories_are_object_safe_mocks() {
        let mut jobs = MockJobRepository::new();
        jobs.expect_list().returning(|_| Ok(Vec::new()));
        let jobs: std::sync::Arc<dyn JobRepository> = std::sync::Arc::new(jobs);
        assert!(jobs.list(10).await.unwrap().is_empty());

        let mut manifest = MockPartitionManifest::new();
        manifest.expect_stale_for().returning(|_| {
            Err(RepositoryError::Unavailable {
                message: "database is locked".into(),
                source: None,
            })
        });
        let manifest: std::sync::Arc<dyn PartitionManifest> = std::sync::Arc::new(manifest);
        assert!(
            manifest
                .stale_for(Timeframe::M5)
                .await
                .unwrap_err()
                .is_retryable()
        );

        let mut metrics = MockMetricsRepository::new();
        metrics
            .expect_names()
            .returning(|| Ok(vec!["ingest_bars_total".into()]));
        assert_eq!(metrics.names().await.unwrap().len(), 1);
    }
}
