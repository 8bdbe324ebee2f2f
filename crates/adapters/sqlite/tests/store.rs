//! The SQLite store against real database files in temporary directories.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use marketpipe_domain::{
    DailySummary, DateRange, IngestionJob, JobId, JobSpec, JobState, Price, SessionKind, Symbol,
    Timeframe, Timestamp, WorkItemStatus,
};
use marketpipe_ports::{
    DailySummaryRepository, JobRepository, MetricSample, MetricsRepository, PartitionKey,
    PartitionManifest, PartitionRecord, RepositoryError, WorkItemRepository,
};
use marketpipe_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("meta").join("marketpipe.db")
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&db_path(dir)).await.unwrap()
}

/// A raw connection pool, for writing rows the store would never write.
async fn raw_pool(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}

fn job(id: &str, created: i64) -> IngestionJob {
    let spec = JobSpec {
        provider: "fake".into(),
        feed: Some("iex".into()),
        symbols: Symbol::parse_list("AAPL,BRK.B").unwrap(),
        dates: DateRange::parse("2024-01-02", "2024-03-15").unwrap(),
        session: SessionKind::Extended,
    };
    IngestionJob::new(JobId::new(id).unwrap(), spec, ts(created))
}

fn record(symbol: &str, month: u32, hash: &str) -> PartitionRecord {
    PartitionRecord {
        key: PartitionKey {
            frame: Timeframe::M1,
            symbol: sym(symbol),
            year: 2024,
            month: Some(month),
        },
        path: format!("frame=1m/symbol={symbol}/year=2024/month={month}/part-0.parquet"),
        rows: 7_800,
        min_ts: Some(ts(1_704_205_800_000_000_000)),
        max_ts: Some(ts(1_704_229_140_000_000_000)),
        content_hash: hash.into(),
        job_id: Some(JobId::new("job-1").unwrap()),
        written_at: ts(1_717_000_000_000_000_000),
        format_version: 2,
    }
}

fn summary(symbol: &str, day: u32, close: i64) -> DailySummary {
    DailySummary {
        symbol: sym(symbol),
        date: NaiveDate::from_ymd_opt(2024, 1, day).unwrap(),
        open: Price::from_raw(185_123_456_789).unwrap(),
        high: Price::from_raw(186_000_000_001).unwrap(),
        low: Price::from_raw(184_999_999_999).unwrap(),
        close: Price::from_raw(close).unwrap(),
        volume: 52_000_000,
        vwap: Some(Price::from_raw(185_500_000_003).unwrap()),
        bar_count: 390,
        trade_count: None,
    }
}

#[tokio::test]
async fn job_round_trip_keeps_every_field_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut job = job("job-1", 1_000);
    // 2 symbols x 3 months.
    assert_eq!(job.items().len(), 6);
    job.start(ts(2_000)).unwrap();
    job.begin_item(0).unwrap();
    job.complete_item(0, 7_800).unwrap();
    job.fail_item(1, "provider said no").unwrap();
    job.abort("stopped by a test", ts(3_000)).unwrap();
    store.create(&job).await.unwrap();

    let back = JobRepository::get(&store, job.id()).await.unwrap().unwrap();
    assert_eq!(back, job);
    assert_eq!(back.spec().feed.as_deref(), Some("iex"));
    assert_eq!(back.spec().session, SessionKind::Extended);
    assert_eq!(back.failure(), Some("stopped by a test"));
    assert_eq!(back.items()[1].error.as_deref(), Some("provider said no"));
    assert_eq!(back.items()[5].dates.to_string(), "2024-03-01..=2024-03-15");

    let missing = JobId::new("nope").unwrap();
    assert!(
        JobRepository::get(&store, &missing)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn creating_a_job_twice_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let job = job("dup", 1);
    store.create(&job).await.unwrap();
    let err = store.create(&job).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Conflict { message } if message.contains("dup")),
        "{err:?}"
    );
    // The failed attempt left the first job and its items as they were.
    assert_eq!(store.items(job.id()).await.unwrap().len(), 6);
}

