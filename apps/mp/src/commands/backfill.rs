//! `mp backfill` (also `mp ohlcv backfill`, `mp backfill-ohlcv`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{CoverageState, DateRange, JobState, Span, TradingCalendar};
use marketpipe_ingestion::{
    BackfillPlan, BackfillReport, BackfillRequest, Coordinator, PlanDeps, plan_backfill,
    run_backfill,
};
use serde_json::json;

use crate::cli::BackfillArgs;
use crate::commands::Context;
use crate::commands::ingest::{
    cancel_on_signals, hours, ingest_deps, ingest_error, ingest_options, provider_and_feed,
    requested_symbols,
};
use crate::config::ensure_writable_dir;
use crate::error::{AppError, usage};
use crate::progress::Progress;
use crate::wiring;

pub(crate) async fn run(
    ctx: &Context,
    args: &BackfillArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let options = ingest_options(ctx, args.concurrency);
    options
        .check()
        .map_err(|e| usage(anyhow::Error::new(e).context("--concurrency")))?;
    let symbols = requested_symbols(
        ctx,
        args.symbols.as_deref(),
        args.symbols_file.as_deref(),
        args.universe.as_deref(),
    )
    .await?;
    let request = request_from_args(ctx, args, symbols)?;
    ensure_writable_dir(&ctx.data_dir)?;
    let lake = Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?);
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let plan_deps = PlanDeps {
        lake: lake.clone(),
        manifest: store.clone(),
        coverage: store.clone(),
        jobs: store.clone(),
        clock: Arc::clone(&ctx.clock),
    };
    let plan = plan_backfill(&plan_deps, request)
        .await
        .map_err(ingest_error)?;
    if args.dry_run {
        if args.json {
            writeln!(out, "{:#}", plan_json(&plan))?;
        } else {
            print_plan(out, &plan)?;
            writeln!(out, "dry run: nothing fetched")?;
        }
        store.close().await;
        return Ok(());
    }
    // Only a run that asks needs the provider (and its credentials).
    let provider = if plan.is_empty() {
        None
    } else {
        Some(wiring::provider(&plan.request.provider, ctx)?)
    };
    let report = match provider {
        None => BackfillReport {
            plan,
            job: None,
            outcomes: Vec::new(),
        },
        Some(provider) => {
            let coordinator = Coordinator::new(
                ingest_deps(&store, lake, provider, Arc::clone(&ctx.clock)),
                options,
            );
            let (cancel, signal_task) = cancel_on_signals();
            let progress = Progress::new(ctx.quiet);
            let result = run_backfill(&coordinator, &plan_deps, plan, &progress, cancel).await;
            progress.finish();
            signal_task.abort();
            result.map_err(ingest_error)?
        }
    };
    store.close().await;
    if let Some(job) = &report.job {
        crate::telemetry::set_job(&job.job_id);
        if job.state == JobState::Cancelled {
            crate::telemetry::set_cancelled();
        }
    }
    if args.json {
        writeln!(out, "{:#}", report_json(&report))?;
    } else {
        print_plan(out, &report.plan)?;
        print_report(out, &report)?;
    }
    let failed = report.in_state(CoverageState::Failed).count();
    match &report.job {
        Some(job) if job.state != JobState::Completed || failed > 0 => {
            Err(AppError::Failed(anyhow::anyhow!(
                "backfill job {} {}: {failed} session(s) failed{}; run the same backfill again \
                 to ask for them (or mp ingest --resume {})",
                job.job_id,
                job.state,
                job.failure
                    .as_deref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default(),
                job.job_id
            )))
        }
        _ => Ok(()),
    }
}

/// The request of the flags: the provider and feed, the symbols, and the dates (given, or a
/// lookback from today's New York date on the context's clock).
fn request_from_args(
    ctx: &Context,
    args: &BackfillArgs,
    symbols: Vec<marketpipe_domain::Symbol>,
) -> Result<BackfillRequest, AppError> {
    let (provider, feed) = provider_and_feed(ctx, args.provider.as_deref(), args.feed.as_deref())?;
    let calendar = TradingCalendar::xnys();
    let dates = match (&args.start, &args.end, &args.lookback) {
        (Some(start), Some(end), None) => DateRange::parse(start, end).map_err(usage)?,
        (None, None, Some(span)) => {
            let span: Span = span
                .parse()
                .map_err(|e| usage(anyhow::Error::new(e).context("--lookback")))?;
            let today = ny_date(ctx.clock.now());
            let start = span
                .lookback_start(today, &calendar)
                .map_err(|e| usage(anyhow::Error::new(e).context("--lookback")))?;
            DateRange::new(start, today).map_err(usage)?
        }
        _ => {
            return Err(usage(anyhow::anyhow!(
                "give --start and --end, or --lookback (e.g. --lookback 5d)"
            )));
        }
    };
    calendar.sessions(dates).map_err(usage)?;
    Ok(BackfillRequest {
        provider,
        feed,
        symbols,
        dates,
        session: hours(ctx, args.extended_hours),
        recheck: args.recheck,
    })
}

