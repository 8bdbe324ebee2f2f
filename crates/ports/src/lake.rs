//! The `BarStore` port: the partitioned bar lake (docs/storage.md).

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use futures_core::Stream;
use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::time::last_day_of_month;
use marketpipe_domain::{
    Bar, DateRange, JobId, PartitionPeriod, Symbol, TimeRange, Timeframe, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::error::LakeError;

/// One partition of the lake: a frame, a symbol and a period (a month up to 30m, a year from
/// 1h). The period is that of the bar's New York session date, so a session's extended-hours
/// bars after 19:00 ET (already the next UTC day) stay in the session's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionKey {
    /// The bar width.
    pub frame: Timeframe,
    /// The symbol.
    pub symbol: Symbol,
    /// The year.
    pub year: i32,
    /// The month (1–12) for monthly frames; `None` for yearly ones.
    pub month: Option<u32>,
}

impl PartitionKey {
    /// The partition that holds a bar of `frame` and `symbol` at `ts`.
    pub fn for_bar(frame: Timeframe, symbol: Symbol, ts: Timestamp) -> Self {
        Self::for_date(frame, symbol, ny_date(ts))
    }

    /// The partition that holds the session `date`.
    pub fn for_date(frame: Timeframe, symbol: Symbol, date: NaiveDate) -> Self {
        Self {
            frame,
            symbol,
            year: date.year(),
            month: match frame.partition_period() {
                PartitionPeriod::Month => Some(date.month()),
                PartitionPeriod::Year => None,
            },
        }
    }

    /// The session dates the partition covers.
    pub fn dates(&self) -> Option<DateRange> {
        let (start, end) = match self.month {
            Some(m) => {
                let start = NaiveDate::from_ymd_opt(self.year, m, 1)?;
                (start, last_day_of_month(start))
            }
            None => (
                NaiveDate::from_ymd_opt(self.year, 1, 1)?,
                NaiveDate::from_ymd_opt(self.year, 12, 31)?,
            ),
        };
        DateRange::new(start, end).ok()
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.month {
            Some(m) => write!(f, "{}/{}/{}-{m:02}", self.frame, self.symbol, self.year),
            None => write!(f, "{}/{}/{}", self.frame, self.symbol, self.year),
        }
    }
}

/// The lake file format that every write produces (docs/storage.md, "Format versions"): 2
/// since issue 13 (microsecond timestamps, no `symbol` column, `month=1` directories, an
/// `origin` column). Format 1 files are read until `mp lake upgrade` rewrites them.
pub const LAKE_FORMAT_VERSION: u32 = 2;

/// What built a stored bar: the lake's `origin` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarOrigin {
    /// Delivered by the provider named in the bar's `provider` column (`provider`).
    Provider,
    /// Built by aggregation from the frame's bars (`aggregate:1m`); `provider` and `feed`
    /// then name the source bars' provider and feed, or `mixed` when they differ.
    Aggregated(Timeframe),
}

impl BarOrigin {
    /// The column's value for bars delivered by a provider.
    pub const PROVIDER: &'static str = "provider";
    /// The prefix of the column's value for aggregated bars (`aggregate:` + source frame).
    pub const AGGREGATE_PREFIX: &'static str = "aggregate:";

    /// Parses the column's value; `None` for a value this version does not know.
    pub fn parse(text: &str) -> Option<Self> {
        if text == Self::PROVIDER {
            return Some(Self::Provider);
        }
        let frame = text.strip_prefix(Self::AGGREGATE_PREFIX)?;
        Timeframe::ALL
            .into_iter()
            .find(|f| f.as_str() == frame)
            .map(Self::Aggregated)
    }
}

impl fmt::Display for BarOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider => f.write_str(Self::PROVIDER),
            Self::Aggregated(from) => write!(f, "{}{from}", Self::AGGREGATE_PREFIX),
        }
    }
}

