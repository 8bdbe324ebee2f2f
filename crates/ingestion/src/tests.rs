//! Coordinator tests against mockall providers and in-memory fakes of the storage ports.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use marketpipe_domain::{
    Bar, CoverageState, DailySummary, DateRange, IngestionJob, JobId, JobSpec, JobState, Price,
    SessionCoverage, SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar, WorkItem,
    WorkItemStatus,
};
use marketpipe_ports::{
    BarBatchStream, BarPage, BarQuery, BarStore, CollectingPublisher, CoverageQuery,
    CoverageRepository, DailySummaryRepository, FixedClock, IntegrityReport, JobRepository,
    JobSummary, LakeError, MockMarketDataProvider, PageCursor, PartitionInfo, PartitionKey,
    PartitionManifest, PartitionRecord, ProviderError, ProviderInfo, RepositoryError,
    WorkItemRepository, WriteMeta, WriteOutcome,
};

use crate::{Coordinator, IngestDeps, IngestOptions, NoProgress, RetryPolicy};

#[derive(Debug, Default)]
struct MemLake {
    parts: Mutex<BTreeMap<PartitionKey, Vec<Bar>>>,
    corrupt: Mutex<HashSet<PartitionKey>>,
}

#[async_trait]
impl BarStore for MemLake {
    async fn write_partition(
        &self,
        key: &PartitionKey,
        bars: &[Bar],
        _meta: &WriteMeta,
    ) -> Result<WriteOutcome, LakeError> {
        if self.corrupt.lock().unwrap().contains(key) {
            return Err(LakeError::Corrupt {
                path: format!("lake/{key}/part-0.parquet"),
                message: "bad footer".into(),
                source: None,
            });
        }
        let mut parts = self.parts.lock().unwrap();
        let stored = parts.entry(*key).or_default();
        let mut merged: BTreeMap<Timestamp, Bar> = stored.iter().map(|b| (b.ts, *b)).collect();
        let (mut inserted, mut updated) = (0, 0);
        for b in bars {
            match merged.insert(b.ts, *b) {
                None => inserted += 1,
                Some(old) if old != *b => updated += 1,
                Some(_) => {}
            }
        }
        let rewritten = inserted + updated > 0;
        *stored = merged.into_values().collect();
        Ok(WriteOutcome {
            key: *key,
            path: key.to_string(),
            rows: stored.len() as u64,
            inserted,
            updated,
            rewritten,
            content_hash: format!("{}", stored.len()),
            min_ts: stored.first().map(|b| b.ts),
            max_ts: stored.last().map(|b| b.ts),
            format_version: marketpipe_ports::LAKE_FORMAT_VERSION,
        })
    }
    async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        Ok(self
            .parts
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default())
    }
    async fn read_partition_as_stored(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        self.read_partition(key).await
    }
    async fn read_bars(&self, _q: &BarQuery) -> Result<BarBatchStream, LakeError> {
        Ok(Box::pin(futures::stream::empty()))
    }
    async fn list_partitions(
        &self,
        _f: Timeframe,
        _s: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError> {
        Ok(Vec::new())
    }
    async fn check_integrity(
        &self,
        _f: Option<Timeframe>,
        _d: marketpipe_ports::IntegrityDepth,
    ) -> Result<IntegrityReport, LakeError> {
        Ok(IntegrityReport::default())
    }
    async fn read_partition_sourced(
        &self,
        key: &PartitionKey,
    ) -> Result<marketpipe_ports::SourcedBars, LakeError> {
        let bars = self.read_partition(key).await?;
        Ok(marketpipe_ports::SourcedBars {
            source_of: vec![0; bars.len()],
            sources: vec![marketpipe_ports::BarSource {
                provider: "mem".into(),
                feed: None,
            }],
            bars,
        })
    }
    async fn list_formats(
        &self,
        _f: Option<Timeframe>,
    ) -> Result<Vec<marketpipe_ports::StoredFormat>, LakeError> {
        Ok(Vec::new())
    }
    async fn upgrade_partition(
        &self,
        _k: &PartitionKey,
    ) -> Result<Option<WriteOutcome>, LakeError> {
        Ok(None)
    }
    async fn mark_format_current(&self) -> Result<(), LakeError> {
        Ok(())
    }
    async fn clean_orphans(
        &self,
        _remove: bool,
    ) -> Result<Vec<marketpipe_ports::OrphanFile>, LakeError> {
        Ok(Vec::new())
    }
    async fn partition_digest(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<marketpipe_ports::PartitionDigest>, LakeError> {
        Ok(self
            .parts
            .lock()
            .unwrap()
            .get(key)
            .map(|bars| marketpipe_ports::PartitionDigest {
                rows: bars.len() as u64,
                content_hash: format!("{}", bars.len()),
                sorted_unique: true,
            }))
    }
    async fn prune_partition(
        &self,
        key: &PartitionKey,
        cut: Timestamp,
        dry_run: bool,
    ) -> Result<marketpipe_ports::PruneOutcome, LakeError> {
        let mut parts = self.parts.lock().unwrap();
        let Some(bars) = parts.get_mut(key) else {
            return Ok(marketpipe_ports::PruneOutcome::Untouched);
        };
        let before = bars.iter().filter(|b| b.ts < cut).count() as u64;
        if before > 0 && !dry_run {
            bars.retain(|b| b.ts >= cut);
        }
        Ok(if before == 0 {
            marketpipe_ports::PruneOutcome::Untouched
        } else {
            marketpipe_ports::PruneOutcome::Removed { rows: before }
        })
    }
}

/// (provider, feed, symbol, date, hours): the coverage map's key.
type CoverageKey = (String, String, Symbol, chrono::NaiveDate, &'static str);

#[derive(Debug, Default)]
struct MemStore {
    jobs: Mutex<BTreeMap<JobId, IngestionJob>>,
    items: Mutex<BTreeMap<(JobId, usize), WorkItem>>,
    manifest: Mutex<BTreeMap<PartitionKey, PartitionRecord>>,
    summaries: Mutex<BTreeMap<(Symbol, chrono::NaiveDate), DailySummary>>,
    coverage: Mutex<BTreeMap<CoverageKey, SessionCoverage>>,
    checkpoints: AtomicUsize,
    heartbeats: AtomicUsize,
}

impl MemStore {
    fn job(&self, id: &JobId) -> IngestionJob {
        let job = self.jobs.lock().unwrap().get(id).cloned().unwrap();
        let items: Vec<WorkItem> = self
            .items
            .lock()
            .unwrap()
            .iter()
            .filter(|((j, _), _)| j == id)
            .map(|(_, i)| i.clone())
            .collect();
        IngestionJob::restore(
            job.id().clone(),
            job.spec().clone(),
            job.state(),
            items,
            job.created_at(),
            job.started_at(),
            job.finished_at(),
            job.failure().map(str::to_owned),
        )
        .with_lifecycle(job.kind(), job.owner().cloned(), job.heartbeat_at())
    }
}

#[async_trait]
impl CoverageRepository for MemStore {
    async fn record_coverage(&self, entries: &[SessionCoverage]) -> Result<(), RepositoryError> {
        let mut map = self.coverage.lock().unwrap();
        for e in entries {
            let key = (
                e.provider.clone(),
                e.feed.clone().unwrap_or_default(),
                e.symbol,
                e.date,
                e.hours.as_str(),
            );
            let keep_old = e.state == CoverageState::Failed
                && map.get(&key).is_some_and(|old| old.state.is_answered());
            if !keep_old {
                map.insert(key, e.clone());
            }
        }
        Ok(())
    }
    async fn coverage(&self, q: &CoverageQuery) -> Result<Vec<SessionCoverage>, RepositoryError> {
        Ok(self
            .coverage
            .lock()
            .unwrap()
            .values()
            .filter(|e| {
                q.provider
                    .as_ref()
                    .is_none_or(|p| *p == e.provider && q.feed == e.feed)
            })
            .filter(|e| q.symbols.is_empty() || q.symbols.contains(&e.symbol))
            .filter(|e| q.dates.is_none_or(|d| d.contains(e.date)))
            .cloned()
            .collect())
    }
    async fn prune_coverage(
        &self,
        _symbols: &[Symbol],
        _before: chrono::NaiveDate,
        _dry_run: bool,
    ) -> Result<marketpipe_ports::CoveragePruned, RepositoryError> {
        Ok(marketpipe_ports::CoveragePruned::default())
    }
}

#[async_trait]
impl JobRepository for MemStore {
    async fn create(&self, job: &IngestionJob) -> Result<(), RepositoryError> {
        self.jobs
            .lock()
            .unwrap()
            .insert(job.id().clone(), job.clone());
        for i in job.items() {
            self.items
                .lock()
                .unwrap()
                .insert((job.id().clone(), i.index), i.clone());
        }
        Ok(())
    }
    async fn save_state(&self, job: &IngestionJob) -> Result<(), RepositoryError> {
        self.jobs
            .lock()
            .unwrap()
            .insert(job.id().clone(), job.clone());
        Ok(())
    }
    async fn heartbeat(&self, _id: &JobId, _at: Timestamp) -> Result<(), RepositoryError> {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn get(&self, id: &JobId) -> Result<Option<IngestionJob>, RepositoryError> {
        let exists = self.jobs.lock().unwrap().contains_key(id);
        Ok(exists.then(|| self.job(id)))
    }
    async fn list(&self, limit: usize) -> Result<Vec<JobSummary>, RepositoryError> {
        let jobs = self.jobs.lock().unwrap();
        Ok(jobs
            .values()
            .rev()
            .take(limit)
            .map(|j| JobSummary {
                id: j.id().clone(),
                provider: j.spec().provider.clone(),
                state: j.state(),
                symbols: j.spec().symbols.len(),
                items_done: 0,
                items_total: j.items().len(),
                bars: 0,
                created_at: j.created_at(),
                finished_at: j.finished_at(),
                kind: j.kind(),
                owner: j.owner().cloned(),
                heartbeat_at: j.heartbeat_at(),
            })
            .collect())
    }
}

#[async_trait]
impl WorkItemRepository for MemStore {
    async fn save_item(&self, job: &JobId, item: &WorkItem) -> Result<(), RepositoryError> {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.items
            .lock()
            .unwrap()
            .insert((job.clone(), item.index), item.clone());
        Ok(())
    }
    async fn items(&self, job: &JobId) -> Result<Vec<WorkItem>, RepositoryError> {
        Ok(self.job(job).items().to_vec())
    }
}

#[async_trait]
impl PartitionManifest for MemStore {
    async fn record(&self, r: &PartitionRecord) -> Result<(), RepositoryError> {
        self.manifest.lock().unwrap().insert(r.key, r.clone());
        Ok(())
    }
    async fn get(&self, key: &PartitionKey) -> Result<Option<PartitionRecord>, RepositoryError> {
        Ok(self.manifest.lock().unwrap().get(key).cloned())
    }
    async fn remove(&self, key: &PartitionKey) -> Result<(), RepositoryError> {
        self.manifest.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(
        &self,
        _f: Timeframe,
        _s: &[Symbol],
    ) -> Result<Vec<PartitionRecord>, RepositoryError> {
        Ok(self.manifest.lock().unwrap().values().cloned().collect())
    }
    async fn stale_for(&self, _t: Timeframe) -> Result<Vec<PartitionRecord>, RepositoryError> {
        Ok(Vec::new())
    }
    async fn mark_aggregated(
        &self,
        _s: &PartitionKey,
        _t: Timeframe,
        _h: &str,
    ) -> Result<(), RepositoryError> {
        Ok(())
    }
}

#[async_trait]
impl DailySummaryRepository for MemStore {
    async fn upsert(&self, summaries: &[DailySummary]) -> Result<(), RepositoryError> {
        let mut m = self.summaries.lock().unwrap();
        for s in summaries {
            m.insert((s.symbol, s.date), *s);
        }
        Ok(())
    }
    async fn list(
        &self,
        symbol: Symbol,
        dates: DateRange,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        Ok(self
            .summaries
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.symbol == symbol && dates.contains(s.date))
            .copied()
            .collect())
    }
    async fn latest_sessions(
        &self,
        as_of: chrono::NaiveDate,
        sessions: usize,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        let m = self.summaries.lock().unwrap();
        let mut out: Vec<DailySummary> = Vec::new();
        let mut by_symbol: BTreeMap<Symbol, Vec<DailySummary>> = BTreeMap::new();
        for s in m.values().filter(|s| s.date <= as_of) {
            by_symbol.entry(s.symbol).or_default().push(*s);
        }
        for (_, mut days) in by_symbol {
            days.sort_by_key(|s| s.date);
            let skip = days.len().saturating_sub(sessions);
            out.extend(days.into_iter().skip(skip));
        }
        Ok(out)
    }
}

fn info() -> ProviderInfo {
    ProviderInfo {
        name: "mock".into(),
        display_name: "Mock".into(),
        feeds: vec![],
        default_feed: None,
        max_symbols_per_request: 1,
        max_page_size: 100,
        rate_limit: None,
        history_start: None,
        requires_credentials: false,
        supports_extended_hours: true,
        retries_internally: false,
    }
}

/// Two regular minutes per session of the request's dates, plus one bar after the close.
fn bars_for(request: &marketpipe_ports::BarRequest) -> Vec<Bar> {
    let cal = TradingCalendar::xnys();
    let start = marketpipe_domain::calendar::ny_date(request.range.start());
    let end = marketpipe_domain::calendar::ny_date(request.range.end().saturating_add_nanos(-1));
    let mut out = Vec::new();
    let p = Price::from_raw(100_000_000_000).unwrap();
    for s in cal.sessions(DateRange::new(start, end).unwrap()).unwrap() {
        for ts in [s.open, s.open.saturating_add_nanos(60_000_000_000), s.close] {
            out.push(Bar::new(request.symbols[0], ts, p, p, p, p, 10));
        }
    }
    out
}

struct Harness {
    lake: Arc<MemLake>,
    store: Arc<MemStore>,
    events: Arc<CollectingPublisher>,
}

fn harness(provider: MockMarketDataProvider) -> (Coordinator, Harness) {
    harness_with(provider, fast_retries())
}

fn fast_retries() -> IngestOptions {
    IngestOptions {
        concurrency: 3,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        },
        ..IngestOptions::default()
    }
}

fn harness_with(
    provider: MockMarketDataProvider,
    options: IngestOptions,
) -> (Coordinator, Harness) {
    harness_at(
        provider,
        options,
        Timestamp::from_nanos(1_700_000_000_000_000_000),
    )
}

/// 2024-03-09T12:00Z: every session of the week of 2024-03-04 has ended.
const AFTER_THE_WEEK: Timestamp = Timestamp::from_nanos(1_709_985_600_000_000_000);

fn harness_at(
    provider: MockMarketDataProvider,
    options: IngestOptions,
    now: Timestamp,
) -> (Coordinator, Harness) {
    let lake = Arc::new(MemLake::default());
    let store = Arc::new(MemStore::default());
    let events = Arc::new(CollectingPublisher::default());
    let deps = IngestDeps {
        provider: Arc::new(provider),
        lake: lake.clone(),
        jobs: store.clone(),
        items: store.clone(),
        manifest: store.clone(),
        summaries: store.clone(),
        coverage: store.clone(),
        events: events.clone(),
        clock: Arc::new(FixedClock(now)),
    };
    (
        Coordinator::new(deps, options),
        Harness {
            lake,
            store,
            events,
        },
    )
}

fn spec(symbols: &str, start: &str, end: &str) -> JobSpec {
    JobSpec {
        provider: "mock".into(),
        feed: None,
        symbols: Symbol::parse_list(symbols).unwrap(),
        dates: DateRange::parse(start, end).unwrap(),
        session: SessionKind::Regular,
    }
}

/// A provider that pages every response in two and repeats the page boundary bar.
fn paging_provider() -> MockMarketDataProvider {
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(info);
    p.expect_fetch_bars().returning(|req| {
        let all = bars_for(req);
        let half = all.len() / 2;
        Ok(match &req.cursor {
            None => BarPage {
                bars: all[..=half].to_vec(),
                next: Some(PageCursor("2".into())),
                fractional_volumes_rounded: 0,
                ..BarPage::default()
            },
            Some(_) => BarPage {
                bars: all[half..].to_vec(),
                next: None,
                fractional_volumes_rounded: 1,
                ..BarPage::default()
            },
        })
    });
    p
}

#[tokio::test]
async fn job_runs_every_item_dedupes_drops_outside_bars_and_checkpoints() {
    let (coord, h) = harness(paging_provider());
    let job = coord
        .create_job(
            JobId::new("j1").unwrap(),
            spec("AAPL,MSFT", "2024-01-30", "2024-02-02"),
        )
        .await
        .unwrap();
    assert_eq!(job.items().len(), 4);
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.items_run, 4);
    // 4 sessions x 2 symbols x 3 bars, one repeated per item across pages.
    assert_eq!(report.totals.bars_fetched, 4 * 2 * 3 + 4);
    assert_eq!(report.totals.duplicates_dropped, 4);
    assert_eq!(
        report.totals.outside_session_dropped, 8,
        "the bar at the close, every session"
    );
    assert_eq!(report.totals.fractional_volumes_rounded, 4);
    assert_eq!(report.totals.requests, 8);
    assert_eq!(report.totals.partitions_written, 4);
    let parts = h.lake.parts.lock().unwrap();
    assert_eq!(parts.len(), 4);
    assert!(
        parts
            .values()
            .all(|b| b.windows(2).all(|w| w[0].ts < w[1].ts))
    );
    assert_eq!(parts.values().map(Vec::len).sum::<usize>(), 16);
    assert_eq!(h.store.manifest.lock().unwrap().len(), 4);
    assert_eq!(h.store.summaries.lock().unwrap().len(), 8);
    let stored = h.store.job(&JobId::new("j1").unwrap());
    assert_eq!(stored.state(), JobState::Completed);
    assert!(
        stored
            .items()
            .iter()
            .all(|i| i.status == WorkItemStatus::Done && i.bars_written > 0)
    );
    let names: Vec<&str> = h
        .events
        .events()
        .iter()
        .map(marketpipe_domain::DomainEvent::name)
        .collect();
    assert_eq!(names.first(), Some(&"ingestion_job_started"));
    assert_eq!(names.last(), Some(&"ingestion_job_completed"));
    assert_eq!(names.iter().filter(|n| **n == "bars_ingested").count(), 4);
}

#[tokio::test]
async fn rerun_changes_nothing() {
    let (coord, h) = harness(paging_provider());
    for id in ["a", "b"] {
        let job = coord
            .create_job(
                JobId::new(id).unwrap(),
                spec("AAPL", "2024-01-02", "2024-01-05"),
            )
            .await
            .unwrap();
        let report = coord
            .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
            .await
            .unwrap();
        assert_eq!(report.state, JobState::Completed);
        if id == "b" {
            assert_eq!(report.totals.partitions_written, 0);
            assert_eq!(report.totals.partitions_unchanged, 1);
            assert_eq!(report.totals.bars_changed, 0);
        }
    }
    assert_eq!(h.lake.parts.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn corrupt_partition_fails_its_item_only_and_the_job_names_it() {
    let (coord, h) = harness(paging_provider());
    let bad = PartitionKey::for_date(
        Timeframe::M1,
        Symbol::new("MSFT").unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(),
    );
    h.lake.corrupt.lock().unwrap().insert(bad);
    let job = coord
        .create_job(
            JobId::new("j").unwrap(),
            spec("AAPL,MSFT", "2024-01-30", "2024-02-02"),
        )
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Failed);
    assert_eq!(report.items_failed, 1);
    let failure = report.failure.unwrap();
    assert!(failure.contains("1 of 4 work items failed"), "{failure}");
    assert!(
        failure.contains("lake/1m/MSFT/2024-02/part-0.parquet"),
        "{failure}"
    );
    assert_eq!(
        h.lake.parts.lock().unwrap().len(),
        3,
        "the other partitions completed"
    );
    let stored = h.store.job(&JobId::new("j").unwrap());
    assert_eq!(stored.state(), JobState::Failed);

    // Once the file is repaired, a resume runs only the failed item.
    h.lake.corrupt.lock().unwrap().clear();
    let job = coord
        .load_resumable(&JobId::new("j").unwrap())
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.items_run, 1);
    assert!(
        coord
            .load_resumable(&JobId::new("j").unwrap())
            .await
            .is_err(),
        "completed jobs are not resumable"
    );
    assert!(matches!(
        coord.load_resumable(&JobId::new("nope").unwrap()).await,
        Err(crate::IngestError::JobNotFound(_))
    ));
}

#[tokio::test]
async fn transient_errors_are_retried_and_permanent_ones_fail_the_item() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(info);
    let c = calls.clone();
    p.expect_fetch_bars().returning(move |req| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if req.symbols[0].as_str() == "BAD" {
            return Err(ProviderError::Auth {
                provider: "mock".into(),
                message: "subscription does not permit".into(),
            });
        }
        match n {
            0 => Err(ProviderError::Transient {
                provider: "mock".into(),
                message: "502".into(),
                source: None,
            }),
            1 => Err(ProviderError::RateLimited {
                provider: "mock".into(),
                retry_after: Some(Duration::ZERO),
            }),
            _ => Ok(BarPage {
                bars: bars_for(req),
                next: None,
                fractional_volumes_rounded: 0,
                ..BarPage::default()
            }),
        }
    });
    let (coord, _h) = harness(p);
    let mut s = spec("AAPL", "2024-01-02", "2024-01-03");
    let job = coord
        .create_job(JobId::new("r").unwrap(), s.clone())
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.totals.retries, 2);
    assert_eq!(report.totals.requests, 3);
    s.symbols = Symbol::parse_list("BAD").unwrap();
    let job = coord.create_job(JobId::new("p").unwrap(), s).await.unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Failed);
    assert_eq!(
        report.totals.requests, 1,
        "permanent errors are not retried"
    );
    assert!(
        report
            .failure
            .unwrap()
            .contains("subscription does not permit")
    );
}

