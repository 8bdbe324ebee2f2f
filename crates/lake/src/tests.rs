//! The upgrade over a real Parquet lake and SQLite manifest, from format 1 files written as
//! MarketPipe wrote them before format 2.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use marketpipe_domain::{Bar, Price, Symbol, Timeframe, Timestamp, resample};
use marketpipe_parquet::{LakeOptions, ParquetLake};
use marketpipe_ports::{
    BarStore, FixedClock, LAKE_FORMAT_VERSION, PartitionKey, PartitionManifest,
};
use marketpipe_sqlite::SqliteStore;
use marketpipe_testkit::lake_v1::{FORMAT_1_AGGREGATE_PROVIDER, format_1_path, write_format_1};
use tempfile::TempDir;

use crate::{HealthStatus, LakeUpgrader, NoUpgradeProgress, UpgradeDeps, census};

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// `n` 1m bars of `symbol` from `start`, one a minute, prices rising by a cent.
fn minutes(symbol: &str, start: &str, n: i64) -> Vec<Bar> {
    let symbol = Symbol::new(symbol).unwrap();
    let start = ts(start);
    (0..n)
        .map(|i| {
            let p = Price::from_raw(100_000_000_000 + i * 10_000_000).unwrap();
            let mut bar = Bar::new(
                symbol,
                start.saturating_add_nanos(i * 60_000_000_000),
                p,
                p,
                p,
                p,
                10 + u64::try_from(i).unwrap(),
            );
            bar.trade_count = Some(3);
            bar
        })
        .collect()
}

fn key(frame: Timeframe, symbol: &str, year: i32, month: Option<u32>) -> PartitionKey {
    PartitionKey {
        frame,
        symbol: Symbol::new(symbol).unwrap(),
        year,
        month,
    }
}

struct Fixture {
    _dir: TempDir,
    root: std::path::PathBuf,
    lake: Arc<ParquetLake>,
    store: Arc<SqliteStore>,
}

/// A format 1 lake: AAPL's 1m bars of 2024-03-01 (`month=03`) and 2024-10-01 (`month=10`,
/// the same path in both formats) from `alpaca`/`iex`, their 5m partitions and the yearly
/// 1d partition as format 1 aggregated them (`provider = aggregate`).
async fn format_1_lake() -> Fixture {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("lake");
    let at = ts("2024-11-01T00:00:00Z");
    let march = minutes("AAPL", "2024-03-01T14:30:00Z", 390);
    let october = minutes("AAPL", "2024-10-01T13:30:00Z", 390);
    for (month, bars) in [(3, &march), (10, &october)] {
        let minute_key = key(Timeframe::M1, "AAPL", 2024, Some(month));
        write_format_1(&root, &minute_key, bars, "alpaca", Some("iex"), at).unwrap();
        let five = resample(bars, Timeframe::M5).unwrap();
        let five_key = key(Timeframe::M5, "AAPL", 2024, Some(month));
        write_format_1(
            &root,
            &five_key,
            &five,
            FORMAT_1_AGGREGATE_PROVIDER,
            None,
            at,
        )
        .unwrap();
    }
    let mut all = march.clone();
    all.extend(october.iter().copied());
    let daily = resample(&all, Timeframe::D1).unwrap();
    let daily_key = key(Timeframe::D1, "AAPL", 2024, None);
    write_format_1(
        &root,
        &daily_key,
        &daily,
        FORMAT_1_AGGREGATE_PROVIDER,
        None,
        at,
    )
    .unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("marketpipe.db"))
            .await
            .unwrap(),
    );
    Fixture {
        lake: Arc::new(ParquetLake::new(&root, LakeOptions::default())),
        root,
        _dir: dir,
        store,
    }
}

fn upgrader(lake: &Fixture) -> LakeUpgrader {
    LakeUpgrader::new(UpgradeDeps {
        lake: lake.lake.clone(),
        manifest: lake.store.clone(),
        clock: Arc::new(FixedClock(ts("2026-12-04T00:00:00Z"))),
    })
}

