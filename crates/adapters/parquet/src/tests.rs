//! Tests of the lake against real files in temporary directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use futures::TryStreamExt;
use marketpipe_domain::{Bar, Price, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{BarQuery, BarStore, IntegrityDepth, PartitionKey, WriteMeta};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::codec::{Rows, StoredRow, content_hash, encode, lake_schema};
use crate::merge::merge;
use marketpipe_ports::lake::BarOrigin;
use marketpipe_testkit::lake_v1::write_format_1;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn price(s: &str) -> Price {
    s.parse().unwrap()
}

const MINUTE: i64 = 60_000_000_000;

/// `n` one-minute bars of `symbol` from `start`, closes `base + i`.
fn bars(symbol: &str, start: &str, n: i64, base: i64) -> Vec<Bar> {
    let start = ts(start);
    (0..n)
        .map(|i| {
            let close = Price::from_raw((base + i) * 1_000_000_000 + 250_000_000).unwrap();
            let mut bar = Bar::new(
                sym(symbol),
                start.saturating_add_nanos(i * MINUTE),
                close,
                close,
                close,
                close,
                u64::try_from(100 + i).unwrap(),
            );
            if i % 2 == 0 {
                bar.trade_count = Some(u64::try_from(i).unwrap());
                bar.vwap = Some(close);
            }
            bar
        })
        .collect()
}

fn meta(provider: &str) -> WriteMeta {
    WriteMeta {
        provider: provider.into(),
        feed: Some("iex".into()),
        origin: marketpipe_ports::BarOrigin::Provider,
        ingested_at: ts("2024-06-01T12:00:00Z"),
        job_id: None,
    }
}

fn lake(dir: &TempDir) -> ParquetLake {
    ParquetLake::new(dir.path().join("lake"), LakeOptions::default())
}

fn key_of(frame: Timeframe, symbol: &str, at: &str) -> PartitionKey {
    PartitionKey::for_bar(frame, sym(symbol), ts(at))
}

const JAN: &str = "2024-01-02T14:30:00Z";
const FEB: &str = "2024-02-01T14:30:00Z";

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn round_trip_keeps_prices_and_optional_fields_exactly() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let symbol = sym("AAPL");
    let start = ts(JAN);
    let mut written = Vec::new();
    for (i, (o, h, l, c)) in [
        ("185.64", "185.7", "185.6", "185.65"),
        ("0.0001", "0.0002", "0.0001", "0.0001"),
        (
            "4321.123456789",
            "4321.123456789",
            "4321.000000001",
            "4321.1",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let i = i64::try_from(i).unwrap();
        let mut bar = Bar::new(
            symbol,
            start.saturating_add_nanos(i * MINUTE),
            price(o),
            price(h),
            price(l),
            price(c),
            1_000 + u64::try_from(i).unwrap(),
        );
        if i == 1 {
            bar.trade_count = Some(17);
            bar.vwap = Some(price("0.000123457"));
        }
        written.push(bar);
    }
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let outcome = lake
        .write_partition(&key, &written, &meta("alpaca"))
        .await
        .unwrap();
    assert_eq!(outcome.rows, 3);
    assert_eq!(outcome.inserted, 3);
    assert_eq!(outcome.updated, 0);
    assert!(outcome.rewritten);
    assert_eq!(outcome.min_ts, Some(start));
    assert_eq!(outcome.max_ts, Some(start.saturating_add_nanos(2 * MINUTE)));
    assert_eq!(outcome.content_hash.len(), 32);
    assert_eq!(lake.read_partition(&key).await.unwrap(), written);

    // The schema, in order, as docs/storage.md lists it; rows and provenance as written.
    let file = fs::File::open(lake.partition_path(&key)).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(builder.schema().fields(), lake_schema().fields());
    // Self-describing: the partition and the format in the key-value metadata.
    let kv: BTreeMap<&str, &str> = builder
        .schema()
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        kv,
        BTreeMap::from([
            ("marketpipe.format_version", "2"),
            ("marketpipe.frame", "1m"),
            ("marketpipe.month", "1"),
            ("marketpipe.symbol", "AAPL"),
            ("marketpipe.year", "2024"),
        ])
    );
    let row_group = builder.metadata().row_group(0);
    assert!(
        row_group.column(0).statistics().is_some(),
        "ts has statistics"
    );
    let batch = builder.build().unwrap().next().unwrap().unwrap();
    let provider = batch
        .column(8)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>();
    assert_eq!(provider.unwrap().value(0), "alpaca");
    let feed = batch
        .column(9)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>();
    assert_eq!(feed.unwrap().value(2), "iex");
}

