//! `mp aggregate` (also `mp ohlcv aggregate`, `mp aggregate-ohlcv`) and `mp ingest --aggregate`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use marketpipe_aggregation::{
    AggregateDeps, AggregateError, AggregateOptions, AggregateRequest, AggregationReport,
    Aggregator,
};
use marketpipe_domain::{DateRange, Symbol, Timeframe};
use marketpipe_ports::SystemClock;
use marketpipe_sqlite::SqliteStore;

use crate::cli::AggregateArgs;
use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::progress::Progress;
use crate::wiring;

pub(crate) async fn run(
    ctx: &Context,
    args: &AggregateArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    // Inputs first: nothing is opened for a bad value (the context's own checks).
    let request = request(args)?;
    let options = AggregateOptions {
        concurrency: args.concurrency,
    };
    request.check().map_err(usage)?;
    options.check().map_err(usage)?;
    crate::config::ensure_writable_dir(&ctx.data_dir)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = aggregate(ctx, &store, &request, options, out).await;
    store.close().await;
    result
}

/// Aggregates the symbols of the job just ingested (`mp ingest --aggregate`).
pub(crate) async fn after_ingest(
    ctx: &Context,
    store: &Arc<SqliteStore>,
    symbols: Vec<Symbol>,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    writeln!(out)?;
    let request = AggregateRequest {
        symbols,
        ..AggregateRequest::incremental()
    };
    aggregate(ctx, store, &request, AggregateOptions::default(), out).await
}

/// The request the flags describe.
fn request(args: &AggregateArgs) -> Result<AggregateRequest, AppError> {
    let frames = parse_frames(&args.frames).map_err(usage)?;
    let symbols = args
        .symbols
        .as_deref()
        .map(Symbol::parse_list)
        .transpose()
        .map_err(usage)?
        .unwrap_or_default();
    let dates = match (&args.start, &args.end) {
        (Some(start), Some(end)) => Some(DateRange::parse(start, end).map_err(usage)?),
        _ => None,
    };
    Ok(AggregateRequest {
        frames,
        symbols,
        dates,
        full: args.full,
    })
}

/// `5m,15m,1h,1d` → frames; an unknown name is refused with the choices. Which frames
/// can be aggregated is the context's rule ([`AggregateRequest::check`]).
fn parse_frames(list: &str) -> anyhow::Result<Vec<Timeframe>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            name.parse().map_err(|_| {
                anyhow::anyhow!(
                    "unknown frame {name:?} in --frames; choose among 5m, 15m, 30m, 1h, 4h, 1d"
                )
            })
        })
        .collect()
}

async fn aggregate(
    ctx: &Context,
    store: &Arc<SqliteStore>,
    request: &AggregateRequest,
    options: AggregateOptions,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let deps = AggregateDeps {
        lake: Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?),
        manifest: store.clone(),
        events: Arc::new(crate::events::LogPublisher),
        clock: Arc::new(SystemClock),
    };
    let aggregator = Aggregator::new(deps, options);
    let progress = Arc::new(Progress::new(ctx.quiet));
    let started = Instant::now();
    let result = aggregator.run(request, progress.clone()).await;
    progress.finish();
    let report = result.map_err(|e| match e {
        AggregateError::BadFrame(_) | AggregateError::NoFrames | AggregateError::BadConcurrency => {
            usage(e)
        }
        other => AppError::Failed(other.into()),
    })?;
    print_report(out, &report, started.elapsed().as_secs_f64())?;
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(AppError::Failed(anyhow::anyhow!(
            "aggregation failed for {} symbol-year(s): {}; fix the cause and run `mp aggregate` again (only what failed is redone)",
            report.failures.len(),
            report
                .failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}

fn print_report(out: &mut dyn Write, r: &AggregationReport, elapsed: f64) -> std::io::Result<()> {
    let names: Vec<&str> = r.frames.iter().map(|f| Timeframe::as_str(*f)).collect();
    if r.sources_read == 0 && r.failures.is_empty() {
        if r.sources_up_to_date > 0 {
            writeln!(
                out,
                "aggregate {}: nothing to do, {} 1m partitions are up to date (--full rebuilds them)",
                names.join(","),
                r.sources_up_to_date
            )?;
        } else {
            writeln!(
                out,
                "aggregate {}: no 1m partitions selected (run `mp ingest` first, or widen --symbols/--start/--end)",
                names.join(",")
            )?;
        }
        return Ok(());
    }
    writeln!(out, "aggregate {}", names.join(","))?;
    writeln!(
        out,
        "  1m read      {} partitions, {} bars ({} partitions already up to date)",
        r.sources_read, r.source_bars, r.sources_up_to_date
    )?;
    for (frame, f) in &r.per_frame {
        writeln!(
            out,
            "  {:<4}         {} bars, {} partitions written, {} unchanged",
            frame.as_str(),
            f.bars_computed,
            f.partitions_written,
            f.partitions_unchanged
        )?;
    }
    if !r.failures.is_empty() {
        writeln!(out, "  failed       {}", r.failures.len())?;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = if elapsed > 0.0 {
        r.source_bars as f64 / elapsed
    } else {
        0.0
    };
    writeln!(out, "  elapsed      {elapsed:.2} s, {rate:.0} 1m bars/s")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_refuse() {
        assert_eq!(
            parse_frames("5m, 1d,5m").unwrap(),
            [Timeframe::M5, Timeframe::D1, Timeframe::M5]
        );
        let e = parse_frames("5m,2m").unwrap_err().to_string();
        assert!(e.contains("\"2m\"") && e.contains("choose among"), "{e}");
        // 1m and an empty list parse; the aggregation context refuses them.
        for (list, refusal) in [("1m", "cannot aggregate to 1m"), (" , ", "no frames")] {
            let request = AggregateRequest {
                frames: parse_frames(list).unwrap(),
                ..AggregateRequest::incremental()
            };
            let e = request.check().unwrap_err().to_string();
            assert!(e.contains(refusal), "{list}: {e}");
        }
    }
}
