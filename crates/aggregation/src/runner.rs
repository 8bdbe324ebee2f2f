//! The aggregation runner: plans symbol-year units from the manifest (or the lake, for a full
//! run) and builds each unit's frames partition by partition.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use marketpipe_domain::{
    Bar, DateRange, DomainEvent, PartitionPeriod, Symbol, Timeframe, Timestamp, resample,
};
use marketpipe_ports::telemetry;
use marketpipe_ports::{
    BarOrigin, BarSource, BarStore, Clock, EventPublisher, PartitionKey, PartitionManifest,
    PartitionRecord, SourcedBars, WriteMeta,
};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::error::AggregateError;
use crate::report::{AggregationReport, FrameReport, UnitFailure};

/// What an aggregated bar's `origin` says: built from the 1m frame.
pub const AGGREGATED_ORIGIN: BarOrigin = BarOrigin::Aggregated(Timeframe::M1);

/// The ports the runner works through.
#[derive(Debug, Clone)]
pub struct AggregateDeps {
    /// The lake: 1m partitions are read from it and frame partitions written to it.
    pub lake: Arc<dyn BarStore>,
    /// Which 1m partitions changed since their last aggregation; records frame partitions.
    pub manifest: Arc<dyn PartitionManifest>,
    /// Receives `AggregationCompleted` / `AggregationFailed`.
    pub events: Arc<dyn EventPublisher>,
    /// Stamps `ingested_at` and the events.
    pub clock: Arc<dyn Clock>,
}

/// How the runner works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateOptions {
    /// Symbol-years aggregated at once (each holds one 1m partition in memory at a time).
    pub concurrency: usize,
}

impl Default for AggregateOptions {
    /// 8 symbol-years at once: every written file is fsynced, so overlapping the waits beats
    /// matching the cores (docs/architecture.md, Aggregation).
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Symbol-years aggregated at once unless the user says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl AggregateOptions {
    /// Refuses options no run can work with (a concurrency of 0), before anything is
    /// opened; [`Aggregator::run`] checks the same.
    pub fn check(&self) -> Result<(), AggregateError> {
        if self.concurrency == 0 {
            return Err(AggregateError::BadConcurrency);
        }
        Ok(())
    }
}

impl AggregateRequest {
    /// Refuses a request no run can work with (no frame, or 1m as a target) before
    /// anything is opened; [`Aggregator::run`] checks the same.
    pub fn check(&self) -> Result<(), AggregateError> {
        check_frames(&self.frames).map(|_| ())
    }
}

/// What to aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRequest {
    /// Target frames (not 1m).
    pub frames: Vec<Timeframe>,
    /// Symbols; empty means every symbol in the lake.
    pub symbols: Vec<Symbol>,
    /// Session dates: the 1m partitions that overlap them are considered. `None` means all.
    pub dates: Option<DateRange>,
    /// Rebuild every selected partition, changed or not, including 1m files the manifest
    /// does not know.
    pub full: bool,
}

impl AggregateRequest {
    /// The default frames (5m, 15m, 1h, 1d) for every symbol, incrementally.
    pub fn incremental() -> Self {
        Self {
            frames: Timeframe::DEFAULT_AGGREGATES.to_vec(),
            symbols: Vec::new(),
            dates: None,
            full: false,
        }
    }
}

/// Progress callbacks (the app draws a bar or log lines).
pub trait AggregateProgress: Send + Sync {
    /// The plan: symbol-year units and the 1m partitions they read.
    fn planned(&self, units: usize, sources: usize);
    /// One unit finished (successfully or not).
    fn unit_finished(&self, symbol: &Symbol, year: i32, report: &AggregationReport);
}

/// Progress that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl AggregateProgress for NoProgress {
    fn planned(&self, _units: usize, _sources: usize) {}
    fn unit_finished(&self, _symbol: &Symbol, _year: i32, _report: &AggregationReport) {}
}

/// A 1m partition to read, the frames it is stale for, and the content hash to mark them
/// with (`None` for a file the manifest does not know: it is aggregated but not marked).
#[derive(Debug, Clone)]
struct Source {
    key: PartitionKey,
    content_hash: Option<String>,
    frames: BTreeSet<Timeframe>,
}

/// One symbol-year: its stale 1m partitions in month order.
#[derive(Debug, Clone)]
struct Unit {
    symbol: Symbol,
    year: i32,
    sources: Vec<Source>,
}

/// The plan of a run.
#[derive(Debug, Default)]
struct Plan {
    units: Vec<Unit>,
    up_to_date: u64,
    unrecorded: u64,
}

