//! `mp query`: SQL over the lake's DuckDB views in table, CSV and JSON, row limits, empty
//! frames, and the read-only guarantee (writing statements are refused with exit 2 and leave
//! every file as it was; files outside the lake cannot be read).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lake;
use crate::{mp, text};

/// Ingests AAPL, MSFT and BRK.B for January to March 2024 into `dir/data` with the fake
/// provider.
fn ingest(dir: &Path) {
    let out = mp(dir)
        .args([
            "ingest",
            "--provider",
            "fake",
            "--symbols",
            "AAPL,MSFT,BRK.B",
            "--start",
            "2024-01-02",
            "--end",
            "2024-03-29",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "ingest failed: {}", text(&out.stderr));
}

/// Runs `mp query <args…>` in `dir`: (exit code, stdout, stderr).
fn query(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = mp(dir).arg("query").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Runs `mp query <args…>`, expecting success; returns stdout.
fn query_ok(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = query(dir, args);
    assert_eq!(code, 0, "mp query {args:?} failed: {stderr}");
    stdout
}

/// Every file and directory under `dir` with its bytes (empty for directories).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, Vec::new());
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, bytes);
            }
        }
    }
    out
}

#[test]
fn csv_json_table_and_limits_over_the_ingested_lake() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path());
    let data_dir = dir.path().join("data");

    // Counts per symbol equal the rows of the Parquet files, read without MarketPipe.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for row in lake::read_lake(&data_dir) {
        *expected.entry(row.symbol).or_default() += 1;
    }
    assert_eq!(expected.len(), 3);
    let csv = query_ok(
        dir.path(),
        &[
            "select symbol, count(*) from bars_1m group by 1 order by 1",
            "--format",
            "csv",
        ],
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "symbol,count_star()", "{csv}");
    let want: Vec<String> = expected.iter().map(|(s, n)| format!("{s},{n}")).collect();
    assert_eq!(lines[1..], want, "{csv}");

    // JSON: an array of objects, numbers as numbers, timestamps as RFC 3339.
    let json = query_ok(
        dir.path(),
        &[
            "select symbol, count(*) as n, min(ts) as first, max(close) > 0 as ok, \
             min(ts)::timestamp::date as day from bars_1m group by 1 order by 1",
            "--format",
            "json",
        ],
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = value.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["symbol"], "AAPL");
    assert_eq!(rows[0]["n"], expected["AAPL"]);
    assert_eq!(rows[0]["first"], "2024-01-02T14:30:00Z");
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[0]["day"], "2024-01-02");

    // --limit cuts the rows; CSV and JSON stay valid and the cut is said on stderr.
    let (code, csv, stderr) = query(
        dir.path(),
        &[
            "select * from bars_1m order by symbol, ts",
            "--format",
            "csv",
            "--limit",
            "5",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.starts_with("symbol,ts,open,high,low,close,volume,trade_count,vwap,provider,feed,origin,ingested_at,year,month\n"), "{csv}");
    assert!(stderr.contains("truncated"), "{stderr}");
    let json = query_ok(
        dir.path(),
        &[
            "select ts from bars_1m order by ts",
            "--format",
            "json",
            "--limit",
            "2",
        ],
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value.as_array().unwrap().len(), 2);
    let table = query_ok(
        dir.path(),
        &[
            "select symbol, ts, close from bars_1m order by symbol, ts",
            "--limit",
            "3",
        ],
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 3 + 2, "{table}");
    assert!(lines[0].starts_with("symbol  ts"), "{table}");
    assert!(
        lines[2].starts_with("AAPL    2024-01-02T14:30:00Z"),
        "{table}"
    );
    assert_eq!(lines[5], "(3 rows)");
    assert_eq!(lines[6], "(truncated at 3 rows; use --limit to print more)");
    // Without --limit a table prints at most 10000 rows, and says so.
    let all = query_ok(dir.path(), &["select * from bars_1m"]);
    assert!(
        all.ends_with("(10000 rows)\n(truncated at 10000 rows; use --limit to print more)\n"),
        "{}",
        &all[all.len() - 200..]
    );

    // A frame without data yet is an empty result that still has its columns.
    let empty = query_ok(dir.path(), &["select * from bars_5m", "--format", "csv"]);
    assert_eq!(
        empty,
        "symbol,ts,open,high,low,close,volume,trade_count,vwap,provider,feed,origin,ingested_at,year,month\n"
    );
    let empty = query_ok(dir.path(), &["select * from bars_1h", "--format", "json"]);
    assert_eq!(empty, "[]\n");

    // SQL that DuckDB rejects is a usage error naming the problem.
    let (code, _, stderr) = query(dir.path(), &["select nope from bars_1m"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("query failed") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn writing_statements_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path());
    let lake_root = lake::root(&dir.path().join("data"));
    let before = tree(dir.path());
    let copy_target = dir.path().join("copied.csv");
    let in_lake = lake_root.join("frame=1m/stolen.parquet");
    let statements = [
        format!(
            "COPY (SELECT * FROM bars_1m) TO '{}'",
            copy_target.display()
        ),
        format!("copy bars_1m to '{}' (format parquet)", in_lake.display()),
        "COPY (SELECT 1) TO 'relative.csv'".to_owned(),
        "CREATE TABLE t AS SELECT * FROM bars_1m".to_owned(),
        "CREATE OR REPLACE VIEW bars_1m AS SELECT 1".to_owned(),
        "INSERT INTO bars_1m SELECT * FROM bars_1m".to_owned(),
        "UPDATE bars_1m SET close = 0".to_owned(),
        "DELETE FROM bars_1m".to_owned(),
        "DROP VIEW bars_1m".to_owned(),
        "ATTACH 'attached.db' AS other".to_owned(),
        format!("ATTACH '{}' AS other", lake_root.join("x.db").display()),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "SET enable_external_access = true".to_owned(),
        "PRAGMA threads = 1".to_owned(),
        "EXPORT DATABASE 'exported'".to_owned(),
        "CALL pragma_version()".to_owned(),
        "SELECT 1; DROP VIEW bars_1m".to_owned(),
        "with x as (select 1) insert into t select * from x".to_owned(),
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'explained.csv'".to_owned(),
    ];
    for sql in &statements {
        let (code, stdout, stderr) = query(dir.path(), &[sql]);
        assert_eq!(code, 2, "{sql}: exit {code}, stderr {stderr}");
        assert!(stderr.contains("refused"), "{sql}: {stderr}");
        assert!(stdout.is_empty(), "{sql}: {stdout}");
    }
    assert_eq!(
        tree(dir.path()),
        before,
        "a refused statement changed a file"
    );
    for path in [
        copy_target,
        in_lake,
        dir.path().join("relative.csv"),
        dir.path().join("attached.db"),
        dir.path().join("exported"),
        dir.path().join("explained.csv"),
    ] {
        assert!(!path.exists(), "{} was created", path.display());
    }

    // Reading outside the lake fails and shows nothing of the file.
    for sql in [
        "select * from read_csv_auto('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select * from glob('/etc/*')",
    ] {
        let (code, stdout, stderr) = query(dir.path(), &[sql, "--format", "csv"]);
        assert_ne!(code, 0, "{sql}: {stdout}");
        assert!(stdout.is_empty(), "{sql}: {stdout}");
        assert!(!stderr.contains("root:"), "{sql}: {stderr}");
        // The statement's fault (it fails the same with no lake at all): usage, exit 2.
        assert_eq!(code, 2, "{sql}: {stderr}");
        assert!(stderr.contains("Permission"), "{sql}: {stderr}");
    }
    assert_eq!(tree(dir.path()), before);

    // The views are intact after all that.
    let csv = query_ok(
        dir.path(),
        &[
            "select count(distinct symbol) from bars_1m",
            "--format",
            "csv",
        ],
    );
    assert_eq!(csv.lines().nth(1), Some("3"));
}

#[test]
fn a_data_dir_without_a_lake_has_empty_views_and_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = query(dir.path(), &["describe bars_1d", "--format", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    let columns: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    // The Hive `symbol`, the lake file's columns, then the Hive `year` and `month`.
    let expected: Vec<&str> = ["symbol"]
        .into_iter()
        .chain(lake::COLUMNS)
        .chain(["year", "month"])
        .collect();
    assert_eq!(columns, expected);
    let table = query_ok(dir.path(), &["select symbol, ts from bars_1m"]);
    assert_eq!(table, "symbol  ts\n------  --\n(0 rows)\n");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "mp query created a file"
    );
}

#[test]
fn a_corrupt_lake_file_fails_the_query_and_a_syntax_error_is_still_usage() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path());
    let lake_root = lake::root(&dir.path().join("data"));
    let partition = "frame=1m/symbol=MSFT/year=2024/month=2";
    let file = lake_root.join(partition).join("part-0.parquet");
    // Overwrite the footer (metadata length and magic): the file is no longer Parquet.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(b"\xde\xad\xbe\xefJUNK");
    std::fs::write(&file, &bytes).unwrap();

    // A valid statement that cannot read the lake has failed: exit 1, naming the file.
    let (code, stdout, stderr) = query(dir.path(), &["select count(*) from bars_1m"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains(partition), "names the file: {stderr}");
    // Another frame still answers.
    query_ok(dir.path(), &["select count(*) from bars_1d"]);

    // The statement's own faults stay usage errors (exit 2), corrupt file or not.
    for sql in ["select 1 +", "select nope from bars_1m"] {
        let (code, _, stderr) = query(dir.path(), &[sql]);
        assert_eq!(code, 2, "{sql}: {stderr}");
        assert!(stderr.contains("query failed"), "{sql}: {stderr}");
    }
}
