//! `mp metrics`: the metrics history (list, one metric's values, averages, plots) and
//! `mp metrics serve`.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use marketpipe_domain::Span;
use marketpipe_ports::{BoxError, MetricsRepository};
use marketpipe_telemetry::SeriesHistory;

use crate::cli::MetricsArgs;
use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

/// `mp metrics [--list] [--metric NAME …]`.
pub(crate) async fn run(
    ctx: &Context,
    args: &MetricsArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let since_span: Span = args
        .since
        .parse()
        .map_err(|e| usage(anyhow::Error::new(e).context("--since")))?;
    let avg: Option<Span> = args
        .avg
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| usage(anyhow::Error::new(e).context("--avg")))?;
    if let Some(file) = &args.plot_file
        && file
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("svg"))
    {
        return Err(usage(anyhow::anyhow!(
            "--plot-file {}: the chart is SVG; name a file ending in .svg",
            file.display()
        )));
    }
    if !wiring::database_path(&ctx.data_dir).exists() {
        return Err(usage(anyhow::anyhow!(
            "{} has no metadata database, so no metrics were recorded yet (run a command \
             such as mp ingest first, or pass --data-dir)",
            ctx.data_dir.display()
        )));
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let result = match &args.metric {
        None => list(&store, args.json, out).await,
        Some(name) => show(ctx, &store, name, since_span, avg, args, out).await,
    };
    store.close().await;
    result
}