/// Runs aggregations.
#[derive(Debug, Clone)]
pub struct Aggregator {
    deps: AggregateDeps,
    options: AggregateOptions,
}

impl Aggregator {
    /// An aggregator over `deps`.
    pub fn new(deps: AggregateDeps, options: AggregateOptions) -> Self {
        Self { deps, options }
    }

    /// Aggregates what `request` selects. Units that fail are listed in
    /// [`AggregationReport::failures`] (their partitions stay stale for the next run) and
    /// `AggregationFailed` is published; an error is returned only when nothing could be
    /// planned.
    pub async fn run(
        &self,
        request: &AggregateRequest,
        progress: Arc<dyn AggregateProgress>,
    ) -> Result<AggregationReport, AggregateError> {
        let frames = check_frames(&request.frames)?;
        self.options.check()?;
        let plan = match self.plan(request, &frames).await {
            Ok(plan) => plan,
            Err(e) => {
                self.publish(DomainEvent::AggregationFailed {
                    reason: e.to_string(),
                    at: self.deps.clock.now(),
                })
                .await;
                return Err(e);
            }
        };
        let sources: usize = plan.units.iter().map(|u| u.sources.len()).sum();
        info!(
            units = plan.units.len(),
            sources,
            up_to_date = plan.up_to_date,
            unrecorded = plan.unrecorded,
            "aggregation planned"
        );
        if plan.unrecorded > 0 {
            warn!(
                partitions = plan.unrecorded,
                "1m partitions in the lake are not in the manifest; `mp aggregate --full` includes them"
            );
        }
        progress.planned(plan.units.len(), sources);

        let mut report = AggregationReport {
            frames: frames.clone(),
            sources_up_to_date: plan.up_to_date,
            per_frame: frames
                .iter()
                .map(|f| (*f, FrameReport::default()))
                .collect(),
            ..AggregationReport::default()
        };
        let mut pending = plan.units.into_iter();
        let mut running = JoinSet::new();
        // Which unit each task runs, so that a panicked task's failure still names it.
        let mut units_of_tasks = HashMap::new();
        loop {
            while running.len() < self.options.concurrency {
                let Some(unit) = pending.next() else { break };
                let worker = UnitWorker {
                    deps: self.deps.clone(),
                };
                let (symbol, year) = (unit.symbol, unit.year);
                let task = running.spawn(async move { worker.run(unit).await });
                units_of_tasks.insert(task.id(), (symbol, year));
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(e) => e.id(),
            };
            let Some((symbol, year)) = units_of_tasks.remove(&id) else {
                continue;
            };
            let (mut unit_report, error) = match joined {
                Ok((_, Ok(r))) => (r, None),
                Ok((_, Err((partial, e)))) => (partial, Some(e)),
                Err(e) => (AggregationReport::default(), Some(AggregateError::Task(e))),
            };
            if let Some(error) = error {
                unit_report.failures.push(UnitFailure {
                    symbol,
                    year,
                    error,
                });
            }
            progress.unit_finished(&symbol, year, &unit_report);
            report.absorb(unit_report);
        }

        let event = closing_event(&report, frames, self.deps.clock.now());
        self.publish(event).await;
        Ok(report)
    }

    async fn publish(&self, event: DomainEvent) {
        // Events are announcements; a failing subscriber must not undo written partitions.
        if let Err(e) = self.deps.events.publish(&event).await {
            warn!(error = %e, "could not publish an aggregation event");
        }
    }

