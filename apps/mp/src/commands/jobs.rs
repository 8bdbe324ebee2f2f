//! `mp jobs list|show|kill|cleanup|doctor`: jobs as they are, not as they were left: a
//! running job whose owner is gone is shown `interrupted`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use marketpipe_domain::{
    IngestionJob, JobId, JobOwner, JobState, JobStatus, Span, Symbol, Timestamp,
};
use marketpipe_ingestion::{HEARTBEAT_LEASE, cancel_job, lease_nanos, mark_interrupted};
use marketpipe_ports::{BarStore, JobRepository, JobSummary, MetadataRetention, OrphanKind};
use serde::Serialize;

use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::{process, wiring};

/// How a job is shown at `now`: its owner's process is checked when it runs on this host.
pub(crate) fn status_of(
    state: JobState,
    owner: Option<&JobOwner>,
    heartbeat_at: Option<Timestamp>,
    now: Timestamp,
) -> JobStatus {
    marketpipe_ports::owner_status(
        &process::LocalProcesses,
        state,
        owner,
        heartbeat_at,
        now,
        lease_nanos(),
    )
}

/// The owner of a job as JSON.
#[derive(Debug, Serialize)]
struct OwnerView<'a> {
    host: &'a str,
    pid: u32,
    started_at: String,
}

impl<'a> OwnerView<'a> {
    fn new(owner: &'a JobOwner) -> Self {
        Self {
            host: &owner.host,
            pid: owner.pid,
            started_at: owner.started_at.to_rfc3339(),
        }
    }
}

/// One job of `mp jobs list --json`: the domain's timestamps as RFC 3339 text.
#[derive(Debug, Serialize)]
struct JobRow<'a> {
    id: &'a str,
    state: &'static str,
    kind: &'static str,
    provider: &'a str,
    symbols: usize,
    items_done: usize,
    items_total: usize,
    bars: u64,
    created_at: String,
    finished_at: Option<String>,
    owner: Option<OwnerView<'a>>,
    heartbeat_at: Option<String>,
}

