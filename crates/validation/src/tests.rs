//! Runner tests against in-memory fakes of the ports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use marketpipe_domain::{
    Bar, DateRange, DomainEvent, IngestionJob, JobId, JobSpec, Price, RuleId, SessionKind,
    Severity, Symbol, Timeframe, Timestamp, TradingCalendar,
};
use marketpipe_ports::{
    BarBatchStream, BarQuery, BarStore, CollectingPublisher, FixedClock, IntegrityReport,
    LakeError, MockJobRepository, PartitionInfo, PartitionKey, ReportSummary, RepositoryError,
    ValidationReport, ValidationReportRepository, WriteMeta, WriteOutcome,
};

use crate::{ValidationDeps, ValidationError, ValidationTarget, Validator};

#[derive(Debug, Default)]
struct MemLake {
    parts: BTreeMap<PartitionKey, Vec<Bar>>,
    corrupt: Option<PartitionKey>,
}

#[async_trait]
impl BarStore for MemLake {
    async fn write_partition(
        &self,
        _k: &PartitionKey,
        _b: &[Bar],
        _m: &WriteMeta,
    ) -> Result<WriteOutcome, LakeError> {
        Err(LakeError::InvalidBars {
            partition: "read-only".into(),
            message: "test lake".into(),
        })
    }
    async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        self.read_partition_as_stored(key).await
    }
    async fn read_partition_as_stored(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        if self.corrupt == Some(*key) {
            return Err(LakeError::Corrupt {
                path: format!("lake/{key}/part-0.parquet"),
                message: "bad footer".into(),
                source: None,
            });
        }
        Ok(self.parts.get(key).cloned().unwrap_or_default())
    }
    async fn read_bars(&self, _q: &BarQuery) -> Result<BarBatchStream, LakeError> {
        Ok(Box::pin(futures::stream::empty()))
    }
    async fn list_partitions(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError> {
        Ok(self
            .parts
            .keys()
            .filter(|k| k.frame == frame && (symbols.is_empty() || symbols.contains(&k.symbol)))
            .map(|k| PartitionInfo {
                key: *k,
                path: k.to_string(),
                bytes: 1,
            })
            .collect())
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
        _key: &PartitionKey,
    ) -> Result<Option<marketpipe_ports::PartitionDigest>, LakeError> {
        Ok(None)
    }
    async fn prune_partition(
        &self,
        _key: &PartitionKey,
        _cut: Timestamp,
        _dry_run: bool,
    ) -> Result<marketpipe_ports::PruneOutcome, LakeError> {
        Ok(marketpipe_ports::PruneOutcome::Untouched)
    }
}

#[derive(Debug, Default)]
struct MemReports(Mutex<BTreeMap<String, ValidationReport>>);

#[async_trait]
impl ValidationReportRepository for MemReports {
    async fn save(&self, report: &ValidationReport) -> Result<ReportSummary, RepositoryError> {
        self.0.lock().unwrap().insert(report.name(), report.clone());
        Ok(report.summary())
    }
    async fn list(&self) -> Result<Vec<ReportSummary>, RepositoryError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .map(ValidationReport::summary)
            .collect())
    }
    async fn get(&self, name: &str) -> Result<Option<ValidationReport>, RepositoryError> {
        Ok(self.0.lock().unwrap().get(name).cloned())
    }
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// Full regular sessions of `dates` for `symbol`, flat prices.
fn clean_bars(symbol: Symbol, dates: DateRange) -> Vec<Bar> {
    let p = Price::from_raw(100_000_000_000).unwrap();
    let hi = Price::from_raw(100_500_000_000).unwrap();
    let lo = Price::from_raw(99_500_000_000).unwrap();
    let mut out = Vec::new();
    for s in TradingCalendar::xnys().sessions(dates).unwrap() {
        let mut ts = s.open;
        let mut m = 0u64;
        while ts < s.close {
            out.push(Bar::new(symbol, ts, p, hi, lo, p, 1_000 + (m % 7) * 100));
            ts = ts.saturating_add_nanos(60_000_000_000);
            m += 1;
        }
    }
    out
}

fn lake_with(symbols: &[&str], dates: DateRange) -> MemLake {
    let mut lake = MemLake::default();
    for s in symbols {
        for b in clean_bars(sym(s), dates) {
            lake.parts
                .entry(PartitionKey::for_bar(Timeframe::M1, b.symbol, b.ts))
                .or_default()
                .push(b);
        }
    }
    lake
}

struct Harness {
    reports: Arc<MemReports>,
    events: Arc<CollectingPublisher>,
}

fn validator(lake: MemLake, jobs: MockJobRepository) -> (Validator, Harness) {
    let reports = Arc::new(MemReports::default());
    let events = Arc::new(CollectingPublisher::default());
    let deps = ValidationDeps {
        lake: Arc::new(lake),
        reports: vec![reports.clone()],
        jobs: Arc::new(jobs),
        events: events.clone(),
        clock: Arc::new(FixedClock(Timestamp::from_nanos(1))),
    };
    (
        Validator::new(deps, marketpipe_domain::ValidationThresholds::default(), 2),
        Harness { reports, events },
    )
}