#[tokio::test]
async fn cancellation_stops_new_items_and_unfinished_jobs_are_found_by_spec() {
    let (coord, _h) = harness(paging_provider());
    let s = spec("AAPL,MSFT", "2024-01-02", "2024-03-29");
    let job = coord
        .create_job(JobId::new("c").unwrap(), s.clone())
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(true)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Cancelled);
    assert_eq!(report.items_run, 0);
    let found = coord.find_unfinished(&s, 10).await.unwrap().unwrap();
    assert_eq!(found.id().as_str(), "c");
    assert!(
        coord
            .find_unfinished(&spec("AAPL", "2024-01-02", "2024-03-29"), 10)
            .await
            .unwrap()
            .is_none()
    );
    let report = coord
        .run(found, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.items_run, 6);
    assert!(coord.find_unfinished(&s, 10).await.unwrap().is_none());
}

#[tokio::test]
async fn dates_outside_the_calendar_are_refused_before_anything_is_stored() {
    let (coord, h) = harness(paging_provider());
    let err = coord
        .create_job(
            JobId::new("x").unwrap(),
            spec("AAPL", "1999-12-01", "2000-01-05"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1999-12-01"), "{err}");
    assert!(h.store.jobs.lock().unwrap().is_empty());
}

/// Bars for every symbol of the request (what a multi-symbol provider returns).
fn bars_for_all(request: &marketpipe_ports::BarRequest) -> Vec<Bar> {
    request
        .symbols
        .iter()
        .flat_map(|s| {
            let mut one = request.clone();
            one.symbols = vec![*s];
            bars_for(&one)
        })
        .collect()
}

#[tokio::test]
async fn a_months_items_are_packed_into_multi_symbol_requests_within_the_budget() {
    type Requests = Vec<(Vec<Symbol>, marketpipe_domain::TimeRange)>;
    let seen: Arc<Mutex<Requests>> = Arc::default();
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(|| ProviderInfo {
        max_symbols_per_request: 2,
        ..info()
    });
    let s = seen.clone();
    p.expect_fetch_bars().returning(move |req| {
        s.lock().unwrap().push((req.symbols.clone(), req.range));
        Ok(BarPage {
            bars: bars_for_all(req),
            ..BarPage::default()
        })
    });
    let (coord, h) = harness(p);
    let job = coord
        .create_job(
            JobId::new("pack").unwrap(),
            spec("AAPL,MSFT,NVDA", "2024-01-02", "2024-02-29"),
        )
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.items_run, 6);
    let seen = seen.lock().unwrap().clone();
    // Two months, each as a request of two symbols and one of the third.
    assert_eq!(seen.len(), 4, "{seen:?}");
    let mut sizes: Vec<usize> = seen.iter().map(|(s, _)| s.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 1, 2, 2]);
    assert_eq!(report.totals.requests, 4);
    // Every symbol's every month is in the lake.
    let stored: HashSet<(Symbol, Option<u32>)> = h
        .lake
        .parts
        .lock()
        .unwrap()
        .keys()
        .map(|k| (k.symbol, k.month))
        .collect();
    assert_eq!(stored.len(), 6);

    // A bar budget of one symbol-month leaves one symbol per request.
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(|| ProviderInfo {
        max_symbols_per_request: 100,
        ..info()
    });
    p.expect_fetch_bars().times(3).returning(|req| {
        assert_eq!(req.symbols.len(), 1);
        Ok(BarPage {
            bars: bars_for_all(req),
            ..BarPage::default()
        })
    });
    let (coord, _h) = harness_with(
        p,
        IngestOptions {
            batch_bar_budget: 390 * 21,
            ..IngestOptions::default()
        },
    );
    let job = coord
        .create_job(
            JobId::new("budget").unwrap(),
            spec("AAPL,MSFT,NVDA", "2024-01-02", "2024-01-31"),
        )
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Completed);
}