#[tokio::test]
async fn save_state_updates_state_times_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut job = job("job-s", 10);
    store.create(&job).await.unwrap();
    job.start(ts(20)).unwrap();
    store.save_state(&job).await.unwrap();
    let back = JobRepository::get(&store, job.id()).await.unwrap().unwrap();
    assert_eq!(back.state(), JobState::Running);
    assert_eq!(back.started_at(), Some(ts(20)));
    assert_eq!(back.finished_at(), None);

    job.abort("disk full", ts(30)).unwrap();
    store.save_state(&job).await.unwrap();
    let back = JobRepository::get(&store, job.id()).await.unwrap().unwrap();
    assert_eq!(back.state(), JobState::Failed);
    assert_eq!(back.finished_at(), Some(ts(30)));
    assert_eq!(back.failure(), Some("disk full"));

    let unknown = self::job("ghost", 1);
    let err = store.save_state(&unknown).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::NotFound { entity: "job", key } if key == "ghost"),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_is_newest_first_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    assert!(JobRepository::list(&store, 10).await.unwrap().is_empty());
    let mut old = job("a-old", 100);
    let new_b = job("b-new", 200);
    let new_c = job("c-new", 200);
    store.create(&old).await.unwrap();
    store.create(&new_b).await.unwrap();
    store.create(&new_c).await.unwrap();
    old.start(ts(150)).unwrap();
    old.complete_item(0, 10).unwrap();
    old.complete_item(3, 32).unwrap();
    old.fail_item(4, "x").unwrap();
    for i in [0, 3, 4] {
        store.save_item(old.id(), &old.items()[i]).await.unwrap();
    }
    store.save_state(&old).await.unwrap();

    let list = JobRepository::list(&store, 10).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    // Newest first; equal times by id, descending.
    assert_eq!(ids, ["c-new", "b-new", "a-old"]);
    let s = &list[2];
    assert_eq!(s.provider, "fake");
    assert_eq!(s.state, JobState::Running);
    assert_eq!(s.symbols, 2);
    assert_eq!((s.items_done, s.items_total, s.bars), (2, 6, 42));
    assert_eq!(s.created_at, ts(100));
    assert_eq!(s.finished_at, None);
    assert_eq!((list[0].items_done, list[0].items_total), (0, 6));

    let two = JobRepository::list(&store, 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].id.as_str(), "b-new");
    assert!(JobRepository::list(&store, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn save_item_is_a_checkpoint_that_get_sees() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut job = job("job-c", 1);
    store.create(&job).await.unwrap();
    job.start(ts(2)).unwrap();
    job.begin_item(2).unwrap();
    store.save_item(job.id(), &job.items()[2]).await.unwrap();
    assert_eq!(
        store.items(job.id()).await.unwrap()[2].status,
        WorkItemStatus::Running
    );
    job.complete_item(2, 1_234).unwrap();
    store.save_item(job.id(), &job.items()[2]).await.unwrap();

    // A second store on the same file (another process, after a crash) sees the checkpoint.
    let other = SqliteStore::open(&db_path(&dir)).await.unwrap();
    let back = JobRepository::get(&other, job.id()).await.unwrap().unwrap();
    assert_eq!(back.items()[2].status, WorkItemStatus::Done);
    assert_eq!(back.items()[2].bars_written, 1_234);
    assert_eq!(back.items(), job.items());
    let items = other.items(job.id()).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );

    let ghost = JobId::new("ghost").unwrap();
    let err = store.save_item(&ghost, &job.items()[0]).await.unwrap_err();
    assert!(
        matches!(err, RepositoryError::NotFound { entity: "job", .. }),
        "{err:?}"
    );
    assert!(store.items(&ghost).await.unwrap().is_empty());
}

#[tokio::test]
async fn counts_beyond_i64_are_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let job = job("job-big", 1);
    store.create(&job).await.unwrap();
    let mut item = job.items()[0].clone();
    item.bars_written = u64::MAX;
    let err = store.save_item(job.id(), &item).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Backend { message, .. } if message.contains("bars_written")),
        "{err:?}"
    );
    assert_eq!(store.items(job.id()).await.unwrap()[0].bars_written, 0);
}

