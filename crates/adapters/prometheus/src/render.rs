//! The Prometheus text exposition format (0.0.4), which `node_exporter`'s textfile collector
//! reads too.

use std::fmt::Write as _;

use marketpipe_ports::telemetry::{self, Series, SeriesValue};

/// Renders `series` (any order) as one metric family per name: `# HELP` from the contract
/// (or a generic line for a name it does not list), `# TYPE`, then its samples; histograms
/// as cumulative `_bucket{le=…}` samples ending with `+Inf`, then `_sum` and `_count`.
#[must_use]
pub fn render(series: &[Series]) -> String {
    let mut sorted: Vec<&Series> = series.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    let mut out = String::new();
    let mut family: Option<&str> = None;
    for s in sorted {
        if family != Some(s.name.as_str()) {
            family = Some(s.name.as_str());
            let help = telemetry::metric_def(&s.name).map_or_else(
                || format!("MarketPipe metric {}.", s.name),
                |d| d.help.to_owned(),
            );
            let _ = writeln!(out, "# HELP {} {}", s.name, escape_help(&help));
            let _ = writeln!(out, "# TYPE {} {}", s.name, s.value.kind().as_str());
        }
        match &s.value {
            SeriesValue::Counter { value } => {
                sample(&mut out, &s.name, &s.labels, None, &value.to_string());
            }
            SeriesValue::Gauge { value } => {
                sample(&mut out, &s.name, &s.labels, None, &number(*value));
            }
            SeriesValue::Histogram {
                buckets,
                sum,
                count,
            } => {
                let bucket_name = format!("{}_bucket", s.name);
                for (bound, n) in buckets {
                    sample(
                        &mut out,
                        &bucket_name,
                        &s.labels,
                        Some(&number(*bound)),
                        &n.to_string(),
                    );
                }
                sample(
                    &mut out,
                    &bucket_name,
                    &s.labels,
                    Some("+Inf"),
                    &count.to_string(),
                );
                sample(
                    &mut out,
                    &format!("{}_sum", s.name),
                    &s.labels,
                    None,
                    &number(*sum),
                );
                sample(
                    &mut out,
                    &format!("{}_count", s.name),
                    &s.labels,
                    None,
                    &count.to_string(),
                );
            }
        }
    }
    out
}

/// One sample line; `le` is appended after the labels.
fn sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        let le_pair = le.map(|v| ("le", v));
        for (k, v) in labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(le_pair)
        {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A float as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, else the shortest round-trip form).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, labels: &[(&str, &str)], value: SeriesValue) -> Series {
        Series {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            value,
        }
    }

    #[test]
    fn renders_families_with_help_type_escaped_labels_and_cumulative_buckets() {
        let text = render(&[
            series(
                telemetry::PROVIDER_REQUEST_DURATION.name,
                &[("provider", "alpaca")],
                SeriesValue::Histogram {
                    buckets: vec![(0.1, 1), (1.0, 3)],
                    sum: 1.5,
                    count: 4,
                },
            ),
            series(
                telemetry::BARS_INGESTED.name,
                &[("feed", "iex"), ("provider", "a\"b\\c\nd")],
                SeriesValue::Counter { value: 42 },
            ),
            series(
                "x_gauge",
                &[],
                SeriesValue::Gauge {
                    value: f64::INFINITY,
                },
            ),
        ]);
        let expected = format!(
            "# HELP marketpipe_bars_ingested_total {}\n\
             # TYPE marketpipe_bars_ingested_total counter\n\
             marketpipe_bars_ingested_total{{feed=\"iex\",provider=\"a\\\"b\\\\c\\nd\"}} 42\n\
             # HELP marketpipe_provider_request_duration_seconds {}\n\
             # TYPE marketpipe_provider_request_duration_seconds histogram\n\
             marketpipe_provider_request_duration_seconds_bucket{{provider=\"alpaca\",le=\"0.1\"}} 1\n\
             marketpipe_provider_request_duration_seconds_bucket{{provider=\"alpaca\",le=\"1\"}} 3\n\
             marketpipe_provider_request_duration_seconds_bucket{{provider=\"alpaca\",le=\"+Inf\"}} 4\n\
             marketpipe_provider_request_duration_seconds_sum{{provider=\"alpaca\"}} 1.5\n\
             marketpipe_provider_request_duration_seconds_count{{provider=\"alpaca\"}} 4\n\
             # HELP x_gauge MarketPipe metric x_gauge.\n\
             # TYPE x_gauge gauge\n\
             x_gauge +Inf\n",
            telemetry::BARS_INGESTED.help,
            telemetry::PROVIDER_REQUEST_DURATION.help,
        );
        assert_eq!(text, expected);
        assert_eq!(render(&[]), "");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(0.25), "0.25");
    }
}
