//! The coordinator: runs a job's work items and keeps the job's state and checkpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use marketpipe_domain::{
    Bar, DomainEvent, IngestionJob, JobId, JobOwner, JobSpec, JobState, SessionCoverage,
    SessionKind, Timeframe, TradingCalendar, WorkItem, WorkItemStatus, daily_summary,
};
use marketpipe_ports::telemetry;
use marketpipe_ports::{
    Adjustment, BarOrigin, BarRequest, BarStore, Clock, CoverageRepository, DailySummaryRepository,
    EventPublisher, JobRepository, MarketDataProvider, PartitionKey, PartitionManifest,
    PartitionRecord, ProviderError, ProviderInfo, WorkItemRepository, WriteMeta,
};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{IngestError, ItemError};
use crate::report::{ItemReport, JobReport};
use marketpipe_domain::RetryPolicy;

/// The ports the coordinator works through.
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// Where bars come from.
    pub provider: Arc<dyn MarketDataProvider>,
    /// Where bars go.
    pub lake: Arc<dyn BarStore>,
    /// Job records.
    pub jobs: Arc<dyn JobRepository>,
    /// Checkpoints.
    pub items: Arc<dyn WorkItemRepository>,
    /// The partition manifest.
    pub manifest: Arc<dyn PartitionManifest>,
    /// Daily summaries.
    pub summaries: Arc<dyn DailySummaryRepository>,
    /// The coverage map: every answer per (symbol, session) is recorded there.
    pub coverage: Arc<dyn CoverageRepository>,
    /// Domain events.
    pub events: Arc<dyn EventPublisher>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// How often a running job's owner heartbeats by default.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// How old a running job's heartbeat may be before the job counts as interrupted (several
/// missed beats, so that a busy store does not make a live job look dead).
pub const HEARTBEAT_LEASE: Duration = Duration::from_mins(1);

/// How a job runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Batches of work items in flight at once (see `batch_bar_budget`).
    pub concurrency: usize,
    /// Page size asked of the provider (`None`: the provider's maximum).
    pub page_size: Option<usize>,
    /// Corporate-action adjustment.
    pub adjustment: Adjustment,
    /// Retries of transient provider failures (not used when the provider retries itself).
    pub retry: RetryPolicy,
    /// Bars one batch of work items may hold in memory: items of the same month are packed
    /// into one multi-symbol request stream up to this many expected bars (and up to the
    /// provider's symbols per request), so memory stays bounded by the budget.
    pub batch_bar_budget: usize,
    /// The process running the job (recorded on the job, so that `mp jobs` can tell a dead
    /// owner); `None` records none.
    pub owner: Option<JobOwner>,
    /// How often the owner heartbeats while the job runs.
    pub heartbeat_interval: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            page_size: None,
            adjustment: Adjustment::Raw,
            retry: RetryPolicy::default(),
            batch_bar_budget: 300_000,
            owner: None,
            heartbeat_interval: HEARTBEAT_INTERVAL,
        }
    }
}

impl IngestOptions {
    /// Refuses options no run can work with (a concurrency of 0), before anything is
    /// opened or stored; [`Coordinator::run`] checks the same.
    pub fn check(&self) -> Result<(), IngestError> {
        if self.concurrency == 0 {
            return Err(IngestError::BadConcurrency);
        }
        Ok(())
    }
}

/// Progress callbacks (a progress bar, plain lines, nothing). Called from the coordinator's
/// task, never concurrently.
pub trait IngestProgress: Send + Sync {
    /// The run starts with `pending` of the job's items to do.
    fn started(&self, job: &IngestionJob, pending: usize) {
        let _ = (job, pending);
    }
    /// An item finished (done or failed).
    fn item_finished(&self, item: &WorkItem, report: &ItemReport) {
        let _ = (item, report);
    }
}

/// Progress that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl IngestProgress for NoProgress {}

/// Runs ingestion jobs.
#[derive(Debug, Clone)]
pub struct Coordinator {
    deps: IngestDeps,
    options: IngestOptions,
    calendar: TradingCalendar,
}

impl Coordinator {
    /// A coordinator over `deps`.
    pub fn new(deps: IngestDeps, options: IngestOptions) -> Self {
        Self {
            deps,
            options,
            calendar: TradingCalendar::xnys(),
        }
    }

    /// Plans and stores a new pending job ([`crate::create_job`] over this coordinator's
    /// store).
    pub async fn create_job(&self, id: JobId, spec: JobSpec) -> Result<IngestionJob, IngestError> {
        crate::jobs::create_job(self.deps.jobs.as_ref(), self.deps.clock.as_ref(), id, spec).await
    }