    /// Which 1m partitions to read, and for which frames, grouped into symbol-years.
    async fn plan(
        &self,
        request: &AggregateRequest,
        frames: &[Timeframe],
    ) -> Result<Plan, AggregateError> {
        let wanted_symbols: BTreeSet<Symbol> = request.symbols.iter().copied().collect();
        let selected = |key: &PartitionKey| {
            (wanted_symbols.is_empty() || wanted_symbols.contains(&key.symbol))
                && request.dates.is_none_or(|range| {
                    key.dates()
                        .is_some_and(|d| d.start() <= range.end() && range.start() <= d.end())
                })
        };
        let recorded = self
            .deps
            .manifest
            .list(Timeframe::M1, &request.symbols)
            .await?;
        let stored = self
            .deps
            .lake
            .list_partitions(Timeframe::M1, &request.symbols)
            .await?;
        let recorded_keys: BTreeSet<PartitionKey> = recorded.iter().map(|r| r.key).collect();
        let unrecorded: Vec<PartitionKey> = stored
            .iter()
            .map(|p| p.key)
            .filter(|k| !recorded_keys.contains(k) && selected(k))
            .collect();

        let mut sources: BTreeMap<PartitionKey, Source> = BTreeMap::new();
        let mut considered = 0_u64;
        if request.full {
            let all_frames: BTreeSet<Timeframe> = frames.iter().copied().collect();
            for record in recorded.iter().filter(|r| selected(&r.key)) {
                sources.insert(
                    record.key,
                    Source {
                        key: record.key,
                        content_hash: Some(record.content_hash.clone()),
                        frames: all_frames.clone(),
                    },
                );
            }
            for key in &unrecorded {
                sources.insert(
                    *key,
                    Source {
                        key: *key,
                        content_hash: None,
                        frames: all_frames.clone(),
                    },
                );
            }
        } else {
            considered = recorded.iter().filter(|r| selected(&r.key)).count() as u64;
            for frame in frames {
                for record in self.deps.manifest.stale_for(*frame).await? {
                    if !selected(&record.key) {
                        continue;
                    }
                    sources
                        .entry(record.key)
                        .or_insert_with(|| Source {
                            key: record.key,
                            content_hash: Some(record.content_hash.clone()),
                            frames: BTreeSet::new(),
                        })
                        .frames
                        .insert(*frame);
                }
            }
        }
        let up_to_date = considered.saturating_sub(sources.len() as u64);

        let mut units: BTreeMap<(Symbol, i32), Unit> = BTreeMap::new();
        for (key, source) in sources {
            units
                .entry((key.symbol, key.year))
                .or_insert_with(|| Unit {
                    symbol: key.symbol,
                    year: key.year,
                    sources: Vec::new(),
                })
                .sources
                .push(source);
        }
        Ok(Plan {
            units: units.into_values().collect(),
            up_to_date,
            unrecorded: if request.full {
                0
            } else {
                unrecorded.len() as u64
            },
        })
    }
}

/// `AggregationCompleted`, or `AggregationFailed` naming the first failure.
fn closing_event(report: &AggregationReport, frames: Vec<Timeframe>, at: Timestamp) -> DomainEvent {
    match report.failures.first() {
        None => DomainEvent::AggregationCompleted {
            frames,
            partitions: report.partitions_written(),
            bars: report.bars_computed(),
            at,
        },
        Some(first) => DomainEvent::AggregationFailed {
            reason: format!("{} unit(s) failed; first: {first}", report.failures.len()),
            at,
        },
    }
}

/// Checks and orders the target frames.
fn check_frames(frames: &[Timeframe]) -> Result<Vec<Timeframe>, AggregateError> {
    let set: BTreeSet<Timeframe> = frames.iter().copied().collect();
    if set.is_empty() {
        return Err(AggregateError::NoFrames);
    }
    if set.contains(&Timeframe::M1) {
        return Err(AggregateError::BadFrame(Timeframe::M1));
    }
    Ok(set.into_iter().collect())
}

/// Builds one symbol-year.
struct UnitWorker {
    deps: AggregateDeps,
}

/// A unit's failure with what it had done before failing.
type PartialFailure = (AggregationReport, AggregateError);

impl UnitWorker {
    async fn run(&self, unit: Unit) -> Result<AggregationReport, PartialFailure> {
        let mut report = AggregationReport::default();
        match self.build(&unit, &mut report).await {
            Ok(()) => Ok(report),
            Err(e) => Err((report, e)),
        }
    }

    /// Reads the unit's 1m partitions one at a time. Every bucket of every frame lies within
    /// one New York session date (buckets up to 1h are whole hours of a whole-hour offset,
    /// 4h buckets are New York aligned, 1d is the session date), and a session's 1m bars all
    /// sit in one monthly partition; so a frame bucket is rebuilt completely from the one 1m
    /// partition that changed, and merge-upserting the rebuilt buckets is exact.
    async fn build(
        &self,
        unit: &Unit,
        report: &mut AggregationReport,
    ) -> Result<(), AggregateError> {
        let ingested_at = self.deps.clock.now();
        // Yearly frames collect every month's buckets and are written once per unit.
        let mut yearly: BTreeMap<PartitionKey, Vec<(Bar, BarSource)>> = BTreeMap::new();
        let mut yearly_marks: BTreeMap<Timeframe, Vec<(PartitionKey, String)>> = BTreeMap::new();
        for source in &unit.sources {
            let sourced = self.deps.lake.read_partition_sourced(&source.key).await?;
            report.sources_read += 1;
            report.source_bars += sourced.bars.len() as u64;
            for frame in &source.frames {
                let built = resample(&sourced.bars, *frame)?;
                report.per_frame.entry(*frame).or_default().bars_computed += built.len() as u64;
                let built = with_sources(*frame, &sourced, built);
                match frame.partition_period() {
                    PartitionPeriod::Month => {
                        for (key, group) in by_partition(*frame, built) {
                            self.write(&key, group, ingested_at, report).await?;
                        }
                        if let Some(hash) = &source.content_hash {
                            self.deps
                                .manifest
                                .mark_aggregated(&source.key, *frame, hash)
                                .await?;
                        }
                    }
                    PartitionPeriod::Year => {
                        for (key, group) in by_partition(*frame, built) {
                            yearly.entry(key).or_default().extend(group);
                        }
                        if let Some(hash) = &source.content_hash {
                            yearly_marks
                                .entry(*frame)
                                .or_default()
                                .push((source.key, hash.clone()));
                        }
                    }
                }
            }
        }
        for (key, bars) in yearly {
            self.write(&key, bars, ingested_at, report).await?;
        }
        // Only after a frame's yearly partition is in place are its sources marked.
        for (frame, marks) in yearly_marks {
            for (source, hash) in marks {
                self.deps
                    .manifest
                    .mark_aggregated(&source, frame, &hash)
                    .await?;
            }
        }
        debug!(symbol = %unit.symbol, year = unit.year, sources = unit.sources.len(), "unit aggregated");
        Ok(())
    }

