//! The in-memory recorder.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use marketpipe_ports::telemetry::{self, Series, SeriesValue};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Buckets for a histogram the contract does not list (seconds-like).
const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0];

/// A series' identity: name and labels sorted by key.
type SeriesKey = (String, Vec<(String, String)>);

/// A counter: a u64 total.
#[derive(Debug, Default)]
struct AtomicCounter(AtomicU64);

impl CounterFn for AtomicCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// A gauge: an f64 kept as its bits.
#[derive(Debug, Default)]
struct AtomicGauge(AtomicU64);

impl AtomicGauge {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for AtomicGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A histogram with fixed upper bounds: a count per bucket (not cumulative), the sum (f64
/// bits) and the count.
#[derive(Debug)]
struct FixedHistogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum: AtomicGauge,
    count: AtomicU64,
}

impl FixedHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicGauge::default(),
            count: AtomicU64::new(0),
        }
    }

    fn value(&self) -> SeriesValue {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        // Read after the buckets, so that +Inf is never below the last bucket.
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        SeriesValue::Histogram {
            buckets,
            sum: self.sum.get(),
            count,
        }
    }
}

impl HistogramFn for FixedHistogram {
    fn record(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|bound| value <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum.increment(value);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The series of one kind, by key.
type Table<T> = RwLock<BTreeMap<SeriesKey, Arc<T>>>;

/// The recorder: every series registered since it was made, by name and labels.
#[derive(Debug, Default)]
pub struct MetricsRecorder {
    counters: Table<AtomicCounter>,
    gauges: Table<AtomicGauge>,
    histograms: Table<FixedHistogram>,
}

fn series_key(key: &Key) -> SeriesKey {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    labels.dedup_by(|a, b| a.0 == b.0);
    (key.name().to_owned(), labels)
}

/// The series of `key` in `table`, made by `make` on first use.
fn get_or_insert<T>(table: &Table<T>, key: &Key, make: impl FnOnce(&str) -> T) -> Arc<T> {
    let series = series_key(key);
    if let Some(found) = table
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&series)
    {
        return Arc::clone(found);
    }
    let mut write = table
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registered = write
        .entry(series)
        .or_insert_with_key(|(name, _)| Arc::new(make(name)));
    Arc::clone(registered)
}

impl MetricsRecorder {
    /// An empty recorder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every series with its current value, sorted by name and labels.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Series> {
        let read = |t: &Table<AtomicCounter>| {
            t.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|((name, labels), c)| Series {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: SeriesValue::Counter {
                        value: c.0.load(Ordering::Relaxed),
                    },
                })
                .collect::<Vec<_>>()
        };
        let mut out = read(&self.counters);
        out.extend(
            self.gauges
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|((name, labels), g)| Series {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: SeriesValue::Gauge { value: g.get() },
                }),
        );
        out.extend(
            self.histograms
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|((name, labels), h)| Series {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: h.value(),
                }),
        );
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out
    }
}

impl Recorder for MetricsRecorder {
    // Help texts come from the contract (marketpipe_ports::telemetry), not from describe calls.
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(get_or_insert(&self.counters, key, |_| {
            AtomicCounter::default()
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(get_or_insert(&self.gauges, key, |_| AtomicGauge::default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(get_or_insert(&self.histograms, key, |name| {
            let bounds = telemetry::metric_def(name)
                .map(|d| d.buckets)
                .filter(|b| !b.is_empty())
                .unwrap_or(DEFAULT_BUCKETS);
            FixedHistogram::new(bounds)
        }))
    }
}

/// A recorder that forwards to the installed one, so that the process-wide recorder can be
/// a `'static` shared value.
#[derive(Debug)]
struct Shared(&'static MetricsRecorder);

impl Recorder for Shared {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.0.describe_counter(key, unit, help);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.0.describe_gauge(key, unit, help);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.0.describe_histogram(key, unit, help);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

static INSTALLED: OnceLock<&'static MetricsRecorder> = OnceLock::new();

/// The process-wide recorder, installed as the `metrics` facade's global recorder on the
/// first call (later calls return the same one). Should another recorder already be global,
/// the returned one stays empty, which a test can tell from its snapshot.
pub fn install() -> &'static MetricsRecorder {
    INSTALLED.get_or_init(|| {
        let recorder: &'static MetricsRecorder = Box::leak(Box::new(MetricsRecorder::new()));
        if metrics::set_global_recorder(Shared(recorder)).is_err() {
            tracing::warn!("another metrics recorder is installed; metrics are not exported");
        }
        recorder
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketpipe_ports::telemetry::REQUEST_DURATION_BUCKETS;

    #[test]
    fn records_counters_gauges_and_histograms_by_name_and_sorted_labels() {
        let recorder = MetricsRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("c_total", "b" => "2", "a" => "1").increment(2);
            metrics::counter!("c_total", "a" => "1", "b" => "2").increment(3);
            metrics::counter!("c_total", "a" => "x").absolute(7);
            metrics::gauge!("g").set(1.5);
            metrics::gauge!("g").increment(1.0);
            metrics::gauge!("g").decrement(0.25);
            let h = metrics::histogram!(telemetry::PROVIDER_REQUEST_DURATION.name);
            h.record(0.001);
            h.record(0.3);
            h.record(100.0);
            metrics::histogram!("other_seconds").record(0.2);
        });
        let snap = recorder.snapshot();
        let by = |name: &str, labels: &[(&str, &str)]| {
            let labels: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            snap.iter()
                .find(|s| s.name == name && s.labels == labels)
                .map(|s| s.value.clone())
        };
        assert_eq!(
            by("c_total", &[("a", "1"), ("b", "2")]),
            Some(SeriesValue::Counter { value: 5 })
        );
        assert_eq!(
            by("c_total", &[("a", "x")]),
            Some(SeriesValue::Counter { value: 7 })
        );
        assert_eq!(by("g", &[]), Some(SeriesValue::Gauge { value: 2.25 }));
        let Some(SeriesValue::Histogram {
            buckets,
            sum,
            count,
        }) = by(telemetry::PROVIDER_REQUEST_DURATION.name, &[])
        else {
            panic!("no histogram in {snap:?}");
        };
        assert_eq!(count, 3);
        assert!((sum - 100.301).abs() < 1e-9);
        assert_eq!(buckets.len(), REQUEST_DURATION_BUCKETS.len());
        assert_eq!(buckets[0], (0.005, 1));
        assert_eq!(
            buckets.iter().find(|b| (b.0 - 0.5).abs() < f64::EPSILON),
            Some(&(0.5, 2))
        );
        assert_eq!(buckets.last(), Some(&(30.0, 2)), "100 s is only in +Inf");
        let Some(SeriesValue::Histogram { buckets, .. }) = by("other_seconds", &[]) else {
            panic!("no default histogram");
        };
        assert_eq!(buckets.len(), DEFAULT_BUCKETS.len());
        assert_eq!(snap.len(), 5);
    }

    #[test]
    fn install_returns_one_recorder_that_the_facade_feeds() {
        let recorder = install();
        assert!(std::ptr::eq(recorder, install()));
        metrics::counter!("install_test_total").increment(1);
        assert!(
            recorder
                .snapshot()
                .iter()
                .any(|s| s.name == "install_test_total")
        );
    }
}
