//! `mp ingest` (also `mp ohlcv ingest`, `mp ingest-ohlcv`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use marketpipe_domain::{DateRange, JobId, JobOwner, JobSpec, JobState, SessionKind};
use marketpipe_ingestion::{
    Coordinator, IngestDeps, IngestError, IngestOptions, JobChoice, JobReport, JobRequest,
    RetryPolicy, resolve_feed, select_job,
};
use marketpipe_parquet::ParquetLake;
use marketpipe_ports::{Clock, MarketDataProvider};
use marketpipe_sqlite::SqliteStore;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cli::IngestArgs;
use crate::commands::Context;
use crate::config::ensure_writable_dir;
use crate::error::{AppError, usage};
use crate::progress::Progress;
use crate::wiring;

#[allow(clippy::too_many_lines)] // flags -> context calls -> report, in the order they run
pub(crate) async fn run(
    ctx: &Context,
    args: &IngestArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let config = &ctx.config;
    let options = ingest_options(ctx, args.concurrency);
    // Everything the user typed is checked before any file is touched.
    options
        .check()
        .map_err(|e| usage(anyhow::Error::new(e).context("--concurrency")))?;
    let request = match &args.resume {
        Some(id) => JobRequest::Resume(JobId::new(id).map_err(usage)?),
        None => JobRequest::Run(spec_from_args(
            ctx,
            args,
            requested_symbols(
                ctx,
                args.symbols.as_deref(),
                args.symbols_file.as_deref(),
                args.universe.as_deref(),
            )
            .await?,
        )?),
    };
    if let JobRequest::Resume(id) = &request
        && !wiring::database_path(&ctx.data_dir).exists()
    {
        return Err(usage(anyhow::anyhow!(
            "job {id} not found: {} has no metadata database (see `mp jobs list`)",
            ctx.data_dir.display()
        )));
    }
    ensure_writable_dir(&ctx.data_dir)?;
    let lake = Arc::new(wiring::lake(&ctx.data_dir, config)?);
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let clock = Arc::clone(&ctx.clock);
    let (job, provider) = match request {
        // A resumed job runs with its own provider, whatever the configuration's default.
        JobRequest::Resume(id) => {
            let selected = select_job(
                store.as_ref(),
                clock.as_ref(),
                &crate::process::LocalProcesses,
                JobRequest::Resume(id),
            )
            .await
            .map_err(ingest_error)?;
            let job = selected.job;
            let provider = wiring::provider(&job.spec().provider, ctx).map_err(|e| {
                e.context(format!(
                    "job {} was ingested from {}, and resuming it needs that provider",
                    job.id(),
                    job.spec().provider
                ))
            })?;
            info!(job = %job.id(), provider = %job.spec().provider, "resuming job from its checkpoints");
            (job, provider)
        }
        // The provider is built first, so that a missing key creates no job.
        JobRequest::Run(spec) => {
            let provider = wiring::provider(&spec.provider, ctx)?;
            let selected = select_job(
                store.as_ref(),
                clock.as_ref(),
                &crate::process::LocalProcesses,
                JobRequest::Run(spec),
            )
            .await
            .map_err(ingest_error)?;
            if selected.choice == JobChoice::Continued {
                info!(job = %selected.job.id(), "continuing the unfinished job with the same symbols, dates and provider");
            }
            (selected.job, provider)
        }
    };
    crate::telemetry::set_job(job.id());
    let coordinator = Coordinator::new(ingest_deps(&store, lake, provider, clock), options);
    let (cancel, signal_task) = cancel_on_signals();
    let job_symbols = job.spec().symbols.clone();
    let symbols = job_symbols.len();
    let progress = Progress::new(ctx.quiet);
    let result = coordinator.run(job, &progress, cancel).await;
    progress.finish();
    signal_task.abort();
    let report = result.map_err(ingest_error)?;
    if report.state == JobState::Cancelled {
        crate::telemetry::set_cancelled();
    }
    print_summary(out, &report, symbols)?;
    let validated = if args.validate && report.state == JobState::Completed {
        crate::commands::validate::after_ingest(ctx, &store, &report.job_id, out).await
    } else {
        Ok(())
    };
    let aggregated = if args.aggregate && report.state == JobState::Completed {
        crate::commands::aggregate::after_ingest(ctx, &store, job_symbols, out).await
    } else {
        Ok(())
    };
    store.close().await;
    match report.state {
        JobState::Completed => validated.and(aggregated),
        state => Err(AppError::Failed(anyhow::anyhow!(
            "job {} {}: {}",
            report.job_id,
            state,
            report
                .failure
                .as_deref()
                .unwrap_or("stopped before all work items ran; continue with --resume")
        ))),
    }
}

/// A request the context refused is a usage error (exit 2); anything else failed (exit 1).
pub(crate) fn ingest_error(e: IngestError) -> AppError {
    if e.is_bad_request() {
        usage(e)
    } else {
        AppError::Failed(e.into())
    }
}