async fn list(
    repo: &dyn MetricsRepository,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let metrics = marketpipe_telemetry::list(repo).await.map_err(failed)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &metrics)
            .map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    if metrics.is_empty() {
        writeln!(out, "no metrics recorded yet")?;
        return Ok(());
    }
    let width = metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in &metrics {
        writeln!(out, "{:width$}  {}", m.name, m.help)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn show(
    ctx: &Context,
    repo: &dyn MetricsRepository,
    name: &str,
    since_span: Span,
    avg: Option<Span>,
    args: &MetricsArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let known = marketpipe_telemetry::list(repo).await.map_err(failed)?;
    if !known.iter().any(|m| m.name == name) {
        let names: Vec<&str> = known.iter().map(|m| m.name.as_str()).collect();
        return Err(usage(anyhow::anyhow!(
            "no metric {name} in the history; recorded: {} (see mp metrics --list)",
            if names.is_empty() {
                "none yet".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    let since = marketpipe_telemetry::since(ctx.clock.now(), since_span).map_err(usage)?;
    let mut histories = marketpipe_telemetry::history(repo, name, since)
        .await
        .map_err(failed)?;
    if let Some(bucket) = avg {
        histories = marketpipe_telemetry::average_by(&histories, bucket).map_err(usage)?;
    }
    if let Some(file) = &args.plot_file {
        write_svg(file, name, &histories)?;
    }
    if args.json {
        let value = serde_json::json!({
            "metric": name,
            "since": since.to_rfc3339(),
            "avg": avg.map(|a| a.to_string()),
            "series": histories.iter().map(|h| serde_json::json!({
                "labels": h.labels.iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect::<serde_json::Map<_, _>>(),
                "points": h.points.iter().map(|p| serde_json::json!({
                    "at": p.at.to_rfc3339(),
                    "job": p.job,
                    "value": finite(p.value),
                    "samples": p.samples,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &value).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    if histories.is_empty() {
        writeln!(out, "{name}: no values since {}", since.to_rfc3339())?;
        return Ok(());
    }
    for h in &histories {
        writeln!(out, "{name}{{{}}}", label_text(&h.labels))?;
        if args.plot {
            let values: Vec<f64> = h.points.iter().map(|p| p.value).collect();
            let (lo, hi) = range(&values);
            writeln!(
                out,
                "  {}  min {} max {} ({} values)",
                sparkline(&values),
                number(lo),
                number(hi),
                values.len()
            )?;
            continue;
        }
        for p in &h.points {
            let tag = match (&p.job, avg) {
                (Some(job), _) => job.clone(),
                (None, Some(_)) => format!("mean of {}", p.samples),
                (None, None) => String::new(),
            };
            writeln!(
                out,
                "  {}  {:>16}  {tag}",
                p.at.to_rfc3339(),
                number(p.value)
            )?;
        }
    }
    Ok(())
}

fn failed(e: marketpipe_telemetry::HistoryError) -> AppError {
    AppError::Failed(e.into())
}

/// JSON has no NaN or infinity.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn label_text(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

/// One block character per value, scaled between the smallest and the largest.
pub(crate) fn sparkline(values: &[f64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = range(values);
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if hi <= lo {
                BLOCKS[3]
            } else {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let i = (((v - lo) / (hi - lo)) * 7.0).round() as usize;
                BLOCKS[i.min(7)]
            }
        })
        .collect()
}

/// A line chart of every history (time on x, value on y), written atomically.
#[allow(clippy::too_many_lines)] // one SVG document, element by element in drawing order
fn write_svg(file: &Path, name: &str, histories: &[SeriesHistory]) -> Result<(), AppError> {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
    ];
    let (w, h, margin) = (800.0_f64, 360.0_f64, 50.0_f64);
    let points: Vec<(i64, f64)> = histories
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.at.nanos(), p.value)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let (t0, t1) = points.iter().fold((i64::MAX, i64::MIN), |(a, b), (t, _)| {
        (a.min(*t), b.max(*t))
    });
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (lo, hi) = range(&values);
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| {
        if t1 > t0 {
            margin + (t - t0) as f64 / (t1 - t0) as f64 * (w - 2.0 * margin)
        } else {
            w / 2.0
        }
    };
    let y = |v: f64| {
        if hi > lo {
            h - margin - (v - lo) / (hi - lo) * (h - 2.0 * margin)
        } else {
            h / 2.0
        }
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{margin}\" y=\"20\" font-size=\"14\">{}</text>",
        xml(name)
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{margin}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><line x1=\"{margin}\" y1=\"{margin}\" x2=\"{margin}\" y2=\"{b}\" stroke=\"#888\"/>",
        b = h - margin,
        r = w - margin
    );
    if !points.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{}\">{}</text>",
            y(hi) + 4.0,
            number(hi)
        );
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{}\">{}</text>",
            y(lo) + 4.0,
            number(lo)
        );
        let first = marketpipe_domain::Timestamp::from_nanos(t0).to_rfc3339();
        let last = marketpipe_domain::Timestamp::from_nanos(t1).to_rfc3339();
        let _ = writeln!(
            svg,
            "<text x=\"{margin}\" y=\"{}\">{}</text>",
            h - margin + 16.0,
            xml(&first)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            w - margin,
            h - margin + 16.0,
            xml(&last)
        );
    }
    for (i, series) in histories.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let coords: Vec<String> = series
            .points
            .iter()
            .filter(|p| p.value.is_finite())
            .map(|p| format!("{:.1},{:.1}", x(p.at.nanos()), y(p.value)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            coords.join(" ")
        );
        for c in &coords {
            let (cx, cy) = c.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{color}\"/>"
            );
        }
        #[allow(clippy::cast_precision_loss)]
        let ly = h - 8.0 - 14.0 * (histories.len() - 1 - i) as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{ly}\" fill=\"{color}\">{}</text>",
            w / 2.0,
            xml(&label_text(&series.labels))
        );
    }
    svg.push_str("</svg>\n");
    crate::commands::write_file_atomically(file, svg.as_bytes()).map_err(|e| {
        AppError::Failed(
            anyhow::Error::new(e).context(format!("cannot write the chart {}", file.display())),
        )
    })
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The history's latest run of every command, rendered at each scrape.
#[derive(Debug)]
struct HistoryExposition {
    data_dir: std::path::PathBuf,
}

#[async_trait]
impl marketpipe_prometheus::Exposition for HistoryExposition {
    async fn render(&self) -> Result<String, BoxError> {
        // Opened per scrape, so that the database is not held between scrapes (cron jobs
        // write to it) and a database created after the server started is seen.
        if !wiring::database_path(&self.data_dir).exists() {
            return Ok(String::new());
        }
        let store = wiring::open_store(&self.data_dir)
            .await
            .map_err(|e| BoxError::from(e.to_string()))?;
        let series = marketpipe_telemetry::latest_runs(&store).await;
        store.close().await;
        Ok(marketpipe_prometheus::render(&series?))
    }
}

/// `mp metrics serve --addr ADDR`: until Ctrl-C or SIGTERM.
pub(crate) async fn serve(
    ctx: &Context,
    addr: SocketAddr,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let exposition = Arc::new(HistoryExposition {
        data_dir: ctx.data_dir.clone(),
    });
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    };
    // The address bound is printed (the port chosen when 0 was asked for), quiet or not:
    // a supervisor reads it.
    let data_dir = ctx.data_dir.display().to_string();
    let announce = |bound: SocketAddr| {
        let _ = writeln!(
            out,
            "serving the metrics history of {data_dir} at http://{bound}/metrics"
        );
        let _ = out.flush();
    };
    marketpipe_prometheus::serve(addr, exposition, announce, shutdown)
        .await
        .map_err(|e| usage(anyhow::Error::new(e).context("--addr")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_between_the_smallest_and_largest_value() {
        assert_eq!(sparkline(&[0.0, 7.0, 3.5, f64::NAN]), "▁█▅ ");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.250");
        assert_eq!(xml("a<b&\""), "a&lt;b&amp;&quot;");
    }
}