    /// The newest unfinished job with exactly `spec` among the `recent` newest
    /// ([`crate::find_unfinished`]).
    pub async fn find_unfinished(
        &self,
        spec: &JobSpec,
        recent: usize,
    ) -> Result<Option<IngestionJob>, IngestError> {
        crate::jobs::find_unfinished(self.deps.jobs.as_ref(), spec, recent).await
    }

    /// Loads a job for `--resume` ([`crate::load_resumable`]).
    pub async fn load_resumable(&self, id: &JobId) -> Result<IngestionJob, IngestError> {
        crate::jobs::load_resumable(self.deps.jobs.as_ref(), id).await
    }

    /// Runs a pending job, or resumes a running (interrupted), failed or cancelled one from
    /// its checkpoints. Setting `cancel` stops starting new items; the job then ends
    /// `Cancelled` once the items in flight have finished.
    pub async fn run(
        &self,
        job: IngestionJob,
        progress: &dyn IngestProgress,
        cancel: Arc<AtomicBool>,
    ) -> Result<JobReport, IngestError> {
        self.options.check()?;
        self.run_job(job, progress, cancel).await
    }

    #[allow(clippy::too_many_lines)] // one loop with its bookkeeping reads best in one place
    async fn run_job(
        &self,
        mut job: IngestionJob,
        progress: &dyn IngestProgress,
        cancel: Arc<AtomicBool>,
    ) -> Result<JobReport, IngestError> {
        let started = Instant::now();
        let span = info_span!("job", id = %job.id());
        let now = self.deps.clock.now();
        let event = if job.state() == JobState::Pending {
            job.start(now)?
        } else {
            job.resume(now)?
        };
        if let Some(owner) = &self.options.owner {
            job.claim(owner.clone(), now);
        }
        self.deps.jobs.save_state(&job).await?;
        let _heartbeat = self
            .options
            .owner
            .as_ref()
            .map(|_| self.spawn_heartbeat(job.id()));
        self.publish(&event).await;
        let pending: Vec<WorkItem> = job.pending_items().cloned().collect();
        // A resume resets unfinished items to pending: checkpoint that too.
        for item in &pending {
            self.deps.items.save_item(job.id(), item).await?;
        }
        progress.started(&job, pending.len());
        info!(parent: &span, items = pending.len(), provider = %job.spec().provider, "job running");

        let mut tally = Tally::default();
        let info = self.deps.provider.info();
        let batches = plan_batches(
            pending,
            &info,
            &self.calendar,
            job.spec().session,
            self.options.batch_bar_budget,
        );
        debug!(parent: &span, batches = batches.len(), "work items packed into batches");
        let mut queue = batches.into_iter();
        let mut in_flight: JoinSet<Vec<ItemOutcome>> = JoinSet::new();
        let concurrency = self.options.concurrency.max(1);
        let shared = Arc::new(ItemRunner {
            deps: self.deps.clone(),
            options: self.options.clone(),
            calendar: self.calendar,
            job_id: job.id().clone(),
            spec: job.spec().clone(),
            retries_internally: info.retries_internally,
        });
        // Set when the provider refused our credentials: no later request can succeed, so no
        // new batch starts and the job fails with that reason.
        let mut refused: Option<ItemError> = None;
        loop {
            while in_flight.len() < concurrency
                && !cancel.load(Ordering::Relaxed)
                && refused.is_none()
            {
                let Some(batch) = queue.next() else { break };
                for item in &batch {
                    job.begin_item(item.index)?;
                }
                let runner = Arc::clone(&shared);
                let first = &batch[0];
                let batch_span = info_span!(parent: &span, "batch", symbols = batch.len(), first = %first.symbol, dates = %first.dates);
                in_flight
                    .spawn(async move { runner.run_batch(batch).await }.instrument(batch_span));
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let outcomes = match joined {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    // A panicking task must not take the job's bookkeeping down with it.
                    let error = IngestError::TaskFailed(e);
                    let aborted = job.abort(&error.to_string(), self.deps.clock.now())?;
                    self.deps.jobs.save_state(&job).await?;
                    self.publish(&aborted).await;
                    return Err(error);
                }
            };
            for (item, result) in outcomes {
                tally.items_run += 1;
                if let Err(failure) = &result
                    && failure.error.is_auth()
                    && refused.is_none()
                {
                    refused = Some(failure.error.clone());
                }
                self.record_item(&mut job, &item, result, &mut tally, progress)
                    .instrument(span.clone())
                    .await?;
            }
        }
        if let Some(reason) = refused {
            // Items never started stay pending, so `--resume` with a fixed key continues
            // where this run stopped.
            let now = self.deps.clock.now();
            let event = job.abort(&format!("provider refused the credentials: {reason}"), now)?;
            self.deps.jobs.save_state(&job).await?;
            self.publish(&event).await;
            return Ok(self.report(&job, &tally, started));
        }
        let now = self.deps.clock.now();
        let event = if cancel.load(Ordering::Relaxed)
            && job
                .pending_items()
                .any(|i| i.status == WorkItemStatus::Pending)
        {
            job.cancel(now)?
        } else {
            job.finish(now)?
        };
        self.deps.jobs.save_state(&job).await?;
        self.publish(&event).await;
        let report = self.report(&job, &tally, started);
        info!(parent: &span, state = %report.state, bars = report.totals.bars_fetched, "job finished");
        Ok(report)
    }

