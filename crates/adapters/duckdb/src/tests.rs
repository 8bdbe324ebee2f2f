//! Tests of the engine against real lakes in temporary directories, written by
//! `marketpipe-parquet` (the engine itself never writes).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use marketpipe_domain::{Bar, Price, Symbol, Timeframe, Timestamp};
use marketpipe_parquet::{LakeOptions, ParquetLake};
use marketpipe_ports::error::QueryError;
use marketpipe_ports::lake::{BarStore, PartitionKey, WriteMeta};
use marketpipe_ports::query::{Cell, QueryEngine, QueryResult};
use tempfile::TempDir;

use crate::DuckDbEngine;

const MINUTE: i64 = 60_000_000_000;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

/// `n` bars of `frame` for `symbol` every `step` nanoseconds from `start`.
fn bars(symbol: &str, start: &str, n: i64, step: i64) -> Vec<Bar> {
    let start = ts(start);
    (0..n)
        .map(|i| {
            let close = Price::from_raw((100 + i) * 1_000_000_000 + 250_000_000).unwrap();
            let mut bar = Bar::new(
                Symbol::new(symbol).unwrap(),
                start.saturating_add_nanos(i * step),
                close,
                close,
                close,
                close,
                u64::try_from(1000 + i).unwrap(),
            );
            bar.trade_count = Some(7);
            bar
        })
        .collect()
}

async fn write(lake: &ParquetLake, frame: Timeframe, bars: &[Bar]) {
    let meta = WriteMeta {
        provider: "fake".into(),
        feed: None,
        origin: marketpipe_ports::BarOrigin::Provider,
        ingested_at: ts("2024-06-01T12:00:00Z"),
        job_id: None,
    };
    let mut by_key: BTreeMap<PartitionKey, Vec<Bar>> = BTreeMap::new();
    for bar in bars {
        by_key
            .entry(PartitionKey::for_bar(frame, bar.symbol, bar.ts))
            .or_default()
            .push(*bar);
    }
    for (key, bars) in by_key {
        lake.write_partition(&key, &bars, &meta).await.unwrap();
    }
}

/// A lake with 1m bars of AAPL (January and February 2024: 30 + 20 bars), BRK.B (January:
/// 10 bars) and 1d bars of AAPL (3 sessions); no 5m, 15m, 30m, 1h or 4h files.
async fn sample_lake() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("lake");
    let lake = ParquetLake::new(&root, LakeOptions::default());
    write(
        &lake,
        Timeframe::M1,
        &bars("AAPL", "2024-01-02T14:30:00Z", 30, MINUTE),
    )
    .await;
    write(
        &lake,
        Timeframe::M1,
        &bars("AAPL", "2024-02-01T14:30:00Z", 20, MINUTE),
    )
    .await;
    write(
        &lake,
        Timeframe::M1,
        &bars("BRK.B", "2024-01-03T14:30:00Z", 10, MINUTE),
    )
    .await;
    write(
        &lake,
        Timeframe::D1,
        &bars("AAPL", "2024-01-02T14:30:00Z", 3, 1440 * MINUTE),
    )
    .await;
    (dir, root)
}

