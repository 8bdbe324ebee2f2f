//! Runner tests on the real Parquet lake and SQLite manifest, with fixed 2024 dates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use marketpipe_domain::{
    Bar, DateRange, DomainEvent, Price, SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar,
    resample,
};
use marketpipe_fake::FakeProvider;
use marketpipe_parquet::{LakeOptions, ParquetLake};
use marketpipe_ports::{
    BarBatchStream, BarQuery, BarStore, CollectingPublisher, FixedClock, IntegrityReport,
    LakeError, PartitionInfo, PartitionKey, PartitionManifest, PartitionRecord, WriteMeta,
    WriteOutcome,
};
use marketpipe_sqlite::SqliteStore;

use super::*;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn month(year: i32, m: u32) -> DateRange {
    let start = chrono::NaiveDate::from_ymd_opt(year, m, 1).unwrap();
    DateRange::new(start, marketpipe_domain::time::last_day_of_month(start)).unwrap()
}

struct Harness {
    _dir: tempfile::TempDir,
    root: PathBuf,
    lake: Arc<ParquetLake>,
    store: Arc<SqliteStore>,
    events: Arc<CollectingPublisher>,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        let lake = Arc::new(ParquetLake::new(&root, LakeOptions::default()));
        let store = Arc::new(SqliteStore::open(&dir.path().join("mp.db")).await.unwrap());
        Self {
            _dir: dir,
            root,
            lake,
            store,
            events: Arc::new(CollectingPublisher::default()),
        }
    }

    fn aggregator(&self, lake: Arc<dyn BarStore>) -> Aggregator {
        Aggregator::new(
            AggregateDeps {
                lake,
                manifest: self.store.clone(),
                events: self.events.clone(),
                clock: Arc::new(FixedClock(
                    Timestamp::parse_rfc3339("2026-11-27T12:00:00Z").unwrap(),
                )),
            },
            AggregateOptions { concurrency: 2 },
        )
    }

    async fn run(&self, request: &AggregateRequest) -> AggregationReport {
        self.aggregator(self.lake.clone())
            .run(request, Arc::new(NoProgress))
            .await
            .unwrap()
    }

    /// Writes and records one month of fake 1m bars, as ingestion does; `bump` changes
    /// every close by that many cents.
    async fn ingest(&self, symbol: &str, year: i32, m: u32, bump: i64) -> Vec<Bar> {
        let symbol = sym(symbol);
        let sessions = TradingCalendar::xnys().sessions(month(year, m)).unwrap();
        let fake = FakeProvider::new();
        let mut bars: Vec<Bar> = sessions
            .iter()
            .flat_map(|s| fake.session_bars(symbol, s, SessionKind::Regular))
            .collect();
        for bar in &mut bars {
            let close = bar.close.raw() + bump * 10_000_000;
            bar.close = Price::from_raw(close).unwrap();
            bar.high = Price::from_raw(bar.high.raw().max(close)).unwrap();
            bar.low = Price::from_raw(bar.low.raw().min(close)).unwrap();
        }
        let key = PartitionKey::for_date(Timeframe::M1, symbol, month(year, m).start());
        let meta = WriteMeta {
            provider: "fake".into(),
            feed: None,
            origin: marketpipe_ports::BarOrigin::Provider,
            ingested_at: Timestamp::parse_rfc3339("2026-11-27T11:00:00Z").unwrap(),
            job_id: None,
        };
        let outcome = self.lake.write_partition(&key, &bars, &meta).await.unwrap();
        self.store
            .record(&PartitionRecord {
                key,
                path: outcome.path,
                rows: outcome.rows,
                min_ts: outcome.min_ts,
                max_ts: outcome.max_ts,
                content_hash: outcome.content_hash,
                job_id: None,
                written_at: meta.ingested_at,
                format_version: outcome.format_version,
            })
            .await
            .unwrap();
        bars
    }

    /// A hash of every frame file's bytes, by path relative to the lake: change detection by
    /// content, not modification times (no sleep to tell two writes apart).
    fn frame_files(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out.retain(|path, _| !path.starts_with("frame=1m/"));
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&std::fs::read(&path).unwrap(), &mut hasher);
            out.insert(rel, std::hash::Hasher::finish(&hasher));
        }
    }
}

