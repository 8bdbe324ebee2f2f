//! The `IngestionJob` state machine and its work items (the checkpoints of a run).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::SessionKind;
use crate::error::DomainError;
use crate::events::DomainEvent;
use crate::symbol::Symbol;
use crate::time::{DateRange, Timestamp};

/// A job's identifier: 1–64 characters of `[A-Za-z0-9_-]`. It appears in file names
/// (`<job_id>_<symbol>.csv`), so it is validated like a path segment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(String);

impl JobId {
    /// Validates `value`.
    pub fn new(value: &str) -> Result<Self, DomainError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::InvalidJobId {
                value: value.to_owned(),
            })
        }
    }

    /// A new identifier, `20261127T035012Z-3f9a1c`: the UTC second of `now` (so ids sort
    /// by creation time), then 24 bits of an FNV-1a hash of `now`'s nanoseconds and `nonce`
    /// (the caller passes something that differs between processes, such as the process
    /// id), so two processes starting in the same second get different ids.
    ///
    /// ```
    /// use marketpipe_domain::{JobId, Timestamp};
    ///
    /// let now = Timestamp::from_nanos(1_764_215_412_000_000_123);
    /// let id = JobId::generate(now, 4242);
    /// assert!(id.as_str().starts_with("20251127T035012Z-"), "{id}");
    /// assert_eq!(id, JobId::generate(now, 4242));
    /// assert_ne!(id, JobId::generate(now, 4243));
    /// ```
    pub fn generate(now: Timestamp, nonce: u64) -> Self {
        let stamp = now.to_datetime().format("%Y%m%dT%H%M%SZ");
        let hash = now
            .nanos()
            .to_le_bytes()
            .iter()
            .chain(nonce.to_le_bytes().iter())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
        // 16 characters of `[0-9TZ]` and `-` plus 6 hex digits: always a valid id.
        Self(format!("{stamp}-{:06x}", hash & 0xff_ffff))
    }

    /// The identifier text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl FromStr for JobId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Planned, not started.
    Pending,
    /// Work items are being run.
    Running,
    /// Every work item is done.
    Completed,
    /// At least one work item failed, or the job was aborted with a reason.
    Failed,
    /// Stopped by the user.
    Cancelled,
}

impl JobState {
    /// The stored, lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether no further transition happens without a resume.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Pending,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// Where a work item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkItemStatus {
    /// Not yet run (or reset for a resume).
    Pending,
    /// Being fetched and written.
    Running,
    /// Written and checkpointed.
    Done,
    /// Failed; the reason is on the item.
    Failed,
}

impl WorkItemStatus {
    /// The stored, lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for WorkItemStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown work item status {s:?}"))
    }
}

/// One unit of ingestion: one symbol over one slice (a month) of the job's dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Position in the job's plan.
    pub index: usize,
    /// The symbol fetched.
    pub symbol: Symbol,
    /// The exchange-local dates fetched (inclusive).
    pub dates: DateRange,
    /// Where the item is.
    pub status: WorkItemStatus,
    /// Bars written by the item.
    pub bars_written: u64,
    /// Why the item failed, when it did.
    pub error: Option<String>,
}

/// What a job ingests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Provider name (`fake`, `alpaca`, …).
    pub provider: String,
    /// Provider feed, when it has several.
    pub feed: Option<String>,
    /// Symbols, deduplicated.
    pub symbols: Vec<Symbol>,
    /// Exchange-local dates, inclusive.
    pub dates: DateRange,
    /// Regular or extended hours.
    pub session: SessionKind,
}

impl JobSpec {
    /// The work items of this spec: each symbol times each calendar month of the range.
    pub fn plan(&self) -> Vec<WorkItem> {
        let months = self.dates.months();
        self.symbols
            .iter()
            .flat_map(|s| months.iter().map(move |m| (*s, *m)))
            .enumerate()
            .map(|(index, (symbol, dates))| WorkItem {
                index,
                symbol,
                dates,
                status: WorkItemStatus::Pending,
                bars_written: 0,
                error: None,
            })
            .collect()
    }
}

/// What created a job, which decides how it is planned and continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `mp ingest`: every symbol x month of the spec; re-running the same spec continues it.
    Ingest,
    /// `mp backfill`: only the sessions the coverage map lacked; never continued by an
    /// ingest of the same spec (a new backfill plans afresh from the coverage map).
    Backfill,
}