async fn query(engine: &DuckDbEngine, sql: &str) -> QueryResult {
    match engine.query(sql, None).await {
        Ok(r) => r,
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn refused(engine: &DuckDbEngine, sql: &str) -> String {
    match engine.query(sql, None).await {
        Err(QueryError::Refused { reason, .. }) => reason,
        other => panic!("{sql} was not refused: {other:?}"),
    }
}

fn text(s: &str) -> Cell {
    Cell::Text(s.into())
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, Vec::new());
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

const DESCRIBED: [(&str, &str); 15] = [
    ("symbol", "VARCHAR"),
    ("ts", "TIMESTAMP WITH TIME ZONE"),
    ("open", "DOUBLE"),
    ("high", "DOUBLE"),
    ("low", "DOUBLE"),
    ("close", "DOUBLE"),
    ("volume", "BIGINT"),
    ("trade_count", "BIGINT"),
    ("vwap", "DOUBLE"),
    ("provider", "VARCHAR"),
    ("feed", "VARCHAR"),
    ("origin", "VARCHAR"),
    ("ingested_at", "TIMESTAMP WITH TIME ZONE"),
    ("year", "INTEGER"),
    ("month", "INTEGER"),
];

#[tokio::test]
async fn every_view_has_the_documented_columns_with_or_without_files() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    for view in DuckDbEngine::view_names() {
        let r = query(&engine, &format!("DESCRIBE {view}")).await;
        let got: Vec<(Cell, Cell)> = r
            .rows
            .iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
        let want: Vec<(Cell, Cell)> = DESCRIBED.iter().map(|(c, t)| (text(c), text(t))).collect();
        assert_eq!(got, want, "{view}");
    }
    let tables = query(&engine, "SHOW TABLES").await;
    assert_eq!(tables.rows.len(), 7);
}

#[tokio::test]
async fn views_read_the_files() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let r = query(
        &engine,
        "select symbol, year, month, count(*) as n, sum(volume) as v from bars_1m group by all order by all",
    )
    .await;
    assert_eq!(r.columns, ["symbol", "year", "month", "n", "v"]);
    assert_eq!(
        r.rows,
        [
            vec![
                text("AAPL"),
                Cell::Int(2024),
                Cell::Int(1),
                Cell::Int(30),
                Cell::Int((1000..1030).sum())
            ],
            vec![
                text("AAPL"),
                Cell::Int(2024),
                Cell::Int(2),
                Cell::Int(20),
                Cell::Int((1000..1020).sum())
            ],
            vec![
                text("BRK.B"),
                Cell::Int(2024),
                Cell::Int(1),
                Cell::Int(10),
                Cell::Int((1000..1010).sum())
            ],
        ]
    );
    assert!(!r.truncated);

    let first = query(
        &engine,
        "select ts, open, volume, trade_count, vwap, provider, feed, cast(ts as timestamp)::date as d, month from bars_1d order by ts limit 1",
    )
    .await;
    assert_eq!(
        first.rows,
        [vec![
            Cell::Timestamp(ts("2024-01-02T14:30:00Z")),
            Cell::Float(100.25),
            Cell::Int(1000),
            Cell::Int(7),
            Cell::Null,
            text("fake"),
            Cell::Null,
            text("2024-01-02"),
            Cell::Null,
        ]]
    );
    // Filters on the partition columns prune directories.
    let brk = query(
        &engine,
        "select count(*) from bars_1m where symbol = 'BRK.B' and year = 2024",
    )
    .await;
    assert_eq!(brk.rows, [vec![Cell::Int(10)]]);
}

#[tokio::test]
async fn a_frame_without_files_is_an_empty_view_until_files_appear() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let r = query(&engine, "select * from bars_5m").await;
    assert!(r.rows.is_empty());
    assert_eq!(r.columns.len(), DESCRIBED.len());

    let lake = ParquetLake::new(&root, LakeOptions::default());
    write(
        &lake,
        Timeframe::M5,
        &bars("AAPL", "2024-01-02T14:30:00Z", 4, 5 * MINUTE),
    )
    .await;
    let r = query(&engine, "select count(*) from bars_5m").await;
    assert_eq!(r.rows, [vec![Cell::Int(4)]]);
}

#[tokio::test]
async fn a_missing_lake_gives_empty_views_and_is_not_created() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("no-lake");
    let engine = DuckDbEngine::open(&root).unwrap();
    for view in DuckDbEngine::view_names() {
        let r = query(&engine, &format!("select * from {view}")).await;
        assert!(
            r.rows.is_empty() && r.columns.len() == DESCRIBED.len(),
            "{view}"
        );
    }
    assert!(!root.exists());
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn temporary_and_lock_files_are_never_read() {
    let (_dir, root) = sample_lake().await;
    let partition = root.join("frame=1m/symbol=AAPL/year=2024/month=1");
    assert!(partition.join(".part-0.parquet.lock").exists());
    fs::write(partition.join(".part-0.parquet.tmp-99-0"), b"half-written").unwrap();
    fs::write(partition.join(".part-1.parquet"), b"not parquet").unwrap();
    let engine = DuckDbEngine::open(&root).unwrap();
    let r = query(
        &engine,
        "select count(*) from bars_1m where symbol = 'AAPL'",
    )
    .await;
    assert_eq!(r.rows, [vec![Cell::Int(50)]]);
}