#[tokio::test]
async fn refused_credentials_stop_the_job_and_leave_unstarted_items_pending() {
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(info);
    p.expect_fetch_bars().times(1).returning(|_| {
        Err(ProviderError::Auth {
            provider: "mock".into(),
            message: "forbidden; set MOCK_KEY".into(),
        })
    });
    let (coord, h) = harness_with(
        p,
        IngestOptions {
            concurrency: 1,
            ..IngestOptions::default()
        },
    );
    let job = coord
        .create_job(
            JobId::new("auth").unwrap(),
            spec("AAPL,MSFT,NVDA,TSLA", "2024-01-02", "2024-01-31"),
        )
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(report.state, JobState::Failed);
    let failure = report.failure.unwrap();
    assert!(failure.contains("refused the credentials"), "{failure}");
    assert!(failure.contains("MOCK_KEY"), "{failure}");
    assert_eq!(report.items_run, 1);
    let stored = JobRepository::get(h.store.as_ref(), &JobId::new("auth").unwrap())
        .await
        .unwrap()
        .unwrap();
    let pending = stored
        .items()
        .iter()
        .filter(|i| i.status == WorkItemStatus::Pending)
        .count();
    assert_eq!(pending, 3, "unstarted items stay pending for --resume");
}

#[tokio::test]
async fn a_provider_that_retries_itself_is_not_retried_again_and_its_counts_are_kept() {
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(|| ProviderInfo {
        retries_internally: true,
        ..info()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    p.expect_fetch_bars().returning(move |req| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(BarPage {
                bars: bars_for(req),
                stats: marketpipe_ports::FetchStats {
                    requests: 4,
                    retries: 3,
                    rate_limited: 2,
                    throttled: Duration::from_millis(300),
                    retry_wait: Duration::from_millis(50),
                },
                ..BarPage::default()
            });
        }
        Err(ProviderError::Transient {
            provider: "mock".into(),
            message: "gave up after 5 retries".into(),
            source: None,
        })
    });
    let (coord, _h) = harness(p);
    let job = coord
        .create_job(
            JobId::new("self").unwrap(),
            spec("AAPL,MSFT", "2024-01-02", "2024-01-31"),
        )
        .await
        .unwrap();
    let report = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "no retry on top of the provider's"
    );
    assert_eq!(report.items_failed, 1);
    assert_eq!(report.totals.requests, 4 + 1);
    assert_eq!(report.totals.retries, 3);
    assert_eq!(report.totals.rate_limited, 2);
    assert_eq!(report.totals.throttled, Duration::from_millis(300));
}

