//! The coverage map, job owners and heartbeats, retention and the read-only schema check,
//! against real database files.

#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use marketpipe_domain::{
    CoverageState, DateRange, IngestionJob, JobId, JobKind, JobOwner, JobSpec, JobState,
    SessionCoverage, SessionKind, Symbol, Timestamp, TradingCalendar,
};
use marketpipe_ports::{
    CoverageQuery, CoverageRepository, JobRepository, MetadataRetention, MetricSample,
    MetricsRepository,
};
use marketpipe_sqlite::SqliteStore;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn entry(symbol: &str, day: &str, bars: u32, feed: Option<&str>) -> SessionCoverage {
    let session = TradingCalendar::xnys().session(date(day)).unwrap().unwrap();
    SessionCoverage::answered(
        "alpaca",
        feed,
        Symbol::new(symbol).unwrap(),
        &session,
        SessionKind::Regular,
        bars,
        Some(JobId::new("j1").unwrap()),
        Timestamp::from_nanos(1_710_000_000_000_000_000),
    )
}

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("marketpipe.db"))
        .await
        .unwrap()
}

#[tokio::test]
async fn coverage_round_trips_filters_keeps_answers_over_failures_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let entries = [
        entry("AAPL", "2024-03-04", 390, Some("iex")),
        entry("AAPL", "2024-03-05", 380, Some("iex")),
        entry("MSFT", "2024-03-04", 0, Some("iex")),
        entry("MSFT", "2024-03-04", 390, None),
    ];
    store.record_coverage(&entries).await.unwrap();
    let all = store.coverage(&CoverageQuery::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], entries[0], "every field round-trips");
    let iex = store
        .coverage(&CoverageQuery {
            provider: Some("alpaca".into()),
            feed: Some("iex".into()),
            symbols: vec![Symbol::new("MSFT").unwrap()],
            dates: Some(DateRange::parse("2024-03-01", "2024-03-31").unwrap()),
        })
        .await
        .unwrap();
    assert_eq!(iex.len(), 1);
    assert_eq!(iex[0].state, CoverageState::EmptyConfirmed);
    let no_feed = store
        .coverage(&CoverageQuery {
            provider: Some("alpaca".into()),
            feed: None,
            ..CoverageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(no_feed.len(), 1);
    assert_eq!(no_feed[0].feed, None);
    assert_eq!(entries[1].state, CoverageState::Partial);
    assert_eq!(all[1].missing_minutes(), 10);

    // A failure does not replace an answer; it does replace a failure; an answer replaces it.
    let session = TradingCalendar::xnys()
        .session(date("2024-03-04"))
        .unwrap()
        .unwrap();
    let failed = |error: &str| {
        SessionCoverage::failed(
            "alpaca",
            Some("iex"),
            Symbol::new("AAPL").unwrap(),
            &session,
            SessionKind::Regular,
            error,
            None,
            Timestamp::from_nanos(1_720_000_000_000_000_000),
        )
    };
    store.record_coverage(&[failed("503")]).await.unwrap();
    let aapl = |store: &SqliteStore| {
        let store = store.clone();
        async move {
            store
                .coverage(&CoverageQuery {
                    symbols: vec![Symbol::new("AAPL").unwrap()],
                    dates: Some(DateRange::parse("2024-03-04", "2024-03-04").unwrap()),
                    ..CoverageQuery::default()
                })
                .await
                .unwrap()
                .remove(0)
        }
    };
    assert_eq!(aapl(&store).await.state, CoverageState::Filled);
    let cut = date("2024-03-05");
    let dry = store.prune_coverage(&[], cut, true).await.unwrap();
    assert_eq!(dry.entries, 3, "the 2024-03-04 rows");
    assert_eq!(
        store
            .coverage(&CoverageQuery::default())
            .await
            .unwrap()
            .len(),
        4
    );
    let pruned = store
        .prune_coverage(&[Symbol::new("MSFT").unwrap()], cut, false)
        .await
        .unwrap();
    assert_eq!(pruned.entries, 2);
    let left = store.coverage(&CoverageQuery::default()).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|e| e.symbol.as_str() == "AAPL"));
}

fn job(id: &str) -> IngestionJob {
    let spec = JobSpec {
        provider: "fake".into(),
        feed: None,
        symbols: Symbol::parse_list("AAPL").unwrap(),
        dates: DateRange::parse("2024-03-04", "2024-03-08").unwrap(),
        session: SessionKind::Regular,
    };
    IngestionJob::with_items(
        JobId::new(id).unwrap(),
        spec.clone(),
        JobKind::Backfill,
        spec.plan(),
        Timestamp::from_nanos(1_000),
    )
}

