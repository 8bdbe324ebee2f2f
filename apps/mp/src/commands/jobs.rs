//! `mp jobs list|show`.

use std::io::Write;

use marketpipe_domain::{IngestionJob, JobId, Symbol, Timestamp};
use marketpipe_ports::{JobRepository, JobSummary};
use serde::Serialize;

use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

/// One job of `mp jobs list --json`: the domain's timestamps as RFC 3339 text.
#[derive(Debug, Serialize)]
struct JobRow<'a> {
    id: &'a str,
    state: &'static str,
    provider: &'a str,
    symbols: usize,
    items_done: usize,
    items_total: usize,
    bars: u64,
    created_at: String,
    finished_at: Option<String>,
}

impl<'a> JobRow<'a> {
    fn new(j: &'a JobSummary) -> Self {
        Self {
            id: j.id.as_str(),
            state: j.state.as_str(),
            provider: &j.provider,
            symbols: j.symbols,
            items_done: j.items_done,
            items_total: j.items_total,
            bars: j.bars,
            created_at: j.created_at.to_rfc3339(),
            finished_at: j.finished_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// `mp jobs show --json`: the spec, state, times and every work item.
#[derive(Debug, Serialize)]
struct JobView<'a> {
    id: &'a str,
    state: &'static str,
    provider: &'a str,
    feed: Option<&'a str>,
    symbols: Vec<&'a str>,
    start: String,
    end: String,
    session: &'static str,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    bars: u64,
    failure: Option<&'a str>,
    items: Vec<ItemView<'a>>,
}

/// One work item of [`JobView`].
#[derive(Debug, Serialize)]
struct ItemView<'a> {
    index: usize,
    symbol: &'a str,
    start: String,
    end: String,
    status: &'static str,
    bars: u64,
    error: Option<&'a str>,
}

impl<'a> JobView<'a> {
    fn new(job: &'a IngestionJob) -> Self {
        let spec = job.spec();
        Self {
            id: job.id().as_str(),
            state: job.state().as_str(),
            provider: &spec.provider,
            feed: spec.feed.as_deref(),
            symbols: spec.symbols.iter().map(Symbol::as_str).collect(),
            start: spec.dates.start().to_string(),
            end: spec.dates.end().to_string(),
            session: spec.session.as_str(),
            created_at: job.created_at().to_rfc3339(),
            started_at: job.started_at().map(Timestamp::to_rfc3339),
            finished_at: job.finished_at().map(Timestamp::to_rfc3339),
            bars: job.bars_written(),
            failure: job.failure(),
            items: job
                .items()
                .iter()
                .map(|i| ItemView {
                    index: i.index,
                    symbol: i.symbol.as_str(),
                    start: i.dates.start().to_string(),
                    end: i.dates.end().to_string(),
                    status: i.status.as_str(),
                    bars: i.bars_written,
                    error: i.error.as_deref(),
                })
                .collect(),
        }
    }
}

/// `mp jobs list [--limit N] [--json]`: the newest jobs first.
pub(crate) async fn list(
    ctx: &Context,
    limit: usize,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    // Listing never creates a database.
    if !wiring::database_path(&ctx.data_dir).exists() {
        if json {
            writeln!(out, "[]")?;
        } else {
            writeln!(out, "no jobs yet in {}", ctx.data_dir.display())?;
        }
        return Ok(());
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let jobs = store
        .list(limit)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    store.close().await;
    if json {
        let rows: Vec<JobRow<'_>> = jobs.iter().map(JobRow::new).collect();
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24}  {:<9}  {:<8}  {:>7}  {:>11}  {:>12}  {:<20}",
        "job", "state", "provider", "symbols", "items", "bars", "created"
    )?;
    for j in &jobs {
        writeln!(
            out,
            "{:<24}  {:<9}  {:<8}  {:>7}  {:>11}  {:>12}  {:<20}",
            j.id.as_str(),
            j.state.as_str(),
            j.provider,
            j.symbols,
            format!("{}/{}", j.items_done, j.items_total),
            j.bars,
            j.created_at.to_datetime().format("%Y-%m-%dT%H:%M:%SZ"),
        )?;
    }
    Ok(())
}

/// `mp jobs show JOB_ID [--json]`: one job with its work items.
pub(crate) async fn show(
    ctx: &Context,
    job_id: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let id = JobId::new(job_id).map_err(usage)?;
    let not_found = || {
        usage(anyhow::anyhow!(
            "job {id} not found in {} (see `mp jobs list`)",
            ctx.data_dir.display()
        ))
    };
    if !wiring::database_path(&ctx.data_dir).exists() {
        return Err(not_found());
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let job = store
        .get(&id)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    store.close().await;
    let job = job.ok_or_else(not_found)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &JobView::new(&job))
            .map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    let spec = job.spec();
    writeln!(out, "job       {}", job.id())?;
    writeln!(out, "state     {}", job.state())?;
    writeln!(
        out,
        "provider  {}{}",
        spec.provider,
        spec.feed
            .as_deref()
            .map(|f| format!(" (feed {f})"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "symbols   {}",
        spec.symbols
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )?;
    writeln!(
        out,
        "dates     {} (session: {})",
        spec.dates,
        spec.session.as_str()
    )?;
    writeln!(out, "created   {}", job.created_at())?;
    if let Some(t) = job.started_at() {
        writeln!(out, "started   {t}")?;
    }
    if let Some(t) = job.finished_at() {
        writeln!(out, "finished  {t}")?;
    }
    writeln!(out, "bars      {}", job.bars_written())?;
    if let Some(f) = job.failure() {
        writeln!(out, "failure   {f}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>5}  {:<10}  {:<24}  {:<7}  {:>8}  error",
        "item", "symbol", "dates", "status", "bars"
    )?;
    for i in job.items() {
        writeln!(
            out,
            "{:>5}  {:<10}  {:<24}  {:<7}  {:>8}  {}",
            i.index,
            i.symbol.as_str(),
            i.dates.to_string(),
            i.status.as_str(),
            i.bars_written,
            i.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
