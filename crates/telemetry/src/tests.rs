use std::sync::Mutex;

use async_trait::async_trait;
use marketpipe_ports::telemetry::{BARS_INGESTED, JOB_DURATION, PROVIDER_REQUEST_DURATION};

use super::*;

/// The history in memory, as the SQLite adapter keeps it (append-only, by name and time).
#[derive(Debug, Default)]
struct MemoryHistory(Mutex<Vec<MetricSample>>);

#[async_trait]
impl MetricsRepository for MemoryHistory {
    async fn record(&self, samples: &[MetricSample]) -> Result<(), RepositoryError> {
        self.0.lock().unwrap().extend_from_slice(samples);
        Ok(())
    }
    async fn history(
        &self,
        name: &str,
        since: Timestamp,
    ) -> Result<Vec<MetricSample>, RepositoryError> {
        let mut out: Vec<MetricSample> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name && s.at >= since)
            .cloned()
            .collect();
        out.sort_by_key(|s| s.at);
        Ok(out)
    }
    async fn names(&self) -> Result<Vec<String>, RepositoryError> {
        let mut names: Vec<String> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn run_series(bars: u64, seconds: f64) -> Vec<Series> {
    vec![
        Series {
            name: BARS_INGESTED.name.into(),
            labels: labels(&[("feed", "iex"), ("provider", "fake")]),
            value: SeriesValue::Counter { value: bars },
        },
        Series {
            name: JOB_DURATION.name.into(),
            labels: labels(&[("command", "ingest")]),
            value: SeriesValue::Gauge { value: seconds },
        },
        Series {
            name: PROVIDER_REQUEST_DURATION.name.into(),
            labels: labels(&[("provider", "fake")]),
            value: SeriesValue::Histogram {
                buckets: vec![(0.1, 2), (1.0, 3)],
                sum: 1.25,
                count: 4,
            },
        },
    ]
}

#[tokio::test]
async fn a_run_is_kept_with_its_command_and_job_and_the_latest_run_comes_back_whole() {
    let repo = MemoryHistory::default();
    let first = RunLabels {
        command: "ingest",
        job: Some("job-1"),
        at: ts("2024-03-01T10:00:00Z"),
    };
    record_run(&repo, &run_series(100, 2.0), first)
        .await
        .unwrap();
    let second = RunLabels {
        command: "ingest",
        job: Some("job-2"),
        at: ts("2024-03-02T10:00:00Z"),
    };
    record_run(&repo, &run_series(300, 4.0), second)
        .await
        .unwrap();
    let other = RunLabels {
        command: "validate",
        job: None,
        at: ts("2024-03-01T11:00:00Z"),
    };
    record_run(
        &repo,
        &[Series {
            name: JOB_DURATION.name.into(),
            labels: labels(&[("command", "validate")]),
            value: SeriesValue::Gauge { value: 0.5 },
        }],
        other,
    )
    .await
    .unwrap();

    let samples = run_samples(&run_series(1, 1.0), first);
    assert!(samples.iter().all(|s| s.at == first.at));
    assert!(samples.iter().any(|s| s.name == BARS_INGESTED.name
        && s.labels
            == labels(&[
                ("command", "ingest"),
                ("feed", "iex"),
                ("job", "job-1"),
                ("provider", "fake")
            ])));
    // 2 buckets + +Inf, sum, count
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name.starts_with(PROVIDER_REQUEST_DURATION.name))
            .count(),
        5
    );

    let names: Vec<String> = list(&repo)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        vec![
            BARS_INGESTED.name.to_owned(),
            JOB_DURATION.name.to_owned(),
            format!("{}_bucket", PROVIDER_REQUEST_DURATION.name),
            format!("{}_count", PROVIDER_REQUEST_DURATION.name),
            format!("{}_sum", PROVIDER_REQUEST_DURATION.name),
        ]
    );
    let listed = list(&repo).await.unwrap();
    assert_eq!(listed[2].help, PROVIDER_REQUEST_DURATION.help);

    let latest = latest_runs(&repo).await.unwrap();
    assert_eq!(
        latest,
        vec![
            Series {
                name: BARS_INGESTED.name.into(),
                labels: labels(&[("command", "ingest"), ("feed", "iex"), ("provider", "fake")]),
                value: SeriesValue::Counter { value: 300 },
            },
            Series {
                name: JOB_DURATION.name.into(),
                labels: labels(&[("command", "ingest")]),
                value: SeriesValue::Gauge { value: 4.0 },
            },
            Series {
                name: JOB_DURATION.name.into(),
                labels: labels(&[("command", "validate")]),
                value: SeriesValue::Gauge { value: 0.5 },
            },
            Series {
                name: PROVIDER_REQUEST_DURATION.name.into(),
                labels: labels(&[("command", "ingest"), ("provider", "fake")]),
                value: SeriesValue::Histogram {
                    buckets: vec![(0.1, 2), (1.0, 3)],
                    sum: 1.25,
                    count: 4
                },
            },
        ]
    );
}