/// Who delivered stored bars: a provider and its feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BarSource {
    /// Provider name (`alpaca`, `fake`, … or `mixed`).
    pub provider: String,
    /// Provider feed (`iex`, `sip`, …), when it has one.
    pub feed: Option<String>,
}

impl BarSource {
    /// The `provider` (or `feed`) of bars built from bars of more than one provider (or
    /// feed).
    pub const MIXED: &'static str = "mixed";

    /// The `provider` lake format 1 wrote on every aggregated bar, whatever its 1m bars'
    /// provider was (the upgrade restores the real one).
    pub const LEGACY_AGGREGATE: &'static str = "aggregate";

    /// Whether this is format 1's placeholder for an aggregated bar's provider.
    pub fn is_legacy_aggregate(&self) -> bool {
        self.provider == Self::LEGACY_AGGREGATE
    }

    /// The source of bars built from bars of `self` and `other`: each field kept where they
    /// agree, [`BarSource::MIXED`] where they differ.
    #[must_use]
    pub fn combine(self, other: &Self) -> Self {
        let provider = if self.provider == other.provider {
            self.provider
        } else {
            Self::MIXED.to_owned()
        };
        let feed = if self.feed == other.feed {
            self.feed
        } else {
            Some(Self::MIXED.to_owned())
        };
        Self { provider, feed }
    }

    /// The source of bars built from bars of `sources`; `None` when there are none.
    pub fn combine_all<'a>(mut sources: impl Iterator<Item = &'a Self>) -> Option<Self> {
        let first = sources.next()?.clone();
        Some(sources.fold(first, Self::combine))
    }
}

/// A partition's bars with the source of each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcedBars {
    /// The bars, sorted by `ts`, unique `ts`.
    pub bars: Vec<Bar>,
    /// The distinct sources.
    pub sources: Vec<BarSource>,
    /// For each bar, its index in `sources`.
    pub source_of: Vec<u32>,
}

impl SourcedBars {
    /// The combined source ([`BarSource::combine`]) of the bars of each `frame` bucket
    /// (the domain's `bucket_start`), by bucket start: the source of each bar built from
    /// these by resampling.
    pub fn bucket_sources(
        &self,
        frame: Timeframe,
    ) -> std::collections::BTreeMap<Timestamp, BarSource> {
        let mut out: std::collections::BTreeMap<Timestamp, BarSource> =
            std::collections::BTreeMap::new();
        for (i, bar) in self.bars.iter().enumerate() {
            let Some(source) = self.source(i) else {
                continue;
            };
            let start = marketpipe_domain::bucket_start(frame, bar.ts);
            let combined = match out.remove(&start) {
                Some(acc) => acc.combine(source),
                None => source.clone(),
            };
            out.insert(start, combined);
        }
        out
    }

    /// The source of bar `i`.
    pub fn source(&self, i: usize) -> Option<&BarSource> {
        let index = *self.source_of.get(i)?;
        self.sources.get(usize::try_from(index).ok()?)
    }
}

/// One stored partition file and the lake format it is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFormat {
    /// The partition.
    pub key: PartitionKey,
    /// The file, relative to the lake root.
    pub path: String,
    /// Its format version (1 when the file records none).
    pub version: u32,
}

/// Provenance written with each bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteMeta {
    /// Provider name.
    pub provider: String,
    /// Provider feed.
    pub feed: Option<String>,
    /// What built the bars.
    pub origin: BarOrigin,
    /// When the bars were ingested.
    pub ingested_at: Timestamp,
    /// The job that wrote them.
    pub job_id: Option<JobId>,
}

/// What a partition write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The partition.
    pub key: PartitionKey,
    /// The file (relative to the lake root).
    pub path: String,
    /// Rows in the partition after the write.
    pub rows: u64,
    /// Rows that were new.
    pub inserted: u64,
    /// Rows that replaced a stored bar with different values.
    pub updated: u64,
    /// Whether the file was rewritten (false when the merge changed nothing).
    pub rewritten: bool,
    /// Hash of the partition's bar content (stable across rewrites of equal content).
    pub content_hash: String,
    /// First and last `ts` stored.
    pub min_ts: Option<Timestamp>,
    /// Last `ts` stored.
    pub max_ts: Option<Timestamp>,
    /// The lake format of the file as it now is.
    pub format_version: u32,
}

