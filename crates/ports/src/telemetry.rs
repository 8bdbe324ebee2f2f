//! The metrics contract: every metric MarketPipe exports, with its kind, unit, labels and
//! meaning, written once. The contexts and adapters that do the work record through the
//! `metrics` facade under these names; the exporter takes help texts and histogram buckets
//! from here; the dashboard, the alert rules and `docs/metrics.md` name only these.
//!
//! Names follow Prometheus conventions: base units (`_seconds`, `_bytes`), counters end in
//! `_total`. Labels have bounded values (a provider, a feed, a frame, a rule, a status code):
//! never a symbol or a job id, which the metrics history keeps instead.

use serde::{Deserialize, Serialize};

/// How a metric's values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Only goes up (reset when the process starts).
    Counter,
    /// A value that is set.
    Gauge,
    /// Observations counted into fixed buckets, with their sum and count.
    Histogram,
}

impl MetricKind {
    /// The Prometheus `# TYPE` word.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric of the contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The full name (`marketpipe_…`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The `# HELP` text: what one unit of it means.
    pub help: &'static str,
    /// The label keys it carries.
    pub labels: &'static [&'static str],
    /// Upper bounds of a histogram's buckets (explicit, so that buckets add up across
    /// workers); empty for counters and gauges.
    pub buckets: &'static [f64],
}

/// Label key: the provider's name (`fake`, `alpaca`, …).
pub const LABEL_PROVIDER: &str = "provider";
/// Label key: the provider's feed (`iex`, `sip`, …).
pub const LABEL_FEED: &str = "feed";
/// Label key: a timeframe (`1m`, `5m`, …).
pub const LABEL_FRAME: &str = "frame";
/// Label key: a validation rule id.
pub const LABEL_RULE: &str = "rule";
/// Label key: a finding's severity.
pub const LABEL_SEVERITY: &str = "severity";
/// The `feed` label's value for a provider without feeds.
pub const FEED_NONE: &str = "default";
/// Label key: an HTTP status code, or `error` when no response arrived.
pub const LABEL_STATUS: &str = "status";
/// Label key: the `mp` command (`ingest`, `validate`, …).
pub const LABEL_COMMAND: &str = "command";
/// Label key: how a command ended (`success`, `failed`, `bad_input`, `cancelled`).
pub const LABEL_OUTCOME: &str = "outcome";

/// Request latency buckets, seconds: from a local simulator's milliseconds to a provider's
/// slow pages.
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bars stored by ingest and backfill (after validation of their shape).
pub const BARS_INGESTED: MetricDef = MetricDef {
    name: "marketpipe_bars_ingested_total",
    kind: MetricKind::Counter,
    help: "1-minute bars fetched from a provider and stored in the lake.",
    labels: &[LABEL_PROVIDER, LABEL_FEED],
    buckets: &[],
};
/// Partition files the lake committed.
pub const PARTITIONS_WRITTEN: MetricDef = MetricDef {
    name: "marketpipe_partitions_written_total",
    kind: MetricKind::Counter,
    help: "Partition files written and committed to the lake (an unchanged partition is not rewritten).",
    labels: &[LABEL_FRAME],
    buckets: &[],
};
/// Bytes of the partition files the lake committed.
pub const BYTES_WRITTEN: MetricDef = MetricDef {
    name: "marketpipe_bytes_written_total",
    kind: MetricKind::Counter,
    help: "Bytes of the partition files written and committed to the lake.",
    labels: &[LABEL_FRAME],
    buckets: &[],
};
/// HTTP requests to a provider, by response status.
pub const PROVIDER_REQUESTS: MetricDef = MetricDef {
    name: "marketpipe_provider_requests_total",
    kind: MetricKind::Counter,
    help: "Requests sent to a market-data provider (every attempt), by HTTP status or `error` when no response arrived.",
    labels: &[LABEL_PROVIDER, LABEL_FEED, LABEL_STATUS],
    buckets: &[],
};
/// Requests repeated after a retryable failure.
pub const PROVIDER_RETRIES: MetricDef = MetricDef {
    name: "marketpipe_provider_retries_total",
    kind: MetricKind::Counter,
    help: "Requests repeated after a timeout, a connection error, a 408, a 429 or a 5xx.",
    labels: &[LABEL_PROVIDER, LABEL_FEED],
    buckets: &[],
};
/// 429 responses.
pub const PROVIDER_THROTTLED: MetricDef = MetricDef {
    name: "marketpipe_provider_throttled_total",
    kind: MetricKind::Counter,
    help: "Responses with HTTP 429 Too Many Requests (the provider's rate limit).",
    labels: &[LABEL_PROVIDER, LABEL_FEED],
    buckets: &[],
};
/// Latency of each request attempt.
pub const PROVIDER_REQUEST_DURATION: MetricDef = MetricDef {
    name: "marketpipe_provider_request_duration_seconds",
    kind: MetricKind::Histogram,
    help: "Seconds of one request attempt to a provider: from sending it to its body read, or to its failure.",
    labels: &[LABEL_PROVIDER, LABEL_FEED],
    buckets: REQUEST_DURATION_BUCKETS,
};
/// Validation findings.
pub const VALIDATION_FINDINGS: MetricDef = MetricDef {
    name: "marketpipe_validation_findings_total",
    kind: MetricKind::Counter,
    help: "Findings of the data-quality rules, by rule and severity.",
    labels: &[LABEL_RULE, LABEL_SEVERITY],
    buckets: &[],
};
/// Bars checked by validation.
pub const VALIDATION_BARS: MetricDef = MetricDef {
    name: "marketpipe_validation_bars_total",
    kind: MetricKind::Counter,
    help: "Bars read and checked by the data-quality rules.",
    labels: &[LABEL_FRAME],
    buckets: &[],
};
/// Bars aggregation wrote.
pub const AGGREGATION_BARS: MetricDef = MetricDef {
    name: "marketpipe_aggregation_bars_total",
    kind: MetricKind::Counter,
    help: "Bars built from 1-minute bars and written, by target frame.",
    labels: &[LABEL_FRAME],
    buckets: &[],
};
/// Bars retention removed.
pub const PRUNED: MetricDef = MetricDef {
    name: "marketpipe_pruned_total",
    kind: MetricKind::Counter,
    help: "Bars removed from the lake by retention (mp prune parquet), by frame.",
    labels: &[LABEL_FRAME],
    buckets: &[],
};
/// How long the command ran.
pub const JOB_DURATION: MetricDef = MetricDef {
    name: "marketpipe_job_duration_seconds",
    kind: MetricKind::Gauge,
    help: "Wall-clock seconds the command ran (set when it ends).",
    labels: &[LABEL_COMMAND],
    buckets: &[],
};
/// Commands ended, by outcome.
pub const JOBS: MetricDef = MetricDef {
    name: "marketpipe_jobs_total",
    kind: MetricKind::Counter,
    help: "Commands that ended, by outcome: success, failed, bad_input or cancelled.",
    labels: &[LABEL_COMMAND, LABEL_OUTCOME],
    buckets: &[],
};
/// When the command last succeeded.
pub const JOB_LAST_SUCCESS: MetricDef = MetricDef {
    name: "marketpipe_job_last_success_timestamp_seconds",
    kind: MetricKind::Gauge,
    help: "Unix time at which the command last ended with success (for staleness alerts).",
    labels: &[LABEL_COMMAND],
    buckets: &[],
};

