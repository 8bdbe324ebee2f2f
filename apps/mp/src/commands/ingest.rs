//! `mp ingest` (also `mp ohlcv ingest`, `mp ingest-ohlcv`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use marketpipe_domain::{DateRange, JobId, JobSpec, JobState, SessionKind, Symbol};
use marketpipe_ingestion::{
    Coordinator, IngestDeps, IngestError, IngestOptions, JobChoice, JobReport, JobRequest,
    RetryPolicy, resolve_feed, select_job,
};
use marketpipe_ports::{Clock, SystemClock};
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
    let options = ingest_options(config, args.concurrency);
    // Everything the user typed is checked before any file is touched.
    options
        .check()
        .map_err(|e| usage(anyhow::Error::new(e).context("--concurrency")))?;
    let request = match &args.resume {
        Some(id) => JobRequest::Resume(JobId::new(id).map_err(usage)?),
        None => JobRequest::Run(spec_from_args(ctx, args)?),
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (job, provider) = match request {
        // A resumed job runs with its own provider, whatever the configuration's default.
        JobRequest::Resume(id) => {
            let selected = select_job(store.as_ref(), clock.as_ref(), JobRequest::Resume(id))
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
            let selected = select_job(store.as_ref(), clock.as_ref(), JobRequest::Run(spec))
                .await
                .map_err(ingest_error)?;
            if selected.choice == JobChoice::Continued {
                info!(job = %selected.job.id(), "continuing the unfinished job with the same symbols, dates and provider");
            }
            (selected.job, provider)
        }
    };
    let deps = IngestDeps {
        provider,
        lake,
        jobs: store.clone(),
        items: store.clone(),
        manifest: store.clone(),
        summaries: store.clone(),
        events: Arc::new(crate::events::LogPublisher),
        metrics: store.clone(),
        clock,
    };
    let coordinator = Coordinator::new(deps, options);

    let cancel = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&cancel);
    let signal_task = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            warn!(
                "interrupted: finishing the work items in flight, then stopping (resume with --resume)"
            );
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let job_symbols = job.spec().symbols.clone();
    let symbols = job_symbols.len();
    let progress = Progress::new(ctx.quiet);
    let result = coordinator.run(job, &progress, cancel).await;
    progress.finish();
    signal_task.abort();
    let report = result.map_err(ingest_error)?;
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
fn ingest_error(e: IngestError) -> AppError {
    if e.is_bad_request() {
        usage(e)
    } else {
        AppError::Failed(e.into())
    }
}

/// Coordinator options from the configuration and the flags.
fn ingest_options(config: &crate::config::Config, concurrency: Option<usize>) -> IngestOptions {
    IngestOptions {
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

fn spec_from_args(ctx: &Context, args: &IngestArgs) -> Result<JobSpec, AppError> {
    let provider = args
        .provider
        .clone()
        .unwrap_or_else(|| ctx.config.ingest.provider.clone());
    let info = (wiring::provider_entry(&provider)?.info)();
    let feed = resolve_feed(args.feed.as_deref(), &info).map_err(usage)?;
    let mut symbols: Vec<Symbol> = Vec::new();
    if let Some(list) = &args.symbols {
        symbols.extend(Symbol::parse_list(list).map_err(usage)?);
    }
    if let Some(file) = &args.symbols_file {
        for s in read_symbols_file(file)? {
            if !symbols.contains(&s) {
                symbols.push(s);
            }
        }
    }
    if symbols.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no symbols given: pass --symbols or --symbols-file"
        )));
    }
    let (Some(start), Some(end)) = (&args.start, &args.end) else {
        return Err(usage(anyhow::anyhow!("--start and --end are required")));
    };
    let dates = DateRange::parse(start, end).map_err(usage)?;
    marketpipe_domain::TradingCalendar::xnys()
        .sessions(dates)
        .map_err(usage)?;
    let extended = args.extended_hours || ctx.config.ingest.extended_hours;
    Ok(JobSpec {
        provider,
        feed,
        symbols,
        dates,
        session: if extended {
            SessionKind::Extended
        } else {
            SessionKind::Regular
        },
    })
}

fn read_symbols_file(path: &Path) -> Result<Vec<Symbol>, AppError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read symbols file {}", path.display()))
        .map_err(usage)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        for token in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let s = Symbol::new(token)
                .with_context(|| format!("{}:{}", path.display(), n + 1))
                .map_err(usage)?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
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