#[tokio::test]
async fn builds_every_frame_equal_to_the_domain_resample() {
    let h = Harness::new().await;
    let jan = h.ingest("AAPL", 2024, 1, 0).await;
    let feb = h.ingest("AAPL", 2024, 2, 0).await;
    let report = h.run(&AggregateRequest::incremental()).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.sources_read, 2);
    assert_eq!(report.source_bars, (jan.len() + feb.len()) as u64);
    // 5m and 15m: one file per month; 1h and 1d: one file for the year.
    assert_eq!(report.per_frame[&Timeframe::M5].partitions_written, 2);
    assert_eq!(report.per_frame[&Timeframe::M15].partitions_written, 2);
    assert_eq!(report.per_frame[&Timeframe::H1].partitions_written, 1);
    assert_eq!(report.per_frame[&Timeframe::D1].partitions_written, 1);
    let all: Vec<Bar> = jan.iter().chain(&feb).copied().collect();
    for frame in Timeframe::DEFAULT_AGGREGATES {
        let expected = resample(&all, frame).unwrap();
        let stored = h
            .lake
            .read_partition(&PartitionKey::for_date(
                frame,
                sym("AAPL"),
                month(2024, 1).start(),
            ))
            .await
            .unwrap();
        let stored = if frame.partition_period() == marketpipe_domain::PartitionPeriod::Month {
            let mut both = stored;
            both.extend(
                h.lake
                    .read_partition(&PartitionKey::for_date(
                        frame,
                        sym("AAPL"),
                        month(2024, 2).start(),
                    ))
                    .await
                    .unwrap(),
            );
            both
        } else {
            stored
        };
        assert_eq!(stored, expected, "{frame}");
    }
    // 21 + 20 sessions in January and February 2024; a full session has 78 5m bars.
    let d1 = h
        .lake
        .read_partition(&PartitionKey::for_date(
            Timeframe::D1,
            sym("AAPL"),
            month(2024, 1).start(),
        ))
        .await
        .unwrap();
    assert_eq!(d1.len(), 41);
    assert_eq!(report.per_frame[&Timeframe::M5].bars_computed, 41 * 78);
    // The frame partitions are in the manifest.
    assert_eq!(h.store.list(Timeframe::H1, &[]).await.unwrap().len(), 1);
    assert!(matches!(
        h.events.events().last(),
        Some(DomainEvent::AggregationCompleted { partitions: 6, .. })
    ));
}

#[tokio::test]
async fn a_second_run_reads_nothing_and_a_change_rewrites_only_its_partitions() {
    let h = Harness::new().await;
    for symbol in ["AAPL", "MSFT"] {
        for m in 1..=4 {
            h.ingest(symbol, 2024, m, 0).await;
        }
    }
    let first = h.run(&AggregateRequest::incremental()).await;
    assert_eq!(first.sources_read, 8);
    let before = h.frame_files();
    assert_eq!(before.len(), 2 * (4 + 4 + 1 + 1));

    let again = h.run(&AggregateRequest::incremental()).await;
    assert_eq!(again.sources_read, 0);
    assert_eq!(again.sources_up_to_date, 8);
    assert_eq!(again.partitions_written(), 0);

    // A new MSFT March: only MSFT's March 5m/15m files and its yearly 1h/1d files change.
    h.ingest("MSFT", 2024, 3, 5).await;
    let third = h.run(&AggregateRequest::incremental()).await;
    assert_eq!(third.sources_read, 1);
    assert_eq!(third.partitions_written(), 4);
    let after = h.frame_files();
    let changed: Vec<&String> = after
        .iter()
        .filter(|(path, hash)| before.get(*path) != Some(hash))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        changed,
        [
            "frame=15m/symbol=MSFT/year=2024/month=3/part-0.parquet",
            "frame=1d/symbol=MSFT/year=2024/part-0.parquet",
            "frame=1h/symbol=MSFT/year=2024/part-0.parquet",
            "frame=5m/symbol=MSFT/year=2024/month=3/part-0.parquet",
        ]
    );
    // The rewritten yearly file still holds every month, with March's new closes.
    let h1 = h
        .lake
        .read_partition(&PartitionKey::for_date(
            Timeframe::H1,
            sym("MSFT"),
            month(2024, 1).start(),
        ))
        .await
        .unwrap();
    let sessions = TradingCalendar::xnys()
        .sessions(DateRange::new(month(2024, 1).start(), month(2024, 4).end()).unwrap())
        .unwrap();
    assert_eq!(h1.len(), sessions.len() * 7);
}