/// Every metric of the contract, in the order the docs list them.
pub const CATALOG: &[MetricDef] = &[
    BARS_INGESTED,
    PARTITIONS_WRITTEN,
    BYTES_WRITTEN,
    PROVIDER_REQUESTS,
    PROVIDER_RETRIES,
    PROVIDER_THROTTLED,
    PROVIDER_REQUEST_DURATION,
    VALIDATION_FINDINGS,
    VALIDATION_BARS,
    AGGREGATION_BARS,
    PRUNED,
    JOB_DURATION,
    JOBS,
    JOB_LAST_SUCCESS,
];

/// The contract's definition of `name`, if it has one.
#[must_use]
pub fn metric_def(name: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|d| d.name == name)
}

/// One series' value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeriesValue {
    /// A counter's total.
    Counter {
        /// The total.
        value: u64,
    },
    /// A gauge's value.
    Gauge {
        /// The value.
        value: f64,
    },
    /// A histogram's cumulative buckets, sum and count.
    Histogram {
        /// `(upper bound, observations ≤ bound)`, ascending; the `+Inf` bucket is `count`.
        buckets: Vec<(f64, u64)>,
        /// Sum of the observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

impl SeriesValue {
    /// The kind of metric this value belongs to.
    #[must_use]
    pub const fn kind(&self) -> MetricKind {
        match self {
            Self::Counter { .. } => MetricKind::Counter,
            Self::Gauge { .. } => MetricKind::Gauge,
            Self::Histogram { .. } => MetricKind::Histogram,
        }
    }
}

/// One time series: a metric name, its labels (sorted by key) and its current value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The metric name.
    pub name: String,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: SeriesValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_are_unique() {
        let mut names: Vec<&str> = CATALOG.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len(), "a metric is listed twice");
        for def in CATALOG {
            assert!(def.name.starts_with("marketpipe_"), "{}", def.name);
            assert_eq!(
                def.kind == MetricKind::Counter,
                def.name.ends_with("_total"),
                "{}: counters, and only counters, end in _total",
                def.name
            );
            assert_eq!(def.kind == MetricKind::Histogram, !def.buckets.is_empty());
            assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
            assert!(!def.labels.contains(&"symbol") && !def.labels.contains(&"job"));
            assert!(!def.help.is_empty());
        }
        assert_eq!(metric_def(JOBS.name), Some(&JOBS));
        assert_eq!(metric_def("nope"), None);
        assert_eq!(MetricKind::Histogram.as_str(), "histogram");
        assert_eq!(SeriesValue::Gauge { value: 1.0 }.kind(), MetricKind::Gauge);
    }
}