impl JobKind {
    /// The stored, lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Backfill => "backfill",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Ingest, Self::Backfill]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown job kind {s:?}"))
    }
}

/// The process that runs (or last ran) a job: who to ask whether it is still alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOwner {
    /// The host name.
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
    /// When the process took the job.
    pub started_at: Timestamp,
}

/// An ingestion job: a spec, its work items and its state.
///
/// `Pending -> Running -> Completed | Failed | Cancelled`. A job completes only when every
/// work item is done; a resume takes a failed, cancelled or interrupted (still `Running`)
/// job back to `Running` and resets its unfinished items to pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionJob {
    id: JobId,
    spec: JobSpec,
    state: JobState,
    items: Vec<WorkItem>,
    created_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    failure: Option<String>,
    kind: JobKind,
    owner: Option<JobOwner>,
    heartbeat_at: Option<Timestamp>,
}

impl IngestionJob {
    /// A pending ingest job with its plan (every symbol x month of the spec).
    pub fn new(id: JobId, spec: JobSpec, now: Timestamp) -> Self {
        let items = spec.plan();
        Self::with_items(id, spec, JobKind::Ingest, items, now)
    }

    /// A pending job of `kind` with a plan of its own (a backfill's missing sessions). The
    /// items are renumbered in order.
    pub fn with_items(
        id: JobId,
        spec: JobSpec,
        kind: JobKind,
        mut items: Vec<WorkItem>,
        now: Timestamp,
    ) -> Self {
        for (index, item) in items.iter_mut().enumerate() {
            item.index = index;
        }
        Self {
            id,
            spec,
            state: JobState::Pending,
            items,
            created_at: now,
            started_at: None,
            finished_at: None,
            failure: None,
            kind,
            owner: None,
            heartbeat_at: None,
        }
    }

