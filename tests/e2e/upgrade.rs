//! `mp lake upgrade`, `mp lake status` and `mp health` on a data directory written by
//! MarketPipe before lake format 2 (`tests/fixtures/format-1`, made by
//! `scripts/make-format-1-fixture.sh` with the binary of commit 8a98fa8): every command works
//! on it as it is, an upgrade killed midway and run again leaves a lake equal to one written
//! fresh, row for row, and a second run changes nothing.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread::sleep;
use std::time::Duration;

use tempfile::TempDir;

use crate::{lake, mp, mp_process, run_ok, text};

/// The format 1 data directory: AAPL, BRK.B and MSFT, 2024-09-23 … 2024-10-04, with every
/// frame `ingest --aggregate` builds.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/format-1/data"
);
const SYMBOLS: &str = "AAPL,BRK.B,MSFT";
const START: &str = "2024-09-23";
const END: &str = "2024-10-04";
/// 10 sessions x 390 minutes x 3 symbols.
const MINUTE_BARS: usize = 11_700;
/// 3 symbols x (1m, 5m, 15m in September and October, 1h and 1d for 2024).
const PARTITIONS: usize = 24;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `args` after `--data-dir DATA`.
fn with_data<'a>(data: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--data-dir", data];
    all.extend_from_slice(args);
    all
}

/// Every frame's rows as `mp query` prints them (CSV, all columns but `ingested_at`).
fn frames_as_queried(dir: &Path, data: &str) -> Vec<(String, String)> {
    ["1m", "5m", "15m", "1h", "1d"]
        .into_iter()
        .map(|frame| {
            let sql = format!(
                "SELECT symbol, ts, open, high, low, close, volume, trade_count, vwap, provider, \
                 feed, origin, year, month FROM bars_{frame} ORDER BY symbol, ts"
            );
            let csv = run_ok(dir, &with_data(data, &["query", "--format", "csv", &sql]));
            (frame.to_owned(), csv)
        })
        .collect()
}

/// Part files relative to the lake root.
fn relative_parts(data: &Path) -> Vec<PathBuf> {
    let root = lake::root(data);
    lake::part_files(&root)
        .into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().to_path_buf())
        .collect()
}

/// Part files at a location only lake format 2 writes (`month=9`).
fn upgraded_parts(data: &Path) -> usize {
    relative_parts(data)
        .iter()
        .filter(|p| p.to_string_lossy().contains("/month=9/"))
        .count()
}

#[test]
fn a_format_1_lake_works_then_upgrades_to_a_fresh_lake_after_a_kill() {
    let dir = TempDir::new().unwrap();
    let data_path = dir.path().join("old");
    copy_dir(Path::new(FIXTURE), &data_path);
    let data = data_path.to_str().unwrap();
    let fixture_parts = relative_parts(&data_path);
    assert_eq!(fixture_parts.len(), PARTITIONS, "{fixture_parts:?}");
    assert!(
        fixture_parts
            .iter()
            .any(|p| p.to_string_lossy().contains("/month=09/")),
        "the fixture is format 1: {fixture_parts:?}"
    );

    every_command_works_before_the_upgrade(dir.path(), &data_path, &fixture_parts);

    // SIGKILL as soon as the first partition is in its format 2 place, then run again.
    kill_once_midway(dir.path(), &data_path);
    let midway = run_ok(dir.path(), &with_data(data, &["lake", "status"]));
    assert!(midway.contains("format 1:"), "killed midway: {midway}");
    let upgrade = run_ok(dir.path(), &with_data(data, &["lake", "upgrade"]));
    assert!(upgrade.contains("upgraded"), "{upgrade}");
    let again = run_ok(dir.path(), &with_data(data, &["lake", "upgrade"]));
    assert!(again.contains("nothing to do"), "{again}");
    let status = run_ok(dir.path(), &with_data(data, &["lake", "status"]));
    assert!(
        status.contains(&format!("format 2: {PARTITIONS} files")) && !status.contains("format 1"),
        "{status}"
    );
    let health = run_ok(dir.path(), &with_data(data, &["health"]));
    assert!(
        health.lines().all(|l| l.starts_with("ok ")),
        "every check passes: {health}"
    );

    // A lake written fresh by this mp over the same sessions.
    let fresh_path = dir.path().join("fresh");
    let fresh = fresh_path.to_str().unwrap();
    run_ok(
        dir.path(),
        &with_data(
            fresh,
            &[
                "ingest",
                "--provider",
                "fake",
                "--symbols",
                SYMBOLS,
                "--start",
                START,
                "--end",
                END,
                "--aggregate",
            ],
        ),
    );
    assert_eq!(relative_parts(&data_path), relative_parts(&fresh_path));
    let upgraded = frames_as_queried(dir.path(), data);
    let written = frames_as_queried(dir.path(), fresh);
    for ((frame, a), (_, b)) in upgraded.iter().zip(&written) {
        assert!(a.lines().count() > 1, "{frame} has rows");
        assert_eq!(
            a, b,
            "frame {frame}: the upgraded lake differs from a fresh one"
        );
        assert!(
            !a.contains(",aggregate,"),
            "{frame} still says provider aggregate"
        );
    }
    assert!(
        upgraded[1].1.contains(",fake,,aggregate:1m,"),
        "5m bars say which provider built their 1m bars"
    );
    lake::assert_same_rows(
        &lake::read_lake(&data_path),
        &lake::read_lake(&fresh_path),
        "upgraded vs fresh, file by file",
    );
}

