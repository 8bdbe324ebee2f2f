//! # marketpipe-telemetry
//!
//! The metrics history context. At its end, each command's final figures (the series the
//! exporter holds, see `marketpipe_ports::telemetry`) are kept in the metadata store with
//! the command and the job they belong to ([`record_run`]); this crate reads them back for
//! `mp metrics`: the names recorded ([`list`]), one metric's history per label set since an
//! instant ([`history`]), averaged into calendar buckets ([`average_by`]), and the latest
//! run of every command as series again ([`latest_runs`]) for `mp metrics serve`. It works
//! over the `MetricsRepository` port only and records nothing through the facade itself.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use marketpipe_domain::{DomainError, Span, SpanUnit, Timestamp};
use marketpipe_ports::telemetry::{self, MetricKind, Series, SeriesValue};
use marketpipe_ports::{MetricSample, MetricsRepository, RepositoryError};
use serde::Serialize;

/// The history label naming the command a sample belongs to.
pub const COMMAND_LABEL: &str = telemetry::LABEL_COMMAND;
/// The history label naming the job (or run) a sample belongs to; never exported to
/// Prometheus, where `job` is the scrape job's label.
pub const JOB_LABEL: &str = "job";

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
    /// A span (`--since`, `--avg`) reaches outside representable time.
    #[error(transparent)]
    Span(#[from] DomainError),
}

/// A command's run, for [`record_run`].
#[derive(Debug, Clone, Copy)]
pub struct RunLabels<'a> {
    /// The command (`ingest`, `validate`, …).
    pub command: &'a str,
    /// The job or run id, when the command has one.
    pub job: Option<&'a str>,
    /// When it ended.
    pub at: Timestamp,
}

/// The samples that keep `series` in the history: counters and gauges as they are,
/// histograms as their cumulative `_bucket{le}` (with `+Inf`), `_sum` and `_count`, each
/// labelled with the command and the job.
#[must_use]
pub fn run_samples(series: &[Series], run: RunLabels<'_>) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for s in series {
        let labels = |extra: Option<(&str, String)>| {
            let mut labels = s.labels.clone();
            labels.push((COMMAND_LABEL.to_owned(), run.command.to_owned()));
            if let Some(job) = run.job {
                labels.push((JOB_LABEL.to_owned(), job.to_owned()));
            }
            if let Some((k, v)) = extra {
                labels.push((k.to_owned(), v));
            }
            labels.sort();
            labels.dedup_by(|a, b| a.0 == b.0);
            labels
        };
        let mut push = |name: String, labels: Vec<(String, String)>, value: f64| {
            out.push(MetricSample {
                name,
                labels,
                value,
                at: run.at,
            });
        };
        match &s.value {
            #[allow(clippy::cast_precision_loss)] // counts far below 2^53
            SeriesValue::Counter { value } => push(s.name.clone(), labels(None), *value as f64),
            SeriesValue::Gauge { value } => push(s.name.clone(), labels(None), *value),
            #[allow(clippy::cast_precision_loss)]
            SeriesValue::Histogram {
                buckets,
                sum,
                count,
            } => {
                for (bound, n) in buckets {
                    push(
                        format!("{}_bucket", s.name),
                        labels(Some(("le", bound.to_string()))),
                        *n as f64,
                    );
                }
                push(
                    format!("{}_bucket", s.name),
                    labels(Some(("le", "+Inf".to_owned()))),
                    *count as f64,
                );
                push(format!("{}_sum", s.name), labels(None), *sum);
                push(format!("{}_count", s.name), labels(None), *count as f64);
            }
        }
    }
    out
}

/// Keeps `series` in the history as [`run_samples`] describes.
pub async fn record_run(
    repo: &dyn MetricsRepository,
    series: &[Series],
    run: RunLabels<'_>,
) -> Result<(), HistoryError> {
    repo.record(&run_samples(series, run)).await?;
    Ok(())
}

/// A recorded metric name, with the contract's help text when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedMetric {
    /// The name as recorded (histograms appear as their `_bucket`, `_sum` and `_count`).
    pub name: String,
    /// What it measures.
    pub help: String,
}