#[tokio::test]
async fn an_unreadable_lake_file_fails_the_query_and_bad_sql_stays_invalid() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    // The last file the 1m glob lists, so the failure comes while running, not binding; and
    // the first, where DuckDB reads the schema while binding.
    for file in [
        "frame=1m/symbol=BRK.B/year=2024/month=1/part-0.parquet",
        "frame=1m/symbol=AAPL/year=2024/month=1/part-0.parquet",
    ] {
        let path = root.join(file);
        let good = fs::read(&path).unwrap();
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 8..].copy_from_slice(b"garbage!");
        fs::write(&path, &bad).unwrap();
        match engine.query("select count(*) from bars_1m", None).await {
            Err(QueryError::Execution { message, source }) => {
                assert!(message.contains("part-0.parquet"), "{file}: {message}");
                assert!(source.is_some());
            }
            other => panic!("{file}: {other:?}"),
        }
        // The other frames still answer; a statement error is still the statement's.
        let r = query(&engine, "select count(*) from bars_1d").await;
        assert_eq!(r.rows, [vec![Cell::Int(3)]]);
        assert!(matches!(
            engine.query("select nope from bars_1m", None).await,
            Err(QueryError::Invalid { .. })
        ));
        assert!(matches!(
            engine.query("select 1 +", None).await,
            Err(QueryError::Invalid { .. })
        ));
        fs::write(&path, &good).unwrap();
    }
    let r = query(&engine, "select count(*) from bars_1m").await;
    assert_eq!(r.rows, [vec![Cell::Int(60)]]);
}

#[tokio::test]
async fn limit_cuts_rows_and_says_so() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let sql = "select ts from bars_1m order by ts";
    let r = engine.query(sql, Some(7)).await.unwrap();
    assert_eq!(r.rows.len(), 7);
    assert!(r.truncated);
    let r = engine.query(sql, Some(60)).await.unwrap();
    assert_eq!(r.rows.len(), 60);
    assert!(!r.truncated);
    let r = engine.query(sql, Some(0)).await.unwrap();
    assert!(r.rows.is_empty() && r.truncated);
    // More rows than one DuckDB chunk (2048).
    let r = engine
        .query("select * from range(5000)", Some(4097))
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 4097);
    assert_eq!(r.rows[4096], [Cell::Int(4096)]);
    assert!(r.truncated);
}

#[tokio::test]
async fn results_map_types_to_cells() {
    let engine = DuckDbEngine::open(Path::new("/nonexistent-lake")).unwrap();
    let r = query(
        &engine,
        "select 1::tinyint a, 2::ubigint b, 3::hugeint c, 1.5::decimal(10,2) d, 0.25::float e, \
         true f, 'x' g, date '2024-03-01' h, timestamp '2024-01-02 14:30:00' i, \
         timestamptz '2024-01-02 14:30:00+00' j, '2024-01-02 14:30:00.123456789'::timestamp_ns k, \
         [1, 2] l, {'a': 1} m, null n, interval 1 day o, time '10:00' p",
    )
    .await;
    let t = ts("2024-01-02T14:30:00Z");
    assert_eq!(
        r.rows,
        [vec![
            Cell::Int(1),
            Cell::Int(2),
            Cell::Int(3),
            Cell::Float(1.5),
            Cell::Float(0.25),
            Cell::Bool(true),
            text("x"),
            text("2024-03-01"),
            Cell::Timestamp(t),
            Cell::Timestamp(t),
            Cell::Timestamp(t.saturating_add_nanos(123_456_789)),
            text("[1, 2]"),
            text("{a: 1}"),
            Cell::Null,
            r.rows[0][14].clone(),
            text("10:00:00"),
        ]]
    );
    assert!(matches!(&r.rows[0][14], Cell::Text(s) if s.contains('1')));
}

#[tokio::test]
async fn reading_statements_of_every_kind_run() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    for sql in [
        "select 1",
        "with x as (select count(*) n from bars_1m) select * from x",
        "values (1), (2)",
        "table bars_1d",
        "from bars_1d select symbol",
        "summarize bars_1d",
        "pivot bars_1m on symbol in ('AAPL', 'BRK.B') using count(*) group by year",
        "explain select count(*) from bars_1m",
        "explain analyze select count(*) from bars_1m",
        "-- hi\nselect ';' as x; -- bye",
    ] {
        let r = query(&engine, sql).await;
        assert!(!r.columns.is_empty(), "{sql}");
    }
}

