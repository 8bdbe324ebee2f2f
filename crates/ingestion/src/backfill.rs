//! Backfill: asks a provider for exactly the sessions the coverage map lacks, and only once.
//!
//! [`plan_backfill`] reads the coverage map for the request's symbols and sessions, checks
//! the lake against the manifest (a partition whose file is gone, or whose content hash
//! differs because something changed it outside `mp`, is re-read and its sessions counted
//! again), and keeps the sessions [`needs_fetch`] says to ask for, merged into as few date
//! ranges as possible. [`run_backfill`] runs them as one crash-safe job through the
//! [`Coordinator`] (which records every answer in the coverage map) and reports, per planned
//! session, what the provider answered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::coverage::{FetchReason, best_entry, merge_sessions, needs_fetch};
use marketpipe_domain::{
    CoverageState, DateRange, IngestionJob, JobId, JobKind, JobSpec, Session, SessionCoverage,
    SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar, WorkItem, WorkItemStatus,
};
use marketpipe_ports::{
    BarStore, Clock, CoverageQuery, CoverageRepository, JobRepository, PartitionKey,
    PartitionManifest,
};
use serde::Serialize;
use tracing::{debug, info};

use crate::coordinator::{Coordinator, IngestProgress};
use crate::coverage_map::by_session;
use crate::error::IngestError;
use crate::report::JobReport;

/// The ports a backfill plan reads (no provider: a dry run needs no credentials).
#[derive(Debug, Clone)]
pub struct PlanDeps {
    /// The lake, to check against the manifest.
    pub lake: Arc<dyn BarStore>,
    /// The partition manifest.
    pub manifest: Arc<dyn PartitionManifest>,
    /// The coverage map.
    pub coverage: Arc<dyn CoverageRepository>,
    /// Job records (a run stores its job there).
    pub jobs: Arc<dyn JobRepository>,
    /// Now: which sessions have ended.
    pub clock: Arc<dyn Clock>,
}

/// What to backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The provider asked.
    pub provider: String,
    /// Its feed (already resolved to the provider's default when it has feeds).
    pub feed: Option<String>,
    /// The symbols.
    pub symbols: Vec<Symbol>,
    /// The sessions' dates (inclusive).
    pub dates: DateRange,
    /// Regular or extended hours.
    pub session: SessionKind,
    /// Ask again for sessions the provider had nothing (or not everything) for.
    pub recheck: bool,
}

impl BackfillRequest {
    /// The coverage entries this request is planned from.
    fn query(&self) -> CoverageQuery {
        CoverageQuery {
            provider: Some(self.provider.clone()),
            feed: self.feed.clone(),
            symbols: self.symbols.clone(),
            dates: Some(self.dates),
        }
    }
}

/// One session a backfill asks for, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlannedSession {
    /// The symbol.
    pub symbol: Symbol,
    /// The session date.
    pub date: NaiveDate,
    /// Why it is asked for.
    pub reason: FetchReason,
}

/// What a backfill will ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillPlan {
    /// The request planned.
    pub request: BackfillRequest,
    /// Symbol-sessions in the range that have ended.
    pub sessions_considered: usize,
    /// The sessions to ask for, by symbol then date.
    pub sessions: Vec<PlannedSession>,
    /// Sessions in the range that have not ended yet (not asked: an answer would be
    /// incomplete).
    pub not_ended: Vec<NaiveDate>,
    /// Partitions whose file did not match the manifest, re-read to check their sessions.
    pub partitions_reread: Vec<PartitionKey>,
    /// The requests: one work item per symbol and run of consecutive planned sessions
    /// within a month.
    pub items: Vec<WorkItem>,
}

impl BackfillPlan {
    /// Whether there is nothing to ask.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Planned sessions per reason.
    pub fn reasons(&self) -> BTreeMap<FetchReason, usize> {
        let mut out = BTreeMap::new();
        for s in &self.sessions {
            *out.entry(s.reason).or_default() += 1;
        }
        out
    }
}

