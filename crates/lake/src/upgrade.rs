//! The format upgrade and the format census.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use marketpipe_domain::{Bar, Timeframe, Timestamp};
use marketpipe_ports::{
    BarOrigin, BarSource, BarStore, Clock, LAKE_FORMAT_VERSION, LakeError, PartitionKey,
    PartitionManifest, PartitionRecord, RepositoryError, StoredFormat, WriteMeta, WriteOutcome,
};
use thiserror::Error;
use tracing::{debug, info};

/// Why an upgrade could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The lake could not be listed.
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
    /// The manifest could not be read or written.
    #[error("manifest: {0}")]
    Manifest(#[from] RepositoryError),
}

/// The lake formats of the stored partition files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatCensus {
    /// Files per format version.
    pub files_by_version: BTreeMap<u32, u64>,
    /// The partitions with a file older than [`LAKE_FORMAT_VERSION`] (one entry per file),
    /// 1m first, then the other frames: the order the upgrade takes them in.
    pub outdated: Vec<StoredFormat>,
}

impl FormatCensus {
    /// Files on an older format.
    pub fn outdated_files(&self) -> u64 {
        self.outdated.len() as u64
    }

    /// Partitions with at least one file on an older format.
    pub fn outdated_partitions(&self) -> u64 {
        let keys: BTreeSet<PartitionKey> = self.outdated.iter().map(|f| f.key).collect();
        keys.len() as u64
    }

    /// Every stored file.
    pub fn files(&self) -> u64 {
        self.files_by_version.values().sum()
    }
}

/// Lists every partition file with its format.
pub async fn census(lake: &dyn BarStore) -> Result<FormatCensus, LakeError> {
    let files = lake.list_formats(None).await?;
    let mut census = FormatCensus::default();
    for file in files {
        *census.files_by_version.entry(file.version).or_default() += 1;
        if file.version < LAKE_FORMAT_VERSION {
            census.outdated.push(file);
        }
    }
    // 1m first: aggregated partitions take their provenance from the 1m bars.
    census
        .outdated
        .sort_by_key(|f| (f.key.frame != Timeframe::M1, f.key, f.path.clone()));
    Ok(census)
}

/// The ports the upgrade works through.
#[derive(Debug, Clone)]
pub struct UpgradeDeps {
    /// The lake whose files are rewritten.
    pub lake: Arc<dyn BarStore>,
    /// Records each rewritten partition (path, hash, format).
    pub manifest: Arc<dyn PartitionManifest>,
    /// Stamps the manifest records and restored aggregated bars.
    pub clock: Arc<dyn Clock>,
}

/// A partition the upgrade could not rewrite (it is left as it was).
#[derive(Debug)]
pub struct UpgradeFailure {
    /// The partition.
    pub key: PartitionKey,
    /// Why.
    pub error: UpgradeError,
}

/// What an upgrade did.
#[derive(Debug, Default)]
pub struct UpgradeReport {
    /// Partitions that had a file on an older format when the run started.
    pub planned: u64,
    /// Partitions rewritten in the current format.
    pub upgraded: u64,
    /// Aggregated bars whose provider and feed were restored from their 1m bars.
    pub provenance_restored: u64,
    /// Aggregated bars whose 1m bars are gone, so they keep format 1's `aggregate`.
    pub provenance_unknown: u64,
    /// Partitions that failed; the rest were still upgraded.
    pub failures: Vec<UpgradeFailure>,
}

/// Hears about each partition as it is upgraded.
pub trait UpgradeProgress: Send + Sync {
    /// `key` is now in the current format.
    fn upgraded(&self, key: &PartitionKey, outcome: &WriteOutcome);
}

/// Progress that is not reported.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoUpgradeProgress;

impl UpgradeProgress for NoUpgradeProgress {
    fn upgraded(&self, _key: &PartitionKey, _outcome: &WriteOutcome) {}
}

/// Rewrites the lake's older-format partitions in the current format.
#[derive(Debug, Clone)]
pub struct LakeUpgrader {
    deps: UpgradeDeps,
}

impl LakeUpgrader {
    /// An upgrader over `deps`.
    pub fn new(deps: UpgradeDeps) -> Self {
        Self { deps }
    }

    /// What an upgrade would rewrite (`--dry-run`): nothing is written.
    pub async fn plan(&self) -> Result<FormatCensus, UpgradeError> {
        Ok(census(self.deps.lake.as_ref()).await?)
    }

