//! What an aggregation run did.

use std::collections::BTreeMap;
use std::fmt;

use marketpipe_domain::{Symbol, Timeframe};
use serde::{Serialize, Serializer};

use crate::error::AggregateError;

/// What one target frame got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FrameReport {
    /// Partitions whose file was rewritten.
    pub partitions_written: u64,
    /// Partitions whose content was already equal (the file was left alone).
    pub partitions_unchanged: u64,
    /// Bars in the rewritten partitions' new content that were new or changed.
    pub bars_changed: u64,
    /// Bars computed for this frame from the 1m partitions read.
    pub bars_computed: u64,
}

/// A unit of work (one symbol-year) that failed, and why.
#[derive(Debug, Serialize)]
pub struct UnitFailure {
    /// The unit's symbol.
    pub symbol: Symbol,
    /// The unit's year.
    pub year: i32,
    /// Why it failed (serialised as its message).
    #[serde(serialize_with = "as_message")]
    pub error: AggregateError,
}

impl fmt::Display for UnitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.symbol, self.year, self.error)
    }
}

fn as_message<S: Serializer>(error: &AggregateError, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(error)
}

/// The outcome of one aggregation run.
#[derive(Debug, Default, Serialize)]
pub struct AggregationReport {
    /// The frames built.
    pub frames: Vec<Timeframe>,
    /// 1m partitions read.
    pub sources_read: u64,
    /// 1m bars read.
    pub source_bars: u64,
    /// 1m partitions skipped because every asked frame was already up to date.
    pub sources_up_to_date: u64,
    /// Per frame.
    pub per_frame: BTreeMap<Timeframe, FrameReport>,
    /// Units (symbol-years) that failed, with the reason; their partitions stay stale and
    /// are retried by the next run.
    pub failures: Vec<UnitFailure>,
}

impl AggregationReport {
    /// Partitions rewritten over all frames.
    pub fn partitions_written(&self) -> u64 {
        self.per_frame.values().map(|f| f.partitions_written).sum()
    }

    /// Partitions left alone because their content was equal.
    pub fn partitions_unchanged(&self) -> u64 {
        self.per_frame
            .values()
            .map(|f| f.partitions_unchanged)
            .sum()
    }

    /// Bars computed over all frames.
    pub fn bars_computed(&self) -> u64 {
        self.per_frame.values().map(|f| f.bars_computed).sum()
    }

    pub(crate) fn absorb(&mut self, other: Self) {
        self.sources_read += other.sources_read;
        self.source_bars += other.source_bars;
        for (frame, f) in other.per_frame {
            let mine = self.per_frame.entry(frame).or_default();
            mine.partitions_written += f.partitions_written;
            mine.partitions_unchanged += f.partitions_unchanged;
            mine.bars_changed += f.bars_changed;
            mine.bars_computed += f.bars_computed;
        }
        self.failures.extend(other.failures);
    }
}
