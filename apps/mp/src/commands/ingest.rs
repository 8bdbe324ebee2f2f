//! `mp ingest` (also `mp ohlcv ingest`, `mp ingest-ohlcv`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use marketpipe_domain::{DateRange, JobId, JobSpec, JobState, SessionKind, Symbol};
use marketpipe_ingestion::{
    Coordinator, IngestDeps, IngestError, IngestOptions, JobReport, RetryPolicy,
};
use marketpipe_ports::{Clock, MetricSample, MetricsRepository, SystemClock};
use tracing::{info, warn};

use crate::cli::IngestArgs;
use crate::commands::Context;
use crate::config::ensure_writable_dir;
use crate::error::{AppError, usage};
use crate::progress::Progress;
use crate::wiring;

/// How many recent jobs are searched for an unfinished one with the same spec.
const RESUME_SEARCH: usize = 20;

pub(crate) async fn run(
    ctx: &Context,
    args: &IngestArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let config = &ctx.config;
    let concurrency = args.concurrency.unwrap_or(config.ingest.concurrency);
    if concurrency == 0 {
        return Err(usage(anyhow::anyhow!(
            "--concurrency must be at least 1 (got 0)"
        )));
    }
    // Everything the user typed is checked before any file is touched.
    let spec = match &args.resume {
        Some(_) => None,
        None => Some(spec_from_args(ctx, args)?),
    };
    let resume_id = args
        .resume
        .as_deref()
        .map(JobId::new)
        .transpose()
        .map_err(usage)?;
    let provider_name = spec
        .as_ref()
        .map_or_else(|| config.ingest.provider.clone(), |s| s.provider.clone());
    if let Some(id) = &resume_id
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
    let events = Arc::new(crate::events::LogPublisher);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let make = |provider| IngestDeps {
        provider,
        lake: lake.clone(),
        jobs: store.clone(),
        items: store.clone(),
        manifest: store.clone(),
        summaries: store.clone(),
        events: events.clone(),
        clock: clock.clone(),
    };
    let options = ingest_options(config, concurrency);

    let job = select_job(
        ctx,
        spec,
        resume_id.as_ref(),
        &provider_name,
        &make,
        &options,
        clock.as_ref(),
    )
    .await?;
    let provider = wiring::provider(&job.spec().provider, ctx)?;
    let coordinator = Coordinator::new(make(provider), options);

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
    let report = result.map_err(|e| AppError::Failed(e.into()))?;
    record_metrics(store.as_ref(), &report, clock.now()).await;
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

/// Coordinator options from the configuration and the flags.
fn ingest_options(config: &crate::config::Config, concurrency: usize) -> IngestOptions {
    IngestOptions {
        concurrency,
        retry: RetryPolicy {
            max_retries: config.ingest.max_retries,
            base_delay: Duration::from_millis(config.ingest.retry_base_delay_ms),
            max_delay: Duration::from_millis(config.ingest.retry_max_delay_ms),
        },
        page_size: (config.ingest.page_size > 0).then_some(config.ingest.page_size),
        ..IngestOptions::default()
    }
}

/// The job to run: the one named by `--resume`, else an unfinished one with the same spec,
/// else a new one.
async fn select_job(
    ctx: &Context,
    spec: Option<JobSpec>,
    resume_id: Option<&JobId>,
    provider_name: &str,
    make: &dyn Fn(Arc<dyn marketpipe_ports::MarketDataProvider>) -> IngestDeps,
    options: &IngestOptions,
    clock: &dyn Clock,
) -> Result<marketpipe_domain::IngestionJob, AppError> {
    if let Some(id) = resume_id {
        let probe = Coordinator::new(make(wiring::provider(provider_name, ctx)?), options.clone());
        let job = probe.load_resumable(id).await.map_err(|e| match e {
            IngestError::JobNotFound(_) | IngestError::NotResumable { .. } => usage(e),
            other => AppError::Failed(other.into()),
        })?;
        info!(job = %id, "resuming job from its checkpoints");
        return Ok(job);
    }
    let spec = spec.ok_or_else(|| AppError::Failed(anyhow::anyhow!("no job spec")))?;
    let coordinator = Coordinator::new(
        make(wiring::provider(&spec.provider, ctx)?),
        options.clone(),
    );
    let unfinished = coordinator
        .find_unfinished(&spec, RESUME_SEARCH)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    if let Some(job) = unfinished {
        info!(job = %job.id(), "continuing the unfinished job with the same symbols, dates and provider");
        return Ok(job);
    }
    coordinator
        .create_job(new_job_id(clock)?, spec)
        .await
        .map_err(|e| AppError::Failed(e.into()))
}

fn spec_from_args(ctx: &Context, args: &IngestArgs) -> Result<JobSpec, AppError> {
    let provider = args
        .provider
        .clone()
        .unwrap_or_else(|| ctx.config.ingest.provider.clone());
    let info = (wiring::provider_entry(&provider)?.info)();
    let feed = match &args.feed {
        Some(feed) if !info.feeds.is_empty() && !info.feeds.contains(feed) => {
            return Err(usage(anyhow::anyhow!(
                "--feed {feed:?} is not a feed of {provider}; its feeds are {}",
                info.feeds.join(", ")
            )));
        }
        Some(feed) => Some(feed.clone()),
        // The provider's default feed is recorded, so the lake says which feed it holds.
        None => info.default_feed.clone(),
    };
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

/// `20261127T035012Z-3f9a1c`: sortable by time, unique across processes.
fn new_job_id(clock: &dyn Clock) -> Result<JobId, AppError> {
    let now = clock.now();
    let stamp = now.to_datetime().format("%Y%m%dT%H%M%SZ");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in now
        .nanos()
        .to_le_bytes()
        .iter()
        .chain(std::process::id().to_le_bytes().iter())
    {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    JobId::new(&format!("{stamp}-{:06x}", h & 0xff_ffff)).map_err(|e| AppError::Failed(e.into()))
}

async fn record_metrics(
    store: &dyn MetricsRepository,
    report: &JobReport,
    at: marketpipe_domain::Timestamp,
) {
    let labels = vec![("job".to_owned(), report.job_id.to_string())];
    #[allow(clippy::cast_precision_loss)]
    let samples: Vec<MetricSample> = [
        ("ingest_bars_total", report.totals.bars_fetched as f64),
        ("ingest_seconds", report.elapsed.as_secs_f64()),
        ("ingest_bars_per_second", report.bars_per_second()),
        ("ingest_requests_total", report.totals.requests as f64),
        ("ingest_retries_total", report.totals.retries as f64),
        (
            "ingest_rate_limited_total",
            report.totals.rate_limited as f64,
        ),
        (
            "ingest_throttled_seconds",
            report.totals.throttled.as_secs_f64(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| MetricSample {
        name: name.to_owned(),
        labels: labels.clone(),
        value,
        at,
    })
    .collect();
    if let Err(e) = store.record(&samples).await {
        warn!(error = %e, "ingest metrics not recorded");
    }
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