fn parquet_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn format_1_partitions_are_read_then_upgraded_with_their_provenance() {
    let lake = format_1_lake().await;
    let march_1m = key(Timeframe::M1, "AAPL", 2024, Some(3));
    let march_5m = key(Timeframe::M5, "AAPL", 2024, Some(3));
    let before = lake.lake.read_partition(&march_1m).await.unwrap();
    assert_eq!(before.len(), 390, "format 1 is read where format 1 put it");

    let census_before = census(lake.lake.as_ref()).await.unwrap();
    assert_eq!(census_before.outdated_partitions(), 5);
    assert_eq!(census_before.files_by_version.get(&1), Some(&5));
    assert_eq!(
        census_before.outdated[0].key.frame,
        Timeframe::M1,
        "1m first"
    );
    let check = census_before.health_check();
    assert_eq!(check.status, HealthStatus::Warn);
    assert!(check.detail.contains("mp lake upgrade"), "{}", check.detail);

    let upgrader = upgrader(&lake);
    let plan = upgrader.plan().await.unwrap();
    assert_eq!(plan.outdated_partitions(), 5, "the plan writes nothing");
    assert!(
        lake.root
            .join("frame=1m/symbol=AAPL/year=2024/month=03")
            .is_dir()
    );

    let report = upgrader.run(&NoUpgradeProgress).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.planned, report.upgraded), (5, 5));
    // 78 5m bars a session, two sessions; two daily bars.
    assert_eq!(report.provenance_restored, 2 * 78 + 2);
    assert_eq!(report.provenance_unknown, 0);

    assert_eq!(
        parquet_files(&lake.root),
        [
            "frame=1d/symbol=AAPL/year=2024/part-0.parquet",
            "frame=1m/symbol=AAPL/year=2024/month=10/part-0.parquet",
            "frame=1m/symbol=AAPL/year=2024/month=3/part-0.parquet",
            "frame=5m/symbol=AAPL/year=2024/month=10/part-0.parquet",
            "frame=5m/symbol=AAPL/year=2024/month=3/part-0.parquet",
        ]
    );
    assert!(
        !lake
            .root
            .join("frame=1m/symbol=AAPL/year=2024/month=03")
            .exists(),
        "the emptied format 1 directory is gone"
    );
    assert_eq!(lake.lake.read_partition(&march_1m).await.unwrap(), before);
    let census_after = census(lake.lake.as_ref()).await.unwrap();
    assert_eq!(census_after.outdated_partitions(), 0);
    assert_eq!(
        census_after.files_by_version.get(&LAKE_FORMAT_VERSION),
        Some(&5)
    );
    assert_eq!(census_after.health_check().status, HealthStatus::Ok);

    let aggregated = lake.lake.read_partition_sourced(&march_5m).await.unwrap();
    assert_eq!(aggregated.bars.len(), 78);
    for i in 0..aggregated.bars.len() {
        let source = aggregated.source(i).unwrap();
        assert_eq!(
            (source.provider.as_str(), source.feed.as_deref()),
            ("alpaca", Some("iex")),
            "a 5m bar says which provider's 1m bars it came from"
        );
    }
    let record = lake.store.get(&march_5m).await.unwrap().unwrap();
    assert_eq!(record.format_version, LAKE_FORMAT_VERSION);
    assert_eq!(
        record.path,
        "frame=5m/symbol=AAPL/year=2024/month=3/part-0.parquet"
    );

    // Running again finds nothing and touches nothing.
    let file = lake
        .root
        .join("frame=1m/symbol=AAPL/year=2024/month=3/part-0.parquet");
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let again = upgrader.run(&NoUpgradeProgress).await.unwrap();
    assert_eq!((again.planned, again.upgraded), (0, 0));
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
}

#[tokio::test]
async fn an_interrupted_upgrade_is_finished_by_the_next_run() {
    let lake = format_1_lake().await;
    let march_1m = key(Timeframe::M1, "AAPL", 2024, Some(3));
    let legacy = format_1_path(&lake.root, &march_1m);
    let legacy_copy = fs::read(&legacy).unwrap();
    // An upgrade killed after it renamed the new file into place, before it removed the
    // format 1 file: both are on disk.
    lake.lake
        .upgrade_partition(&march_1m)
        .await
        .unwrap()
        .unwrap();
    fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    fs::write(&legacy, legacy_copy).unwrap();

    let integrity = lake
        .lake
        .check_integrity(Some(Timeframe::M1), marketpipe_ports::IntegrityDepth::Full)
        .await
        .unwrap();
    assert!(
        integrity
            .problems
            .iter()
            .any(|p| p.path.ends_with("month=03/part-0.parquet") && p.problem.contains("twice")),
        "{integrity:?}"
    );
    let listed = lake.lake.list_partitions(Timeframe::M1, &[]).await.unwrap();
    assert_eq!(listed.len(), 2, "one entry per partition, not per file");
    assert_eq!(
        listed[0].path, "frame=1m/symbol=AAPL/year=2024/month=3/part-0.parquet",
        "the current file wins"
    );
    assert_eq!(
        lake.lake.read_partition(&march_1m).await.unwrap().len(),
        390
    );

    let report = upgrader(&lake).run(&NoUpgradeProgress).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(!legacy.exists(), "the leftover is removed");
    assert_eq!(
        census(lake.lake.as_ref())
            .await
            .unwrap()
            .outdated_partitions(),
        0
    );
    assert_eq!(
        lake.lake.read_partition(&march_1m).await.unwrap().len(),
        390
    );
}