#[tokio::test]
async fn full_rebuilds_and_includes_unrecorded_files() {
    let h = Harness::new().await;
    h.ingest("AAPL", 2024, 1, 0).await;
    // A 1m file the manifest does not know (written by another tool).
    let symbol = sym("IBM");
    let session = TradingCalendar::xnys()
        .sessions(month(2024, 1))
        .unwrap()
        .remove(0);
    let bars = FakeProvider::new().session_bars(symbol, &session, SessionKind::Regular);
    let key = PartitionKey::for_date(Timeframe::M1, symbol, session.date);
    let meta = WriteMeta {
        provider: "other".into(),
        feed: None,
        origin: marketpipe_ports::BarOrigin::Provider,
        ingested_at: Timestamp::EPOCH,
        job_id: None,
    };
    h.lake.write_partition(&key, &bars, &meta).await.unwrap();

    let incremental = h.run(&AggregateRequest::incremental()).await;
    assert_eq!(incremental.sources_read, 1, "only the recorded AAPL month");
    let full = h
        .run(&AggregateRequest {
            full: true,
            ..AggregateRequest::incremental()
        })
        .await;
    assert_eq!(full.sources_read, 2);
    // AAPL's frames were equal: left alone. IBM's are new.
    assert_eq!(full.per_frame[&Timeframe::M5].partitions_unchanged, 1);
    assert_eq!(full.per_frame[&Timeframe::M5].partitions_written, 1);
    let ibm_1d = h
        .lake
        .read_partition(&PartitionKey::for_date(Timeframe::D1, symbol, session.date))
        .await
        .unwrap();
    assert_eq!(ibm_1d.len(), 1);
    assert_eq!(ibm_1d[0].volume, bars.iter().map(|b| b.volume).sum::<u64>());
}

#[tokio::test]
async fn symbols_and_dates_narrow_the_run() {
    let h = Harness::new().await;
    for m in 1..=3 {
        h.ingest("AAPL", 2024, m, 0).await;
        h.ingest("MSFT", 2024, m, 0).await;
    }
    let request = AggregateRequest {
        frames: vec![Timeframe::M30, Timeframe::H4],
        symbols: vec![sym("MSFT")],
        dates: Some(DateRange::parse("2024-02-10", "2024-03-05").unwrap()),
        full: false,
    };
    let report = h.run(&request).await;
    assert_eq!(report.sources_read, 2, "MSFT February and March");
    assert_eq!(report.frames, [Timeframe::M30, Timeframe::H4]);
    let files = h.frame_files();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "frame=30m/symbol=MSFT/year=2024/month=2/part-0.parquet",
            "frame=30m/symbol=MSFT/year=2024/month=3/part-0.parquet",
            "frame=4h/symbol=MSFT/year=2024/part-0.parquet",
        ]
    );
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_work() {
    let h = Harness::new().await;
    let agg = h.aggregator(h.lake.clone());
    let run = |frames: Vec<Timeframe>| {
        let agg = agg.clone();
        async move {
            agg.run(
                &AggregateRequest {
                    frames,
                    ..AggregateRequest::incremental()
                },
                Arc::new(NoProgress),
            )
            .await
        }
    };
    assert!(matches!(run(vec![]).await, Err(AggregateError::NoFrames)));
    let err = run(vec![Timeframe::M1, Timeframe::M5]).await.unwrap_err();
    assert!(err.to_string().contains("cannot aggregate to 1m"), "{err}");
    let zero = Aggregator::new(
        AggregateDeps {
            lake: h.lake.clone(),
            manifest: h.store.clone(),
            events: h.events.clone(),
            clock: Arc::new(FixedClock(Timestamp::EPOCH)),
        },
        AggregateOptions { concurrency: 0 },
    );
    assert!(matches!(
        zero.run(&AggregateRequest::incremental(), Arc::new(NoProgress))
            .await,
        Err(AggregateError::BadConcurrency)
    ));
    assert!(h.events.events().is_empty());
}