#[tokio::test]
async fn history_groups_by_label_set_and_averages_by_calendar_bucket() {
    let repo = MemoryHistory::default();
    for (i, (at, bars)) in [
        ("2024-03-01T10:00:00Z", 100),
        ("2024-03-01T20:00:00Z", 300),
        ("2024-03-02T10:00:00Z", 50),
        ("2024-04-10T10:00:00Z", 10),
    ]
    .into_iter()
    .enumerate()
    {
        let job = format!("job-{i}");
        let run = RunLabels {
            command: "ingest",
            job: Some(&job),
            at: ts(at),
        };
        record_run(&repo, &run_series(bars, 1.0), run)
            .await
            .unwrap();
    }
    let all = history(&repo, BARS_INGESTED.name, ts("2024-03-01T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].labels,
        labels(&[("command", "ingest"), ("feed", "iex"), ("provider", "fake")])
    );
    let values: Vec<f64> = all[0].points.iter().map(|p| p.value).collect();
    assert_eq!(values, vec![300.0, 50.0, 10.0]);
    assert_eq!(all[0].points[0].job.as_deref(), Some("job-1"));

    let everything = history(&repo, BARS_INGESTED.name, Timestamp::from_nanos(0))
        .await
        .unwrap();
    let daily = average_by(&everything, "1d".parse().unwrap()).unwrap();
    let points: Vec<(String, f64, u64)> = daily[0]
        .points
        .iter()
        .map(|p| (p.at.to_rfc3339(), p.value, p.samples))
        .collect();
    assert!((points[0].1 - 200.0).abs() < 1e-9, "{points:?}");
    assert_eq!(points[0].2, 2);
    assert!(points[0].0.starts_with("2024-03-01T00:00:00"), "{points:?}");
    assert_eq!(points.len(), 3);
    let monthly = average_by(&everything, "1m".parse().unwrap()).unwrap();
    assert_eq!(monthly[0].points.len(), 2);
    assert!((monthly[0].points[0].value - 150.0).abs() < 1e-9);
    assert!(
        monthly[0].points[1]
            .at
            .to_rfc3339()
            .starts_with("2024-04-01T00:00:00")
    );
}

#[test]
fn buckets_start_on_calendar_boundaries() {
    let at = ts("2024-03-06T15:30:00Z"); // a Wednesday
    let start = |span: &str| {
        bucket_start(at, span.parse().unwrap())
            .unwrap()
            .to_rfc3339()
    };
    assert!(start("1d").starts_with("2024-03-06T00:00:00"));
    assert!(
        start("1w").starts_with("2024-03-04T00:00:00"),
        "{}",
        start("1w")
    );
    assert!(start("1m").starts_with("2024-03-01T00:00:00"));
    assert!(start("3m").starts_with("2024-01-01T00:00:00"));
    assert!(start("1y").starts_with("2024-01-01T00:00:00"));
    let week_before = since(at, "1w".parse().unwrap()).unwrap();
    assert_eq!(week_before, ts("2024-02-28T15:30:00Z"));
    let month_before = since(at, "1m".parse().unwrap()).unwrap();
    assert_eq!(month_before, ts("2024-02-06T15:30:00Z"));
}