/// What the provider answered for one planned session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionOutcome {
    /// The symbol.
    pub symbol: Symbol,
    /// The session date.
    pub date: NaiveDate,
    /// Why it was asked for.
    pub reason: FetchReason,
    /// The state the coverage map now holds (`failed` when nothing was recorded: the run
    /// stopped before the session's request).
    pub state: CoverageState,
    /// Minutes missing from a `partial` answer.
    pub missing_minutes: u32,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a backfill did.
#[derive(Debug, Clone)]
pub struct BackfillReport {
    /// The plan it ran.
    pub plan: BackfillPlan,
    /// The job's run (`None` when there was nothing to ask).
    pub job: Option<JobReport>,
    /// Per planned session, the answer.
    pub outcomes: Vec<SessionOutcome>,
}

impl BackfillReport {
    /// Outcomes in `state`.
    pub fn in_state(&self, state: CoverageState) -> impl Iterator<Item = &SessionOutcome> {
        self.outcomes.iter().filter(move |o| o.state == state)
    }
}

/// Plans a backfill: the ended sessions of the request whose coverage says to ask, after
/// checking the lake against the manifest.
pub async fn plan_backfill(
    deps: &PlanDeps,
    request: BackfillRequest,
) -> Result<BackfillPlan, IngestError> {
    let calendar = TradingCalendar::xnys();
    let now = deps.clock.now();
    let (ended, not_ended): (Vec<Session>, Vec<Session>) = calendar
        .sessions(request.dates)?
        .into_iter()
        .partition(|s| s.bounds(request.session).1 <= now);
    let by_session = by_session(deps.coverage.as_ref(), &request.query()).await?;
    let mut sessions = Vec::new();
    let mut partitions_reread = Vec::new();
    let mut items = Vec::new();
    for symbol in &request.symbols {
        // The lake's bar counts per date of the partitions that disagree with the manifest.
        let mut lake_counts: BTreeMap<PartitionKey, Option<BTreeMap<NaiveDate, u32>>> =
            BTreeMap::new();
        let mut wanted = Vec::new();
        for session in &ended {
            let entry = best_entry(
                by_session
                    .get(&(*symbol, session.date))
                    .into_iter()
                    .flatten(),
                request.session,
            );
            let lake_bars = match entry {
                Some(e) if matches!(e.state, CoverageState::Filled | CoverageState::Partial) => {
                    let key = PartitionKey::for_date(Timeframe::M1, *symbol, session.date);
                    if let std::collections::btree_map::Entry::Vacant(slot) = lake_counts.entry(key)
                    {
                        let counts = check_partition(deps, &key).await?;
                        if counts.is_some() {
                            partitions_reread.push(key);
                        }
                        slot.insert(counts);
                    }
                    lake_counts
                        .get(&key)
                        .and_then(Option::as_ref)
                        .map(|c| c.get(&session.date).copied().unwrap_or(0))
                }
                _ => None,
            };
            if let Some(reason) =
                needs_fetch(session, request.session, entry, lake_bars, request.recheck)
            {
                sessions.push(PlannedSession {
                    symbol: *symbol,
                    date: session.date,
                    reason,
                });
                wanted.push(session.date);
            }
        }
        for dates in merge_sessions(&ended, &wanted) {
            items.push(WorkItem {
                index: items.len(),
                symbol: *symbol,
                dates,
                status: WorkItemStatus::Pending,
                bars_written: 0,
                error: None,
            });
        }
    }
    debug!(
        planned = sessions.len(),
        requests = items.len(),
        reread = partitions_reread.len(),
        "backfill planned"
    );
    Ok(BackfillPlan {
        sessions_considered: ended.len() * request.symbols.len(),
        request,
        sessions,
        not_ended: not_ended.iter().map(|s| s.date).collect(),
        partitions_reread,
        items,
    })
}