/// A lake whose reads of one symbol fail.
#[derive(Debug)]
struct FailingReads {
    inner: Arc<ParquetLake>,
    symbol: Symbol,
}

#[async_trait]
impl BarStore for FailingReads {
    async fn write_partition(
        &self,
        key: &PartitionKey,
        bars: &[Bar],
        meta: &WriteMeta,
    ) -> Result<WriteOutcome, LakeError> {
        self.inner.write_partition(key, bars, meta).await
    }
    async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        if key.symbol == self.symbol {
            return Err(LakeError::Corrupt {
                path: format!("{key}"),
                message: "unreadable for the test".into(),
                source: None,
            });
        }
        self.inner.read_partition(key).await
    }
    async fn read_partition_as_stored(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        self.inner.read_partition_as_stored(key).await
    }
    async fn read_partition_sourced(
        &self,
        key: &PartitionKey,
    ) -> Result<marketpipe_ports::SourcedBars, LakeError> {
        if key.symbol == self.symbol {
            return Err(LakeError::Corrupt {
                path: format!("{key}"),
                message: "unreadable for the test".into(),
                source: None,
            });
        }
        self.inner.read_partition_sourced(key).await
    }
    async fn read_bars(&self, query: &BarQuery) -> Result<BarBatchStream, LakeError> {
        self.inner.read_bars(query).await
    }
    async fn list_partitions(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError> {
        self.inner.list_partitions(frame, symbols).await
    }
    async fn check_integrity(
        &self,
        frame: Option<Timeframe>,
        depth: marketpipe_ports::IntegrityDepth,
    ) -> Result<IntegrityReport, LakeError> {
        self.inner.check_integrity(frame, depth).await
    }
    async fn list_formats(
        &self,
        frame: Option<Timeframe>,
    ) -> Result<Vec<marketpipe_ports::StoredFormat>, LakeError> {
        self.inner.list_formats(frame).await
    }
    async fn upgrade_partition(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<WriteOutcome>, LakeError> {
        self.inner.upgrade_partition(key).await
    }
    async fn mark_format_current(&self) -> Result<(), LakeError> {
        self.inner.mark_format_current().await
    }
    async fn clean_orphans(
        &self,
        remove: bool,
    ) -> Result<Vec<marketpipe_ports::OrphanFile>, LakeError> {
        self.inner.clean_orphans(remove).await
    }
    async fn partition_digest(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<marketpipe_ports::PartitionDigest>, LakeError> {
        self.inner.partition_digest(key).await
    }
    async fn prune_partition(
        &self,
        key: &PartitionKey,
        cut: Timestamp,
        dry_run: bool,
    ) -> Result<marketpipe_ports::PruneOutcome, LakeError> {
        self.inner.prune_partition(key, cut, dry_run).await
    }
}

#[derive(Default)]
struct CountingProgress {
    seen: Mutex<Vec<String>>,
}

impl AggregateProgress for CountingProgress {
    fn planned(&self, units: usize, sources: usize) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("plan {units} {sources}"));
    }
    fn unit_finished(&self, symbol: &Symbol, year: i32, report: &AggregationReport) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{symbol} {year} {}", report.failures.len()));
    }
}