/// The metric definition a recorded name belongs to (a histogram's `_bucket`, `_sum` and
/// `_count` belong to the histogram).
fn definition_of(name: &str) -> Option<&'static telemetry::MetricDef> {
    telemetry::metric_def(name).or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            name.strip_suffix(suffix)
                .and_then(telemetry::metric_def)
                .filter(|d| d.kind == MetricKind::Histogram)
        })
    })
}

/// Every metric name the history holds, sorted.
pub async fn list(repo: &dyn MetricsRepository) -> Result<Vec<RecordedMetric>, HistoryError> {
    Ok(repo
        .names()
        .await?
        .into_iter()
        .map(|name| RecordedMetric {
            help: definition_of(&name).map_or_else(String::new, |d| d.help.to_owned()),
            name,
        })
        .collect())
}

/// One value of a series' history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// When it was recorded (a bucket's start once averaged).
    pub at: Timestamp,
    /// The job it belongs to (none once averaged).
    pub job: Option<String>,
    /// The value (the mean of the bucket once averaged).
    pub value: f64,
    /// How many samples it stands for (1 before averaging).
    pub samples: u64,
}

/// One label set's history: the labels without the job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesHistory {
    /// The labels (the command's included), sorted.
    pub labels: Vec<(String, String)>,
    /// Oldest first.
    pub points: Vec<Point>,
}

/// The instant `span` before `now` (`7d`: seven days of 24 h; months and years by the
/// calendar).
pub fn since(now: Timestamp, span: Span) -> Result<Timestamp, HistoryError> {
    let today = now.to_datetime().date_naive();
    let cut = span.cut_before(today)?;
    let days = (today - cut).num_days();
    Ok(Timestamp::from_nanos(
        now.nanos()
            .saturating_sub(days.saturating_mul(86_400_000_000_000)),
    ))
}

/// `name`'s samples since `since`, one history per label set (the job label removed),
/// sorted by labels.
pub async fn history(
    repo: &dyn MetricsRepository,
    name: &str,
    since: Timestamp,
) -> Result<Vec<SeriesHistory>, HistoryError> {
    let mut by_labels: BTreeMap<Vec<(String, String)>, Vec<Point>> = BTreeMap::new();
    for sample in repo.history(name, since).await? {
        let mut job = None;
        let labels: Vec<(String, String)> = sample
            .labels
            .into_iter()
            .filter_map(|(k, v)| {
                if k == JOB_LABEL {
                    job = Some(v);
                    None
                } else {
                    Some((k, v))
                }
            })
            .collect();
        by_labels.entry(labels).or_default().push(Point {
            at: sample.at,
            job,
            value: sample.value,
            samples: 1,
        });
    }
    Ok(by_labels
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|p| p.at);
            SeriesHistory { labels, points }
        })
        .collect())
}

/// The start (UTC midnight) of the calendar bucket of `bucket` that holds `at`: `Nd` counts
/// N-day blocks from 1970-01-01, `Nw` N-week blocks starting on Mondays, `Nm` and `Ny`
/// months and years from the epoch's.
pub fn bucket_start(at: Timestamp, bucket: Span) -> Result<Timestamp, HistoryError> {
    let date = at.to_datetime().date_naive();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let n = i64::from(bucket.count.max(1));
    let start = match bucket.unit {
        SpanUnit::Days => {
            let days = (date - epoch).num_days();
            epoch + ChronoDuration::days(days.div_euclid(n) * n)
        }
        SpanUnit::Weeks => {
            // 1969-12-29 was a Monday.
            let monday = epoch - ChronoDuration::days(3);
            let days = (date - monday).num_days();
            monday + ChronoDuration::days(days.div_euclid(7 * n) * 7 * n)
        }
        SpanUnit::Months | SpanUnit::Years => {
            let per = if bucket.unit == SpanUnit::Years {
                12 * n
            } else {
                n
            };
            let months = i64::from(date.year() - 1970) * 12 + i64::from(date.month0());
            let first = months.div_euclid(per) * per;
            let year = i32::try_from(1970 + first.div_euclid(12)).unwrap_or(1970);
            let month = u32::try_from(first.rem_euclid(12) + 1).unwrap_or(1);
            NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(date)
        }
    };
    let midnight = Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).unwrap_or_default());
    Ok(Timestamp::from_datetime(midnight)?)
}

