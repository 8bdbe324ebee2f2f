//! `mp jobs list|show`.

use std::io::Write;

use marketpipe_domain::JobId;
use marketpipe_ports::JobRepository;

use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

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
        serde_json::to_writer_pretty(&mut *out, &jobs).map_err(|e| AppError::Failed(e.into()))?;
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
        serde_json::to_writer_pretty(&mut *out, &job).map_err(|e| AppError::Failed(e.into()))?;
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