fn print_plan(out: &mut dyn Write, plan: &BackfillPlan) -> std::io::Result<()> {
    let r = &plan.request;
    writeln!(
        out,
        "backfill {}{} {} symbol(s), {} ({} hours)",
        r.provider,
        r.feed
            .as_deref()
            .map(|f| format!("/{f}"))
            .unwrap_or_default(),
        r.symbols.len(),
        r.dates,
        r.session.as_str()
    )?;
    let reasons: Vec<String> = plan
        .reasons()
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    writeln!(
        out,
        "  sessions     {} ended, {} to ask for{} in {} request(s)",
        plan.sessions_considered,
        plan.sessions.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        plan.items.len()
    )?;
    if !plan.not_ended.is_empty() {
        let dates: Vec<String> = plan.not_ended.iter().map(ToString::to_string).collect();
        writeln!(out, "  not ended    {} (not asked yet)", dates.join(", "))?;
    }
    for key in &plan.partitions_reread {
        writeln!(
            out,
            "  re-read      {key}: its file differs from the manifest (changed outside mp, or gone)"
        )?;
    }
    for item in &plan.items {
        let reasons: BTreeMap<&str, usize> = plan
            .sessions
            .iter()
            .filter(|s| s.symbol == item.symbol && item.dates.contains(s.date))
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s.reason.as_str()).or_default() += 1;
                m
            });
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        writeln!(
            out,
            "  request      {} {} ({})",
            item.symbol,
            item.dates,
            reasons.join(", ")
        )?;
    }
    Ok(())
}

fn print_report(out: &mut dyn Write, report: &BackfillReport) -> std::io::Result<()> {
    let Some(job) = &report.job else {
        writeln!(
            out,
            "nothing to ask: every session is answered in the coverage map"
        )?;
        return Ok(());
    };
    writeln!(out, "job {} {}", job.job_id, job.state)?;
    let t = &job.totals;
    writeln!(
        out,
        "  requests     {} ({} retries, {} rate-limited)",
        t.requests, t.retries, t.rate_limited
    )?;
    writeln!(
        out,
        "  bars         {} fetched, {} new or changed; partitions {} written, {} unchanged",
        t.bars_fetched, t.bars_changed, t.partitions_written, t.partitions_unchanged
    )?;
    for state in CoverageState::ALL {
        let sessions: Vec<_> = report.in_state(state).collect();
        let label = match state {
            CoverageState::Filled => "filled",
            CoverageState::Partial => "partial",
            CoverageState::EmptyConfirmed => "empty",
            CoverageState::Failed => "failed",
        };
        writeln!(out, "  {label:<12} {}", sessions.len())?;
        if state == CoverageState::Filled {
            continue;
        }
        for s in sessions {
            let detail = match state {
                CoverageState::Partial => format!("{} minutes missing", s.missing_minutes),
                CoverageState::EmptyConfirmed => {
                    "the provider has no bars; not asked again (--recheck asks)".to_owned()
                }
                _ => s.error.clone().unwrap_or_default(),
            };
            writeln!(out, "    {} {}: {detail}", s.symbol, s.date)?;
        }
    }
    Ok(())
}

fn plan_json(plan: &BackfillPlan) -> serde_json::Value {
    let r = &plan.request;
    json!({
        "provider": r.provider,
        "feed": r.feed,
        "symbols": r.symbols,
        "start": r.dates.start().to_string(),
        "end": r.dates.end().to_string(),
        "hours": r.session.as_str(),
        "recheck": r.recheck,
        "sessions_considered": plan.sessions_considered,
        "sessions": plan.sessions,
        "not_ended": plan.not_ended.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "partitions_reread": plan.partitions_reread.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "requests": plan.items.iter().map(|i| json!({
            "symbol": i.symbol,
            "start": i.dates.start().to_string(),
            "end": i.dates.end().to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn report_json(report: &BackfillReport) -> serde_json::Value {
    let mut counts = BTreeMap::new();
    for state in CoverageState::ALL {
        counts.insert(state.as_str(), report.in_state(state).count());
    }
    json!({
        "plan": plan_json(&report.plan),
        "job": report.job.as_ref().map(|j| json!({
            "id": j.job_id,
            "state": j.state.as_str(),
            "requests": j.totals.requests,
            "bars_fetched": j.totals.bars_fetched,
            "partitions_written": j.totals.partitions_written,
        })),
        "counts": counts,
        "sessions": report.outcomes,
    })
}