    /// Beats the job's heartbeat every `heartbeat_interval` until the returned guard drops.
    fn spawn_heartbeat(&self, id: &JobId) -> AbortOnDrop {
        let jobs = Arc::clone(&self.deps.jobs);
        let clock = Arc::clone(&self.deps.clock);
        let id = id.clone();
        let interval = self
            .options
            .heartbeat_interval
            .max(Duration::from_millis(10));
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(e) = jobs.heartbeat(&id, clock.now()).await {
                    warn!(job = %id, error = %e, "heartbeat not recorded");
                }
            }
        }))
    }

    #[allow(clippy::unused_self)] // a method, so that it reads beside `run`
    fn report(&self, job: &IngestionJob, tally: &Tally, started: Instant) -> JobReport {
        JobReport {
            job_id: job.id().clone(),
            state: job.state(),
            failure: job.failure().map(str::to_owned),
            items_total: job.items().len(),
            items_run: tally.items_run,
            items_failed: tally.items_failed,
            totals: tally.totals,
            elapsed: started.elapsed(),
        }
    }

    /// Applies one finished item to the job and checkpoints it.
    async fn record_item(
        &self,
        job: &mut IngestionJob,
        item: &WorkItem,
        result: Result<ItemReport, ItemFailure>,
        tally: &mut Tally,
        progress: &dyn IngestProgress,
    ) -> Result<(), IngestError> {
        let report = match result {
            Ok(report) => {
                let event = job.complete_item(item.index, report.bars_stored)?;
                self.checkpoint(job, item.index).await?;
                self.publish(&event).await;
                report
            }
            Err(ItemFailure { error, report }) => {
                warn!(symbol = %item.symbol, dates = %item.dates, %error, "work item failed");
                tally.items_failed += 1;
                job.fail_item(item.index, &error.to_string())?;
                self.checkpoint(job, item.index).await?;
                report
            }
        };
        tally.totals.add(&report);
        if let Some(done) = job.items().get(item.index) {
            progress.item_finished(done, &report);
        }
        Ok(())
    }

    async fn checkpoint(&self, job: &IngestionJob, index: usize) -> Result<(), IngestError> {
        if let Some(item) = job.items().get(index) {
            self.deps.items.save_item(job.id(), item).await?;
        }
        Ok(())
    }

    async fn publish(&self, event: &DomainEvent) {
        if let Err(e) = self.deps.events.publish(event).await {
            warn!(error = %e, "event not published");
        }
    }
}

/// Aborts a background task when dropped (the heartbeat stops with the run).
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a work item failed, with the counts so far.
#[derive(Debug, Clone)]
struct ItemFailure {
    error: ItemError,
    report: ItemReport,
}

impl ItemFailure {
    fn new(error: ItemError, report: ItemReport) -> Self {
        Self { error, report }
    }
}

/// A finished item: the item and its counts, or why it failed.
type ItemOutcome = (WorkItem, Result<ItemReport, ItemFailure>);