/// `None` when the partition's file matches the manifest (its coverage can be trusted);
/// otherwise the bars it now holds per New York date (empty when the file is gone).
async fn check_partition(
    deps: &PlanDeps,
    key: &PartitionKey,
) -> Result<Option<BTreeMap<NaiveDate, u32>>, IngestError> {
    let record = deps.manifest.get(key).await?;
    let digest = deps.lake.partition_digest(key).await?;
    match (&record, &digest) {
        (Some(r), Some(d)) if r.content_hash == d.content_hash => return Ok(None),
        (_, None) => {
            info!(partition = %key, "partition file is gone; its sessions are asked for again");
            return Ok(Some(BTreeMap::new()));
        }
        _ => info!(
            partition = %key,
            "partition differs from the manifest (changed outside mp); re-reading it"
        ),
    }
    let mut counts: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for bar in deps.lake.read_partition(key).await? {
        *counts.entry(ny_date(bar.ts)).or_default() += 1;
    }
    Ok(Some(counts))
}

/// Runs a plan as one backfill job (nothing, when the plan is empty) and reports what the
/// provider answered for each planned session.
pub async fn run_backfill(
    coordinator: &Coordinator,
    deps: &PlanDeps,
    plan: BackfillPlan,
    progress: &dyn IngestProgress,
    cancel: Arc<AtomicBool>,
) -> Result<BackfillReport, IngestError> {
    if plan.is_empty() {
        return Ok(BackfillReport {
            plan,
            job: None,
            outcomes: Vec::new(),
        });
    }
    let request = &plan.request;
    let symbols: Vec<Symbol> = {
        let with_items: BTreeSet<Symbol> = plan.items.iter().map(|i| i.symbol).collect();
        request
            .symbols
            .iter()
            .copied()
            .filter(|s| with_items.contains(s))
            .collect()
    };
    let spec = JobSpec {
        provider: request.provider.clone(),
        feed: request.feed.clone(),
        symbols,
        dates: request.dates,
        session: request.session,
    };
    let now = deps.clock.now();
    let id = JobId::generate(now, u64::from(std::process::id()));
    let job = IngestionJob::with_items(id, spec, JobKind::Backfill, plan.items.clone(), now);
    deps.jobs.create(&job).await?;
    let report = coordinator.run(job, progress, cancel).await?;
    let outcomes = outcomes(deps, &plan, now).await?;
    Ok(BackfillReport {
        plan,
        job: Some(report),
        outcomes,
    })
}

/// The coverage recorded for each planned session by the run that started at `run_start`.
async fn outcomes(
    deps: &PlanDeps,
    plan: &BackfillPlan,
    run_start: Timestamp,
) -> Result<Vec<SessionOutcome>, IngestError> {
    let request = &plan.request;
    let by_session = by_session(deps.coverage.as_ref(), &request.query()).await?;
    Ok(plan
        .sessions
        .iter()
        .map(|planned| {
            let recorded = by_session
                .get(&(planned.symbol, planned.date))
                .into_iter()
                .flatten()
                .filter(|e| e.recorded_at >= run_start);
            // A failure never replaces an earlier answer in the map; here it must show.
            let entry = recorded
                .clone()
                .find(|e| e.state == CoverageState::Failed && e.covers(request.session))
                .or_else(|| best_entry(recorded, request.session));
            SessionOutcome {
                symbol: planned.symbol,
                date: planned.date,
                reason: planned.reason,
                state: entry.map_or(CoverageState::Failed, |e| e.state),
                missing_minutes: entry.map_or(0, SessionCoverage::missing_minutes),
                error: match entry {
                    Some(e) => e.error.clone(),
                    None => Some(
                        "no answer recorded: the request failed or the run stopped before it \
                         (see `mp jobs show`)"
                            .to_owned(),
                    ),
                },
            }
        })
        .collect())
}