/// Each history's points averaged by calendar bucket ([`bucket_start`]): one point per
/// bucket that has samples, at the bucket's start, with their mean and count.
pub fn average_by(
    histories: &[SeriesHistory],
    bucket: Span,
) -> Result<Vec<SeriesHistory>, HistoryError> {
    histories
        .iter()
        .map(|h| {
            let mut buckets: BTreeMap<Timestamp, (f64, u64)> = BTreeMap::new();
            for p in &h.points {
                let entry = buckets.entry(bucket_start(p.at, bucket)?).or_default();
                entry.0 += p.value;
                entry.1 += 1;
            }
            Ok(SeriesHistory {
                labels: h.labels.clone(),
                points: buckets
                    .into_iter()
                    .map(|(at, (sum, n))| Point {
                        at,
                        job: None,
                        #[allow(clippy::cast_precision_loss)]
                        value: sum / n as f64,
                        samples: n,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// For every command in the history, the series of its latest recorded run (the job label
/// removed, the command label kept): what `mp metrics serve` exposes for a machine whose
/// commands run from cron. Histograms are put back together from their samples.
pub async fn latest_runs(repo: &dyn MetricsRepository) -> Result<Vec<Series>, HistoryError> {
    let mut latest: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut samples: Vec<MetricSample> = Vec::new();
    for name in repo.names().await? {
        for sample in repo.history(&name, Timestamp::from_nanos(i64::MIN)).await? {
            let command = label(&sample, COMMAND_LABEL).unwrap_or_default().to_owned();
            let at = latest.entry(command).or_insert(sample.at);
            *at = (*at).max(sample.at);
            samples.push(sample);
        }
    }
    let mut plain: BTreeMap<(String, Vec<(String, String)>), f64> = BTreeMap::new();
    let mut histograms: BTreeMap<(String, Vec<(String, String)>), HistogramParts> = BTreeMap::new();
    for sample in samples {
        let command = label(&sample, COMMAND_LABEL).unwrap_or_default();
        if latest.get(command) != Some(&sample.at) {
            continue;
        }
        let mut le = None;
        let labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|(k, _)| k != JOB_LABEL)
            .filter(|(k, v)| {
                if k == "le" {
                    le = Some(v.clone());
                    false
                } else {
                    true
                }
            })
            .cloned()
            .collect();
        let histogram_part = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            sample
                .name
                .strip_suffix(suffix)
                .filter(|base| {
                    telemetry::metric_def(base).is_some_and(|d| d.kind == MetricKind::Histogram)
                })
                .map(|base| (base.to_owned(), *suffix))
        });
        match histogram_part {
            Some((base, suffix)) => {
                let parts = histograms.entry((base, labels)).or_default();
                match (suffix, le) {
                    ("_bucket", Some(le)) if le != "+Inf" => {
                        if let Ok(bound) = le.parse::<f64>() {
                            parts.buckets.push((bound, sample.value));
                        }
                    }
                    ("_sum", _) => parts.sum = sample.value,
                    ("_count", _) => parts.count = sample.value,
                    _ => {}
                }
            }
            None => {
                plain.insert((sample.name.clone(), labels), sample.value);
            }
        }
    }
    let mut out: Vec<Series> = plain
        .into_iter()
        .map(|((name, labels), value)| {
            let value = match telemetry::metric_def(&name).map(|d| d.kind) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(MetricKind::Counter) => SeriesValue::Counter {
                    value: value.max(0.0) as u64,
                },
                _ => SeriesValue::Gauge { value },
            };
            Series {
                name,
                labels,
                value,
            }
        })
        .collect();
    out.extend(histograms.into_iter().map(|((name, labels), mut parts)| {
        parts.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = |v: f64| v.max(0.0) as u64;
        Series {
            name,
            labels,
            value: SeriesValue::Histogram {
                buckets: parts.buckets.iter().map(|(b, n)| (*b, count(*n))).collect(),
                sum: parts.sum,
                count: count(parts.count),
            },
        }
    }));
    out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    Ok(out)
}

#[derive(Debug, Default)]
struct HistogramParts {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

fn label<'a>(sample: &'a MetricSample, key: &str) -> Option<&'a str> {
    sample
        .labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests;
