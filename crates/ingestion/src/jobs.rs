//! Choosing the job a run works on: the one named by `--resume`, else the newest unfinished
//! job with the same spec (re-running a command continues it from its checkpoints), else a
//! new one. Only the job records are read: no provider is built to choose.

use marketpipe_domain::JobStatus;
use marketpipe_domain::{IngestionJob, JobId, JobKind, JobSpec, JobState, TradingCalendar};
use marketpipe_ports::{Clock, JobRepository, OwnerProbe, ProviderInfo};

use crate::coordinator::HEARTBEAT_LEASE;

use crate::error::IngestError;

/// How many of the newest jobs are searched for an unfinished one with the same spec.
pub const RESUME_SEARCH: usize = 20;

/// What a run asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRequest {
    /// Resume this job from its checkpoints, with the provider, feed, symbols, dates and
    /// hours it was created with.
    Resume(JobId),
    /// Run this spec: continue its newest unfinished job, or create one.
    Run(JobSpec),
}

/// How the job to run was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobChoice {
    /// The job named by [`JobRequest::Resume`].
    Resumed,
    /// An unfinished job with the same spec, continued from its checkpoints.
    Continued,
    /// A new job.
    Created,
}

/// The job chosen for a run.
#[derive(Debug, Clone)]
pub struct SelectedJob {
    /// The job (its spec names the provider to build).
    pub job: IngestionJob,
    /// How it was chosen.
    pub choice: JobChoice,
}

/// Chooses the job for `request`, creating it when needed. A new job's id is
/// [`JobId::generate`] of now and this process's id.
pub async fn select_job(
    jobs: &dyn JobRepository,
    clock: &dyn Clock,
    probe: &dyn OwnerProbe,
    request: JobRequest,
) -> Result<SelectedJob, IngestError> {
    match request {
        JobRequest::Resume(id) => {
            let job = load_resumable(jobs, &id).await?;
            refuse_if_alive(&job, clock, probe)?;
            Ok(SelectedJob {
                job,
                choice: JobChoice::Resumed,
            })
        }
        JobRequest::Run(spec) => {
            if let Some(job) = find_unfinished(jobs, &spec, RESUME_SEARCH).await? {
                refuse_if_alive(&job, clock, probe)?;
                return Ok(SelectedJob {
                    job,
                    choice: JobChoice::Continued,
                });
            }
            let id = JobId::generate(clock.now(), u64::from(std::process::id()));
            Ok(SelectedJob {
                job: create_job(jobs, clock, id, spec).await?,
                choice: JobChoice::Created,
            })
        }
    }
}

/// The status of `job` now: `Running` only while its owner lives.
pub fn job_status(job: &IngestionJob, clock: &dyn Clock, probe: &dyn OwnerProbe) -> JobStatus {
    marketpipe_ports::owner_status(
        probe,
        job.state(),
        job.owner(),
        job.heartbeat_at(),
        clock.now(),
        lease_nanos(),
    )
}

/// [`HEARTBEAT_LEASE`] in nanoseconds.
pub fn lease_nanos() -> i64 {
    i64::try_from(HEARTBEAT_LEASE.as_nanos()).unwrap_or(i64::MAX)
}

/// A job whose owner is alive is never taken over: two processes would run it at once.
fn refuse_if_alive(
    job: &IngestionJob,
    clock: &dyn Clock,
    probe: &dyn OwnerProbe,
) -> Result<(), IngestError> {
    if job_status(job, clock, probe) != JobStatus::Running {
        return Ok(());
    }
    let (host, pid) = job
        .owner()
        .map_or((String::new(), 0), |o| (o.host.clone(), o.pid));
    Err(IngestError::AlreadyRunning {
        job_id: job.id().clone(),
        host,
        pid,
    })
}

/// Plans and stores a new pending job. Every date must be inside the calendar's years
/// before anything is stored.
pub async fn create_job(
    jobs: &dyn JobRepository,
    clock: &dyn Clock,
    id: JobId,
    spec: JobSpec,
) -> Result<IngestionJob, IngestError> {
    TradingCalendar::xnys().sessions(spec.dates)?;
    let job = IngestionJob::new(id, spec, clock.now());
    jobs.create(&job).await?;
    Ok(job)
}

/// The newest unfinished (pending, running, failed or cancelled) ingest job with exactly
/// `spec`, among the `recent` newest jobs (a backfill job is never continued this way: its
/// plan is only the sessions that were missing when it started).
pub async fn find_unfinished(
    jobs: &dyn JobRepository,
    spec: &JobSpec,
    recent: usize,
) -> Result<Option<IngestionJob>, IngestError> {
    for summary in jobs.list(recent).await? {
        if summary.state == JobState::Completed || summary.kind != JobKind::Ingest {
            continue;
        }
        if let Some(job) = jobs.get(&summary.id).await?
            && job.spec() == spec
        {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Loads a job for `--resume`, checking that it can be resumed (anything but completed: a
/// pending job is one whose process died before starting it).
pub async fn load_resumable(
    jobs: &dyn JobRepository,
    id: &JobId,
) -> Result<IngestionJob, IngestError> {
    let job = jobs
        .get(id)
        .await?
        .ok_or_else(|| IngestError::JobNotFound(id.clone()))?;
    if job.state() == JobState::Completed {
        return Err(IngestError::NotResumable {
            job_id: id.clone(),
            state: job.state(),
        });
    }
    Ok(job)
}

/// Marks a job `cancelled` (`mp jobs kill`, once its owner has been asked to stop or is
/// gone): items done stay done, so `--resume` continues from them.
pub async fn cancel_job(
    jobs: &dyn JobRepository,
    clock: &dyn Clock,
    id: &JobId,
) -> Result<IngestionJob, IngestError> {
    let mut job = jobs
        .get(id)
        .await?
        .ok_or_else(|| IngestError::JobNotFound(id.clone()))?;
    if job.state().is_terminal() {
        return Err(IngestError::AlreadyFinished {
            job_id: id.clone(),
            state: job.state(),
        });
    }
    job.cancel(clock.now())?;
    jobs.save_state(&job).await?;
    Ok(job)
}

/// Marks a running job whose owner is gone `failed` with `reason` (`mp jobs doctor --fix`),
/// so that it no longer looks alive; `--resume` continues it from its checkpoints.
pub async fn mark_interrupted(
    jobs: &dyn JobRepository,
    clock: &dyn Clock,
    id: &JobId,
    reason: &str,
) -> Result<IngestionJob, IngestError> {
    let mut job = jobs
        .get(id)
        .await?
        .ok_or_else(|| IngestError::JobNotFound(id.clone()))?;
    if job.state() != JobState::Running {
        return Err(IngestError::AlreadyFinished {
            job_id: id.clone(),
            state: job.state(),
        });
    }
    job.abort(reason, clock.now())?;
    jobs.save_state(&job).await?;
    Ok(job)
}

/// The feed a new job records: the one asked for, which must be one of the provider's
/// (when it lists any), else the provider's default, so that the lake says which feed it
/// holds.
pub fn resolve_feed(
    requested: Option<&str>,
    info: &ProviderInfo,
) -> Result<Option<String>, IngestError> {
    match requested {
        Some(feed) if !info.feeds.is_empty() && !info.feeds.iter().any(|f| f == feed) => {
            Err(IngestError::UnknownFeed {
                provider: info.name.clone(),
                feed: feed.to_owned(),
                feeds: info.feeds.clone(),
            })
        }
        Some(feed) => Ok(Some(feed.to_owned())),
        None => Ok(info.default_feed.clone()),
    }
}