/// Packs pending items into batches: items of the same dates (a month), in plan order, up to
/// the provider's symbols per request and up to `budget` expected bars, so that a provider
/// with multi-symbol requests fills its pages and a batch's bars fit in memory.
fn plan_batches(
    pending: Vec<WorkItem>,
    info: &ProviderInfo,
    calendar: &TradingCalendar,
    kind: SessionKind,
    budget: usize,
) -> Vec<Vec<WorkItem>> {
    let mut by_dates: BTreeMap<(chrono::NaiveDate, chrono::NaiveDate), Vec<WorkItem>> =
        BTreeMap::new();
    for item in pending {
        by_dates
            .entry((item.dates.start(), item.dates.end()))
            .or_default()
            .push(item);
    }
    let mut batches = Vec::new();
    for items in by_dates.into_values() {
        let Some(first) = items.first() else { continue };
        let minutes: usize = calendar
            .sessions(first.dates)
            .map_or(0, |s| s.iter().map(|s| s.minutes(kind) as usize).sum());
        let per_batch = (budget / minutes.max(1))
            .min(info.max_symbols_per_request)
            .max(1);
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            batches.push(items.by_ref().take(per_batch).collect());
        }
    }
    batches
}

/// Running totals of a job run.
#[derive(Debug, Default)]
struct Tally {
    items_run: usize,
    items_failed: usize,
    totals: ItemReport,
}

/// What one spawned item task needs (owned, so the task is `'static`).
#[derive(Debug)]
struct ItemRunner {
    deps: IngestDeps,
    options: IngestOptions,
    calendar: TradingCalendar,
    job_id: JobId,
    spec: JobSpec,
    retries_internally: bool,
}

impl ItemRunner {
    /// Fetches a batch's bars in one request stream, then cleans, writes and records each
    /// item. A fetch failure fails every item of the batch with the same reason.
    async fn run_batch(&self, batch: Vec<WorkItem>) -> Vec<ItemOutcome> {
        let mut fetch_report = ItemReport::default();
        let fetched = self.fetch(&batch, &mut fetch_report).await;
        let mut outcomes = Vec::with_capacity(batch.len());
        match fetched {
            Err(e) => {
                let error = ItemError::Provider(Arc::new(e));
                self.record_failures(&batch, &error.to_string()).await;
                for (i, item) in batch.into_iter().enumerate() {
                    // The batch's request counts are reported once, on its first item.
                    let report = if i == 0 {
                        fetch_report
                    } else {
                        ItemReport::default()
                    };
                    outcomes.push((item, Err(ItemFailure::new(error.clone(), report))));
                }
            }
            Ok(mut by_symbol) => {
                // Bars of symbols the batch did not ask for are dropped, counted and logged.
                let stray: u64 = by_symbol
                    .iter()
                    .filter(|(symbol, _)| !batch.iter().any(|i| i.symbol == **symbol))
                    .map(|(_, bars)| bars.len() as u64)
                    .sum();
                if stray > 0 {
                    warn!(
                        dropped = stray,
                        "provider returned bars of symbols not asked for; dropped"
                    );
                    fetch_report.bars_fetched += stray;
                    fetch_report.outside_session_dropped += stray;
                }
                for (i, item) in batch.into_iter().enumerate() {
                    let mut report = ItemReport::default();
                    if i == 0 {
                        report.add(&fetch_report);
                    }
                    let bars = by_symbol.remove(&item.symbol).unwrap_or_default();
                    report.bars_fetched += bars.len() as u64;
                    let result = self.store_item(&item, bars, report).await;
                    if let Err(failure) = &result {
                        self.record_failures(
                            std::slice::from_ref(&item),
                            &failure.error.to_string(),
                        )
                        .await;
                    }
                    outcomes.push((item, result));
                }
            }
        }
        outcomes
    }

