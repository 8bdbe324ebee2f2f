//! Retention of the lake: removing the rows before a cut from every frame, with the manifest
//! and the coverage map kept in agreement (`mp prune parquet`).

use std::sync::Arc;

use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_instant;
use marketpipe_domain::{Symbol, Timeframe, Timestamp};
use marketpipe_ports::telemetry;
use marketpipe_ports::{
    BarStore, Clock, CoverageRepository, PartitionKey, PartitionManifest, PartitionRecord,
    PruneOutcome,
};
use tracing::info;

use crate::upgrade::UpgradeError;

/// Why a prune could not run: the lake or the metadata store failed (the same failures as
/// an upgrade's).
pub type PruneError = UpgradeError;

/// The ports a prune works through.
#[derive(Debug, Clone)]
pub struct RetentionDeps {
    /// The lake.
    pub lake: Arc<dyn BarStore>,
    /// The manifest: removed partitions are forgotten, rewritten ones recorded again.
    pub manifest: Arc<dyn PartitionManifest>,
    /// The coverage map: sessions before the cut are forgotten with the 1m rows.
    pub coverage: Arc<dyn CoverageRepository>,
    /// Stamps rewritten partitions' records.
    pub clock: Arc<dyn Clock>,
}

/// What to prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    /// Rows of sessions before this New York date go (the cut is 00:00 ET of it).
    pub before: NaiveDate,
    /// The frames (every frame when empty).
    pub frames: Vec<Timeframe>,
    /// The symbols (every symbol when empty).
    pub symbols: Vec<Symbol>,
    /// Say what would go; change nothing.
    pub dry_run: bool,
}

/// One partition a prune touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedPartition {
    /// The partition.
    pub key: PartitionKey,
    /// Its file, relative to the lake root.
    pub path: String,
    /// Rows removed.
    pub rows_removed: u64,
    /// Rows kept (0 when the file was removed).
    pub rows_kept: u64,
    /// Whether the whole file went (else it was rewritten).
    pub removed: bool,
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The cut, as an instant.
    pub cut: Option<Timestamp>,
    /// Partitions removed or rewritten, by frame then key.
    pub partitions: Vec<PrunedPartition>,
    /// Coverage entries forgotten.
    pub coverage_entries: u64,
}

impl PruneReport {
    /// Rows removed in all.
    pub fn rows_removed(&self) -> u64 {
        self.partitions.iter().map(|p| p.rows_removed).sum()
    }
}

/// Removes every row before `request.before` (00:00 ET): files entirely before it go, files
/// that straddle it are rewritten by the write protocol with the rows on or after it (kept
/// exactly as they were); the manifest and the coverage map follow. One partition at a time,
/// so a killed prune leaves every partition either pruned or as it was; running it again
/// finishes it.
pub async fn prune_lake(
    deps: &RetentionDeps,
    request: &PruneRequest,
) -> Result<PruneReport, PruneError> {
    let cut = ny_instant(request.before, 0, 0);
    let frames = if request.frames.is_empty() {
        Timeframe::ALL.to_vec()
    } else {
        request.frames.clone()
    };
    let mut report = PruneReport {
        cut: Some(cut),
        ..PruneReport::default()
    };
    for frame in &frames {
        for info in deps.lake.list_partitions(*frame, &request.symbols).await? {
            let key = info.key;
            let starts_before = key.dates().is_some_and(|d| d.start() < request.before);
            if !starts_before {
                continue;
            }
            match deps
                .lake
                .prune_partition(&key, cut, request.dry_run)
                .await?
            {
                PruneOutcome::Untouched => {}
                PruneOutcome::Removed { rows } => {
                    if !request.dry_run {
                        deps.manifest.remove(&key).await?;
                        count_pruned(key.frame, rows);
                    }
                    report.partitions.push(PrunedPartition {
                        key,
                        path: info.path,
                        rows_removed: rows,
                        rows_kept: 0,
                        removed: true,
                    });
                }
                PruneOutcome::Rewritten { removed, outcome } => {
                    if !request.dry_run {
                        let job_id = deps.manifest.get(&key).await?.and_then(|r| r.job_id);
                        let record = PartitionRecord::written(&outcome, job_id, deps.clock.now());
                        deps.manifest.record(&record).await?;
                        count_pruned(key.frame, removed);
                    }
                    report.partitions.push(PrunedPartition {
                        key,
                        path: outcome.path,
                        rows_removed: removed,
                        rows_kept: outcome.rows,
                        removed: false,
                    });
                }
            }
        }
    }
    if frames.contains(&Timeframe::M1) {
        report.coverage_entries = deps
            .coverage
            .prune_coverage(&request.symbols, request.before, request.dry_run)
            .await?
            .entries;
    }
    info!(
        partitions = report.partitions.len(),
        rows = report.rows_removed(),
        dry_run = request.dry_run,
        "lake pruned"
    );
    Ok(report)
}

/// Bars removed by retention, in the metrics.
fn count_pruned(frame: Timeframe, rows: u64) {
    metrics::counter!(telemetry::PRUNED.name, telemetry::LABEL_FRAME => frame.as_str())
        .increment(rows);
}
