//! `mp validate`: a fixture lake with one violation of each rule, a clean fake lake, reports,
//! `--list`, `--show`, `--strict`, bad input, `mp ingest --validate`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use predicates::prelude::*;

use crate::{mp, text};

/// One stored row of the fixture: minute offset from the open (ET 09:30) of a January 2024
/// session date, seconds, OHLC in cents, volume.
#[derive(Clone, Copy)]
struct FixtureBar {
    day: u32,
    minute: i64,
    second: i64,
    ohlc: [i64; 4],
    volume: i64,
}

const CLEAN: [i64; 4] = [10_000, 10_050, 9_950, 10_010];

fn ts_nanos(day: u32, minute: i64, second: i64) -> i64 {
    // January 2024 is EST: 09:30 ET = 14:30 UTC.
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
    let open = date.and_hms_opt(14, 30, 0).unwrap().and_utc().timestamp();
    (open + minute * 60 + second) * 1_000_000_000
}

/// Writes rows as the lake stores them (same schema as marketpipe-parquet), in the given
/// order, bypassing the lake's merge so that duplicates survive.
fn write_fixture(path: &Path, bars: &[FixtureBar]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let ts = |tz: bool, v: Vec<i64>| {
        let a = TimestampNanosecondArray::from(v);
        if tz { a.with_timezone("UTC") } else { a }
    };
    let price = |i: usize| {
        Arc::new(Float64Array::from(
            bars.iter()
                .map(|b| f64::from(i32::try_from(b.ohlc[i]).unwrap()) / 100.0)
                .collect::<Vec<_>>(),
        ))
    };
    let n = bars.len();
    let batch = RecordBatch::try_from_iter(vec![
        ("symbol", Arc::new(StringArray::from(vec!["FIX"; n])) as _),
        (
            "ts",
            Arc::new(ts(
                true,
                bars.iter()
                    .map(|b| ts_nanos(b.day, b.minute, b.second))
                    .collect(),
            )) as _,
        ),
        ("open", price(0) as _),
        ("high", price(1) as _),
        ("low", price(2) as _),
        ("close", price(3) as _),
        (
            "volume",
            Arc::new(Int64Array::from(
                bars.iter().map(|b| b.volume).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "trade_count",
            Arc::new(Int64Array::from(vec![Some(10); n])) as _,
        ),
        (
            "vwap",
            Arc::new(Float64Array::from(vec![None::<f64>; n])) as _,
        ),
        (
            "provider",
            Arc::new(StringArray::from(vec!["fixture"; n])) as _,
        ),
        (
            "feed",
            Arc::new(StringArray::from(vec![None::<&str>; n])) as _,
        ),
        ("ingested_at", Arc::new(ts(true, vec![0; n])) as _),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Sessions 2024-01-02, 03 and 05 (the 4th is missing), with exactly one violation of each
/// rule on the 2nd.
fn fixture_bars() -> Vec<FixtureBar> {
    let clean = |day, minute| FixtureBar {
        day,
        minute,
        second: 0,
        ohlc: CLEAN,
        volume: 1_000 + (minute % 7) * 100,
    };
    let mut out = Vec::new();
    for day in [2, 3, 5] {
        for minute in 0..390 {
            if day == 2 && (300..303).contains(&minute) {
                continue; // missing minutes 14:30-14:32 ET
            }
            let mut b = clean(day, minute);
            if day == 2 {
                match minute {
                    30 => b.ohlc = [10_000, 9_900, 9_950, 9_950], // high below low
                    40 => b.ohlc = [10_000, 10_020, 9_990, 10_040], // high below close
                    50 => b.ohlc = [9_980, 10_050, 10_000, 10_020], // low above open
                    60 => b.ohlc = [10_000, 10_050, 0, 10_010],   // non-positive price
                    100 => b.ohlc = [10_000, 11_500, 9_950, 10_010], // price jump (+14.9 %)
                    120 => b.volume = 5_000_000,                  // volume outlier
                    200..240 => b.volume = 0,                     // zero-volume run
                    _ => {}
                }
            }
            out.push(b);
            if day == 2 && minute == 70 {
                out.push(FixtureBar {
                    second: 30,
                    ..clean(2, 70)
                }); // misaligned ts
            }
            if day == 2 && minute == 80 {
                out.push(clean(2, 80)); // duplicate ts
            }
            if day == 2 && minute == 389 {
                out.push(clean(2, 420)); // 16:30 ET: outside the session
            }
        }
    }
    out
}

fn write_fixture_lake(data: &Path) {
    let path = data.join("lake/frame=1m/symbol=FIX/year=2024/month=1/part-0.parquet");
    write_fixture(&path, &fixture_bars());
}

#[test]
fn fixture_lake_yields_exactly_one_finding_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture_lake(&dir.path().join("data"));
    let out = mp(dir.path())
        .args([
            "validate",
            "--symbols",
            "FIX",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-05",
        ])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("validation range-20240102-20240105: 1 symbols"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(
        dir.path()
            .join("data/reports/range-20240102-20240105_FIX.csv"),
    )
    .unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("symbol,ts,rule,severity,detail"));
    let found: Vec<(String, String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ',').collect();
            (f[1].to_owned(), f[2].to_owned(), f[3].to_owned())
        })
        .collect();
    let t = |m: i64, s: i64| {
        chrono::DateTime::from_timestamp_nanos(ts_nanos(2, m, s))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    let expected: Vec<(String, String, String)> = [
        (t(30, 0), "ohlc_high_below_low", "error"),
        (t(40, 0), "ohlc_high_below_close", "error"),
        (t(50, 0), "ohlc_low_above_open", "error"),
        (t(60, 0), "non_positive_price", "error"),
        (t(70, 30), "misaligned_ts", "error"),
        (t(80, 0), "duplicate_ts", "error"),
        (t(100, 0), "price_jump", "warning"),
        (t(120, 0), "volume_outlier", "warning"),
        (t(200, 0), "zero_volume_run", "warning"),
        (t(300, 0), "missing_minutes", "warning"),
        (t(420, 0), "outside_session", "error"),
        (
            "2024-01-04T14:30:00Z".to_owned(),
            "missing_session",
            "error",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a, b.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(found, expected, "{csv}");

    // --strict turns the error findings into exit 1; the report is replaced, not duplicated.
    mp(dir.path())
        .args([
            "validate",
            "--symbols",
            "FIX",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-05",
            "--strict",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--strict"));
    let again = std::fs::read_to_string(
        dir.path()
            .join("data/reports/range-20240102-20240105_FIX.csv"),
    )
    .unwrap();
    assert_eq!(again, csv);
    let reports: Vec<_> = std::fs::read_dir(dir.path().join("data/reports"))
        .unwrap()
        .collect();
    assert_eq!(reports.len(), 1, "one report, no temp file");

    // --list and --show.
    mp(dir.path())
        .args(["validate", "--list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("range-20240102-20240105_FIX"));
    mp(dir.path())
        .args(["validate", "--show", "range-20240102-20240105_FIX"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ohlc_high_below_low"))
        .stdout(predicate::str::contains("12 findings"));
}

#[test]
fn clean_fake_lake_has_no_error_findings_and_ingest_can_validate() {
    let dir = tempfile::tempdir().unwrap();
    let out = mp(dir.path())
        .args([
            "-q",
            "ingest",
            "--symbols",
            "AAPL,MSFT,BRK.B",
            "--start",
            "2024-01-02",
            "--end",
            "2024-12-31",
            "--validate",
        ])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("3 symbols, 293220 bars, 0 errors"),
        "{stdout}"
    );
    let jobs: serde_json::Value = serde_json::from_slice(
        &mp(dir.path())
            .args(["jobs", "list", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    for s in ["AAPL", "MSFT", "BRK.B"] {
        assert!(
            dir.path()
                .join(format!("data/reports/{id}_{s}.csv"))
                .exists()
        );
    }
    // The same job validated again through --job-id, strictly: no error findings, exit 0.
    mp(dir.path())
        .args(["ohlcv", "validate", "--job-id", &id, "--strict"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0 errors"));
    mp(dir.path())
        .args(["validate-ohlcv", "--job-id", &id])
        .assert()
        .success();
}

#[test]
fn bad_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .args([
            "-q",
            "ingest",
            "--symbols",
            "AAPL",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-05",
        ])
        .assert()
        .success();
    for (args, needle) in [
        (vec!["validate", "--job-id", "nope"], "nope"),
        (
            vec!["validate", "--show", "../etc/passwd_AAPL"],
            "../etc/passwd_AAPL",
        ),
        (vec!["validate", "--show", "a/b_AAPL"], "a/b_AAPL"),
        (vec!["validate", "--show", "job1_AAPL"], "job1_AAPL"),
        (
            vec![
                "validate",
                "--symbols",
                "AAPL",
                "--start",
                "2024-02-01",
                "--end",
                "2024-01-01",
            ],
            "start 2024-02-01 is after end 2024-01-01",
        ),
        (
            vec![
                "validate",
                "--symbols",
                "../x",
                "--start",
                "2024-01-02",
                "--end",
                "2024-01-03",
            ],
            "../x",
        ),
        (vec!["validate"], "--job-id"),
    ] {
        mp(dir.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
}