/// `mp lake status`, `health`, `query`, `validate`, `aggregate`, `jobs list` and `lake
/// upgrade --dry-run` on the format 1 lake as it is.
fn every_command_works_before_the_upgrade(dir: &Path, data_path: &Path, fixture_parts: &[PathBuf]) {
    let data = data_path.to_str().unwrap();
    let status = run_ok(dir, &with_data(data, &["lake", "status"]));
    assert!(
        status.contains(&format!("format 1: {PARTITIONS} files")),
        "{status}"
    );
    // The database of 8a98fa8 lacks later migrations: health says so and changes nothing.
    let db = data_path.join("marketpipe.db");
    let db_before = std::fs::read(&db).unwrap();
    let unmigrated = mp(dir).args(with_data(data, &["health"])).output().unwrap();
    assert_eq!(
        unmigrated.status.code(),
        Some(1),
        "{}",
        text(&unmigrated.stdout)
    );
    let report = text(&unmigrated.stdout);
    assert!(
        report.contains("fail  database") && report.contains("run `mp migrate`"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_before,
        "health never migrates"
    );
    run_ok(dir, &with_data(data, &["migrate"]));
    let health = run_ok(dir, &with_data(data, &["health"]));
    assert!(
        health.contains("warn  lake_format") && health.contains("mp lake upgrade"),
        "{health}"
    );
    assert!(!health.contains("fail"), "{health}");
    let count = run_ok(
        dir,
        &with_data(
            data,
            &[
                "query",
                "--format",
                "csv",
                "SELECT count(*) AS n, min(month) AS lo, max(month) AS hi, any_value(typeof(month)) AS t FROM bars_1m",
            ],
        ),
    );
    assert_eq!(count, format!("n,lo,hi,t\n{MINUTE_BARS},9,10,INTEGER\n"));
    let validate = mp(dir)
        .args(with_data(
            data,
            &[
                "validate",
                "--symbols",
                SYMBOLS,
                "--start",
                START,
                "--end",
                END,
            ],
        ))
        .output()
        .unwrap();
    assert!(
        validate.status.code() == Some(0) || validate.status.code() == Some(1),
        "validate ran: {}",
        text(&validate.stderr)
    );
    assert!(
        text(&validate.stdout).contains("11700") || text(&validate.stdout).contains("11,700"),
        "{}",
        text(&validate.stdout)
    );
    let aggregate = run_ok(dir, &with_data(data, &["aggregate"]));
    assert!(aggregate.contains("nothing to do"), "{aggregate}");
    run_ok(dir, &with_data(data, &["jobs", "list"]));
    let dry = run_ok(dir, &with_data(data, &["lake", "upgrade", "--dry-run"]));
    assert!(
        dry.contains(&format!(
            "{PARTITIONS} partitions ({PARTITIONS} files) would be rewritten"
        )),
        "{dry}"
    );
    assert_eq!(
        relative_parts(data_path),
        fixture_parts,
        "a dry run writes nothing"
    );
}

/// Starts `mp lake upgrade` and SIGKILLs it as soon as one partition is in its format 2
/// place (a state the test sees, not a delay).
fn kill_once_midway(dir: &Path, data_path: &Path) {
    let data = data_path.to_str().unwrap();
    let mut child: Child = mp_process(dir)
        .args(with_data(data, &["lake", "upgrade"]))
        .spawn()
        .unwrap();
    let mut killed = false;
    for _ in 0..120_000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if upgraded_parts(data_path) > 0 {
            child.kill().unwrap();
            killed = true;
            break;
        }
        sleep(Duration::from_millis(1));
    }
    child.wait().unwrap();
    assert!(killed, "the upgrade finished before it could be killed");
}