#[tokio::test]
async fn select_job_resumes_continues_or_creates_without_a_provider() {
    let store = MemStore::default();
    let clock = FixedClock(Timestamp::from_nanos(1_764_215_412_000_000_000));
    let mut probe = marketpipe_ports::MockOwnerProbe::new();
    probe.expect_host_name().returning(|| "host-1".into());
    probe.expect_pid_alive().returning(|pid| Some(pid == 7));
    let s = spec("AAPL", "2024-01-02", "2024-02-29");

    let created = crate::select_job(&store, &clock, &probe, crate::JobRequest::Run(s.clone()))
        .await
        .unwrap();
    assert_eq!(created.choice, crate::JobChoice::Created);
    assert!(
        created.job.id().as_str().starts_with("20251127T035012Z-"),
        "{}",
        created.job.id()
    );
    assert_eq!(created.job.items().len(), 2, "one item per month");

    // The same spec again continues the unfinished job instead of creating another.
    let again = crate::select_job(&store, &clock, &probe, crate::JobRequest::Run(s.clone()))
        .await
        .unwrap();
    assert_eq!(again.choice, crate::JobChoice::Continued);
    assert_eq!(again.job.id(), created.job.id());

    // Resuming by id returns the job with its own spec (its provider included).
    let resumed = crate::select_job(
        &store,
        &clock,
        &probe,
        crate::JobRequest::Resume(created.job.id().clone()),
    )
    .await
    .unwrap();
    assert_eq!(resumed.choice, crate::JobChoice::Resumed);
    assert_eq!(resumed.job.spec().provider, "mock");

    let missing = crate::select_job(
        &store,
        &clock,
        &probe,
        crate::JobRequest::Resume(JobId::new("nope").unwrap()),
    )
    .await
    .unwrap_err();
    assert!(matches!(&missing, crate::IngestError::JobNotFound(id) if id.as_str() == "nope"));
    assert!(missing.is_bad_request());

    let outside = crate::select_job(
        &store,
        &clock,
        &probe,
        crate::JobRequest::Run(spec("AAPL", "1990-01-02", "1990-01-31")),
    )
    .await
    .unwrap_err();
    assert!(outside.is_bad_request(), "{outside}");

    // A job whose owner lives (pid 7 on this host, fresh heartbeat) is never taken over.
    let mut live = created.job.clone();
    live.start(marketpipe_ports::Clock::now(&clock)).unwrap();
    live.claim(
        marketpipe_domain::JobOwner {
            host: "host-1".into(),
            pid: 7,
            started_at: marketpipe_ports::Clock::now(&clock),
        },
        marketpipe_ports::Clock::now(&clock),
    );
    JobRepository::save_state(&store, &live).await.unwrap();
    let refused = crate::select_job(&store, &clock, &probe, crate::JobRequest::Run(s.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, crate::IngestError::AlreadyRunning { pid: 7, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("mp jobs kill"), "{refused}");
    // Its owner dies: the next run takes it over.
    live.claim(
        marketpipe_domain::JobOwner {
            host: "host-1".into(),
            pid: 8,
            started_at: marketpipe_ports::Clock::now(&clock),
        },
        marketpipe_ports::Clock::now(&clock),
    );
    JobRepository::save_state(&store, &live).await.unwrap();
    let taken = crate::select_job(
        &store,
        &clock,
        &probe,
        crate::JobRequest::Resume(live.id().clone()),
    )
    .await
    .unwrap();
    assert_eq!(taken.job.id(), live.id());
}

#[test]
fn a_run_counts_the_bars_it_stored_through_the_metrics_facade() {
    let recorder = marketpipe_prometheus::MetricsRecorder::new();
    // One thread: the recorder is local to it, and the job's tasks run on it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let mut provider = MockMarketDataProvider::new();
            provider.expect_info().returning(info);
            provider.expect_fetch_bars().returning(|r| {
                Ok(BarPage {
                    bars: bars_for(r),
                    next: None,
                    ..BarPage::default()
                })
            });
            let (coord, _h) = harness(provider);
            let job = coord
                .create_job(
                    JobId::new("m").unwrap(),
                    spec("AAPL", "2024-01-02", "2024-01-31"),
                )
                .await
                .unwrap();
            coord
                .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
                .await
                .unwrap()
        })
    });
    assert_eq!(report.state, JobState::Completed);
    let series: Vec<_> = recorder
        .snapshot()
        .into_iter()
        .filter(|s| s.name == marketpipe_ports::telemetry::BARS_INGESTED.name)
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        series[0].value,
        marketpipe_ports::SeriesValue::Counter {
            value: report.totals.bars_stored
        }
    );
    // Each session's closing-minute bar is out of session: fetched, dropped, not counted.
    assert_eq!(report.totals.bars_stored, 42);
    assert_eq!(report.totals.bars_fetched, 63);
    assert!(
        series[0].labels.iter().any(|(k, _)| k == "provider"),
        "{series:?}"
    );
    assert!(
        series[0]
            .labels
            .iter()
            .all(|(k, _)| k != "symbol" && k != "job")
    );
}

