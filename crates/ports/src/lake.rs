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

/// Provenance written with each bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteMeta {
    /// Provider name.
    pub provider: String,
    /// Provider feed.
    pub feed: Option<String>,
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

    /// Streams the bars of `query`, partition by partition.
    async fn read_bars(&self, query: &BarQuery) -> Result<BarBatchStream, LakeError>;

    /// The stored partitions of `frame`, for `symbols` (empty = all).
    async fn list_partitions(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError>;

    /// Reads every file (of `frame`, or all) and reports unreadable or inconsistent ones.
    async fn check_integrity(&self, frame: Option<Timeframe>)
    -> Result<IntegrityReport, LakeError>;
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
        mock.expect_check_integrity().returning(|_| {
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
        assert_eq!(store.check_integrity(None).await.unwrap().problems.len(), 1);
    }
}