impl<'a> JobRow<'a> {
    fn new(j: &'a JobSummary, status: JobStatus) -> Self {
        Self {
            id: j.id.as_str(),
            state: status.as_str(),
            kind: j.kind.as_str(),
            provider: &j.provider,
            symbols: j.symbols,
            items_done: j.items_done,
            items_total: j.items_total,
            bars: j.bars,
            created_at: j.created_at.to_rfc3339(),
            finished_at: j.finished_at.map(Timestamp::to_rfc3339),
            owner: j.owner.as_ref().map(OwnerView::new),
            heartbeat_at: j.heartbeat_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// `mp jobs show --json`: the spec, state, times and every work item.
#[derive(Debug, Serialize)]
struct JobView<'a> {
    id: &'a str,
    state: &'static str,
    kind: &'static str,
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
    owner: Option<OwnerView<'a>>,
    heartbeat_at: Option<String>,
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
    fn new(job: &'a IngestionJob, status: JobStatus) -> Self {
        let spec = job.spec();
        Self {
            id: job.id().as_str(),
            state: status.as_str(),
            kind: job.kind().as_str(),
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
            owner: job.owner().map(OwnerView::new),
            heartbeat_at: job.heartbeat_at().map(Timestamp::to_rfc3339),
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
    let now = ctx.clock.now();
    let statuses: Vec<JobStatus> = jobs
        .iter()
        .map(|j| status_of(j.state, j.owner.as_ref(), j.heartbeat_at, now))
        .collect();
    if json {
        let rows: Vec<JobRow<'_>> = jobs
            .iter()
            .zip(&statuses)
            .map(|(j, s)| JobRow::new(j, *s))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24}  {:<11}  {:<8}  {:<8}  {:>7}  {:>11}  {:>12}  {:<20}",
        "job", "state", "kind", "provider", "symbols", "items", "bars", "created"
    )?;
    for (j, status) in jobs.iter().zip(&statuses) {
        writeln!(
            out,
            "{:<24}  {:<11}  {:<8}  {:<8}  {:>7}  {:>11}  {:>12}  {:<20}",
            j.id.as_str(),
            status.as_str(),
            j.kind.as_str(),
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
#[allow(clippy::too_many_lines)] // one view, printed field by field in order
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
    let status = status_of(
        job.state(),
        job.owner(),
        job.heartbeat_at(),
        ctx.clock.now(),
    );
    if json {
        serde_json::to_writer_pretty(&mut *out, &JobView::new(&job, status))
            .map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    let spec = job.spec();
    writeln!(out, "job       {} ({})", job.id(), job.kind())?;
    writeln!(out, "state     {status}")?;
    if status == JobStatus::Interrupted {
        writeln!(
            out,
            "          its owner is gone; continue it with `mp ingest --resume {}`",
            job.id()
        )?;
    }
    if let Some(owner) = job.owner() {
        writeln!(
            out,
            "owner     pid {} on {} since {}{}",
            owner.pid,
            owner.host,
            owner.started_at,
            job.heartbeat_at()
                .map(|t| format!(", last heartbeat {t}"))
                .unwrap_or_default()
        )?;
    }
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

/// Opens the store of a data dir that must already have one (`what` names the command).
async fn existing_store(
    ctx: &Context,
    id: Option<&JobId>,
) -> Result<marketpipe_sqlite::SqliteStore, AppError> {
    if !wiring::database_path(&ctx.data_dir).exists() {
        return Err(usage(match id {
            Some(id) => anyhow::anyhow!(
                "job {id} not found: {} has no metadata database (see `mp jobs list`)",
                ctx.data_dir.display()
            ),
            None => anyhow::anyhow!("{} has no metadata database yet", ctx.data_dir.display()),
        }));
    }
    wiring::open_store(&ctx.data_dir).await
}

/// `mp jobs kill JOB_ID [--timeout SECS]`: asks the job's owner on this host to stop (SIGTERM:
/// it finishes the work items in flight and ends the job `cancelled`), waits for it, and marks
/// the job `cancelled` itself when the owner is gone. Items done stay done.
pub(crate) async fn kill(
    ctx: &Context,
    job_id: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let id = JobId::new(job_id).map_err(usage)?;
    let store = existing_store(ctx, Some(&id)).await?;
    let result = kill_job(ctx, &store, &id, timeout, out).await;
    store.close().await;
    result
}

async fn kill_job(
    ctx: &Context,
    store: &marketpipe_sqlite::SqliteStore,
    id: &JobId,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let load = || async {
        store
            .get(id)
            .await
            .map_err(|e| AppError::Failed(e.into()))?
            .ok_or_else(|| {
                usage(anyhow::anyhow!(
                    "job {id} not found in {} (see `mp jobs list`)",
                    ctx.data_dir.display()
                ))
            })
    };
    let job = load().await?;
    if job.state().is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "job {id} is already {}: nothing to stop",
            job.state()
        )));
    }
    let here = process::host_name();
    let status = status_of(
        job.state(),
        job.owner(),
        job.heartbeat_at(),
        ctx.clock.now(),
    );
    if let Some(owner) = job.owner().filter(|_| status == JobStatus::Running) {
        if owner.host != here {
            return Err(AppError::Failed(anyhow::anyhow!(
                "job {id} runs on host {} (pid {}): stop it there (kill -TERM {}), or wait until \
                 its heartbeat is older than {} s and kill it again",
                owner.host,
                owner.pid,
                owner.pid,
                HEARTBEAT_LEASE.as_secs()
            )));
        }
        if process::terminate(owner.pid) {
            tracing::info!(job = %id, pid = owner.pid, "asked the job's owner to stop");
            let deadline = std::time::Instant::now() + timeout;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = load().await?;
                let gone = process::pid_alive(owner.pid) == Some(false);
                if now.state() != JobState::Running || gone {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(AppError::Failed(anyhow::anyhow!(
                        "job {id}'s owner (pid {}) did not stop within {} s; it is still \
                         running (kill -KILL {} ends it at once; `mp jobs kill {id}` then marks it)",
                        owner.pid,
                        timeout.as_secs(),
                        owner.pid
                    )));
                }
            }
        }
    }
    let job = match load().await? {
        job if job.state() == JobState::Running || job.state() == JobState::Pending => {
            cancel_job(store, ctx.clock.as_ref(), id)
                .await
                .map_err(crate::commands::ingest::ingest_error)?
        }
        job => job,
    };
    let done = job
        .items()
        .iter()
        .filter(|i| i.status == marketpipe_domain::WorkItemStatus::Done)
        .count();
    writeln!(
        out,
        "job {id} {} ({done} of {} work items done and kept; continue with `mp ingest --resume {id}`)",
        job.state(),
        job.items().len()
    )?;
    Ok(())
}

/// `mp jobs cleanup [--older-than SPAN] [--dry-run]`: removes jobs that finished before the
/// cut, with their work items (running and interrupted jobs stay).
pub(crate) async fn cleanup(
    ctx: &Context,
    older_than: &str,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let span: Span = older_than
        .parse()
        .map_err(|e| usage(anyhow::Error::new(e).context("--older-than")))?;
    let today = marketpipe_domain::calendar::ny_date(ctx.clock.now());
    let cut_date = span
        .cut_before(today)
        .map_err(|e| usage(anyhow::Error::new(e).context("--older-than")))?;
    let cut = marketpipe_domain::calendar::ny_instant(cut_date, 0, 0);
    if !wiring::database_path(&ctx.data_dir).exists() {
        writeln!(out, "no jobs yet in {}", ctx.data_dir.display())?;
        return Ok(());
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let result = store.prune_jobs(cut, dry_run).await;
    store.close().await;
    let pruned = result.map_err(|e| AppError::Failed(e.into()))?;
    writeln!(
        out,
        "{} {} finished job(s) before {cut_date} ({} work items){}",
        if dry_run { "would remove" } else { "removed" },
        pruned.jobs,
        pruned.work_items,
        if dry_run {
            "; dry run: nothing changed"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// `mp jobs doctor [--fix] [--json]`: interrupted jobs (running, owner gone) and orphaned
/// temporary and lock files in the lake; `--fix` marks the jobs failed (resumable) and
/// removes the orphans. Exit 1 while a problem is left.
pub(crate) async fn doctor(
    ctx: &Context,
    fix: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let lake = Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?);
    let orphans = lake
        .clean_orphans(fix)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    let mut interrupted: Vec<(JobSummary, bool)> = Vec::new();
    if wiring::database_path(&ctx.data_dir).exists() {
        let store = wiring::open_store(&ctx.data_dir).await?;
        let now = ctx.clock.now();
        let jobs = store
            .list(usize::MAX)
            .await
            .map_err(|e| AppError::Failed(e.into()))?;
        for job in jobs {
            if status_of(job.state, job.owner.as_ref(), job.heartbeat_at, now)
                != JobStatus::Interrupted
            {
                continue;
            }
            let marked = if fix {
                let owner = job.owner.as_ref().map_or_else(
                    || "no recorded owner".to_owned(),
                    |o| format!("pid {} on {}", o.pid, o.host),
                );
                let reason = format!(
                    "interrupted: its owner ({owner}) is gone; continue with `mp ingest --resume {}`",
                    job.id
                );
                mark_interrupted(&store, ctx.clock.as_ref(), &job.id, &reason)
                    .await
                    .is_ok()
            } else {
                false
            };
            interrupted.push((job, marked));
        }
        store.close().await;
    }
    if json {
        let value = serde_json::json!({
            "interrupted_jobs": interrupted.iter().map(|(j, marked)| serde_json::json!({
                "id": j.id,
                "owner": j.owner.as_ref().map(OwnerView::new),
                "heartbeat_at": j.heartbeat_at.map(Timestamp::to_rfc3339),
                "fixed": marked,
            })).collect::<Vec<_>>(),
            "orphaned_files": orphans.iter().map(|o| serde_json::json!({
                "path": o.path,
                "kind": match o.kind { OrphanKind::Temp => "temp", OrphanKind::Lock => "lock" },
                "fixed": fix,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{value:#}")?;
    } else {
        if interrupted.is_empty() && orphans.is_empty() {
            writeln!(out, "no interrupted jobs, no orphaned files")?;
        }
        for (job, marked) in &interrupted {
            writeln!(
                out,
                "interrupted job {}{}",
                job.id,
                if *marked {
                    " - marked failed; continue it with `mp ingest --resume`"
                } else {
                    " (mp jobs doctor --fix marks it; mp ingest --resume continues it)"
                }
            )?;
        }
        for orphan in &orphans {
            let kind = match orphan.kind {
                OrphanKind::Temp => "temporary file",
                OrphanKind::Lock => "lock file",
            };
            writeln!(
                out,
                "orphaned {kind} lake/{}{}",
                orphan.path,
                if fix {
                    " - removed"
                } else {
                    " (mp jobs doctor --fix removes it)"
                }
            )?;
        }
    }
    let left = interrupted.iter().filter(|(_, marked)| !marked).count()
        + if fix { 0 } else { orphans.len() };
    if left == 0 {
        Ok(())
    } else {
        Err(AppError::Failed(anyhow::anyhow!(
            "{left} problem(s) found; run `mp jobs doctor --fix`"
        )))
    }
}