    /// Cleans, writes and records one work item's fetched bars. On failure returns the
    /// reason (naming the file) with the counts so far.
    async fn store_item(
        &self,
        item: &WorkItem,
        bars: Vec<Bar>,
        mut report: ItemReport,
    ) -> Result<ItemReport, ItemFailure> {
        let bars = self.clean(item, bars, &mut report);
        let coverage = self.coverage_of(item, &bars);
        if bars.is_empty() {
            warn!(symbol = %item.symbol, dates = %item.dates, "provider returned no bars");
            self.record_coverage(item, &coverage, report).await?;
            return Ok(report);
        }
        let mut by_partition: BTreeMap<PartitionKey, Vec<Bar>> = BTreeMap::new();
        for bar in bars {
            by_partition
                .entry(PartitionKey::for_bar(Timeframe::M1, bar.symbol, bar.ts))
                .or_default()
                .push(bar);
        }
        let meta = WriteMeta {
            provider: self.spec.provider.clone(),
            feed: self.spec.feed.clone(),
            origin: BarOrigin::Provider,
            ingested_at: self.deps.clock.now(),
            job_id: Some(self.job_id.clone()),
        };
        for (key, bars) in &by_partition {
            let outcome = self
                .deps
                .lake
                .write_partition(key, bars, &meta)
                .await
                .map_err(|e| ItemFailure::new(ItemError::Lake(Arc::new(e)), report))?;
            report.bars_stored += outcome.rows;
            report.bars_changed += outcome.inserted + outcome.updated;
            metrics::counter!(
                telemetry::BARS_INGESTED.name,
                telemetry::LABEL_PROVIDER => meta.provider.clone(),
                telemetry::LABEL_FEED => meta.feed.clone().unwrap_or_else(|| telemetry::FEED_NONE.to_owned())
            )
            .increment(bars.len() as u64);
            if outcome.rewritten {
                report.partitions_written += 1;
            } else {
                report.partitions_unchanged += 1;
            }
            // Only after the file is in place is the partition recorded (write protocol step 4).
            let record =
                PartitionRecord::written(&outcome, Some(self.job_id.clone()), meta.ingested_at);
            self.deps.manifest.record(&record).await.map_err(|e| {
                ItemFailure::new(
                    ItemError::Manifest {
                        key: *key,
                        source: Arc::new(e),
                    },
                    report,
                )
            })?;
            let summaries = daily_summary(bars).map_err(|source| {
                ItemFailure::new(ItemError::Summarise { key: *key, source }, report)
            })?;
            self.deps.summaries.upsert(&summaries).await.map_err(|e| {
                ItemFailure::new(
                    ItemError::Summaries {
                        key: *key,
                        source: Arc::new(e),
                    },
                    report,
                )
            })?;
            debug!(partition = %key, rows = outcome.rows, rewritten = outcome.rewritten, "partition written");
        }
        // Only once the bars are in the lake is the answer recorded.
        self.record_coverage(item, &coverage, report).await?;
        Ok(report)
    }

    /// The coverage of an item's answer: per session of its dates, the bars that came.
    fn coverage_of(&self, item: &WorkItem, bars: &[Bar]) -> Vec<SessionCoverage> {
        let kind = self.spec.session;
        let now = self.deps.clock.now();
        let sessions = self.calendar.sessions(item.dates).unwrap_or_default();
        sessions
            .iter()
            .map(|session| {
                let (open, close) = session.bounds(kind);
                // `bars` are sorted by ts: the session's are one run.
                let first = bars.partition_point(|b| b.ts < open);
                let end = bars.partition_point(|b| b.ts < close);
                let count = u32::try_from(end.saturating_sub(first)).unwrap_or(u32::MAX);
                SessionCoverage::answered(
                    &self.spec.provider,
                    self.spec.feed.as_deref(),
                    item.symbol,
                    session,
                    kind,
                    count,
                    Some(self.job_id.clone()),
                    now,
                )
            })
            .collect()
    }

    async fn record_coverage(
        &self,
        item: &WorkItem,
        coverage: &[SessionCoverage],
        report: ItemReport,
    ) -> Result<(), ItemFailure> {
        self.deps
            .coverage
            .record_coverage(coverage)
            .await
            .map_err(|e| {
                ItemFailure::new(
                    ItemError::Coverage {
                        symbol: item.symbol,
                        dates: item.dates,
                        source: Arc::new(e),
                    },
                    report,
                )
            })
    }

    /// Records `failed` for every session of `items` (logged, not fatal: the items fail
    /// anyway, and a failure never replaces an earlier answer).
    async fn record_failures(&self, items: &[WorkItem], error: &str) {
        let now = self.deps.clock.now();
        let mut entries = Vec::new();
        for item in items {
            for session in self.calendar.sessions(item.dates).unwrap_or_default() {
                entries.push(SessionCoverage::failed(
                    &self.spec.provider,
                    self.spec.feed.as_deref(),
                    item.symbol,
                    &session,
                    self.spec.session,
                    error,
                    Some(self.job_id.clone()),
                    now,
                ));
            }
        }
        if let Err(e) = self.deps.coverage.record_coverage(&entries).await {
            warn!(error = %e, "failed sessions not recorded in the coverage map");
        }
    }

