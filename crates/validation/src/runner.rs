//! The validation runner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use marketpipe_domain::validation::validate_bars;
use marketpipe_domain::{
    Bar, DateRange, DomainError, DomainEvent, JobId, RuleId, SessionKind, Severity, Symbol,
    Timeframe, TradingCalendar, ValidationThresholds,
};
use marketpipe_ports::telemetry;
use marketpipe_ports::{
    BarStore, Clock, EventPublisher, JobRepository, LakeError, ReportSummary, RepositoryError,
    ValidationReport, ValidationReportRepository,
};
use thiserror::Error;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// The ports the runner works through.
#[derive(Debug, Clone)]
pub struct ValidationDeps {
    /// Where the bars are.
    pub lake: Arc<dyn BarStore>,
    /// Every store a report is saved to (e.g. CSV files and metadata rows), in order.
    pub reports: Vec<Arc<dyn ValidationReportRepository>>,
    /// Jobs, to validate one by id.
    pub jobs: Arc<dyn JobRepository>,
    /// Domain events.
    pub events: Arc<dyn EventPublisher>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// Why a run could not start. A symbol whose bars cannot be read does not stop the run: it
/// is reported in its [`SymbolOutcome`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// No job with that id.
    #[error("job {0} not found (see `mp jobs list`)")]
    JobNotFound(JobId),
    /// Zero symbols at once would never finish.
    #[error("concurrency must be at least 1 (got 0)")]
    BadConcurrency,
    /// A domain rule refused the target (dates outside the calendar, …).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Repository(#[from] RepositoryError),
}

/// What to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationTarget {
    /// Names the reports (`<run_id>_<symbol>`): the job id, or a name derived from the range.
    pub run_id: JobId,
    /// The job validated, when one was.
    pub job_id: Option<JobId>,
    /// Symbols.
    pub symbols: Vec<Symbol>,
    /// Session dates (New York, inclusive).
    pub dates: DateRange,
    /// The frame (1m for ingested bars).
    pub frame: Timeframe,
    /// Which hours bars must lie in.
    pub session: SessionKind,
}

impl ValidationTarget {
    /// A target for symbols over dates, with a run id derived from the range and session, so
    /// that validating the same range again replaces its reports.
    pub fn for_range(
        symbols: Vec<Symbol>,
        dates: DateRange,
        session: SessionKind,
    ) -> Result<Self, DomainError> {
        let suffix = match session {
            SessionKind::Regular => "",
            SessionKind::Extended => "-ext",
        };
        let run_id = JobId::new(&format!(
            "range-{}-{}{suffix}",
            dates.start().format("%Y%m%d"),
            dates.end().format("%Y%m%d")
        ))?;
        Ok(Self {
            run_id,
            job_id: None,
            symbols,
            dates,
            frame: Timeframe::M1,
            session,
        })
    }
}

/// One symbol's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolOutcome {
    /// The symbol.
    pub symbol: Symbol,
    /// Bars examined.
    pub bars: u64,
    /// The saved report's summary, when the symbol could be validated.
    pub report: Option<ReportSummary>,
    /// Why it could not be validated (an unreadable file, a failed save).
    pub error: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRun {
    /// The run id (report name prefix).
    pub run_id: JobId,
    /// Per symbol, in target order.
    pub symbols: Vec<SymbolOutcome>,
    /// Findings per (rule, severity) over all symbols.
    pub counts: BTreeMap<(RuleId, Severity), u64>,
    /// Bars examined.
    pub bars: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl ValidationRun {
    /// Findings of `severity`.
    pub fn count(&self, severity: Severity) -> u64 {
        self.counts
            .iter()
            .filter(|((_, s), _)| *s == severity)
            .map(|(_, n)| n)
            .sum()
    }

    /// Symbols that could not be validated.
    pub fn failures(&self) -> impl Iterator<Item = &SymbolOutcome> {
        self.symbols.iter().filter(|s| s.error.is_some())
    }

    /// Bars examined per second.
    pub fn bars_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let bars = self.bars as f64;
        if secs > 0.0 { bars / secs } else { 0.0 }
    }
}

/// Symbols validated at once unless the user says otherwise (reading, checking and saving
/// overlap).
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Runs the rules over stored bars.
#[derive(Debug, Clone)]
pub struct Validator {
    deps: ValidationDeps,
    thresholds: ValidationThresholds,
    concurrency: usize,
    calendar: TradingCalendar,
}