/// A partition file's content as read from the file (not from the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDigest {
    /// Rows stored (after the write protocol's upsert by `ts`).
    pub rows: u64,
    /// The same hash as [`WriteOutcome::content_hash`]: equal to the manifest's unless the
    /// file was changed outside `mp`.
    pub content_hash: String,
    /// Whether the file's rows are sorted by strictly increasing `ts` (as every write leaves
    /// them; the hash is of the rows as the write protocol would keep them).
    pub sorted_unique: bool,
}

/// A file of the write protocol that nothing uses any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrphanKind {
    /// A temporary file of a write that died before its rename.
    Temp,
    /// A lock file beside no data file (a first write that died, or a removed partition).
    Lock,
}

/// An orphaned file, found (and with `remove`, removed) by [`BarStore::clean_orphans`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrphanFile {
    /// Its path, relative to the lake root.
    pub path: String,
    /// What it is.
    pub kind: OrphanKind,
}

/// What a retention prune did to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneOutcome {
    /// No file, or no row before the cut: nothing changed.
    Untouched,
    /// Every row was before the cut: the file is gone.
    Removed {
        /// Rows removed.
        rows: u64,
    },
    /// The partition straddled the cut: rewritten by the write protocol with the rows on or
    /// after it.
    Rewritten {
        /// Rows removed.
        removed: u64,
        /// The write (rows kept, the new content hash).
        outcome: WriteOutcome,
    },
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarQuery {
    /// The frame.
    pub frame: Timeframe,
    /// Symbols; empty means every symbol.
    pub symbols: Vec<Symbol>,
    /// Instants; `None` means all.
    pub range: Option<TimeRange>,
}

/// A stream of bar batches (each sorted by `ts`, one symbol per batch).
pub type BarBatchStream = Pin<Box<dyn Stream<Item = Result<Vec<Bar>, LakeError>> + Send>>;

/// A stored partition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub key: PartitionKey,
    /// The file (relative to the lake root).
    pub path: String,
    /// File size.
    pub bytes: u64,
}

/// A problem the integrity check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityProblem {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// How deep an integrity check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityDepth {
    /// Each file's footer: a readable Parquet file whose metadata fits its partition (catches
    /// truncated and foreign files; cheap).
    Footer,
    /// Every row: also decodable, sorted by `ts`, unique, inside the partition's period.
    Full,
}

/// The result of an integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntegrityReport {
    /// Files checked.
    pub files_checked: u64,
    /// Problems found, one per file.
    pub problems: Vec<IntegrityProblem>,
}