#[tokio::test]
async fn layout_is_hive_partitioned_by_month_or_year() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let root = dir.path().join("lake");
    assert_eq!(lake.root(), root);
    assert!(!root.exists(), "new() does no I/O");

    let minute = key_of(Timeframe::M1, "BRK.B", JAN);
    assert_eq!(
        lake.partition_path(&minute),
        root.join("frame=1m/symbol=BRK.B/year=2024/month=1/part-0.parquet")
    );
    let daily = key_of(Timeframe::D1, "BRK.B", JAN);
    assert_eq!(
        lake.partition_path(&daily),
        root.join("frame=1d/symbol=BRK.B/year=2024/part-0.parquet")
    );

    let outcome = lake
        .write_partition(&minute, &bars("BRK.B", JAN, 3, 10), &meta("p"))
        .await
        .unwrap();
    assert_eq!(
        outcome.path,
        "frame=1m/symbol=BRK.B/year=2024/month=1/part-0.parquet"
    );
    let mut day = bars("BRK.B", "2024-01-02T05:00:00Z", 1, 10);
    day.extend(bars("BRK.B", "2024-12-31T05:00:00Z", 1, 11));
    let outcome = lake
        .write_partition(&daily, &day, &meta("p"))
        .await
        .unwrap();
    assert_eq!(
        outcome.path,
        "frame=1d/symbol=BRK.B/year=2024/part-0.parquet"
    );
    assert!(lake.partition_path(&minute).is_file());
    assert!(lake.partition_path(&daily).is_file());

    // A late extended-hours bar (19:30 ET on Jan 31 = Feb 1 00:30 UTC) stays in January.
    let extended = bars("BRK.B", "2024-02-01T00:30:00Z", 1, 12);
    let outcome = lake
        .write_partition(&minute, &extended, &meta("p"))
        .await
        .unwrap();
    assert_eq!(outcome.rows, 4);
}

#[tokio::test]
async fn upsert_new_bar_wins_and_counts_inserts_and_updates() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let first = bars("AAPL", JAN, 5, 100); // minutes 0..5
    lake.write_partition(&key, &first, &meta("a"))
        .await
        .unwrap();

    // Minutes 3..8, unsorted: 3 changed, 4 identical, 5..8 new, and minute 6 given twice
    // (the last one wins).
    let later = bars("AAPL", JAN, 8, 100);
    let mut changed = later[3];
    changed.close = price("1.5");
    let mut first_six = later[6];
    first_six.close = price("9.5");
    let mut last_six = later[6];
    last_six.close = price("2.5");
    let second = vec![later[7], first_six, changed, later[4], later[5], last_six];
    let (replaced_ts, dup_ts) = (changed.ts, last_six.ts);
    let outcome = lake
        .write_partition(&key, &second, &meta("a"))
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.updated, outcome.rows), (3, 1, 8));
    assert!(outcome.rewritten);

    let stored = lake.read_partition(&key).await.unwrap();
    assert_eq!(stored.len(), 8);
    assert!(
        stored.windows(2).all(|w| w[0].ts < w[1].ts),
        "sorted, unique"
    );
    let by_ts: BTreeMap<Timestamp, Bar> = stored.iter().map(|b| (b.ts, *b)).collect();
    assert_eq!(by_ts[&replaced_ts].close, price("1.5"));
    assert_eq!(by_ts[&dup_ts].close, price("2.5"));
    assert_eq!(by_ts[&first[0].ts], first[0]);
    assert_eq!(outcome.min_ts, Some(first[0].ts));
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> u64 {
    0
}

#[tokio::test]
async fn rewriting_the_same_bars_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let written = bars("AAPL", JAN, 390, 50);
    let first = lake
        .write_partition(&key, &written, &meta("a"))
        .await
        .unwrap();
    let path = lake.partition_path(&key);
    // Back-date the file, so any rewrite would visibly move its mtime.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let bytes = fs::read(&path).unwrap();
    let ino = inode(&path);

    let mut later = meta("a");
    later.ingested_at = ts("2024-07-01T00:00:00Z");
    let mut shuffled = written.clone();
    shuffled.reverse();
    for again in [&written, &shuffled, &written[10..20].to_vec()] {
        let outcome = lake.write_partition(&key, again, &later).await.unwrap();
        assert!(!outcome.rewritten);
        assert_eq!(
            (outcome.inserted, outcome.updated, outcome.rows),
            (0, 0, 390)
        );
        assert_eq!(outcome.content_hash, first.content_hash);
        assert_eq!(
            (outcome.min_ts, outcome.max_ts),
            (first.min_ts, first.max_ts)
        );
    }
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), old);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(inode(&path), ino);

    // Same bars from another provider are a change.
    let outcome = lake
        .write_partition(&key, &written[..1], &meta("b"))
        .await
        .unwrap();
    assert!(outcome.rewritten);
    assert_eq!(outcome.updated, 1);
    assert_ne!(outcome.content_hash, first.content_hash);
}