#[tokio::test]
async fn zero_concurrency_is_refused_before_the_job_starts() {
    let mut provider = MockMarketDataProvider::new();
    provider.expect_info().returning(info);
    let (coord, h) = harness_with(
        provider,
        IngestOptions {
            concurrency: 0,
            ..IngestOptions::default()
        },
    );
    let job = coord
        .create_job(
            JobId::new("z").unwrap(),
            spec("AAPL", "2024-01-02", "2024-01-31"),
        )
        .await
        .unwrap();
    let err = coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap_err();
    assert!(matches!(err, crate::IngestError::BadConcurrency));
    assert!(err.is_bad_request());
    assert_eq!(
        h.store.job(&JobId::new("z").unwrap()).state(),
        JobState::Pending,
        "nothing started"
    );
}

#[test]
fn a_feed_is_one_of_the_providers_or_its_default() {
    let mut with_feeds = info();
    with_feeds.feeds = vec!["iex".into(), "sip".into()];
    with_feeds.default_feed = Some("iex".into());
    assert_eq!(
        crate::resolve_feed(None, &with_feeds).unwrap().as_deref(),
        Some("iex")
    );
    assert_eq!(
        crate::resolve_feed(Some("sip"), &with_feeds)
            .unwrap()
            .as_deref(),
        Some("sip")
    );
    let e = crate::resolve_feed(Some("otc"), &with_feeds).unwrap_err();
    assert!(e.is_bad_request());
    assert_eq!(
        e.to_string(),
        "--feed \"otc\" is not a feed of mock; its feeds are iex, sip"
    );
    // A provider without feeds records what it was given.
    assert_eq!(
        crate::resolve_feed(Some("any"), &info())
            .unwrap()
            .as_deref(),
        Some("any")
    );
}