impl Validator {
    /// Refuses a concurrency no run can work with (0), before anything is opened;
    /// [`Validator::run`] checks the same.
    pub fn check_concurrency(concurrency: usize) -> Result<(), ValidationError> {
        if concurrency == 0 {
            return Err(ValidationError::BadConcurrency);
        }
        Ok(())
    }

    /// A validator with `thresholds`, validating `concurrency` symbols at once
    /// ([`DEFAULT_CONCURRENCY`] unless the user says otherwise).
    pub fn new(deps: ValidationDeps, thresholds: ValidationThresholds, concurrency: usize) -> Self {
        Self {
            deps,
            thresholds,
            concurrency,
            calendar: TradingCalendar::xnys(),
        }
    }

    /// The target of a stored job: its symbols, dates and session; the reports are named after
    /// the job, so validating it again replaces them.
    pub async fn target_for_job(&self, id: &JobId) -> Result<ValidationTarget, ValidationError> {
        let job = self
            .deps
            .jobs
            .get(id)
            .await?
            .ok_or_else(|| ValidationError::JobNotFound(id.clone()))?;
        let spec = job.spec();
        Ok(ValidationTarget {
            run_id: id.clone(),
            job_id: Some(id.clone()),
            symbols: spec.symbols.clone(),
            dates: spec.dates,
            frame: Timeframe::M1,
            session: spec.session,
        })
    }