    /// Rebuilds a job from storage without re-validating transitions.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        id: JobId,
        spec: JobSpec,
        state: JobState,
        items: Vec<WorkItem>,
        created_at: Timestamp,
        started_at: Option<Timestamp>,
        finished_at: Option<Timestamp>,
        failure: Option<String>,
    ) -> Self {
        Self {
            id,
            spec,
            state,
            items,
            created_at,
            started_at,
            finished_at,
            failure,
            kind: JobKind::Ingest,
            owner: None,
            heartbeat_at: None,
        }
    }

    /// The stored kind, owner and last heartbeat of a restored job.
    #[must_use]
    pub fn with_lifecycle(
        mut self,
        kind: JobKind,
        owner: Option<JobOwner>,
        heartbeat_at: Option<Timestamp>,
    ) -> Self {
        self.kind = kind;
        self.owner = owner;
        self.heartbeat_at = heartbeat_at;
        self
    }

    /// What created the job.
    pub const fn kind(&self) -> JobKind {
        self.kind
    }

    /// The process that runs (or last ran) the job.
    pub const fn owner(&self) -> Option<&JobOwner> {
        self.owner.as_ref()
    }

    /// When its owner last said it was alive.
    pub const fn heartbeat_at(&self) -> Option<Timestamp> {
        self.heartbeat_at
    }

    /// Takes the job for `owner` (a run starting or resuming it); the heartbeat starts now.
    pub fn claim(&mut self, owner: JobOwner, now: Timestamp) {
        self.owner = Some(owner);
        self.heartbeat_at = Some(now);
    }

    /// The identifier.
    pub const fn id(&self) -> &JobId {
        &self.id
    }
    /// What the job ingests.
    pub const fn spec(&self) -> &JobSpec {
        &self.spec
    }
    /// The current state.
    pub const fn state(&self) -> JobState {
        self.state
    }
    /// The work items, in plan order.
    pub fn items(&self) -> &[WorkItem] {
        &self.items
    }
    /// When the job was created.
    pub const fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// When the job (last) started running.
    pub const fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }
    /// When the job reached a terminal state.
    pub const fn finished_at(&self) -> Option<Timestamp> {
        self.finished_at
    }
    /// Why the job failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
    /// Bars written by all items.
    pub fn bars_written(&self) -> u64 {
        self.items.iter().map(|i| i.bars_written).sum()
    }
    /// Items not yet done.
    pub fn pending_items(&self) -> impl Iterator<Item = &WorkItem> {
        self.items
            .iter()
            .filter(|i| i.status != WorkItemStatus::Done)
    }

    fn invalid(&self, action: &'static str) -> DomainError {
        DomainError::InvalidTransition {
            job_id: self.id.to_string(),
            state: self.state.as_str(),
            action,
        }
    }

    fn item_mut(&mut self, index: usize) -> Result<&mut WorkItem, DomainError> {
        let job_id = self.id.to_string();
        self.items
            .get_mut(index)
            .ok_or(DomainError::UnknownWorkItem { job_id, index })
    }

    /// `Pending -> Running`.
    pub fn start(&mut self, now: Timestamp) -> Result<DomainEvent, DomainError> {
        if self.state != JobState::Pending {
            return Err(self.invalid("start"));
        }
        self.state = JobState::Running;
        self.started_at = Some(now);
        Ok(DomainEvent::IngestionJobStarted {
            job_id: self.id.clone(),
            provider: self.spec.provider.clone(),
            symbols: self.spec.symbols.len(),
            work_items: self.items.len(),
            at: now,
        })
    }

    /// `Failed | Cancelled | Running -> Running`, resetting unfinished items to pending.
    /// Resuming a `Running` job is how an interrupted (killed) run continues.
    pub fn resume(&mut self, now: Timestamp) -> Result<DomainEvent, DomainError> {
        if !matches!(
            self.state,
            JobState::Failed | JobState::Cancelled | JobState::Running
        ) {
            return Err(self.invalid("resume"));
        }
        for item in &mut self.items {
            if item.status != WorkItemStatus::Done {
                item.status = WorkItemStatus::Pending;
                item.error = None;
            }
        }
        self.state = JobState::Running;
        self.started_at = Some(now);
        self.finished_at = None;
        self.failure = None;
        Ok(DomainEvent::IngestionJobStarted {
            job_id: self.id.clone(),
            provider: self.spec.provider.clone(),
            symbols: self.spec.symbols.len(),
            work_items: self.pending_items().count(),
            at: now,
        })
    }

    /// Marks an item as being worked on.
    pub fn begin_item(&mut self, index: usize) -> Result<(), DomainError> {
        if self.state != JobState::Running {
            return Err(self.invalid("run a work item of"));
        }
        self.item_mut(index)?.status = WorkItemStatus::Running;
        Ok(())
    }

    /// Checkpoints an item as done with the bars it wrote.
    pub fn complete_item(
        &mut self,
        index: usize,
        bars_written: u64,
    ) -> Result<DomainEvent, DomainError> {
        if self.state != JobState::Running {
            return Err(self.invalid("complete a work item of"));
        }
        let job_id = self.id.clone();
        let item = self.item_mut(index)?;
        item.status = WorkItemStatus::Done;
        item.bars_written = bars_written;
        item.error = None;
        Ok(DomainEvent::BarsIngested {
            job_id,
            symbol: item.symbol,
            dates: item.dates,
            bars: bars_written,
        })
    }

    /// Records an item's failure; the job goes on with its other items.
    pub fn fail_item(&mut self, index: usize, reason: &str) -> Result<(), DomainError> {
        if self.state != JobState::Running {
            return Err(self.invalid("fail a work item of"));
        }
        let item = self.item_mut(index)?;
        item.status = WorkItemStatus::Failed;
        item.error = Some(reason.to_owned());
        Ok(())
    }

    /// Ends a running job once no item is pending or running: `Completed` when all are done,
    /// `Failed` (naming the failed items) otherwise.
    pub fn finish(&mut self, now: Timestamp) -> Result<DomainEvent, DomainError> {
        if self.state != JobState::Running {
            return Err(self.invalid("finish"));
        }
        if self
            .items
            .iter()
            .any(|i| matches!(i.status, WorkItemStatus::Pending | WorkItemStatus::Running))
        {
            return Err(self.invalid("finish (items still pending)"));
        }
        let failed: Vec<&WorkItem> = self
            .items
            .iter()
            .filter(|i| i.status == WorkItemStatus::Failed)
            .collect();
        if failed.is_empty() {
            self.state = JobState::Completed;
            self.finished_at = Some(now);
            return Ok(DomainEvent::IngestionJobCompleted {
                job_id: self.id.clone(),
                bars: self.bars_written(),
                at: now,
            });
        }
        let first = failed[0];
        let reason = format!(
            "{} of {} work items failed; first: {} {}: {}",
            failed.len(),
            self.items.len(),
            first.symbol,
            first.dates,
            first.error.as_deref().unwrap_or("unknown error")
        );
        Ok(self.fail(&reason, now))
    }

    /// Aborts a non-terminal job with a reason.
    pub fn abort(&mut self, reason: &str, now: Timestamp) -> Result<DomainEvent, DomainError> {
        if self.state.is_terminal() {
            return Err(self.invalid("abort"));
        }
        Ok(self.fail(reason, now))
    }

    fn fail(&mut self, reason: &str, now: Timestamp) -> DomainEvent {
        self.state = JobState::Failed;
        self.finished_at = Some(now);
        self.failure = Some(reason.to_owned());
        DomainEvent::IngestionJobFailed {
            job_id: self.id.clone(),
            reason: reason.to_owned(),
            at: now,
        }
    }

    /// `Pending | Running -> Cancelled`.
    pub fn cancel(&mut self, now: Timestamp) -> Result<DomainEvent, DomainError> {
        if self.state.is_terminal() {
            return Err(self.invalid("cancel"));
        }
        self.state = JobState::Cancelled;
        self.finished_at = Some(now);
        Ok(DomainEvent::IngestionJobCancelled {
            job_id: self.id.clone(),
            at: now,
        })
    }
}