    /// Every page of the batch's symbols and dates (the same for every item of a batch),
    /// with retries, grouped by symbol in arrival order.
    async fn fetch(
        &self,
        batch: &[WorkItem],
        report: &mut ItemReport,
    ) -> Result<BTreeMap<marketpipe_domain::Symbol, Vec<Bar>>, ProviderError> {
        let mut by_symbol: BTreeMap<marketpipe_domain::Symbol, Vec<Bar>> = BTreeMap::new();
        let Some(first) = batch.first() else {
            return Ok(by_symbol);
        };
        let (start, end) = self.calendar.utc_bounds(first.dates);
        let range = marketpipe_domain::TimeRange::new(start, end).map_err(|e| {
            ProviderError::BadRequest {
                provider: self.spec.provider.clone(),
                message: e.to_string(),
            }
        })?;
        let mut request = BarRequest {
            symbols: batch.iter().map(|i| i.symbol).collect(),
            range,
            timeframe: Timeframe::M1,
            session: self.spec.session,
            feed: self.spec.feed.clone(),
            adjustment: self.options.adjustment,
            page_size: self.options.page_size,
            cursor: None,
        };
        loop {
            let page = self.fetch_page(&request, report).await?;
            report.fractional_volumes_rounded += page.fractional_volumes_rounded;
            for bar in page.bars {
                by_symbol.entry(bar.symbol).or_default().push(bar);
            }
            match page.next {
                Some(cursor) => request.cursor = Some(cursor),
                None => return Ok(by_symbol),
            }
        }
    }

    async fn fetch_page(
        &self,
        request: &BarRequest,
        report: &mut ItemReport,
    ) -> Result<marketpipe_ports::BarPage, ProviderError> {
        let mut attempt = 0;
        // A provider that retries itself reports its own requests and waits; retrying on top
        // would multiply its attempts.
        let max_retries = if self.retries_internally {
            0
        } else {
            self.options.retry.max_retries
        };
        loop {
            let result = self.deps.provider.fetch_bars(request).await;
            match &result {
                Ok(page) if page.stats.requests > 0 => {
                    report.requests += page.stats.requests;
                    report.retries += page.stats.retries;
                    report.rate_limited += page.stats.rate_limited;
                    report.throttled += page.stats.throttled;
                    report.retry_wait += page.stats.retry_wait;
                }
                _ => report.requests += 1,
            }
            match result {
                Ok(page) => return Ok(page),
                Err(e) if e.is_retryable() && attempt < max_retries => {
                    let entropy = u64::try_from(self.deps.clock.now().nanos()).unwrap_or(0)
                        ^ (u64::from(attempt) << 32);
                    let wait = self.options.retry.delay(attempt, e.retry_after(), entropy);
                    warn!(error = %e, attempt = attempt + 1, wait_ms = wait.as_millis(), "retrying provider request");
                    report.retries += 1;
                    report.retry_wait += wait;
                    if wait > Duration::ZERO {
                        tokio::time::sleep(wait).await;
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps the item's symbol, its dates and the requested hours; drops repeated bars (the
    /// last one received wins). Every drop is counted and logged, never silent.
    fn clean(&self, item: &WorkItem, mut bars: Vec<Bar>, report: &mut ItemReport) -> Vec<Bar> {
        let before = bars.len();
        let kind: SessionKind = self.spec.session;
        // The item's sessions, once; the bars are then checked against sorted bounds, with no
        // time-zone lookup per bar.
        let bounds: Vec<(marketpipe_domain::Timestamp, marketpipe_domain::Timestamp)> = self
            .calendar
            .sessions(item.dates)
            .map(|s| s.iter().map(|s| s.bounds(kind)).collect())
            .unwrap_or_default();
        // Stable sort keeps arrival order among equal ts, so "last wins" below is well defined.
        bars.sort_by_key(|b| b.ts);
        let mut next = 0;
        bars.retain(|b| {
            while next < bounds.len() && bounds[next].1 <= b.ts {
                next += 1;
            }
            b.symbol == item.symbol && bounds.get(next).is_some_and(|(open, _)| *open <= b.ts)
        });
        let outside = (before - bars.len()) as u64;
        if outside > 0 {
            warn!(symbol = %item.symbol, dropped = outside, "bars outside the requested symbol, dates or session hours dropped");
        }
        report.outside_session_dropped += outside;
        let mut deduped: Vec<Bar> = Vec::with_capacity(bars.len());
        for bar in bars {
            match deduped.last_mut() {
                Some(last) if last.ts == bar.ts => {
                    *last = bar;
                    report.duplicates_dropped += 1;
                }
                _ => deduped.push(bar),
            }
        }
        if report.duplicates_dropped > 0 {
            debug!(symbol = %item.symbol, duplicates = report.duplicates_dropped, "repeated bars dropped");
        }
        deduped
    }
}
