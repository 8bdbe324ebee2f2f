//! The lake read by the tools researchers use, with no option: after the README's first
//! command, DuckDB, polars, pyarrow, pandas and Spark (`tests/interop/read_lake.py`) each read
//! `data/lake/frame=1m` and must return exactly the rows `mp query` returns.
//!
//! The readers come from the Python package index and Spark needs Java 17; `.ci/run` installs them into a
//! virtual environment and points `MP_INTEROP_PYTHON` at it, so CI always runs this test. On
//! a machine without them the test says that it skipped and why, and does not pass silently.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::run_ok;

/// The README's first command (the main job on the embedded default).
const README_INGEST: [&str; 9] = [
    "ingest",
    "--provider",
    "fake",
    "--symbols",
    "AAPL,MSFT,BRK.B",
    "--start",
    "2024-01-02",
    "--end",
    "2024-12-31",
];

/// 3 symbols x (249 full sessions x 390 + 3 early closes x 210).
const README_BARS: usize = 293_220;

#[test]
fn every_common_reader_reads_the_readme_lake_as_mp_query_does() {
    let python = std::env::var("MP_INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/read_lake.py");
    let dir = TempDir::new().unwrap();
    run_ok(dir.path(), &README_INGEST);
    let expected = run_ok(
        dir.path(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT symbol, epoch_us(ts) AS ts_us, open, high, low, close, volume, provider, feed \
             FROM bars_1m ORDER BY symbol, ts",
        ],
    );
    assert_eq!(expected.lines().count(), README_BARS + 1, "header + bars");
    let csv = dir.path().join("expected.csv");
    std::fs::write(&csv, &expected).unwrap();

    let output = match Command::new(&python)
        .arg(&script)
        .arg(dir.path().join("data/lake"))
        .arg(&csv)
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            let reason = format!(
                "SKIPPED: cannot run {python} ({e}); run `bash .ci/run` or set MP_INTEROP_PYTHON"
            );
            println!("{reason}");
            eprintln!("{reason}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) {
        let reason = format!(
            "SKIPPED: {} ({python}); `bash .ci/run` installs the readers",
            stdout.trim()
        );
        println!("{reason}");
        eprintln!("{reason}");
        return;
    }
    println!("{stdout}");
    assert!(
        output.status.success(),
        "a reader disagrees with mp query:\n{stdout}\n{stderr}"
    );
    for reader in [
        "duckdb read_parquet(default)",
        "duckdb read_parquet(hive_partitioning=true)",
        "duckdb read_parquet(hive_partitioning=false)",
        "polars scan_parquet",
        "pyarrow dataset",
        "pandas read_parquet(frame dir)",
        "pandas read_parquet(one file)",
        "spark read.parquet",
    ] {
        assert!(
            stdout.contains(&format!("ok    {reader}")),
            "{reader} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("{README_BARS} rows equal")),
        "{stdout}"
    );
}