#[tokio::test]
async fn manifest_records_gets_lists_and_upserts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let msft_feb = record("MSFT", 2, "h1");
    let aapl_feb = record("AAPL", 2, "h2");
    let aapl_jan = record("AAPL", 1, "h3");
    let mut yearly = record("AAPL", 1, "h4");
    yearly.key = PartitionKey {
        frame: Timeframe::D1,
        month: None,
        ..yearly.key
    };
    yearly.min_ts = None;
    yearly.max_ts = None;
    yearly.job_id = None;
    for r in [&msft_feb, &aapl_feb, &aapl_jan, &yearly] {
        PartitionManifest::record(&store, r).await.unwrap();
    }

    assert_eq!(
        PartitionManifest::get(&store, &aapl_jan.key)
            .await
            .unwrap()
            .as_ref(),
        Some(&aapl_jan)
    );
    assert_eq!(
        PartitionManifest::get(&store, &yearly.key)
            .await
            .unwrap()
            .as_ref(),
        Some(&yearly)
    );
    let absent = PartitionKey {
        month: Some(12),
        ..aapl_jan.key
    };
    assert!(
        PartitionManifest::get(&store, &absent)
            .await
            .unwrap()
            .is_none()
    );

    let all = PartitionManifest::list(&store, Timeframe::M1, &[])
        .await
        .unwrap();
    assert_eq!(all, [aapl_jan.clone(), aapl_feb.clone(), msft_feb.clone()]);
    let keys: Vec<PartitionKey> = all.iter().map(|r| r.key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(
        PartitionManifest::list(&store, Timeframe::M1, &[sym("MSFT")])
            .await
            .unwrap(),
        [msft_feb]
    );
    assert!(
        PartitionManifest::list(&store, Timeframe::M1, &[sym("ZZZ")])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        PartitionManifest::list(&store, Timeframe::D1, &[])
            .await
            .unwrap(),
        [yearly.clone()]
    );

    let mut rewritten = aapl_jan.clone();
    rewritten.rows = 8_000;
    rewritten.content_hash = "h3b".into();
    rewritten.job_id = Some(JobId::new("job-2").unwrap());
    rewritten.written_at = ts(1_718_000_000_000_000_000);
    PartitionManifest::record(&store, &rewritten).await.unwrap();
    assert_eq!(
        PartitionManifest::get(&store, &aapl_jan.key)
            .await
            .unwrap()
            .as_ref(),
        Some(&rewritten)
    );
    assert_eq!(
        PartitionManifest::list(&store, Timeframe::M1, &[])
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn stale_until_marked_and_again_after_the_content_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let jan = record("AAPL", 1, "h1");
    let feb = record("AAPL", 2, "h2");
    PartitionManifest::record(&store, &jan).await.unwrap();
    PartitionManifest::record(&store, &feb).await.unwrap();
    // A 5m partition is never a source.
    let mut five = record("AAPL", 1, "h5");
    five.key.frame = Timeframe::M5;
    PartitionManifest::record(&store, &five).await.unwrap();

    assert_eq!(
        store.stale_for(Timeframe::M5).await.unwrap(),
        [jan.clone(), feb.clone()]
    );
    store
        .mark_aggregated(&jan.key, Timeframe::M5, "h1")
        .await
        .unwrap();
    assert_eq!(
        store.stale_for(Timeframe::M5).await.unwrap(),
        std::slice::from_ref(&feb)
    );
    // Marks are per target frame.
    assert_eq!(store.stale_for(Timeframe::H1).await.unwrap().len(), 2);
    // A mark with another hash does not count.
    store
        .mark_aggregated(&feb.key, Timeframe::M5, "old")
        .await
        .unwrap();
    assert_eq!(
        store.stale_for(Timeframe::M5).await.unwrap(),
        std::slice::from_ref(&feb)
    );
    store
        .mark_aggregated(&feb.key, Timeframe::M5, "h2")
        .await
        .unwrap();
    assert!(store.stale_for(Timeframe::M5).await.unwrap().is_empty());

    let mut jan2 = jan.clone();
    jan2.content_hash = "h1-new".into();
    PartitionManifest::record(&store, &jan2).await.unwrap();
    assert_eq!(
        store.stale_for(Timeframe::M5).await.unwrap(),
        [jan2.clone()]
    );
    store
        .mark_aggregated(&jan2.key, Timeframe::M5, "h1-new")
        .await
        .unwrap();
    assert!(store.stale_for(Timeframe::M5).await.unwrap().is_empty());
}

#[tokio::test]
async fn daily_summaries_upsert_replaces_and_list_filters_dates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.upsert(&[]).await.unwrap();
    let mut first: Vec<DailySummary> = (2..=12)
        .map(|d| summary("AAPL", d, 185_000_000_000 + i64::from(d)))
        .collect();
    first.push(summary("MSFT", 5, 370_000_000_000));
    first[0].trade_count = Some(612_345);
    first[0].vwap = None;
    store.upsert(&first).await.unwrap();

    let mut replacement = summary("AAPL", 5, 999_999_999_999);
    replacement.volume = u64::try_from(i64::MAX).unwrap();
    replacement.bar_count = 960;
    store.upsert(&[replacement]).await.unwrap();

    let range = DateRange::parse("2024-01-02", "2024-01-05").unwrap();
    let got = DailySummaryRepository::list(&store, sym("AAPL"), range)
        .await
        .unwrap();
    assert_eq!(got, [first[0], first[1], first[2], replacement]);
    let all = DailySummaryRepository::list(
        &store,
        sym("AAPL"),
        DateRange::parse("2024-01-01", "2024-12-31").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 11);
    assert!(all.windows(2).all(|w| w[0].date < w[1].date));
    assert_eq!(
        DailySummaryRepository::list(
            &store,
            sym("MSFT"),
            DateRange::parse("2024-01-05", "2024-01-05").unwrap()
        )
        .await
        .unwrap(),
        [first[11]]
    );

    // More rows than one statement takes: still all stored.
    let many: Vec<DailySummary> = (0..2_500)
        .map(|i| {
            let mut s = summary("SPY", 1, 470_000_000_000 + i);
            s.date = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
                + chrono::Days::new(u64::try_from(i).unwrap());
            s
        })
        .collect();
    store.upsert(&many).await.unwrap();
    let spy = DailySummaryRepository::list(
        &store,
        sym("SPY"),
        DateRange::parse("1999-01-01", "2030-01-01").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(spy, many);
}

#[tokio::test]
async fn metrics_record_history_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    assert!(store.names().await.unwrap().is_empty());
    let sample = |name: &str, value: f64, at: i64| MetricSample {
        name: name.into(),
        labels: vec![
            ("feed".into(), "iex".into()),
            ("provider".into(), "alpaca".into()),
        ],
        value,
        at: ts(at),
    };
    MetricsRepository::record(
        &store,
        &[
            sample("ingest_bars_total", 10.0, 300),
            sample("provider_requests_total", 1.0, 100),
            sample("ingest_bars_total", 5.5, 100),
        ],
    )
    .await
    .unwrap();
    MetricsRepository::record(
        &store,
        &[MetricSample {
            labels: Vec::new(),
            ..sample("ingest_bars_total", 7.0, 200)
        }],
    )
    .await
    .unwrap();
    MetricsRepository::record(&store, &[]).await.unwrap();

    let history = store.history("ingest_bars_total", ts(0)).await.unwrap();
    assert_eq!(
        history.iter().map(|s| (s.value, s.at)).collect::<Vec<_>>(),
        [(5.5, ts(100)), (7.0, ts(200)), (10.0, ts(300))]
    );
    assert_eq!(history[0], sample("ingest_bars_total", 5.5, 100));
    assert!(history[1].labels.is_empty());
    let since = store.history("ingest_bars_total", ts(200)).await.unwrap();
    assert_eq!(since.len(), 2);
    assert!(store.history("unknown", ts(0)).await.unwrap().is_empty());
    assert_eq!(
        store.names().await.unwrap(),
        ["ingest_bars_total", "provider_requests_total"]
    );

    MetricsRepository::record(&store, &[sample("nan", f64::NAN, 1)])
        .await
        .unwrap();
    assert!(store.history("nan", ts(0)).await.unwrap()[0].value.is_nan());
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    // `open` applied everything already.
    assert!(store.migrate().await.unwrap().is_empty());
    assert!(store.migrate().await.unwrap().is_empty());
    store.close().await;
    let again = SqliteStore::open(&path).await.unwrap();
    assert!(again.migrate().await.unwrap().is_empty());
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&raw_pool(&path).await)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn migrate_reports_the_versions_it_applies() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    // Forget the migration and its tables, as on a fresh file.
    let raw = raw_pool(&path).await;
    for table in [
        "DROP TABLE validation_findings",
        "DROP TABLE validation_counts",
        "DROP TABLE validation_reports",
        "DROP TABLE work_items",
        "DROP TABLE jobs",
        "DROP TABLE partitions",
        "DROP TABLE aggregation_marks",
        "DROP TABLE daily_summaries",
        "DROP TABLE metrics",
        "DROP TABLE coverage",
        "DROP TABLE universe_entries",
        "DROP TABLE universes",
        "DROP TABLE symbol_snapshots",
        "DROP TABLE symbol_master",
        "DELETE FROM _sqlx_migrations",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(table))
            .execute(&raw)
            .await
            .unwrap();
    }
    assert_eq!(store.migrate().await.unwrap(), [1, 2, 3, 4, 5]);
    assert!(JobRepository::list(&store, 5).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let (a, b) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut first = job("job-a", 1);
    let mut second = job("job-b", 2);
    first.start(ts(3)).unwrap();
    second.start(ts(3)).unwrap();
    a.create(&first).await.unwrap();
    b.create(&second).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..100_u64 {
        for (store, job) in [(&a, &first), (&b, &second)] {
            let store = store.clone();
            let id = job.id().clone();
            let mut item = job.items()[usize::try_from(round % 6).unwrap()].clone();
            item.status = WorkItemStatus::Done;
            item.bars_written = round;
            tasks.spawn(async move {
                store.save_item(&id, &item).await?;
                // A read in between, as the progress display does.
                store.items(&id).await.map(|_| ())
            });
        }
        // Cross-store reads and writes on the other table, too.
        let (store, key) = if round % 2 == 0 {
            (a.clone(), record("AAPL", 1, &format!("h{round}")))
        } else {
            (b.clone(), record("MSFT", 1, &format!("h{round}")))
        };
        tasks.spawn(async move { PartitionManifest::record(&store, &key).await });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        done += 1;
    }
    assert_eq!(done, 300);
    for (store, job) in [(&b, &first), (&a, &second)] {
        let items = store.items(job.id()).await.unwrap();
        assert!(items.iter().all(|i| i.status == WorkItemStatus::Done));
    }
    assert_eq!(JobRepository::list(&a, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_corrupt_row_is_reported_with_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    let raw = raw_pool(&path).await;
    sqlx::query(
        "INSERT INTO jobs (id, provider, symbols, start_date, end_date, session, state, \
         created_at) VALUES ('bad-state', 'fake', 'AAPL', '2024-01-02', '2024-01-31', \
         'regular', 'bogus', 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    let id = JobId::new("bad-state").unwrap();
    let err = JobRepository::get(&store, &id).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupt { message } if message.contains("bogus")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let err = JobRepository::list(&store, 10).await.unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");

    sqlx::query(
        "INSERT INTO jobs (id, provider, symbols, start_date, end_date, session, state, \
         created_at) VALUES ('bad-symbol', 'fake', 'AAPL,../etc', '2024-01-02', \
         '2024-01-31', 'regular', 'pending', 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    let err = JobRepository::get(&store, &JobId::new("bad-symbol").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupt { message } if message.contains("../etc")),
        "{err:?}"
    );

    sqlx::query(
        "INSERT INTO partitions (frame, symbol, year, month, path, rows, content_hash, \
         written_at) VALUES ('7m', 'AAPL', 2024, 1, 'p', 1, 'h', 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    let err = store.stale_for(Timeframe::M5).await.map(|_| ());
    assert!(err.is_ok(), "a 7m row is not a 1m row");
    let err = PartitionManifest::get(
        &store,
        &PartitionKey {
            frame: Timeframe::M1,
            symbol: sym("AAPL"),
            year: 2024,
            month: Some(1),
        },
    )
    .await;
    assert!(matches!(err, Ok(None)));
    sqlx::query("UPDATE partitions SET frame = '1m', month = 13")
        .execute(&raw)
        .await
        .unwrap();
    let err = PartitionManifest::list(&store, Timeframe::M1, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupt { message } if message.contains("13")),
        "{err:?}"
    );
}

#[tokio::test]
async fn opening_under_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file.join("meta.db")).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Backend { message, .. } if message.contains("not-a-dir")),
        "{err:?}"
    );
    // A directory where the database file should be.
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    assert!(format!("{store:?}").contains("marketpipe.db"));
    store.close().await;
    let err = JobRepository::list(&store, 1).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_stores_opening_a_fresh_file_at_once_all_succeed() {
    // Two `mp` processes started together on a new data dir both create and migrate the file.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh-{round}.db"));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = path.clone();
            tasks.push(tokio::spawn(async move {
                SqliteStore::open(&p).await.map(|_| ())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
}

/// The checksum a database created before migration 2's comment was edited recorded for it
/// (SHA-384 of the migration's text then).
const MIGRATION_2_CHECKSUM_BEFORE_THE_EDIT: &str = "65c18df3a86140ebea372b13d2c12df2b249a444af1ba70fb2dfd00cc4b648c7ca9e41a6883412078f2a3c1237ea33a4";

#[tokio::test]
async fn a_database_migrated_before_a_comment_edit_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create(&job("j1", 1)).await.unwrap();
    store.close().await;
    let old: Vec<u8> = (0..48)
        .map(|i| {
            u8::from_str_radix(&MIGRATION_2_CHECKSUM_BEFORE_THE_EDIT[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    let pool = raw_pool(&db_path(&dir)).await;
    let now: Vec<u8> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_ne!(now, old, "the migration's text was edited");
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2")
        .bind(&old)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // An older database opens, keeps its rows, and records the new checksum.
    let store = open(&dir).await;
    assert!(
        JobRepository::get(&store, &JobId::new("j1").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;
    let pool = raw_pool(&db_path(&dir)).await;
    let after: Vec<u8> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(after, now);
    pool.close().await;
}