    /// Upgrades every older-format partition, 1m first. Each partition is rewritten by the
    /// write protocol and then recorded in the manifest, so a killed run leaves each
    /// partition either as it was or upgraded, and running it again finishes the rest.
    pub async fn run(&self, progress: &dyn UpgradeProgress) -> Result<UpgradeReport, UpgradeError> {
        let census = self.plan().await?;
        let mut keys: Vec<PartitionKey> = Vec::new();
        for file in &census.outdated {
            if !keys.contains(&file.key) {
                keys.push(file.key);
            }
        }
        let mut report = UpgradeReport {
            planned: keys.len() as u64,
            ..UpgradeReport::default()
        };
        info!(partitions = report.planned, "lake upgrade started");
        for key in keys {
            match self.upgrade_one(&key, &mut report).await {
                Ok(Some(outcome)) => {
                    report.upgraded += 1;
                    progress.upgraded(&key, &outcome);
                }
                Ok(None) => debug!(partition = %key, "partition vanished before its upgrade"),
                Err(error) => report.failures.push(UpgradeFailure { key, error }),
            }
        }
        if report.failures.is_empty() {
            // Nothing older is left: readers may stop looking for format-1 files.
            self.deps.lake.mark_format_current().await?;
        }
        info!(
            upgraded = report.upgraded,
            failed = report.failures.len(),
            "lake upgrade finished"
        );
        Ok(report)
    }

    /// Upgrades one partition and records it; `None` when it has no file any more.
    async fn upgrade_one(
        &self,
        key: &PartitionKey,
        report: &mut UpgradeReport,
    ) -> Result<Option<WriteOutcome>, UpgradeError> {
        let now = self.deps.clock.now();
        if key.frame != Timeframe::M1 {
            self.restore_provenance(key, now, report).await?;
        }
        let Some(outcome) = self.deps.lake.upgrade_partition(key).await? else {
            return Ok(None);
        };
        let previous = self.deps.manifest.get(key).await?;
        self.deps
            .manifest
            .record(&PartitionRecord::written(
                &outcome,
                previous.and_then(|p| p.job_id),
                now,
            ))
            .await?;
        debug!(partition = %key, path = %outcome.path, "partition upgraded");
        Ok(Some(outcome))
    }

    /// Gives an aggregated partition's format-1 bars (`provider = aggregate`) the provider and
    /// feed of the 1m bars of their buckets, rewriting it (in the current format) by
    /// merge-upsert. Bars whose 1m bars are gone keep what they say.
    async fn restore_provenance(
        &self,
        key: &PartitionKey,
        now: Timestamp,
        report: &mut UpgradeReport,
    ) -> Result<(), UpgradeError> {
        let stored = self.deps.lake.read_partition_sourced(key).await?;
        let lost: Vec<usize> = (0..stored.bars.len())
            .filter(|&i| stored.source(i).is_some_and(BarSource::is_legacy_aggregate))
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let mut by_bucket: BTreeMap<Timestamp, BarSource> = BTreeMap::new();
        for source_key in minute_partitions(key) {
            let minutes = self.deps.lake.read_partition_sourced(&source_key).await?;
            by_bucket.extend(minutes.bucket_sources(key.frame));
        }
        let mut groups: BTreeMap<BarSource, Vec<Bar>> = BTreeMap::new();
        for i in lost {
            let bar = stored.bars[i];
            match by_bucket.get(&bar.ts) {
                Some(source) => groups.entry(source.clone()).or_default().push(bar),
                None => report.provenance_unknown += 1,
            }
        }
        for (source, bars) in groups {
            let meta = WriteMeta {
                provider: source.provider,
                feed: source.feed,
                origin: BarOrigin::Aggregated(Timeframe::M1),
                ingested_at: now,
                job_id: None,
            };
            self.deps.lake.write_partition(key, &bars, &meta).await?;
            report.provenance_restored += bars.len() as u64;
        }
        Ok(())
    }
}

/// The 1m partitions an aggregated partition's bars were built from: the same month, or
/// every month of the year for a yearly frame.
fn minute_partitions(key: &PartitionKey) -> Vec<PartitionKey> {
    let months: Vec<u32> = match key.month {
        Some(month) => vec![month],
        None => (1..=12).collect(),
    };
    months
        .into_iter()
        .map(|month| PartitionKey {
            frame: Timeframe::M1,
            symbol: key.symbol,
            year: key.year,
            month: Some(month),
        })
        .collect()
}

/// How a health check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// Nothing to do.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken: `mp health` exits 1.
    Fail,
}

impl HealthStatus {
    /// `ok`, `warn`, `fail`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One check of `mp health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// A stable name (`lake_format`).
    pub name: &'static str,
    /// The outcome.
    pub status: HealthStatus,
    /// What was found and, when not ok, what to do.
    pub detail: String,
}

impl FormatCensus {
    /// The `lake_format` check: a warning while partitions are on an older format (every
    /// command still reads them; `mp lake upgrade` rewrites them).
    pub fn health_check(&self) -> HealthCheck {
        let outdated = self.outdated_partitions();
        if outdated == 0 {
            return HealthCheck {
                name: "lake_format",
                status: HealthStatus::Ok,
                detail: format!(
                    "{} partition files, all in lake format {LAKE_FORMAT_VERSION}",
                    self.files()
                ),
            };
        }
        let versions: Vec<String> = self
            .files_by_version
            .iter()
            .filter(|(v, _)| **v < LAKE_FORMAT_VERSION)
            .map(|(v, n)| format!("{n} in format {v}"))
            .collect();
        HealthCheck {
            name: "lake_format",
            status: HealthStatus::Warn,
            detail: format!(
                "{outdated} partitions still on an older lake format ({}); run `mp lake upgrade`",
                versions.join(", ")
            ),
        }
    }
}