/// The bar lake.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BarStore: Send + Sync + fmt::Debug {
    /// Merge-upserts `bars` (all of `key`'s symbol and period) into the partition by the
    /// write protocol: lock, merge (new bar wins on equal `ts`), write temp, fsync, rename.
    async fn write_partition(
        &self,
        key: &PartitionKey,
        bars: &[Bar],
        meta: &WriteMeta,
    ) -> Result<WriteOutcome, LakeError>;

    /// Every bar of one partition, sorted by `ts` (empty when it does not exist).
    async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError>;

    /// Every row of one partition exactly as stored, in file order, without sorting or
    /// removing duplicates: what validation must see (empty when the file does not exist).
    async fn read_partition_as_stored(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError>;

    /// Every bar of one partition with who delivered it, sorted by `ts` (empty when it does
    /// not exist): what aggregation needs to carry provenance into the frames.
    async fn read_partition_sourced(&self, key: &PartitionKey) -> Result<SourcedBars, LakeError>;

    /// Streams the bars of `query`, partition by partition.
    async fn read_bars(&self, query: &BarQuery) -> Result<BarBatchStream, LakeError>;

    /// The stored partitions of `frame`, for `symbols` (empty = all).
    async fn list_partitions(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError>;

    /// Checks every file (of `frame`, or all) to `depth` and reports unreadable or
    /// inconsistent ones, stale temporary files and orphaned lock files.
    async fn check_integrity(
        &self,
        frame: Option<Timeframe>,
        depth: IntegrityDepth,
    ) -> Result<IntegrityReport, LakeError>;

    /// Every partition file (of `frame`, or all) with the lake format it is written in,
    /// sorted by key; a partition whose format-1 file still sits beside its format-2 file
    /// (an interrupted upgrade) is listed twice, once per file.
    async fn list_formats(&self, frame: Option<Timeframe>) -> Result<Vec<StoredFormat>, LakeError>;

    /// Rewrites a partition in [`LAKE_FORMAT_VERSION`] by the write protocol when it is
    /// stored in an older format, keeping every row, its provenance and `ingested_at`, and
    /// moving it to its current location. `None` when the partition has no file;
    /// `rewritten: false` when it was already current. Idempotent.
    async fn upgrade_partition(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<WriteOutcome>, LakeError>;

    /// Records that every partition file is in [`LAKE_FORMAT_VERSION`] (the lake root's
    /// `layout::FORMAT_MARKER`), once an upgrade has left nothing older.
    async fn mark_format_current(&self) -> Result<(), LakeError>;

    /// The temporary and lock files no writer holds; with `remove`, each is deleted (under
    /// its partition's lock, so a writer starting meanwhile is never disturbed).
    async fn clean_orphans(&self, remove: bool) -> Result<Vec<OrphanFile>, LakeError>;

    /// Reads one partition's file and hashes its content; `None` when it has no file.
    async fn partition_digest(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<PartitionDigest>, LakeError>;

    /// Removes the rows before `cut` from one partition, by the write protocol (under the
    /// partition's lock; a straddling file is rewritten, never edited in place). With
    /// `dry_run`, only says what it would do.
    async fn prune_partition(
        &self,
        key: &PartitionKey,
        cut: Timestamp,
        dry_run: bool,
    ) -> Result<PruneOutcome, LakeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym() -> Symbol {
        Symbol::new("BRK.B").unwrap()
    }

    #[test]
    fn partition_of_a_late_extended_bar_is_its_session_month() {
        // 2024-01-31 19:30 ET = 2024-02-01 00:30 UTC.
        let ts = Timestamp::parse_rfc3339("2024-02-01T00:30:00Z").unwrap();
        let key = PartitionKey::for_bar(Timeframe::M1, sym(), ts);
        assert_eq!(key.to_string(), "1m/BRK.B/2024-01");
        assert_eq!(key.dates().unwrap().to_string(), "2024-01-01..=2024-01-31");
        let yearly = PartitionKey::for_bar(Timeframe::D1, sym(), ts);
        assert_eq!(yearly.to_string(), "1d/BRK.B/2024");
        assert_eq!(
            yearly.dates().unwrap().to_string(),
            "2024-01-01..=2024-12-31"
        );
        let bad = PartitionKey {
            month: Some(13),
            ..key
        };
        assert!(bad.dates().is_none());
    }

    #[tokio::test]
    async fn mock_store_is_object_safe() {
        let mut mock = MockBarStore::new();
        mock.expect_read_partition().returning(|_| Ok(Vec::new()));
        mock.expect_check_integrity().returning(|_, _| {
            Ok(IntegrityReport {
                files_checked: 1,
                problems: vec![IntegrityProblem {
                    path: "x".into(),
                    problem: "bad".into(),
                }],
            })
        });
        let store: std::sync::Arc<dyn BarStore> = std::sync::Arc::new(mock);
        let key = PartitionKey::for_date(
            Timeframe::M1,
            sym(),
            NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
        );
        assert!(store.read_partition(&key).await.unwrap().is_empty());
        assert_eq!(
            store
                .check_integrity(None, IntegrityDepth::Full)
                .await
                .unwrap()
                .problems
                .len(),
            1
        );
    }
}