#[tokio::test]
async fn clean_lake_has_no_findings_and_reports_are_saved() {
    let dates = DateRange::parse("2024-01-02", "2024-02-29").unwrap();
    let (v, h) = validator(
        lake_with(&["AAPL", "MSFT"], dates),
        MockJobRepository::new(),
    );
    let target = ValidationTarget::for_range(
        Symbol::parse_list("AAPL,MSFT").unwrap(),
        dates,
        SessionKind::Regular,
    )
    .unwrap();
    assert_eq!(target.run_id.as_str(), "range-20240102-20240229");
    let run = v.run(&target).await.unwrap();
    assert_eq!(run.bars, 2 * 41 * 390);
    assert!(run.counts.is_empty(), "{:?}", run.counts);
    assert_eq!(run.failures().count(), 0);
    let names: Vec<String> = h.reports.0.lock().unwrap().keys().cloned().collect();
    assert_eq!(
        names,
        [
            "range-20240102-20240229_AAPL",
            "range-20240102-20240229_MSFT"
        ]
    );
    assert!(matches!(
        h.events.events()[0],
        DomainEvent::ValidationCompleted {
            errors: 0,
            warnings: 0,
            ..
        }
    ));
    assert!(run.bars_per_second() > 0.0);
}

#[tokio::test]
async fn findings_are_counted_and_bars_outside_the_dates_ignored() {
    let dates = DateRange::parse("2024-01-02", "2024-01-31").unwrap();
    let mut lake = lake_with(&["AAPL"], dates);
    let key = *lake.parts.keys().next().unwrap();
    let bars = lake.parts.get_mut(&key).unwrap();
    let dup = bars[10];
    bars.insert(11, dup);
    bars[20].high = Price::from_raw(99_000_000_000).unwrap();
    let (v, h) = validator(lake, MockJobRepository::new());
    // Only the first week: the rest of January is outside the dates and ignored.
    let week = DateRange::parse("2024-01-02", "2024-01-05").unwrap();
    let target =
        ValidationTarget::for_range(vec![sym("AAPL")], week, SessionKind::Regular).unwrap();
    let run = v.run(&target).await.unwrap();
    assert_eq!(run.bars, 4 * 390 + 1);
    assert_eq!(
        run.counts.get(&(RuleId::DuplicateTs, Severity::Error)),
        Some(&1)
    );
    assert_eq!(
        run.counts.get(&(RuleId::HighBelowLow, Severity::Error)),
        Some(&1)
    );
    assert_eq!(run.count(Severity::Error), 2);
    let report = h
        .reports
        .0
        .lock()
        .unwrap()
        .get("range-20240102-20240105_AAPL")
        .cloned()
        .unwrap();
    assert_eq!(report.findings.len(), 2);
    assert_eq!(report.bars_checked, 4 * 390 + 1);
}

#[tokio::test]
async fn an_unreadable_partition_fails_its_symbol_only() {
    let dates = DateRange::parse("2024-01-02", "2024-01-31").unwrap();
    let mut lake = lake_with(&["AAPL", "MSFT"], dates);
    lake.corrupt = Some(PartitionKey::for_date(
        Timeframe::M1,
        sym("MSFT"),
        dates.start(),
    ));
    let (v, h) = validator(lake, MockJobRepository::new());
    let target = ValidationTarget::for_range(
        Symbol::parse_list("AAPL,MSFT").unwrap(),
        dates,
        SessionKind::Regular,
    )
    .unwrap();
    let run = v.run(&target).await.unwrap();
    let failed: Vec<&str> = run.failures().map(|s| s.symbol.as_str()).collect();
    assert_eq!(failed, ["MSFT"]);
    assert!(
        run.symbols[1]
            .error
            .as_deref()
            .unwrap()
            .contains("lake/1m/MSFT/2024-01/part-0.parquet")
    );
    assert!(run.symbols[0].report.is_some());
    match &h.events.events()[0] {
        DomainEvent::ValidationFailed { reason, .. } => {
            assert!(reason.contains("MSFT"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_job_target_uses_the_jobs_symbols_dates_and_session() {
    let spec = JobSpec {
        provider: "fake".into(),
        feed: None,
        symbols: vec![sym("AAPL")],
        dates: DateRange::parse("2024-01-02", "2024-01-03").unwrap(),
        session: SessionKind::Extended,
    };
    let job = IngestionJob::new(JobId::new("job1").unwrap(), spec, Timestamp::EPOCH);
    let mut jobs = MockJobRepository::new();
    jobs.expect_get()
        .returning(move |id| Ok((id.as_str() == "job1").then(|| job.clone())));
    let (v, _h) = validator(MemLake::default(), jobs);
    let t = v
        .target_for_job(&JobId::new("job1").unwrap())
        .await
        .unwrap();
    assert_eq!(t.run_id.as_str(), "job1");
    assert_eq!(t.session, SessionKind::Extended);
    assert!(matches!(
        v.target_for_job(&JobId::new("nope").unwrap()).await,
        Err(ValidationError::JobNotFound(_))
    ));
    // No bars at all: both sessions are missing.
    let run = v.run(&t).await.unwrap();
    assert_eq!(
        run.counts.get(&(RuleId::MissingSession, Severity::Error)),
        Some(&2)
    );
    let bad = ValidationTarget::for_range(
        vec![sym("AAPL")],
        DateRange::parse("1990-01-02", "1990-01-03").unwrap(),
        SessionKind::Regular,
    )
    .unwrap();
    assert!(matches!(v.run(&bad).await, Err(ValidationError::Domain(_))));
}