/// The ingestion context's ports over the lake and the metadata store.
pub(crate) fn ingest_deps(
    store: &Arc<SqliteStore>,
    lake: Arc<ParquetLake>,
    provider: Arc<dyn MarketDataProvider>,
    clock: Arc<dyn Clock>,
) -> IngestDeps {
    IngestDeps {
        provider,
        lake,
        jobs: store.clone(),
        items: store.clone(),
        manifest: store.clone(),
        summaries: store.clone(),
        coverage: store.clone(),
        events: Arc::new(crate::events::LogPublisher),
        clock,
    }
}

/// A flag set by Ctrl-C (SIGINT) or SIGTERM (`mp jobs kill`, systemd's stop): the run
/// finishes the work items in flight, then ends the job `cancelled`.
pub(crate) fn cancel_on_signals() -> (Arc<AtomicBool>, JoinHandle<()>) {
    let cancel = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&cancel);
    let task = tokio::spawn(async move {
        wait_for_stop_signal().await;
        warn!("stopping: finishing the work items in flight, then stopping (resume with --resume)");
        on_signal.store(true, Ordering::Relaxed);
    });
    (cancel, task)
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Coordinator options from the configuration and the flags; the job's owner is this
/// process.
pub(crate) fn ingest_options(ctx: &Context, concurrency: Option<usize>) -> IngestOptions {
    let config = &ctx.config;
    IngestOptions {
        owner: Some(JobOwner {
            host: crate::process::host_name(),
            pid: std::process::id(),
            started_at: ctx.clock.now(),
        }),
        concurrency: concurrency.unwrap_or(config.ingest.concurrency),
        retry: RetryPolicy {
            max_retries: config.ingest.max_retries,
            base_delay: Duration::from_millis(config.ingest.retry_base_delay_ms),
            max_delay: Duration::from_millis(config.ingest.retry_max_delay_ms),
        },
        page_size: (config.ingest.page_size > 0).then_some(config.ingest.page_size),
        ..IngestOptions::default()
    }
}

/// The provider of `--provider` (else the config's) and its feed (`--feed`, else the
/// provider's default).
pub(crate) fn provider_and_feed(
    ctx: &Context,
    provider: Option<&str>,
    feed: Option<&str>,
) -> Result<(String, Option<String>), AppError> {
    let provider = provider.map_or_else(|| ctx.config.ingest.provider.clone(), str::to_owned);
    let info = (wiring::provider_entry(&provider)?.info)();
    let feed = resolve_feed(feed, &info).map_err(usage)?;
    Ok((provider, feed))
}

/// The hours of `--extended-hours`, else the config's `ingest.extended_hours`.
pub(crate) fn hours(ctx: &Context, extended_flag: bool) -> SessionKind {
    if extended_flag || ctx.config.ingest.extended_hours {
        SessionKind::Extended
    } else {
        SessionKind::Regular
    }
}

/// The symbols of `--symbols`/`--symbols-file`, or the members of `--universe`.
pub(crate) async fn requested_symbols(
    ctx: &Context,
    list: Option<&str>,
    file: Option<&std::path::Path>,
    universe: Option<&str>,
) -> Result<Vec<marketpipe_domain::Symbol>, AppError> {
    match universe {
        Some(which) => crate::commands::universe::universe_symbols(ctx, which).await,
        None => crate::commands::symbols_from(list, file),
    }
}

fn spec_from_args(
    ctx: &Context,
    args: &IngestArgs,
    symbols: Vec<marketpipe_domain::Symbol>,
) -> Result<JobSpec, AppError> {
    let (provider, feed) = provider_and_feed(ctx, args.provider.as_deref(), args.feed.as_deref())?;
    let (Some(start), Some(end)) = (&args.start, &args.end) else {
        return Err(usage(anyhow::anyhow!("--start and --end are required")));
    };
    let dates = DateRange::parse(start, end).map_err(usage)?;
    marketpipe_domain::TradingCalendar::xnys()
        .sessions(dates)
        .map_err(usage)?;
    Ok(JobSpec {
        provider,
        feed,
        symbols,
        dates,
        session: hours(ctx, args.extended_hours),
    })
}

fn print_summary(out: &mut dyn Write, r: &JobReport, symbols: usize) -> std::io::Result<()> {
    let t = &r.totals;
    writeln!(out, "job {} {}", r.job_id, r.state)?;
    writeln!(out, "  symbols      {symbols}")?;
    writeln!(
        out,
        "  work items   {} run of {} ({} failed)",
        r.items_run, r.items_total, r.items_failed
    )?;
    writeln!(
        out,
        "  bars         {} fetched, {} new or changed ({} duplicates and {} outside the session dropped, {} fractional volumes rounded)",
        t.bars_fetched,
        t.bars_changed,
        t.duplicates_dropped,
        t.outside_session_dropped,
        t.fractional_volumes_rounded
    )?;
    writeln!(
        out,
        "  partitions   {} written, {} unchanged",
        t.partitions_written, t.partitions_unchanged
    )?;
    writeln!(
        out,
        "  requests     {} ({} retries, {} rate-limited; {:.1} s waiting before retries, {:.1} s throttled to the rate limit)",
        t.requests,
        t.retries,
        t.rate_limited,
        t.retry_wait.as_secs_f64(),
        t.throttled.as_secs_f64()
    )?;
    writeln!(
        out,
        "  elapsed      {:.2} s, {:.0} bars/s",
        r.elapsed.as_secs_f64(),
        r.bars_per_second()
    )?;
    Ok(())
}
