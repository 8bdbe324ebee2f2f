//! What a work item and a job did, for the closing summary and metrics.

use std::time::Duration;

use marketpipe_domain::{JobId, JobState};

/// The counts of one work item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemReport {
    /// Provider requests made (pages, including retries).
    pub requests: u64,
    /// Requests retried after a transient failure or a rate limit.
    pub retries: u64,
    /// Time spent waiting before retries.
    pub retry_wait: Duration,
    /// Rate-limit answers (HTTP 429) received.
    pub rate_limited: u64,
    /// Time spent waiting for the client-side rate limiter.
    pub throttled: Duration,
    /// Bars received from the provider.
    pub bars_fetched: u64,
    /// Bars repeated across pages (same symbol and ts), dropped.
    pub duplicates_dropped: u64,
    /// Bars outside the requested session hours, dropped.
    pub outside_session_dropped: u64,
    /// Bars whose fractional volume the provider adapter rounded.
    pub fractional_volumes_rounded: u64,
    /// Bars stored after the merge (the partition rows this item's bars landed in).
    pub bars_stored: u64,
    /// Bars that were new or changed in the lake.
    pub bars_changed: u64,
    /// Partition files rewritten.
    pub partitions_written: u64,
    /// Partitions whose content was already equal (not rewritten).
    pub partitions_unchanged: u64,
}

impl ItemReport {
    /// Adds another item's counts.
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.retry_wait += other.retry_wait;
        self.rate_limited += other.rate_limited;
        self.throttled += other.throttled;
        self.bars_fetched += other.bars_fetched;
        self.duplicates_dropped += other.duplicates_dropped;
        self.outside_session_dropped += other.outside_session_dropped;
        self.fractional_volumes_rounded += other.fractional_volumes_rounded;
        self.bars_stored += other.bars_stored;
        self.bars_changed += other.bars_changed;
        self.partitions_written += other.partitions_written;
        self.partitions_unchanged += other.partitions_unchanged;
    }
}

/// The outcome of a job run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// The job.
    pub job_id: JobId,
    /// Its state at the end of the run.
    pub state: JobState,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Work items in the job.
    pub items_total: usize,
    /// Items run by this run.
    pub items_run: usize,
    /// Items that failed in this run.
    pub items_failed: usize,
    /// Summed counts of the items run.
    pub totals: ItemReport,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl JobReport {
    /// Bars fetched per second of wall time.
    pub fn bars_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let bars = self.totals.bars_fetched as f64;
            bars / secs
        } else {
            0.0
        }
    }
}
