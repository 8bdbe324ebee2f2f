//! `mp aggregate`: every frame bar equals what DuckDB computes from the same 1m files, and a
//! second ingest that changes one symbol's March rewrites only that symbol's affected files.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::ingest::ingest_args;
use crate::{lake, mp, run_ok, text};

fn ingest(dir: &Path, symbols: &str, start: &str, end: &str, extra: &[&str]) -> String {
    run_ok(dir, &ingest_args(symbols, start, end, extra))
}

/// One CSV data row of `mp query … --format csv`, split on commas (no quoted cells here).
fn query_row(dir: &Path, sql: &str) -> Vec<String> {
    let stdout = run_ok(dir, &["query", sql, "--format", "csv"]);
    let mut lines = stdout.lines();
    lines.next().expect("a header line");
    let row = lines
        .next()
        .unwrap_or_else(|| panic!("no row for {sql}: {stdout}"));
    row.split(',').map(str::to_owned).collect()
}

/// The oracle for a clock frame: DuckDB buckets `bars_1m` itself with `time_bucket`,
/// `arg_min`/`arg_max`, `max`, `min`, `sum`; returns (oracle rows, stored rows, oracle rows
/// not stored, stored rows not in the oracle).
fn clock_frame_sql(view: &str, width: &str) -> String {
    format!(
        "WITH oracle AS (
           SELECT symbol, time_bucket(INTERVAL '{width}', ts::TIMESTAMP) AS bucket,
                  arg_min(open, ts) AS open, max(high) AS high, min(low) AS low,
                  arg_max(close, ts) AS close, sum(volume)::BIGINT AS volume
           FROM bars_1m GROUP BY 1, 2),
         stored AS (
           SELECT symbol, ts::TIMESTAMP AS bucket, open, high, low, close, volume FROM {view})
         SELECT (SELECT count(*) FROM oracle), (SELECT count(*) FROM stored),
                (SELECT count(*) FROM (SELECT * FROM oracle EXCEPT SELECT * FROM stored)),
                (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM oracle))"
    )
}

/// The oracle for 1d: one bar per New York session date. Regular-hours bars lie between
/// 13:30 and 21:00 UTC, so shifting by 5 hours gives their New York date in winter and
/// summer; a stored 1d bar's `ts` is New York midnight (04:00 or 05:00 UTC) of its date.
const DAILY_SQL: &str = "WITH oracle AS (
     SELECT symbol, (ts::TIMESTAMP - INTERVAL 5 HOUR)::DATE AS session,
            arg_min(open, ts) AS open, max(high) AS high, min(low) AS low,
            arg_max(close, ts) AS close, sum(volume)::BIGINT AS volume
     FROM bars_1m GROUP BY 1, 2),
   stored AS (
     SELECT symbol, ts::TIMESTAMP::DATE AS session, open, high, low, close, volume FROM bars_1d)
   SELECT (SELECT count(*) FROM oracle), (SELECT count(*) FROM stored),
          (SELECT count(*) FROM (SELECT * FROM oracle EXCEPT SELECT * FROM stored)),
          (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM oracle))";

#[test]
fn every_frame_bar_equals_the_duckdb_oracle_for_three_symbols_in_2024() {
    let dir = tempfile::tempdir().unwrap();
    ingest(
        dir.path(),
        "AAPL,MSFT,BRK.B",
        "2024-01-02",
        "2024-12-31",
        &[],
    );
    let stdout = run_ok(dir.path(), &["aggregate"]);
    assert!(stdout.contains("aggregate 5m,15m,1h,1d"), "{stdout}");
    assert!(stdout.contains("36 partitions, 293220 bars"), "{stdout}");

    // 252 sessions in 2024, 3 of them early closes (13:00 ET): 249 x 78 + 3 x 42 5m bars.
    let expected_5m = 3 * (249 * 78 + 3 * 42);
    for (view, width, expected) in [
        ("bars_5m", "5 minutes", Some(expected_5m)),
        ("bars_15m", "15 minutes", None),
        ("bars_1h", "1 hour", None),
    ] {
        let row = query_row(dir.path(), &clock_frame_sql(view, width));
        assert_eq!(
            row[0], row[1],
            "{view}: oracle and stored counts differ: {row:?}"
        );
        assert_eq!(
            row[2..],
            ["0", "0"],
            "{view}: rows differ from DuckDB's: {row:?}"
        );
        if let Some(n) = expected {
            assert_eq!(row[0], n.to_string(), "{view}");
        }
    }
    let row = query_row(dir.path(), DAILY_SQL);
    assert_eq!(row, ["756", "756", "0", "0"], "1d: {row:?}");

    // The query: one 1d bar per symbol and session.
    let csv = run_ok(
        dir.path(),
        &[
            "query",
            "select symbol, count(*) from bars_1d group by 1 order by 1",
            "--format",
            "csv",
        ],
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[1..], ["AAPL,252", "BRK.B,252", "MSFT,252"], "{csv}");
    assert!(lines[0].starts_with("symbol,"), "{csv}");
}