    /// Writes one frame partition by the lake's protocol, with each bar's source, and
    /// records it in the manifest. Bars of one source (nearly always all of them) go in one
    /// write; each further source is one more merge-upsert of the same partition.
    async fn write(
        &self,
        key: &PartitionKey,
        bars: Vec<(Bar, BarSource)>,
        ingested_at: Timestamp,
        report: &mut AggregationReport,
    ) -> Result<(), AggregateError> {
        let mut by_source: BTreeMap<BarSource, Vec<Bar>> = BTreeMap::new();
        for (bar, source) in bars {
            by_source.entry(source).or_default().push(bar);
        }
        let mut last = None;
        let (mut rewritten, mut changed) = (false, 0);
        for (source, group) in by_source {
            let meta = WriteMeta {
                provider: source.provider,
                feed: source.feed,
                origin: AGGREGATED_ORIGIN,
                ingested_at,
                job_id: None,
            };
            let outcome = self.deps.lake.write_partition(key, &group, &meta).await?;
            metrics::counter!(
                telemetry::AGGREGATION_BARS.name,
                telemetry::LABEL_FRAME => key.frame.as_str()
            )
            .increment(group.len() as u64);
            rewritten |= outcome.rewritten;
            changed += outcome.inserted + outcome.updated;
            last = Some(outcome);
        }
        let Some(outcome) = last else {
            return Ok(());
        };
        let frame_report = report.per_frame.entry(key.frame).or_default();
        if rewritten {
            frame_report.partitions_written += 1;
        } else {
            frame_report.partitions_unchanged += 1;
        }
        frame_report.bars_changed += changed;
        self.deps
            .manifest
            .record(&PartitionRecord::written(&outcome, None, ingested_at))
            .await?;
        Ok(())
    }
}

/// Each built bar with the source of its 1m bars (`BarSource::combine`: theirs when they
/// share one, `mixed` where they differ).
fn with_sources(frame: Timeframe, sourced: &SourcedBars, built: Vec<Bar>) -> Vec<(Bar, BarSource)> {
    let used: BTreeSet<u32> = sourced.source_of.iter().copied().collect();
    let unknown = || BarSource {
        provider: BarSource::MIXED.to_owned(),
        feed: None,
    };
    if used.len() <= 1 {
        // One source for the whole partition (the usual case): no per-bar bucketing.
        let source = used
            .first()
            .and_then(|&s| sourced.sources.get(s as usize))
            .cloned()
            .unwrap_or_else(unknown);
        return built.into_iter().map(|b| (b, source.clone())).collect();
    }
    let by_bucket = sourced.bucket_sources(frame);
    built
        .into_iter()
        .map(|b| {
            let source = by_bucket.get(&b.ts).cloned().unwrap_or_else(unknown);
            (b, source)
        })
        .collect()
}

/// Splits sorted frame bars into their partitions (consecutive runs, so order is kept).
fn by_partition<T>(frame: Timeframe, bars: Vec<(Bar, T)>) -> Vec<(PartitionKey, Vec<(Bar, T)>)> {
    let mut out: Vec<(PartitionKey, Vec<(Bar, T)>)> = Vec::new();
    for item in bars {
        let key = PartitionKey::for_bar(frame, item.0.symbol, item.0.ts);
        match out.last_mut() {
            Some((last, group)) if *last == key => group.push(item),
            _ => out.push((key, vec![item])),
        }
    }
    out
}