/// Every minute of the request's regular sessions, except `(symbol, date)` pairs in `empty`.
fn full_sessions(request: &marketpipe_ports::BarRequest, empty: &[(&str, &str)]) -> Vec<Bar> {
    let cal = TradingCalendar::xnys();
    let start = marketpipe_domain::calendar::ny_date(request.range.start());
    let end = marketpipe_domain::calendar::ny_date(request.range.end().saturating_add_nanos(-1));
    let p = Price::from_raw(100_000_000_000).unwrap();
    let mut out = Vec::new();
    for symbol in &request.symbols {
        for s in cal.sessions(DateRange::new(start, end).unwrap()).unwrap() {
            if empty
                .iter()
                .any(|(sym, d)| *sym == symbol.as_str() && *d == s.date.to_string())
            {
                continue;
            }
            for m in 0..i64::from(s.minutes(SessionKind::Regular)) {
                let ts = s.open.saturating_add_nanos(m * 60_000_000_000);
                out.push(Bar::new(*symbol, ts, p, p, p, p, 10));
            }
        }
    }
    out
}

/// A mock provider serving [`full_sessions`] that logs each request's (symbols, first and
/// last New York date).
fn logging_provider(
    empty: &'static [(&'static str, &'static str)],
) -> (MockMarketDataProvider, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(|| ProviderInfo {
        max_symbols_per_request: 10,
        ..info()
    });
    p.expect_fetch_bars().returning(move |req| {
        let start = marketpipe_domain::calendar::ny_date(req.range.start());
        let end = marketpipe_domain::calendar::ny_date(req.range.end().saturating_add_nanos(-1));
        let symbols: Vec<&str> = req.symbols.iter().map(Symbol::as_str).collect();
        seen.lock()
            .unwrap()
            .push(format!("{} {start}..={end}", symbols.join(",")));
        Ok(BarPage {
            bars: full_sessions(req, empty),
            ..BarPage::default()
        })
    });
    (p, log)
}