#[tokio::test]
async fn a_failing_unit_is_reported_and_stays_stale() {
    let h = Harness::new().await;
    h.ingest("AAPL", 2024, 1, 0).await;
    h.ingest("MSFT", 2024, 1, 0).await;
    let failing = Arc::new(FailingReads {
        inner: h.lake.clone(),
        symbol: sym("MSFT"),
    });
    let progress = Arc::new(CountingProgress::default());
    let report = h
        .aggregator(failing)
        .run(&AggregateRequest::incremental(), progress.clone())
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!((failure.symbol, failure.year), (sym("MSFT"), 2024));
    assert!(
        matches!(
            failure.error,
            AggregateError::Lake(LakeError::Corrupt { .. })
        ),
        "{failure:?}"
    );
    assert!(
        failure.to_string().starts_with("MSFT 2024: lake:"),
        "{failure}"
    );
    assert!(matches!(
        h.events.events().last(),
        Some(DomainEvent::AggregationFailed { .. })
    ));
    let mut seen = progress.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["AAPL 2024 0", "MSFT 2024 1", "plan 2 2"]);
    // The next (healthy) run picks up exactly what failed.
    let retry = h.run(&AggregateRequest::incremental()).await;
    assert_eq!(retry.sources_read, 1);
    assert!(retry.failures.is_empty());
}

#[tokio::test]
async fn aggregated_bars_keep_their_1m_provider_and_say_mixed_when_it_differs() {
    let h = Harness::new().await;
    let symbol = sym("IBM");
    let session = TradingCalendar::xnys()
        .sessions(month(2024, 1))
        .unwrap()
        .remove(0);
    let bars = FakeProvider::new().session_bars(symbol, &session, SessionKind::Regular);
    let key = PartitionKey::for_date(Timeframe::M1, symbol, session.date);
    let meta = |provider: &str, feed: Option<&str>| WriteMeta {
        provider: provider.into(),
        feed: feed.map(Into::into),
        origin: marketpipe_ports::BarOrigin::Provider,
        ingested_at: Timestamp::EPOCH,
        job_id: None,
    };
    // The first hour from Alpaca's IEX feed, the rest from Polygon (no feed).
    let (first_hour, rest) = bars.split_at(60);
    h.lake
        .write_partition(&key, first_hour, &meta("alpaca", Some("iex")))
        .await
        .unwrap();
    h.lake
        .write_partition(&key, rest, &meta("polygon", None))
        .await
        .unwrap();
    h.run(&AggregateRequest {
        frames: vec![Timeframe::M5, Timeframe::D1],
        full: true,
        ..AggregateRequest::incremental()
    })
    .await;
    let five = PartitionKey::for_date(Timeframe::M5, symbol, session.date);
    let five = h.lake.read_partition_sourced(&five).await.unwrap();
    assert_eq!(five.bars.len(), 78);
    let source = |i: usize| {
        let s = five.source(i).unwrap();
        (s.provider.clone(), s.feed.clone())
    };
    assert_eq!(source(0), ("alpaca".into(), Some("iex".into())));
    assert_eq!(source(11), ("alpaca".into(), Some("iex".into())));
    assert_eq!(source(12), ("polygon".into(), None));
    let daily = PartitionKey::for_date(Timeframe::D1, symbol, session.date);
    let daily = h.lake.read_partition_sourced(&daily).await.unwrap();
    let day = daily.source(0).unwrap();
    assert_eq!(
        (day.provider.as_str(), day.feed.as_deref()),
        ("mixed", Some("mixed")),
        "a bar of two providers' 1m bars"
    );
}