/// Every frame file (not 1m), relative to the lake root, with a hash of its bytes. Change
/// detection by content, not modification times (so no sleep to tell two writes apart on a
/// file system with coarse timestamps): the lake rewrites a file only when its bars change
/// (an identical write leaves the file as it is).
fn frame_files(data_dir: &Path) -> BTreeMap<PathBuf, u64> {
    let root = lake::root(data_dir);
    lake::part_files(&root)
        .into_iter()
        .map(|path| {
            let mut hasher = DefaultHasher::new();
            std::fs::read(&path).unwrap().hash(&mut hasher);
            (
                path.strip_prefix(&root).unwrap().to_path_buf(),
                hasher.finish(),
            )
        })
        .filter(|(path, _)| !path.starts_with("frame=1m"))
        .collect()
}

#[test]
fn a_changed_march_rewrites_only_that_symbols_affected_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    ingest(
        dir.path(),
        "AAPL,MSFT,BRK.B",
        "2024-01-02",
        "2024-04-30",
        &[],
    );
    let first = run_ok(dir.path(), &["aggregate"]);
    assert!(first.contains("12 partitions"), "{first}");
    let before = frame_files(&data_dir);
    // 3 symbols x (4 months of 5m + 4 of 15m + 1 year of 1h + 1 of 1d).
    assert_eq!(before.len(), 30, "{:?}", before.keys());

    // Nothing changed: nothing is read or written.
    let again = run_ok(dir.path(), &["aggregate"]);
    assert!(
        again.contains("nothing to do, 12 1m partitions are up to date"),
        "{again}"
    );
    assert_eq!(frame_files(&data_dir), before);

    // A second ingest adds MSFT's extended-hours bars in March only.
    let second = ingest(
        dir.path(),
        "MSFT",
        "2024-03-01",
        "2024-03-31",
        &["--extended-hours"],
    );
    assert!(second.contains("1 written, 0 unchanged"), "{second}");
    let third = run_ok(dir.path(), &["aggregate"]);
    assert!(third.contains("1m read      1 partitions"), "{third}");
    assert!(
        third.contains("11 partitions already up to date"),
        "{third}"
    );
    let after = frame_files(&data_dir);
    assert_eq!(after.len(), before.len());
    let changed: Vec<PathBuf> = after
        .iter()
        .filter(|(path, state)| before.get(*path) != Some(*state))
        .map(|(path, _)| path.clone())
        .collect();
    let expected: Vec<PathBuf> = [
        "frame=15m/symbol=MSFT/year=2024/month=3/part-0.parquet",
        "frame=1d/symbol=MSFT/year=2024/part-0.parquet",
        "frame=1h/symbol=MSFT/year=2024/part-0.parquet",
        "frame=5m/symbol=MSFT/year=2024/month=3/part-0.parquet",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(changed, expected);

    // March's MSFT sessions now span 04:00-20:00 ET: 16 hours of 5m bars per full session.
    let row = query_row(
        dir.path(),
        "select count(*) from bars_5m where symbol = 'MSFT' and month = 3",
    );
    assert_eq!(row, ["3840"], "20 sessions x 192 5m bars");
}

#[test]
fn aliases_and_ingest_aggregate_build_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let stdout = ingest(
        dir.path(),
        "AAPL",
        "2024-01-02",
        "2024-01-31",
        &["--aggregate"],
    );
    assert!(stdout.contains("aggregate 5m,15m,1h,1d"), "{stdout}");
    assert_eq!(frame_files(&data_dir).len(), 4);

    let rebuilt = run_ok(
        dir.path(),
        &["ohlcv", "aggregate", "--full", "--frames", "30m,4h"],
    );
    assert!(rebuilt.contains("aggregate 30m,4h"), "{rebuilt}");
    assert!(rebuilt.contains("1m read      1 partitions"), "{rebuilt}");
    let quiet = run_ok(dir.path(), &["aggregate-ohlcv", "--symbols", "AAPL"]);
    assert!(quiet.contains("nothing to do"), "{quiet}");
    assert_eq!(frame_files(&data_dir).len(), 6);
}

#[test]
fn bad_input_exits_2_and_an_empty_lake_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            &["aggregate", "--frames", "5m,2m"][..],
            "unknown frame \"2m\"",
        ),
        (
            &["aggregate", "--frames", "1m"][..],
            "cannot aggregate to 1m",
        ),
        (&["aggregate", "--symbols", "aa pl"][..], "aa pl"),
        (
            &["aggregate", "--start", "2024-13-01", "--end", "2024-12-31"][..],
            "2024-13-01",
        ),
        (&["aggregate", "--concurrency", "0"][..], "at least 1"),
        (&["aggregate", "--start", "2024-01-01"][..], "--end"),
    ] {
        let out = mp(dir.path()).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "bad input created nothing"
    );
    let stdout = run_ok(dir.path(), &["aggregate"]);
    assert!(stdout.contains("no 1m partitions selected"), "{stdout}");
}