fn backfill_request(recheck: bool) -> crate::BackfillRequest {
    crate::BackfillRequest {
        provider: "mock".into(),
        feed: None,
        symbols: Symbol::parse_list("AAPL,MSFT").unwrap(),
        dates: DateRange::parse("2024-03-04", "2024-03-08").unwrap(),
        session: SessionKind::Regular,
        recheck,
    }
}

fn plan_deps(h: &Harness) -> crate::PlanDeps {
    crate::PlanDeps {
        lake: h.lake.clone(),
        manifest: h.store.clone(),
        coverage: h.store.clone(),
        jobs: h.store.clone(),
        clock: Arc::new(FixedClock(AFTER_THE_WEEK)),
    }
}

#[tokio::test]
async fn a_backfill_asks_only_for_what_the_coverage_map_lacks_and_remembers_empty_sessions() {
    let (p, log) = logging_provider(&[("MSFT", "2024-03-06")]);
    let (coord, h) = harness_at(p, IngestOptions::default(), AFTER_THE_WEEK);
    let deps = plan_deps(&h);
    let run = |recheck| {
        let (coord, deps) = (coord.clone(), deps.clone());
        async move {
            let plan = crate::plan_backfill(&deps, backfill_request(recheck))
                .await
                .unwrap();
            crate::run_backfill(
                &coord,
                &deps,
                plan,
                &NoProgress,
                Arc::new(AtomicBool::new(false)),
            )
            .await
            .unwrap()
        }
    };

    let first = run(false).await;
    assert_eq!(first.plan.sessions.len(), 10);
    assert_eq!(first.plan.items.len(), 2, "one request range per symbol");
    assert_eq!(
        *log.lock().unwrap(),
        ["AAPL,MSFT 2024-03-04..=2024-03-08"],
        "both symbols' identical ranges share one request"
    );
    assert_eq!(first.in_state(CoverageState::Filled).count(), 9);
    let empty: Vec<String> = first
        .in_state(CoverageState::EmptyConfirmed)
        .map(|o| format!("{} {}", o.symbol, o.date))
        .collect();
    assert_eq!(empty, ["MSFT 2024-03-06"]);
    let job = first.job.unwrap();
    assert_eq!(job.state, JobState::Completed);
    let stored = JobRepository::get(h.store.as_ref(), &job.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.kind(), marketpipe_domain::JobKind::Backfill);

    // Nothing is missing: no job, no request.
    let second = run(false).await;
    assert!(second.plan.is_empty() && second.job.is_none());
    assert_eq!(log.lock().unwrap().len(), 1);

    // Someone removes AAPL's 2024-03-05 from the lake: only that session is asked again.
    let key = PartitionKey::for_date(
        Timeframe::M1,
        Symbol::new("AAPL").unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
    );
    h.lake
        .parts
        .lock()
        .unwrap()
        .get_mut(&key)
        .unwrap()
        .retain(|b| marketpipe_domain::calendar::ny_date(b.ts).to_string() != "2024-03-05");
    let third = run(false).await;
    assert_eq!(third.plan.partitions_reread, [key]);
    let planned: Vec<String> = third
        .plan
        .sessions
        .iter()
        .map(|s| format!("{} {} {}", s.symbol, s.date, s.reason))
        .collect();
    assert_eq!(planned, ["AAPL 2024-03-05 lake_changed"]);
    assert_eq!(log.lock().unwrap()[1], "AAPL 2024-03-05..=2024-03-05");

    // --recheck asks again for the empty session, and only for it.
    let fourth = run(true).await;
    let planned: Vec<String> = fourth
        .plan
        .sessions
        .iter()
        .map(|s| format!("{} {} {}", s.symbol, s.date, s.reason))
        .collect();
    assert_eq!(planned, ["MSFT 2024-03-06 recheck"]);
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_failed_session_is_recorded_and_asked_again_while_an_answer_is_never_overwritten() {
    let mut p = MockMarketDataProvider::new();
    p.expect_info().returning(info);
    p.expect_fetch_bars().returning(|_| {
        Err(ProviderError::BadRequest {
            provider: "mock".into(),
            message: "no such feed".into(),
        })
    });
    let (coord, h) = harness_at(p, fast_retries(), AFTER_THE_WEEK);
    let deps = plan_deps(&h);
    let request = crate::BackfillRequest {
        symbols: Symbol::parse_list("IBM").unwrap(),
        ..backfill_request(false)
    };
    let plan = crate::plan_backfill(&deps, request.clone()).await.unwrap();
    let report = crate::run_backfill(
        &coord,
        &deps,
        plan,
        &NoProgress,
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .unwrap();
    assert_eq!(report.in_state(CoverageState::Failed).count(), 5);
    let error = report.outcomes[0].error.clone().unwrap();
    assert!(error.contains("no such feed"), "{error}");
    let replanned = crate::plan_backfill(&deps, request).await.unwrap();
    assert!(
        replanned
            .sessions
            .iter()
            .all(|s| s.reason == marketpipe_domain::FetchReason::Failed)
    );
    assert_eq!(replanned.sessions.len(), 5);
    // A later failure leaves an answered session as it was.
    let session = TradingCalendar::xnys()
        .session(chrono::NaiveDate::from_ymd_opt(2024, 3, 4).unwrap())
        .unwrap()
        .unwrap();
    let sym = Symbol::new("IBM").unwrap();
    let at = AFTER_THE_WEEK;
    let answered = SessionCoverage::answered(
        "mock",
        None,
        sym,
        &session,
        SessionKind::Regular,
        390,
        None,
        at,
    );
    h.store.record_coverage(&[answered]).await.unwrap();
    let failed = SessionCoverage::failed(
        "mock",
        None,
        sym,
        &session,
        SessionKind::Regular,
        "503",
        None,
        at,
    );
    h.store.record_coverage(&[failed]).await.unwrap();
    let kept = h
        .store
        .coverage(&CoverageQuery {
            provider: Some("mock".into()),
            symbols: vec![sym],
            dates: Some(DateRange::parse("2024-03-04", "2024-03-04").unwrap()),
            ..CoverageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(kept[0].state, CoverageState::Filled);
}

#[tokio::test]
async fn a_running_job_records_its_owner_and_heartbeats() {
    let (p, _log) = logging_provider(&[]);
    let owner = marketpipe_domain::JobOwner {
        host: "host-1".into(),
        pid: 4242,
        started_at: Timestamp::from_nanos(5),
    };
    let (coord, h) = harness_with(
        p,
        IngestOptions {
            owner: Some(owner.clone()),
            heartbeat_interval: Duration::from_millis(10),
            ..IngestOptions::default()
        },
    );
    let job = coord
        .create_job(
            JobId::new("owned").unwrap(),
            spec("AAPL", "2024-03-04", "2024-03-08"),
        )
        .await
        .unwrap();
    coord
        .run(job, &NoProgress, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let stored = JobRepository::get(h.store.as_ref(), &JobId::new("owned").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.owner(), Some(&owner));
    assert!(stored.heartbeat_at().is_some());
}