/// How a job is shown (`mp jobs list|show`): its stored state, except that a `running` job
/// whose owner is gone is `interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Planned, not started.
    Pending,
    /// Its owner is alive and heartbeating.
    Running,
    /// Stored as running, but its owner died (or stopped heartbeating): `mp ingest --resume`
    /// or a re-run takes it over.
    Interrupted,
    /// Every work item is done.
    Completed,
    /// At least one work item failed, or the job was aborted.
    Failed,
    /// Stopped by the user.
    Cancelled,
}

impl JobStatus {
    /// The displayed, lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status of a job stored as `state`, last heartbeating at `heartbeat_at`, at `now`:
    /// a running job is interrupted when `owner_alive` says its process is gone (`Some(false)`:
    /// checked on the owner's host), or when its heartbeat is older than `lease_nanos` (or it
    /// has none). `owner_alive` is `None` when the owner runs on another host.
    pub fn of(
        state: JobState,
        heartbeat_at: Option<Timestamp>,
        owner_alive: Option<bool>,
        now: Timestamp,
        lease_nanos: i64,
    ) -> Self {
        match state {
            JobState::Pending => Self::Pending,
            JobState::Completed => Self::Completed,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
            JobState::Running => {
                let beat_expired = heartbeat_at
                    .is_none_or(|beat| now.nanos().saturating_sub(beat.nanos()) > lease_nanos);
                if owner_alive == Some(false) || beat_expired {
                    Self::Interrupted
                } else {
                    Self::Running
                }
            }
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_without_a_live_owner_is_interrupted() {
        let now = Timestamp::from_nanos(100_000_000_000);
        let lease = 30_000_000_000;
        let fresh = Some(Timestamp::from_nanos(90_000_000_000));
        let stale = Some(Timestamp::from_nanos(60_000_000_000));
        let status = |beat, alive| JobStatus::of(JobState::Running, beat, alive, now, lease);
        assert_eq!(status(fresh, Some(true)), JobStatus::Running);
        assert_eq!(status(fresh, None), JobStatus::Running);
        assert_eq!(status(fresh, Some(false)), JobStatus::Interrupted);
        assert_eq!(status(stale, Some(true)), JobStatus::Interrupted);
        assert_eq!(status(None, None), JobStatus::Interrupted);
        for state in [JobState::Completed, JobState::Failed, JobState::Cancelled] {
            assert_eq!(
                JobStatus::of(state, stale, Some(false), now, lease).as_str(),
                state.as_str()
            );
        }
        assert_eq!("backfill".parse::<JobKind>().unwrap(), JobKind::Backfill);
        assert!("other".parse::<JobKind>().is_err());
    }

    fn job() -> IngestionJob {
        let spec = JobSpec {
            provider: "fake".into(),
            feed: None,
            symbols: Symbol::parse_list("AAPL,MSFT").unwrap(),
            dates: DateRange::parse("2024-01-02", "2024-02-15").unwrap(),
            session: SessionKind::Regular,
        };
        IngestionJob::new(JobId::new("job-1").unwrap(), spec, Timestamp::from_nanos(1))
    }

    #[test]
    fn job_ids_are_path_safe() {
        assert!(JobId::new("20240102-abc_1").is_ok());
        for bad in ["", "../x", "a b", "a/b", &"x".repeat(65)] {
            let err = JobId::new(bad).unwrap_err();
            assert!(err.to_string().contains("invalid job id"));
        }
        let id = JobId::new("j1").unwrap();
        assert_eq!(format!("{id:?} {id}"), "JobId(j1) j1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"j1\"");
        assert!(serde_json::from_str::<JobId>("\"../\"").is_err());
        assert_eq!("j1".parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn plan_is_symbol_by_month() {
        let j = job();
        assert_eq!(j.items().len(), 4);
        assert_eq!(j.items()[1].symbol.as_str(), "AAPL");
        assert_eq!(j.items()[1].dates.to_string(), "2024-02-01..=2024-02-15");
        assert_eq!(j.items()[3].index, 3);
    }

    #[test]
    fn happy_path_completes_only_when_all_items_done() {
        let mut j = job();
        assert!(matches!(
            j.start(Timestamp::from_nanos(2)).unwrap(),
            DomainEvent::IngestionJobStarted { work_items: 4, .. }
        ));
        assert!(j.start(Timestamp::from_nanos(2)).is_err());
        for i in 0..3 {
            j.begin_item(i).unwrap();
            j.complete_item(i, 10).unwrap();
        }
        assert!(
            j.finish(Timestamp::from_nanos(3)).is_err(),
            "item 3 still pending"
        );
        j.complete_item(3, 10).unwrap();
        let done = j.finish(Timestamp::from_nanos(4)).unwrap();
        assert_eq!(j.state(), JobState::Completed);
        assert!(matches!(
            done,
            DomainEvent::IngestionJobCompleted { bars: 40, .. }
        ));
        assert_eq!(j.finished_at(), Some(Timestamp::from_nanos(4)));
        assert!(j.resume(Timestamp::from_nanos(5)).is_err());
        assert!(j.cancel(Timestamp::from_nanos(5)).is_err());
        assert!(j.abort("x", Timestamp::from_nanos(5)).is_err());
    }

    #[test]
    fn failed_item_fails_the_job_and_resume_retries_it() {
        let mut j = job();
        j.start(Timestamp::from_nanos(2)).unwrap();
        j.complete_item(0, 5).unwrap();
        j.fail_item(1, "corrupt file data/x.parquet").unwrap();
        j.complete_item(2, 5).unwrap();
        j.complete_item(3, 5).unwrap();
        let ev = j.finish(Timestamp::from_nanos(3)).unwrap();
        assert_eq!(j.state(), JobState::Failed);
        let reason = j.failure().unwrap();
        assert!(reason.contains("1 of 4 work items failed") && reason.contains("data/x.parquet"));
        assert!(matches!(ev, DomainEvent::IngestionJobFailed { .. }));
        let ev = j.resume(Timestamp::from_nanos(4)).unwrap();
        assert!(matches!(
            ev,
            DomainEvent::IngestionJobStarted { work_items: 1, .. }
        ));
        assert_eq!(j.pending_items().count(), 1);
        assert_eq!(j.items()[1].status, WorkItemStatus::Pending);
        assert!(j.failure().is_none());
        assert!(j.fail_item(9, "x").is_err());
    }

    #[test]
    fn cancel_and_abort() {
        let mut j = job();
        assert!(j.begin_item(0).is_err(), "not running yet");
        j.cancel(Timestamp::from_nanos(2)).unwrap();
        assert_eq!(j.state(), JobState::Cancelled);
        j.resume(Timestamp::from_nanos(3)).unwrap();
        j.abort("disk full", Timestamp::from_nanos(4)).unwrap();
        assert_eq!(j.failure(), Some("disk full"));
        assert!(j.finish(Timestamp::from_nanos(5)).is_err());
    }

    #[test]
    fn states_parse_and_restore() {
        for s in ["pending", "running", "completed", "failed", "cancelled"] {
            assert_eq!(s.parse::<JobState>().unwrap().as_str(), s);
        }
        assert!("bogus".parse::<JobState>().is_err());
        for s in ["pending", "running", "done", "failed"] {
            assert_eq!(s.parse::<WorkItemStatus>().unwrap().as_str(), s);
        }
        assert!("bogus".parse::<WorkItemStatus>().is_err());
        let j = job();
        let r = IngestionJob::restore(
            j.id().clone(),
            j.spec().clone(),
            JobState::Running,
            j.items().to_vec(),
            j.created_at(),
            None,
            None,
            None,
        );
        assert_eq!(r.state(), JobState::Running);
        assert!(JobState::Failed.is_terminal() && !JobState::Running.is_terminal());
        assert_eq!(JobState::Failed.to_string(), "failed");
    }
}