#[tokio::test]
async fn jobs_keep_their_kind_owner_and_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut j = job("b1");
    store.create(&j).await.unwrap();
    j.start(Timestamp::from_nanos(2_000)).unwrap();
    let owner = JobOwner {
        host: "box".into(),
        pid: 4242,
        started_at: Timestamp::from_nanos(2_000),
    };
    j.claim(owner.clone(), Timestamp::from_nanos(2_000));
    store.save_state(&j).await.unwrap();
    store
        .heartbeat(j.id(), Timestamp::from_nanos(9_000))
        .await
        .unwrap();
    let got = store.get(j.id()).await.unwrap().unwrap();
    assert_eq!(got.kind(), JobKind::Backfill);
    assert_eq!(got.owner(), Some(&owner));
    assert_eq!(got.heartbeat_at(), Some(Timestamp::from_nanos(9_000)));
    let listed = store.list(5).await.unwrap();
    assert_eq!(listed[0].kind, JobKind::Backfill);
    assert_eq!(listed[0].owner.as_ref(), Some(&owner));
    // A finished job's heartbeat is not moved.
    j.cancel(Timestamp::from_nanos(10_000)).unwrap();
    store.save_state(&j).await.unwrap();
    store
        .heartbeat(j.id(), Timestamp::from_nanos(99_000))
        .await
        .unwrap();
    let got = store.get(j.id()).await.unwrap().unwrap();
    assert_eq!(got.state(), JobState::Cancelled);
    assert_eq!(got.heartbeat_at(), Some(Timestamp::from_nanos(2_000)));
}

#[tokio::test]
async fn retention_removes_only_old_finished_work_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut old = job("old");
    store.create(&old).await.unwrap();
    old.start(Timestamp::from_nanos(2_000)).unwrap();
    old.cancel(Timestamp::from_nanos(3_000)).unwrap();
    store.save_state(&old).await.unwrap();
    let mut running = job("running");
    store.create(&running).await.unwrap();
    running.start(Timestamp::from_nanos(2_000)).unwrap();
    store.save_state(&running).await.unwrap();
    let samples: Vec<MetricSample> = (0..2_000)
        .map(|i| MetricSample {
            name: "ingest_bars_total".into(),
            labels: vec![("job".into(), "old".into())],
            value: f64::from(i),
            at: Timestamp::from_nanos(5_000 + i64::from(i)),
        })
        .collect();
    store.record(&samples).await.unwrap();
    let cut = Timestamp::from_nanos(6_000);
    let dry = store.prune_metadata(cut, true).await.unwrap();
    assert_eq!((dry.jobs, dry.work_items, dry.metrics), (1, 1, 1_000));
    assert_eq!(
        store.list(10).await.unwrap().len(),
        2,
        "a dry run removes nothing"
    );
    let jobs_only = store
        .prune_jobs(Timestamp::from_nanos(1_000), false)
        .await
        .unwrap();
    assert_eq!(jobs_only.jobs, 0, "finished at 3000, after that cut");
    let done = store.prune_metadata(cut, false).await.unwrap();
    assert_eq!((done.jobs, done.metrics), (1, 1_000));
    let left = store.list(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].id.as_str(),
        "running",
        "a running job is never pruned"
    );
    assert_eq!(
        store
            .history("ingest_bars_total", Timestamp::EPOCH)
            .await
            .unwrap()
            .len(),
        1_000
    );
}

#[tokio::test]
async fn schema_status_reads_without_creating_or_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marketpipe.db");
    assert!(SqliteStore::schema_status(&path).await.unwrap().is_none());
    assert!(!path.exists(), "never created");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let status = SqliteStore::schema_status(&path).await.unwrap().unwrap();
    assert!(status.is_current(), "{status:?}");
    assert_eq!(status.applied, [1, 2, 3, 4, 5]);
    // Forget migration 4 as an older mp would have: pending, not applied by the check.
    let raw =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 4")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let status = SqliteStore::schema_status(&path).await.unwrap().unwrap();
    assert_eq!(status.pending, [4]);
    assert!(!status.is_current());
    let again = SqliteStore::schema_status(&path).await.unwrap().unwrap();
    assert_eq!(again.pending, [4], "the check applied nothing");
    let read_only = SqliteStore::open_read_only(&path).await.unwrap().unwrap();
    assert!(
        read_only
            .heartbeat(&JobId::new("x").unwrap(), Timestamp::EPOCH)
            .await
            .is_err(),
        "a read-only store refuses writes"
    );
}