#[test]
fn content_hash_is_a_fixed_function_of_the_content() {
    // Pinned: the hash is stored in the metadata manifest and compared across runs and
    // processes, so changing its definition is a migration.
    let mut rows = Rows::default();
    let source = rows.intern("alpaca", Some("iex"), BarOrigin::Provider);
    rows.rows = bars("AAPL", JAN, 3, 10)
        .into_iter()
        .map(|bar| StoredRow {
            bar,
            source,
            ingested_at: 1,
        })
        .collect();
    let hash = content_hash(&rows);
    assert_eq!(hash, PINNED_HASH);
    for row in &mut rows.rows {
        row.ingested_at = 2;
    }
    assert_eq!(content_hash(&rows), hash, "ingested_at is not content");
    rows.sources[0].feed = None;
    assert_ne!(content_hash(&rows), hash);
    assert_ne!(content_hash(&Rows::default()), hash);
}

const PINNED_HASH: &str = "858d42be98c7f5ab904d6efe3cf703dc";

#[tokio::test]
async fn corrupt_file_is_reported_and_never_overwritten() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let path = lake.partition_path(&key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage = b"PAR1 this is not a parquet file at all".to_vec();
    fs::write(&path, &garbage).unwrap();

    let err = lake
        .write_partition(&key, &bars("AAPL", JAN, 2, 1), &meta("a"))
        .await
        .unwrap_err();
    match &err {
        LakeError::Corrupt { path: p, .. } => assert_eq!(p, &path_string(&path)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(fs::read(&path).unwrap(), garbage);

    match lake.read_partition(&key).await.unwrap_err() {
        LakeError::Corrupt { path: p, .. } => assert_eq!(p, path_string(&path)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let report = lake
        .check_integrity(None, IntegrityDepth::Full)
        .await
        .unwrap();
    assert_eq!(report.files_checked, 1);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].path, path_string(&path));
    assert!(
        report.problems[0].problem.contains("Parquet"),
        "{:?}",
        report.problems
    );
    assert_eq!(fs::read(&path).unwrap(), garbage);
    let no_temp = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-"));
    assert!(no_temp);
}

/// Writes `batch` as a partition file, bypassing the lake's checks.
fn write_raw(path: &Path, batch: &RecordBatch) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn rows_of(bars: Vec<Bar>) -> Rows {
    let mut rows = Rows::default();
    let source = rows.intern("raw", None, BarOrigin::Provider);
    rows.rows = bars
        .into_iter()
        .map(|bar| StoredRow {
            bar,
            source,
            ingested_at: 0,
        })
        .collect();
    rows
}

fn replace_column(batch: &RecordBatch, index: usize, column: ArrayRef) -> RecordBatch {
    let mut columns = batch.columns().to_vec();
    columns[index] = column;
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

/// A partition batch of `symbol` whose `volume` column is Float64.
fn with_float_volume(symbol: &str) -> RecordBatch {
    let schema = lake_schema();
    let batch = encode(&rows_of(bars(symbol, JAN, 3, 5)), &schema).unwrap();
    let mut fields: Vec<arrow_schema::Field> =
        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[5] = arrow_schema::Field::new("volume", arrow_schema::DataType::Float64, false);
    let mut columns = batch.columns().to_vec();
    columns[5] = Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]));
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).unwrap()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one lake, each kind of damage in turn
async fn bad_values_and_misplaced_rows_are_named_by_path_and_row() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let schema = lake_schema();
    let good = encode(&rows_of(bars("AAPL", JAN, 3, 5)), &schema).unwrap();

    // NaN price in row 1.
    let nan_key = key_of(Timeframe::M1, "AAPL", JAN);
    let nan = replace_column(
        &good,
        1,
        Arc::new(Float64Array::from(vec![1.0, f64::NAN, 1.0])),
    );
    write_raw(&lake.partition_path(&nan_key), &nan);
    match lake.read_partition(&nan_key).await.unwrap_err() {
        LakeError::Corrupt { path, message, .. } => {
            assert_eq!(path, path_string(&lake.partition_path(&nan_key)));
            assert!(
                message.contains("row 1") && message.contains("open"),
                "{message}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // Negative volume in row 2 (another symbol's directory, same content otherwise).
    let msft = encode(&rows_of(bars("MSFT", JAN, 3, 5)), &schema).unwrap();
    let vol_key = key_of(Timeframe::M1, "MSFT", JAN);
    let negative = replace_column(&msft, 5, Arc::new(Int64Array::from(vec![1, 2, -3])));
    write_raw(&lake.partition_path(&vol_key), &negative);

    // AAPL rows (a format 1 file, with its `symbol` column) in a TSLA directory; January
    // rows in a February directory; unsorted rows.
    let wrong_symbol = key_of(Timeframe::M1, "TSLA", JAN);
    let aapl = bars("AAPL", JAN, 3, 5);
    let at = Timestamp::EPOCH;
    let wrong_symbol_path =
        write_format_1(lake.root(), &wrong_symbol, &aapl, "raw", None, at).unwrap();
    let wrong_month = key_of(Timeframe::M1, "AAPL", FEB);
    write_raw(&lake.partition_path(&wrong_month), &good);
    let unsorted_key = key_of(Timeframe::M1, "NVDA", JAN);
    let mut reversed = bars("NVDA", JAN, 3, 5);
    reversed.reverse();
    write_raw(
        &lake.partition_path(&unsorted_key),
        &encode(&rows_of(reversed), &schema).unwrap(),
    );
    // A column of the wrong type.
    let typed_key = key_of(Timeframe::M1, "AMD", JAN);
    write_raw(&lake.partition_path(&typed_key), &with_float_volume("AMD"));

    // A clean partition.
    let clean = key_of(Timeframe::M1, "GOOG", JAN);
    lake.write_partition(&clean, &bars("GOOG", JAN, 3, 5), &meta("a"))
        .await
        .unwrap();

    let report = lake
        .check_integrity(Some(Timeframe::M1), IntegrityDepth::Full)
        .await
        .unwrap();
    assert_eq!(report.files_checked, 7);
    let problem_at = |path: &Path| {
        let path = path_string(path);
        report
            .problems
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.problem.clone())
            .unwrap_or_default()
    };
    let problem = |key: &PartitionKey| problem_at(&lake.partition_path(key));
    assert!(problem(&nan_key).contains("row 1: open"), "{report:?}");
    assert!(
        problem(&vol_key).contains("row 2: volume -3 is negative"),
        "{report:?}"
    );
    assert!(
        problem_at(&wrong_symbol_path).contains("symbol `AAPL`"),
        "{report:?}"
    );
    assert!(
        problem(&wrong_month).contains("outside the partition"),
        "{report:?}"
    );
    assert!(problem(&unsorted_key).contains("sorted"), "{report:?}");
    assert!(
        problem(&typed_key).contains("column `volume` has type Float64"),
        "{report:?}"
    );
    assert_eq!(problem(&clean), "");
    assert_eq!(report.problems.len(), 6);
    assert!(
        lake.check_integrity(Some(Timeframe::D1), IntegrityDepth::Full)
            .await
            .unwrap()
            .problems
            .is_empty()
    );

    // An unsorted file reads sorted, and the next write repairs it.
    let read = lake.read_partition(&unsorted_key).await.unwrap();
    assert!(read.windows(2).all(|w| w[0].ts < w[1].ts));
    let outcome = lake
        .write_partition(&unsorted_key, &read[..1], &meta("raw"))
        .await
        .unwrap();
    assert!(outcome.rewritten);
    assert_eq!((outcome.inserted, outcome.updated), (0, 1)); // provenance had no feed
    let report = lake
        .check_integrity(Some(Timeframe::M1), IntegrityDepth::Full)
        .await
        .unwrap();
    assert_eq!(
        problem_count(&report, &lake.partition_path(&unsorted_key)),
        0
    );
}

fn problem_count(report: &marketpipe_ports::lake::IntegrityReport, path: &Path) -> usize {
    let path = path_string(path);
    report.problems.iter().filter(|p| p.path == path).count()
}

#[tokio::test]
async fn stale_temp_files_are_reported_and_removed_by_the_next_write() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M5, "AAPL", JAN);
    let written = bars("AAPL", JAN, 3, 1);
    lake.write_partition(&key, &written, &meta("a"))
        .await
        .unwrap();
    let partition_dir = lake.partition_path(&key).parent().unwrap().to_path_buf();
    let stale = partition_dir.join(".part-0.parquet.tmp-424242-7");
    fs::write(&stale, b"half a file").unwrap();

    let report = lake
        .check_integrity(None, IntegrityDepth::Full)
        .await
        .unwrap();
    assert_eq!(report.files_checked, 1);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].path, path_string(&stale));
    assert!(report.problems[0].problem.contains("temporary"));
    // Readers globbing *.parquet never see it.
    assert_eq!(lake.read_partition(&key).await.unwrap(), written);

    let outcome = lake
        .write_partition(&key, &written, &meta("a"))
        .await
        .unwrap();
    assert!(!outcome.rewritten);
    assert!(!stale.exists());
    assert!(
        lake.check_integrity(None, IntegrityDepth::Full)
            .await
            .unwrap()
            .problems
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_partition_end_with_the_union() {
    let dir = TempDir::new().unwrap();
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let all = bars("AAPL", JAN, 800, 1);
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        // Separate lake values, as separate processes would have.
        let lake = lake(&dir);
        let mine: Vec<Bar> = all.iter().skip(w).step_by(writers).copied().collect();
        tasks.push(tokio::spawn(async move {
            for chunk in mine.chunks(25) {
                lake.write_partition(&key, chunk, &meta("a")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let lake = lake(&dir);
    assert_eq!(lake.read_partition(&key).await.unwrap(), all);
    let report = lake
        .check_integrity(None, IntegrityDepth::Full)
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test]
async fn bars_of_another_symbol_or_period_are_rejected() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M1, "AAPL", JAN);

    let mut mixed = bars("AAPL", JAN, 3, 1);
    mixed[2].symbol = sym("MSFT");
    match lake
        .write_partition(&key, &mixed, &meta("a"))
        .await
        .unwrap_err()
    {
        LakeError::InvalidBars { partition, message } => {
            assert_eq!(partition, "1m/AAPL/2024-01");
            assert!(
                message.contains("bar 2") && message.contains("MSFT"),
                "{message}"
            );
        }
        other => panic!("expected InvalidBars, got {other:?}"),
    }

    let mut months = bars("AAPL", JAN, 2, 1);
    months.extend(bars("AAPL", FEB, 1, 1));
    match lake
        .write_partition(&key, &months, &meta("a"))
        .await
        .unwrap_err()
    {
        LakeError::InvalidBars { partition, message } => {
            assert_eq!(partition, "1m/AAPL/2024-01");
            assert!(
                message.contains("bar 2") && message.contains("1m/AAPL/2024-02"),
                "{message}"
            );
        }
        other => panic!("expected InvalidBars, got {other:?}"),
    }

    let yearly_without_month = PartitionKey { month: None, ..key };
    assert!(matches!(
        lake.write_partition(&yearly_without_month, &bars("AAPL", JAN, 1, 1), &meta("a"))
            .await,
        Err(LakeError::InvalidBars { .. })
    ));
    assert!(!lake.partition_path(&key).exists(), "nothing was written");

    // An empty write creates no file.
    let outcome = lake.write_partition(&key, &[], &meta("a")).await.unwrap();
    assert!(!outcome.rewritten);
    assert_eq!((outcome.rows, outcome.min_ts), (0, None));
    assert!(!lake.partition_path(&key).exists());
}

#[tokio::test]
async fn every_compression_writes_a_readable_file() {
    let dir = TempDir::new().unwrap();
    let written = bars("AAPL", JAN, 500, 1);
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    for compression in LakeCompression::ALL {
        let lake = ParquetLake::new(
            dir.path().join(compression.as_str()),
            LakeOptions {
                compression,
                max_row_group_size: 200,
                ..LakeOptions::default()
            },
        );
        lake.write_partition(&key, &written, &meta("a"))
            .await
            .unwrap();
        assert_eq!(
            lake.read_partition(&key).await.unwrap(),
            written,
            "{compression}"
        );
        let file = fs::File::open(lake.partition_path(&key)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let metadata = builder.metadata();
        assert_eq!(metadata.num_row_groups(), 3, "{compression}");
        assert_eq!(
            metadata.row_group(0).column(2).compression(),
            compression.to_parquet(1),
            "{compression}"
        );
    }
    let err = "lzma".parse::<LakeCompression>().unwrap_err().to_string();
    assert!(err.contains("lzma") && err.contains("zstd"), "{err}");
}

async fn collect(lake: &ParquetLake, query: &BarQuery) -> Vec<Vec<Bar>> {
    lake.read_bars(query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn read_bars_filters_by_symbols_and_range_one_batch_per_partition() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    for symbol in ["MSFT", "AAPL"] {
        for start in [JAN, FEB] {
            let key = key_of(Timeframe::M1, symbol, start);
            lake.write_partition(&key, &bars(symbol, start, 10, 1), &meta("a"))
                .await
                .unwrap();
        }
    }
    let all = collect(
        &lake,
        &BarQuery {
            frame: Timeframe::M1,
            symbols: Vec::new(),
            range: None,
        },
    )
    .await;
    let heads: Vec<(String, Timestamp)> = all
        .iter()
        .map(|b| (b[0].symbol.to_string(), b[0].ts))
        .collect();
    assert_eq!(
        heads,
        vec![
            ("AAPL".to_owned(), ts(JAN)),
            ("AAPL".to_owned(), ts(FEB)),
            ("MSFT".to_owned(), ts(JAN)),
            ("MSFT".to_owned(), ts(FEB)),
        ]
    );
    assert!(all.iter().all(|b| b.len() == 10));

    // AAPL only, from minute 5 of January to minute 3 of February.
    let range = TimeRange::new(
        ts(JAN).saturating_add_nanos(5 * MINUTE),
        ts(FEB).saturating_add_nanos(3 * MINUTE),
    )
    .unwrap();
    let some = collect(
        &lake,
        &BarQuery {
            frame: Timeframe::M1,
            symbols: vec![sym("AAPL")],
            range: Some(range),
        },
    )
    .await;
    assert_eq!(some.len(), 2);
    assert_eq!((some[0].len(), some[1].len()), (5, 3));
    assert!(
        some.iter()
            .flatten()
            .all(|b| b.symbol == sym("AAPL") && range.contains(b.ts))
    );

    // A range inside January only reads January partitions; an empty one reads nothing.
    let january = TimeRange::new(ts("2024-01-01T00:00:00Z"), ts("2024-01-15T00:00:00Z")).unwrap();
    let jan_only = collect(
        &lake,
        &BarQuery {
            frame: Timeframe::M1,
            symbols: Vec::new(),
            range: Some(january),
        },
    )
    .await;
    assert_eq!(jan_only.len(), 2);
    let empty = TimeRange::new(ts(JAN), ts(JAN)).unwrap();
    let none = collect(
        &lake,
        &BarQuery {
            frame: Timeframe::M1,
            symbols: Vec::new(),
            range: Some(empty),
        },
    )
    .await;
    assert!(none.is_empty());
    let other_frame = collect(
        &lake,
        &BarQuery {
            frame: Timeframe::H1,
            symbols: Vec::new(),
            range: None,
        },
    )
    .await;
    assert!(other_frame.is_empty());
}

#[tokio::test]
async fn list_partitions_parses_keys_and_ignores_junk() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    assert!(
        lake.list_partitions(Timeframe::M1, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let keys = [
        key_of(Timeframe::M1, "MSFT", FEB),
        key_of(Timeframe::M1, "AAPL", FEB),
        key_of(Timeframe::M1, "AAPL", JAN),
        key_of(Timeframe::M1, "BRK.B", "2023-12-04T15:00:00Z"),
    ];
    for key in keys {
        let start = match key.month {
            Some(2) => FEB,
            Some(12) => "2023-12-04T15:00:00Z",
            _ => JAN,
        };
        lake.write_partition(&key, &bars(key.symbol.as_str(), start, 2, 1), &meta("a"))
            .await
            .unwrap();
    }
    lake.write_partition(
        &key_of(Timeframe::D1, "AAPL", JAN),
        &bars("AAPL", "2024-01-02T05:00:00Z", 1, 1),
        &meta("a"),
    )
    .await
    .unwrap();
    let root = lake.root().to_path_buf();
    for junk in [
        "frame=1m/symbol=aapl/year=2024/month=01/part-0.parquet",
        "frame=1m/symbol=AAPL/year=24/month=01/part-0.parquet",
        "frame=1m/symbol=AAPL/year=2024/month=001/part-0.parquet",
        "frame=1m/symbol=AAPL/year=2024/month=13/part-0.parquet",
        "frame=1m/symbol=AAPL/year=2024/part-0.parquet",
        "frame=1m/symbol=AAPL/year=2024/month=03/part-1.parquet",
        "frame=1m/symbol=AAPL/year=2024/month=03/.part-0.parquet.lock",
        "frame=1m/symbol=AAPL/year=2024/month=03/.part-0.parquet.tmp-1-1",
        "frame=1m/notes.txt",
        "frame=2m/symbol=AAPL/year=2024/month=01/part-0.parquet",
    ] {
        let path = root.join(junk);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"junk").unwrap();
    }
    let listed = lake.list_partitions(Timeframe::M1, &[]).await.unwrap();
    let mut expected = keys.to_vec();
    expected.sort();
    assert_eq!(listed.iter().map(|p| p.key).collect::<Vec<_>>(), expected);
    for info in &listed {
        assert_eq!(root.join(&info.path), lake.partition_path(&info.key));
        assert_eq!(
            info.bytes,
            fs::metadata(lake.partition_path(&info.key)).unwrap().len()
        );
        assert!(info.bytes > 0);
    }
    let aapl = lake
        .list_partitions(Timeframe::M1, &[sym("AAPL"), sym("ZZZ")])
        .await
        .unwrap();
    assert_eq!(aapl.len(), 2);
    assert_eq!(
        aapl[0].path,
        "frame=1m/symbol=AAPL/year=2024/month=1/part-0.parquet"
    );
    let daily = lake.list_partitions(Timeframe::D1, &[]).await.unwrap();
    assert_eq!(daily.len(), 1);
    assert_eq!(
        daily[0].path,
        "frame=1d/symbol=AAPL/year=2024/part-0.parquet"
    );

    // The integrity check counts misplaced partition files as problems (and the stale temp
    // with its lock file, beside no data file).
    let report = lake
        .check_integrity(Some(Timeframe::M1), IntegrityDepth::Full)
        .await
        .unwrap();
    assert_eq!(report.files_checked, 4 + 5);
    assert_eq!(report.problems.len(), 5 + 2, "{report:?}");
}

fn arb_bars() -> impl Strategy<Value = Vec<(i64, i64)>> {
    proptest::collection::vec((0i64..40, 1i64..4), 0..30)
}

fn model_bars(spec: &[(i64, i64)]) -> Vec<Bar> {
    spec.iter()
        .map(|&(minute, close)| {
            let p = Price::from_raw(close).unwrap();
            Bar::new(
                sym("AAPL"),
                ts(JAN).saturating_add_nanos(minute * MINUTE),
                p,
                p,
                p,
                p,
                1,
            )
        })
        .collect()
}

proptest! {
    // The merge equals a map upsert: stored rows, then the new bars in order, last wins.
    #[test]
    fn merge_is_a_last_wins_upsert(old in arb_bars(), new in arb_bars()) {
        let mut model: BTreeMap<Timestamp, Bar> = BTreeMap::new();
        let mut stored = model_bars(&old);
        crate::codec::sort_dedup_last(&mut stored, |b| b.ts.nanos());
        for bar in &stored {
            model.insert(bar.ts, *bar);
        }
        let before = model.clone();
        let mut incoming = model_bars(&new);
        for bar in &incoming {
            model.insert(bar.ts, *bar);
        }
        crate::codec::sort_dedup_last(&mut incoming, |b| b.ts.nanos());
        let merged = merge(rows_of(stored), &incoming, &WriteMeta {
            provider: "raw".into(),
            feed: None,
            origin: marketpipe_ports::BarOrigin::Provider,
            ingested_at: Timestamp::EPOCH,
            job_id: None,
        });
        let got: Vec<Bar> = merged.rows.rows.iter().map(|r| r.bar).collect();
        prop_assert_eq!(got, model.values().copied().collect::<Vec<_>>());
        let inserted = model.len() - before.len();
        let updated = model.iter().filter(|(t, b)| before.get(t).is_some_and(|o| o != *b)).count();
        prop_assert_eq!(merged.inserted, inserted as u64);
        prop_assert_eq!(merged.updated, updated as u64);
    }
}

/// Set in child processes of the multi-process tests: `<lake root>|<writer>|<writers>|<bars>`.
const CHILD_ENV: &str = "MARKETPIPE_PARQUET_TEST_CHILD";
const CHUNK: usize = 20;

/// The bars writer `w` of `writers` writes: every `writers`-th of `n` bars.
fn share(w: usize, writers: usize, n: i64) -> Vec<Bar> {
    bars("AAPL", JAN, n, 1)
        .into_iter()
        .skip(w)
        .step_by(writers)
        .collect()
}

/// In a child process (see [`CHILD_ENV`]): writes its share of the bars in chunks, one
/// `write_partition` each. Not a test: ignored, so a normal run neither runs nor counts it;
/// [`spawn_child`] starts it with `--ignored --exact`.
#[test]
#[ignore = "child-process helper, run by the multi-process writer tests"]
fn child_writer_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        // Run by hand with `--ignored`: without a spec there is nothing to write.
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (root, w, writers, n) = (
        parts[0],
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        parts[3].parse().unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let lake = ParquetLake::new(root, LakeOptions::default());
        let key = key_of(Timeframe::M1, "AAPL", JAN);
        for chunk in share(w, writers, n).chunks(CHUNK) {
            lake.write_partition(&key, chunk, &meta("a")).await.unwrap();
        }
    });
}

fn spawn_child(root: &Path, w: usize, writers: usize, n: i64) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "tests::child_writer_process",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{w}|{writers}|{n}", root.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn writers_in_separate_processes_end_with_the_union() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let (writers, n) = (3, 300);
    let children: Vec<_> = (0..writers)
        .map(|w| spawn_child(lake.root(), w, writers, n))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let rt = runtime();
    assert_eq!(
        rt.block_on(lake.read_partition(&key)).unwrap(),
        bars("AAPL", JAN, n, 1)
    );
    assert!(
        rt.block_on(lake.check_integrity(None, IntegrityDepth::Full))
            .unwrap()
            .problems
            .is_empty()
    );
}

#[test]
fn a_killed_writer_leaves_the_old_or_the_new_file() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    let key = key_of(Timeframe::M1, "AAPL", JAN);
    let n = 4_000;
    let mut child = spawn_child(lake.root(), 0, 1, n);
    // Let it commit a few writes (three chunks stored), then SIGKILL it wherever it is. A
    // bounded poll of what the lake shows, not a fixed sleep.
    let rt = runtime();
    let path = lake.partition_path(&key);
    for _ in 0..60_000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let committed = path.exists()
            && rt
                .block_on(lake.read_partition(&key))
                .is_ok_and(|bars| bars.len() >= 3 * CHUNK);
        if committed {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Only whole writes are visible: a prefix of the bars, a whole number of chunks.
    let stored = rt.block_on(lake.read_partition(&key)).unwrap();
    assert_eq!(stored.len() % CHUNK, 0);
    assert_eq!(stored, bars("AAPL", JAN, n, 1)[..stored.len()].to_vec());
    let report = rt
        .block_on(lake.check_integrity(None, IntegrityDepth::Full))
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.problem.contains("temporary")),
        "{report:?}"
    );
    // The next write cleans up after the dead writer.
    rt.block_on(lake.write_partition(&key, &stored[..1], &meta("a")))
        .unwrap();
    let report = rt
        .block_on(lake.check_integrity(None, IntegrityDepth::Full))
        .unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test]
async fn bar_reads_skip_provenance_but_still_reject_another_symbols_rows() {
    let dir = TempDir::new().unwrap();
    let lake = lake(&dir);
    // AAPL rows in a TSLA directory (format 1, with a `symbol` column): the statistics do
    // not prove TSLA, so `symbol` is decoded.
    let wrong = key_of(Timeframe::M1, "TSLA", JAN);
    write_format_1(
        lake.root(),
        &wrong,
        &bars("AAPL", JAN, 3, 5),
        "raw",
        None,
        Timestamp::EPOCH,
    )
    .unwrap();
    for result in [
        lake.read_partition(&wrong).await,
        lake.read_partition_as_stored(&wrong).await,
    ] {
        match result.unwrap_err() {
            LakeError::Corrupt { message, .. } => {
                assert!(
                    message.contains("`AAPL`") && message.contains("`TSLA`"),
                    "{message}"
                );
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // A file our writer made: statistics prove the symbol; the bars read back equal.
    let key = key_of(Timeframe::M1, "MSFT", JAN);
    let written = bars("MSFT", JAN, 50, 7);
    lake.write_partition(&key, &written, &meta("a"))
        .await
        .unwrap();
    assert_eq!(lake.read_partition(&key).await.unwrap(), written);
    assert_eq!(lake.read_partition_as_stored(&key).await.unwrap(), written);
}