#[tokio::test]
async fn sql_errors_are_invalid_and_name_the_problem() {
    let engine = DuckDbEngine::open(Path::new("/nonexistent-lake")).unwrap();
    match engine.query("select nope from bars_1m", None).await {
        Err(QueryError::Invalid { message }) => {
            assert!(message.contains("nope"), "{message}");
            assert!(!message.contains("query("), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        engine.query("selec 1", None).await,
        Err(QueryError::Refused { .. })
    ));
    assert!(matches!(
        engine.query("select 1 +", None).await,
        Err(QueryError::Invalid { .. })
    ));
}

#[tokio::test]
async fn writing_statements_are_refused_and_touch_nothing() {
    let (dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let before = snapshot(dir.path());
    let target = dir.path().join("out.csv");
    let inside = root.join("frame=1m/out.parquet");
    let statements = [
        format!("COPY (SELECT 1) TO '{}'", target.display()),
        format!("COPY bars_1m TO '{}' (FORMAT parquet)", inside.display()),
        "CREATE TABLE t AS SELECT 1".to_owned(),
        "INSERT INTO bars_1m SELECT * FROM bars_1m".to_owned(),
        "UPDATE bars_1m SET volume = 0".to_owned(),
        "DELETE FROM bars_1m".to_owned(),
        "DROP VIEW bars_1m".to_owned(),
        format!("ATTACH '{}' AS x", root.join("x.db").display()),
        "INSTALL httpfs".to_owned(),
        "LOAD parquet".to_owned(),
        "SET threads = 1".to_owned(),
        "PRAGMA threads = 1".to_owned(),
        format!("EXPORT DATABASE '{}'", root.join("export").display()),
        "CALL pragma_version()".to_owned(),
        "SELECT 1; DROP VIEW bars_1m".to_owned(),
        format!(
            "WITH x AS (SELECT 1) COPY (SELECT 1) TO '{}'",
            target.display()
        ),
        format!("EXPLAIN ANALYZE COPY (SELECT 1) TO '{}'", target.display()),
    ];
    for sql in &statements {
        refused(&engine, sql).await;
    }
    assert_eq!(snapshot(dir.path()), before);
    assert!(!target.exists() && !inside.exists());
    // The views are still there.
    let r = query(&engine, "select count(*) from bars_1m").await;
    assert_eq!(r.rows, [vec![Cell::Int(60)]]);
}

#[tokio::test]
async fn the_sandbox_alone_blocks_files_outside_the_lake_and_extensions() {
    let (dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let outside = dir.path().join("outside.csv");
    fs::write(&outside, "secret\n42\n").unwrap();
    let before = snapshot(dir.path());
    // Through the guard: a reading statement that reaches outside is refused by DuckDB, and
    // is the statement's fault (it fails the same way with no lake files at all).
    for sql in [
        "select * from read_csv('/etc/passwd')".to_owned(),
        "select * from read_csv_auto('/etc/passwd')".to_owned(),
        "select * from read_text('/etc/hostname')".to_owned(),
        format!("select * from read_csv('{}')", outside.display()),
        format!(
            "select * from read_csv('{}/../outside.csv')",
            root.display()
        ),
        "select * from glob('/etc/*')".to_owned(),
        "select * from read_parquet('http://example.invalid/x.parquet')".to_owned(),
    ] {
        match engine.query(&sql, None).await {
            Err(QueryError::Invalid { message }) => {
                assert!(message.contains("Permission"), "{sql}: {message}");
            }
            other => panic!("{sql} was not refused: {other:?}"),
        }
    }
    // Without the guard: what slips past it still cannot write, read or load outside.
    let target = dir.path().join("copied.csv");
    for sql in [
        format!("COPY (SELECT 1) TO '{}'", target.display()),
        format!("ATTACH '{}' AS x", dir.path().join("x.db").display()),
        "SELECT * FROM read_csv('/etc/passwd')".to_owned(),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "SET enable_external_access = true".to_owned(),
        "SET allowed_directories = ['/']".to_owned(),
        "SET temp_directory = '/tmp/x'".to_owned(),
        "RESET lock_configuration".to_owned(),
    ] {
        assert!(engine.run_unguarded(&sql).is_err(), "{sql} ran");
    }
    assert_eq!(snapshot(dir.path()), before);
    assert!(!target.exists());
    // Reading inside the lake is what the sandbox allows.
    let r = engine
        .run_unguarded(&format!(
            "SELECT count(*) FROM read_parquet('{}/frame=1d/*/*/*.parquet')",
            root.display()
        ))
        .unwrap();
    assert_eq!(r.rows, [vec![Cell::Int(3)]]);
}

#[tokio::test]
async fn statements_the_guard_accepts_are_single_statements_for_duckdb() {
    // Tricky inputs: the guard's tokenizer and DuckDB's must agree that each is one statement
    // (the `query()` wrapper would refuse a second one with this message).
    let engine = DuckDbEngine::open(Path::new("/nonexistent-lake")).unwrap();
    for sql in [
        "select ';'",
        "select 'a''; b'",
        "select e'\\'; select 1; '",
        "select 1e'\\'; select 1; '",
        "select $$ ; $$",
        "select $t$ ; $x$ ; $t$",
        "select 1 as \"a;\"\"b\"",
        "select 1 as `a;``b`",
        "select 1 /* ; /* ; */ ; */",
        "select 1 -- ; select 2",
        "select x'41', b'1', n'2;'",
        "select 1 as a$b",
        "select\u{a0}1",
    ] {
        match engine.query(sql, None).await {
            Ok(_) => {}
            Err(e) => assert!(!e.to_string().contains("single SELECT"), "{sql:?}: {e}"),
        }
    }
}

#[tokio::test]
async fn concurrent_queries_run_side_by_side() {
    let (_dir, root) = sample_lake().await;
    let engine = DuckDbEngine::open(&root).unwrap();
    let a = engine.query("select count(*) from bars_1m", None);
    let b = engine.query("select count(*) from bars_1d", None);
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.unwrap().rows, [vec![Cell::Int(60)]]);
    assert_eq!(b.unwrap().rows, [vec![Cell::Int(3)]]);
}

#[tokio::test]
async fn format_1_files_beside_format_2_ones_read_as_one_view() {
    // A lake midway through `mp lake upgrade`: AAPL's January in format 1 (`month=01`, a
    // `symbol` column, nanoseconds, no `origin`), its February and a 5m partition of format
    // 1 aggregated bars (`provider = aggregate`) beside format 2 files.
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("lake");
    let lake = ParquetLake::new(&root, LakeOptions::default());
    let january = bars("AAPL", "2024-01-02T14:30:00Z", 30, MINUTE);
    let key = PartitionKey::for_bar(Timeframe::M1, january[0].symbol, january[0].ts);
    let at = ts("2024-06-01T12:00:00Z");
    marketpipe_testkit::lake_v1::write_format_1(&root, &key, &january, "fake", None, at).unwrap();
    write(
        &lake,
        Timeframe::M1,
        &bars("AAPL", "2024-02-01T14:30:00Z", 20, MINUTE),
    )
    .await;
    let five = bars("AAPL", "2024-01-02T14:30:00Z", 6, 5 * MINUTE);
    let five_key = PartitionKey::for_bar(Timeframe::M5, five[0].symbol, five[0].ts);
    marketpipe_testkit::lake_v1::write_format_1(&root, &five_key, &five, "aggregate", None, at)
        .unwrap();
    let engine = DuckDbEngine::open(&root).unwrap();
    let r = query(
        &engine,
        "select month, count(*), min(symbol), min(origin), typeof(any_value(month)) \
         from bars_1m group by month order by month",
    )
    .await;
    assert_eq!(
        r.rows,
        [
            vec![
                Cell::Int(1),
                Cell::Int(30),
                text("AAPL"),
                text("provider"),
                text("INTEGER")
            ],
            vec![
                Cell::Int(2),
                Cell::Int(20),
                text("AAPL"),
                text("provider"),
                text("INTEGER")
            ],
        ]
    );
    let r = query(
        &engine,
        "select count(*), min(origin), min(provider) from bars_5m",
    )
    .await;
    assert_eq!(
        r.rows,
        [vec![Cell::Int(6), text("aggregate:1m"), text("aggregate")]]
    );
    // Both formats' instants are the same instants.
    let r = query(
        &engine,
        "select min(ts) = TIMESTAMPTZ '2024-01-02 14:30:00+00', \
         max(ts) = TIMESTAMPTZ '2024-02-01 14:49:00+00' from bars_1m",
    )
    .await;
    assert_eq!(r.rows, [vec![Cell::Bool(true), Cell::Bool(true)]]);
}