    /// Validates every symbol of `target`, saves one report per symbol, records metrics and
    /// publishes the outcome.
    pub async fn run(&self, target: &ValidationTarget) -> Result<ValidationRun, ValidationError> {
        Self::check_concurrency(self.concurrency)?;
        let started = Instant::now();
        // The dates must be inside the calendar before any symbol is read.
        self.calendar.sessions(target.dates)?;
        let thresholds = ValidationThresholds {
            session: target.session,
            ..self.thresholds
        };
        let mut outcomes: BTreeMap<usize, SymbolOutcome> = BTreeMap::new();
        let mut counts: BTreeMap<(RuleId, Severity), u64> = BTreeMap::new();
        let mut queue = target.symbols.iter().copied().enumerate();
        let mut in_flight: JoinSet<(usize, SymbolOutcome, RuleCounts)> = JoinSet::new();
        loop {
            while in_flight.len() < self.concurrency {
                let Some((index, symbol)) = queue.next() else {
                    break;
                };
                let job = SymbolJob {
                    deps: self.deps.clone(),
                    calendar: self.calendar,
                    thresholds,
                    target: target.clone(),
                    symbol,
                };
                in_flight.spawn(async move {
                    let (outcome, counts) = job.run().await;
                    (index, outcome, counts)
                });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            match joined {
                Ok((index, outcome, symbol_counts)) => {
                    for (rule, severity, n) in symbol_counts {
                        *counts.entry((rule, severity)).or_default() += n;
                    }
                    outcomes.insert(index, outcome);
                }
                Err(e) => warn!(error = %e, "a validation task failed"),
            }
        }
        let run = ValidationRun {
            run_id: target.run_id.clone(),
            bars: outcomes.values().map(|o| o.bars).sum(),
            symbols: outcomes.into_values().collect(),
            counts,
            elapsed: started.elapsed(),
        };
        self.record(target, &run).await;
        Ok(run)
    }

    async fn record(&self, target: &ValidationTarget, run: &ValidationRun) {
        let at = self.deps.clock.now();
        let failures: Vec<String> = run
            .failures()
            .map(|s| format!("{}: {}", s.symbol, s.error.as_deref().unwrap_or("")))
            .collect();
        let event = if failures.is_empty() {
            DomainEvent::ValidationCompleted {
                job_id: target.job_id.clone(),
                bars: run.bars,
                errors: run.count(Severity::Error),
                warnings: run.count(Severity::Warning),
                at,
            }
        } else {
            DomainEvent::ValidationFailed {
                job_id: target.job_id.clone(),
                reason: format!(
                    "{} symbol(s) could not be validated; first: {}",
                    failures.len(),
                    failures[0]
                ),
                at,
            }
        };
        if let Err(e) = self.deps.events.publish(&event).await {
            warn!(error = %e, "event not published");
        }
        // Every rule's series exists from the first run, at 0 until it finds something, so
        // that dashboards and rate() see a zero rather than no data.
        for rule in RuleId::ALL {
            metrics::counter!(
                telemetry::VALIDATION_FINDINGS.name,
                telemetry::LABEL_RULE => rule.as_str(),
                telemetry::LABEL_SEVERITY => rule.severity().as_str()
            )
            .increment(0);
        }
        for ((rule, severity), n) in &run.counts {
            metrics::counter!(
                telemetry::VALIDATION_FINDINGS.name,
                telemetry::LABEL_RULE => rule.as_str(),
                telemetry::LABEL_SEVERITY => severity.as_str()
            )
            .increment(*n);
        }
        metrics::counter!(
            telemetry::VALIDATION_BARS.name,
            telemetry::LABEL_FRAME => target.frame.as_str()
        )
        .increment(run.bars);
        info!(run = %run.run_id, bars = run.bars, errors = run.count(Severity::Error), warnings = run.count(Severity::Warning), "validation finished");
    }
}

/// Findings per rule and severity.
type RuleCounts = Vec<(RuleId, Severity, u64)>;

/// One symbol's validation (owned, so it can run as a task).
struct SymbolJob {
    deps: ValidationDeps,
    calendar: TradingCalendar,
    thresholds: ValidationThresholds,
    target: ValidationTarget,
    symbol: Symbol,
}

impl SymbolJob {
    async fn run(self) -> (SymbolOutcome, RuleCounts) {
        let symbol = self.symbol;
        let mut outcome = SymbolOutcome {
            symbol,
            bars: 0,
            report: None,
            error: None,
        };
        let bars = match self.read().await {
            Ok(bars) => bars,
            Err(e) => {
                warn!(%symbol, error = %e, "cannot read the bars to validate");
                outcome.error = Some(e.to_string());
                return (outcome, Vec::new());
            }
        };
        outcome.bars = bars.len() as u64;
        let (calendar, thresholds, frame, dates) = (
            self.calendar,
            self.thresholds,
            self.target.frame,
            self.target.dates,
        );
        // The rules are CPU work: keep them off the runtime's async workers.
        let checked = tokio::task::spawn_blocking(move || {
            validate_bars(symbol, &bars, frame, &calendar, &thresholds, dates)
        })
        .await;
        let findings = match checked {
            Ok(Ok(findings)) => findings,
            Ok(Err(e)) => {
                outcome.error = Some(e.to_string());
                return (outcome, Vec::new());
            }
            Err(e) => {
                outcome.error = Some(format!("validation task failed: {e}"));
                return (outcome, Vec::new());
            }
        };
        let report = ValidationReport {
            run_id: self.target.run_id.clone(),
            symbol,
            frame,
            bars_checked: outcome.bars,
            created_at: self.deps.clock.now(),
            findings,
        };
        let counts = report.counts();
        for store in &self.deps.reports {
            match store.save(&report).await {
                Ok(summary) => outcome.report = Some(summary),
                Err(e) => {
                    outcome.error = Some(format!("saving report {}: {e}", report.name()));
                    break;
                }
            }
        }
        (outcome, counts)
    }

    /// The symbol's stored bars of the target's dates, partition by partition, as stored.
    async fn read(&self) -> Result<Vec<Bar>, LakeError> {
        let (start, end) = self.calendar.utc_bounds(self.target.dates);
        let mut partitions = self
            .deps
            .lake
            .list_partitions(self.target.frame, &[self.symbol])
            .await?;
        partitions.retain(|p| {
            p.key.dates().is_some_and(|d| {
                d.start() <= self.target.dates.end() && self.target.dates.start() <= d.end()
            })
        });
        partitions.sort_by_key(|p| p.key);
        // The partitions decode in parallel (each read runs on a blocking thread); the
        // symbol's bars are then put together once, in partition order.
        let reads = partitions
            .iter()
            .map(|p| self.deps.lake.read_partition_as_stored(&p.key));
        let stored = futures::future::try_join_all(reads).await?;
        let mut bars = Vec::with_capacity(stored.iter().map(Vec::len).sum());
        for part in stored {
            bars.extend(part.into_iter().filter(|b| start <= b.ts && b.ts < end));
        }
        Ok(bars)
    }
}
