//! `mp ingest` with the fake provider: what lands in the lake, idempotent re-runs, crash
//! safety under SIGKILL, concurrent processes, bad input and corrupt files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::thread::sleep;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use marketpipe_domain::calendar::{ny_date, ny_time_hhmm};
use marketpipe_domain::{DateRange, Session, SessionKind, Timestamp, TradingCalendar};
use predicates::prelude::*;

use crate::lake::{self, Row};
use crate::{mp, mp_process, run_ok, text};

/// `ingest --provider fake --symbols … --start … --end …` plus `extra`.
pub(crate) fn ingest_args<'a>(
    symbols: &'a str,
    start: &'a str,
    end: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "ingest",
        "--provider",
        "fake",
        "--symbols",
        symbols,
        "--start",
        start,
        "--end",
        end,
    ];
    args.extend_from_slice(extra);
    args
}

/// The job id and state from the summary's first line (`job <id> <state>`).
fn summary_job(stdout: &str) -> (String, String) {
    let first = stdout.lines().next().unwrap_or_default();
    let mut words = first.split_whitespace();
    assert_eq!(words.next(), Some("job"), "summary: {stdout}");
    let id = words.next().unwrap().to_owned();
    let state = words.next().unwrap().to_owned();
    (id, state)
}

/// `mp jobs list --json` in `dir`.
fn jobs(dir: &Path) -> Vec<serde_json::Value> {
    let out = mp(dir).args(["jobs", "list", "--json"]).assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// The XNYS sessions of `start..=end`, by date.
fn sessions(start: &str, end: &str) -> BTreeMap<NaiveDate, Session> {
    TradingCalendar::xnys()
        .sessions(DateRange::parse(start, end).unwrap())
        .unwrap()
        .into_iter()
        .map(|s| (s.date, s))
        .collect()
}

/// The New York session date of a row.
fn date_of(row: &Row) -> NaiveDate {
    ny_date(Timestamp::from_nanos(row.ts))
}

/// `HH:MM` New York time of a row.
fn ny_hhmm(row: &Row) -> String {
    ny_time_hhmm(Timestamp::from_nanos(row.ts))
}

/// Rows per (symbol, session date).
fn rows_per_day(rows: &[Row]) -> BTreeMap<(String, NaiveDate), Vec<&Row>> {
    let mut out: BTreeMap<(String, NaiveDate), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        out.entry((r.symbol.clone(), date_of(r)))
            .or_default()
            .push(r);
    }
    out
}

#[test]
fn three_symbols_2024_fill_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_ok(
        dir.path(),
        &ingest_args("AAPL,MSFT,BRK.B", "2024-01-02", "2024-12-31", &[]),
    );
    let (_, state) = summary_job(&stdout);
    assert_eq!(state, "completed", "{stdout}");
    assert!(stdout.contains("36 run of 36 (0 failed)"), "{stdout}");
    assert!(stdout.contains("36 written, 0 unchanged"), "{stdout}");

    let data_dir = dir.path().join("data");
    let lake_root = lake::root(&data_dir);
    assert_eq!(lake::part_files(&lake_root).len(), 36);
    for symbol in ["AAPL", "MSFT", "BRK.B"] {
        for month in 1..=12 {
            let file = lake::partition_file(&data_dir, symbol, 2024, month);
            assert!(file.is_file(), "{} missing", file.display());
        }
    }
    assert_eq!(
        lake::temp_files(&lake_root),
        Vec::<std::path::PathBuf>::new()
    );

    let rows = lake::read_lake(&data_dir);
    let mut per_symbol: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *per_symbol.entry(r.symbol.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_symbol,
        BTreeMap::from([("AAPL", 97_740), ("BRK.B", 97_740), ("MSFT", 97_740)])
    );
    assert_eq!(97_740, 249 * 390 + 3 * 210);
    // Sorted by (symbol, ts): a repeated (symbol, ts) would be adjacent.
    for w in rows.windows(2) {
        assert!(
            (&w[0].symbol, w[0].ts) != (&w[1].symbol, w[1].ts),
            "duplicate bar {:?}",
            w[1]
        );
    }

    let sessions = sessions("2024-01-02", "2024-12-31");
    assert_eq!(sessions.len(), 252);
    for r in &rows {
        let date = date_of(r);
        let session = sessions
            .get(&date)
            .unwrap_or_else(|| panic!("bar on a non-session day: {r:?}"));
        assert!(
            session.contains_minute(Timestamp::from_nanos(r.ts), SessionKind::Regular),
            "bar outside regular hours: {r:?}"
        );
        assert_eq!(r.ts % 60_000_000_000, 0, "not on a minute: {r:?}");
        assert!(r.is_ohlc_consistent(), "OHLC inconsistent: {r:?}");
        assert_eq!(
            r.file,
            format!(
                "frame=1m/symbol={}/year={}/month={}/part-0.parquet",
                r.symbol,
                date.year(),
                date.month()
            ),
            "bar in the wrong partition"
        );
        assert_eq!(r.provider, "fake");
        assert_eq!(r.feed, None);
    }
    // Every session is complete: 09:30 to 16:00 New York, 13:00 on the three early closes.
    let days = rows_per_day(&rows);
    assert_eq!(days.len(), 3 * 252);
    let mut short_days = Vec::new();
    for ((symbol, date), bars) in &days {
        let last = ny_hhmm(bars[bars.len() - 1]);
        assert_eq!(ny_hhmm(bars[0]), "09:30", "{symbol} {date}");
        match bars.len() {
            390 => assert_eq!(last, "15:59", "{symbol} {date}"),
            210 => {
                assert_eq!(last, "12:59", "{symbol} {date}");
                if symbol == "AAPL" {
                    short_days.push(date.to_string());
                }
            }
            n => panic!("{symbol} {date}: {n} bars"),
        }
    }
    assert_eq!(short_days, ["2024-07-03", "2024-11-29", "2024-12-24"]);
}

#[test]
fn rerun_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = ingest_args("AAPL,MSFT,BRK.B", "2024-01-02", "2024-03-28", &[]);
    let first = run_ok(dir.path(), &args);
    assert!(first.contains("9 written, 0 unchanged"), "{first}");
    let data = dir.path().join("data");
    let lake_root = lake::root(&data);
    let before = lake::snapshot(&lake_root);
    let rows_before = lake::read_lake(&data);
    assert_eq!(before.len(), 9);

    let second = run_ok(dir.path(), &args);
    let (first_id, _) = summary_job(&first);
    let (second_id, state) = summary_job(&second);
    assert_eq!(state, "completed", "{second}");
    assert_ne!(first_id, second_id, "a completed job is not continued");
    assert!(second.contains("0 written, 9 unchanged"), "{second}");
    assert!(second.contains(" 0 new or changed"), "{second}");

    let after = lake::snapshot(&lake_root);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    // By content, not modification times: every file has the same bytes (the summary's
    // counts above say nothing was written).
    for (path, (_, bytes)) in &before {
        let (_, bytes_after) = &after[path];
        assert!(bytes == bytes_after, "{} changed", path.display());
    }
    lake::assert_same_rows(&lake::read_lake(&data), &rows_before, "after the re-run");
    let jobs = jobs(dir.path());
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j["state"] == "completed"), "{jobs:?}");
}

/// The crash-safety workload: 8 symbols x 6 months = 48 work items, two at a time, a few
/// seconds in a debug build.
const KILL_SYMBOLS: &str = "AAPL,MSFT,IBM,ORCL,BRK.B,GOOG,AMZN,NVDA";
const KILL_START: &str = "2024-01-02";
const KILL_END: &str = "2024-06-28";

/// When a run is killed: a state the test can see, never a fixed delay.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// As soon as the metadata database exists: the run is opening its store, migrating it
    /// or creating its job (in a fresh data directory; a later run finds it at once, so is
    /// killed as soon as it started).
    Store,
    /// As soon as this many part files appeared that were not there when the process started.
    NewPartFiles(usize),
    /// As soon as a temporary file exists: in the middle of writing a partition.
    TempFile,
}

/// How often `run_and_kill` looks for its moment, 1 ms apart (two minutes at least).
const KILL_POLLS: u32 = 120_000;

/// What a kill left behind.
#[derive(Debug)]
struct KillOutcome {
    /// Whether the process was still running when killed (else it had already exited).
    killed: bool,
    parts_before: usize,
    parts_after: usize,
    /// Temporary files this run left behind: it was killed in the middle of a write.
    temps_left: usize,
}

/// Starts `mp args` in `dir` and SIGKILLs it at `at`.
fn run_and_kill(dir: &Path, args: &[&str], at: KillAt) -> KillOutcome {
    run_and_kill_without(dir, args, at, &[])
}

/// [`run_and_kill`] with the variables `removed` taken out of the child's environment.
fn run_and_kill_without(dir: &Path, args: &[&str], at: KillAt, removed: &[&str]) -> KillOutcome {
    let lake_root = lake::root(&dir.join("data"));
    let parts_before = lake::part_files(&lake_root).len();
    let temps_before = lake::temp_files(&lake_root);
    let new_temps = || {
        lake::temp_files(&lake_root)
            .into_iter()
            .filter(|t| !temps_before.contains(t))
            .count()
    };
    let store = dir.join("data").join("marketpipe.db");
    let mut command = mp_process(dir);
    for var in removed {
        command.env_remove(var);
    }
    let mut child: Child = command.args(args).spawn().unwrap();
    let mut exited = None;
    for _ in 0..KILL_POLLS {
        if child.try_wait().unwrap().is_some() {
            exited = Some(true);
            break;
        }
        let reached = match at {
            KillAt::Store => store.exists(),
            KillAt::NewPartFiles(n) => lake::part_files(&lake_root).len() >= parts_before + n,
            KillAt::TempFile => new_temps() > 0,
        };
        if reached {
            exited = Some(false);
            break;
        }
        sleep(Duration::from_millis(1));
    }
    let Some(exited) = exited else {
        child.kill().unwrap();
        panic!("{at:?} never happened");
    };
    if !exited {
        // SIGKILL on Unix: no destructor, no signal handler runs.
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let killed = !exited;
    if exited {
        assert!(status.success(), "{args:?} exited with {status}");
    }
    KillOutcome {
        killed,
        parts_before,
        parts_after: lake::part_files(&lake_root).len(),
        temps_left: new_temps(),
    }
}

#[test]
fn killed_runs_recover_to_the_same_lake() {
    let args = ingest_args(KILL_SYMBOLS, KILL_START, KILL_END, &["--concurrency", "2"]);
    let reference = tempfile::tempdir().unwrap();
    let stdout = run_ok(reference.path(), &args);
    assert!(stdout.contains("48 run of 48 (0 failed)"), "{stdout}");
    let reference_data = reference.path().join("data");
    assert_eq!(lake::part_files(&lake::root(&reference_data)).len(), 48);

    let dir = tempfile::tempdir().unwrap();
    let plan = [
        KillAt::Store,
        KillAt::NewPartFiles(2),
        KillAt::NewPartFiles(1),
        KillAt::NewPartFiles(4),
        KillAt::TempFile,
    ];
    let mut kills = Vec::new();
    for at in plan {
        let k = run_and_kill(dir.path(), &args, at);
        eprintln!("kill {at:?}: {k:?}");
        kills.push(k);
    }
    assert!(
        kills.iter().any(|k| k.killed),
        "no run was killed: {kills:?}"
    );
    assert!(
        kills.iter().all(|k| k.parts_after >= k.parts_before),
        "a kill lost a partition: {kills:?}"
    );

    // The killed job is stored as running, and shown `interrupted` (its owner is dead). A
    // kill between creating the job and starting it can leave a `pending` one beside it,
    // which is never continued; there is at most one interrupted job since every run
    // continues it.
    let listed = jobs(dir.path());
    let running: Vec<&serde_json::Value> = listed
        .iter()
        .filter(|j| j["state"] == "interrupted")
        .collect();
    assert_eq!(running.len(), 1, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|j| j["state"] == "interrupted" || j["state"] == "pending"),
        "{listed:?}"
    );
    let id = running[0]["id"].as_str().unwrap().to_owned();

    // A resumed run can be killed too.
    let resume = ["ingest", "--resume", id.as_str(), "--concurrency", "2"];
    let k = run_and_kill(dir.path(), &resume, KillAt::NewPartFiles(1));
    eprintln!("kill of --resume {id} at a new part file: {k:?}");
    kills.push(k);
    eprintln!(
        "{} of {} runs killed; {} left a temporary file (killed mid-write)",
        kills.iter().filter(|k| k.killed).count(),
        kills.len(),
        kills.iter().filter(|k| k.temps_left > 0).count()
    );

    // --resume finishes the killed job from its checkpoints (unless the run above was too
    // quick to be killed, which already finished it: `run_and_kill` checked its exit code).
    if kills[kills.len() - 1].killed {
        let resumed = run_ok(dir.path(), &resume);
        assert_eq!(
            summary_job(&resumed),
            (id.clone(), "completed".to_owned()),
            "{resumed}"
        );
    }
    let job = jobs(dir.path())
        .into_iter()
        .find(|j| j["id"] == id.as_str())
        .unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["items_done"], 48);
    assert_eq!(job["bars"], 386_880);

    // The same command once more: a new job that finds everything in place.
    let again = run_ok(dir.path(), &args);
    let (again_id, state) = summary_job(&again);
    assert_ne!(again_id, id);
    assert_eq!(state, "completed");
    assert!(again.contains("0 written, 48 unchanged"), "{again}");

    let data = dir.path().join("data");
    lake::assert_same_lake(&data, &reference_data, "lake after kills and recovery");
    assert_eq!(
        lake::temp_files(&lake::root(&data)),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn concurrent_processes_leave_the_same_lake_as_one_run() {
    let (start, end) = ("2024-01-02", "2024-04-30");
    let reference = tempfile::tempdir().unwrap();
    run_ok(
        reference.path(),
        &ingest_args("AAPL,MSFT,IBM,ORCL", start, end, &[]),
    );

    let dir = tempfile::tempdir().unwrap();
    let spawn = |symbols| {
        mp_process(dir.path())
            .args(ingest_args(symbols, start, end, &[]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("AAPL,MSFT,IBM");
    let second = spawn("MSFT,IBM,ORCL");
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{stdout}\n{}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(summary_job(&stdout).1, "completed", "{stdout}");
    }
    let data = dir.path().join("data");
    assert_eq!(lake::part_files(&lake::root(&data)).len(), 16);
    lake::assert_same_lake(
        &data,
        &reference.path().join("data"),
        "two processes vs one run",
    );
    assert_eq!(
        lake::temp_files(&lake::root(&data)),
        Vec::<std::path::PathBuf>::new()
    );
    let listed = jobs(dir.path());
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|j| j["state"] == "completed"),
        "{listed:?}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_value() {
    let day = ["--start", "2024-01-02", "--end", "2024-01-02"];
    let with_day = |args: &[&'static str]| [args, &day[..]].concat();
    // (arguments after `ingest`, texts stderr must contain)
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            with_day(&["--provider", "nope", "--symbols", "AAPL"]),
            vec!["\"nope\"", "known providers: fake"],
        ),
        (with_day(&["--symbols", "../x"]), vec!["\"../x\""]),
        (with_day(&["--symbols", "A B"]), vec!["\"A B\""]),
        (with_day(&["--symbols", "AAPL,aapl"]), vec!["\"aapl\""]),
        (
            with_day(&["--symbols", "AAPL", "--concurrency", "0"]),
            vec!["--concurrency", "got 0"],
        ),
        (
            vec![
                "--symbols",
                "AAPL",
                "--start",
                "2024-03-01",
                "--end",
                "2024-02-01",
            ],
            vec!["start 2024-03-01 is after end 2024-02-01"],
        ),
        (
            vec![
                "--symbols",
                "AAPL",
                "--start",
                "2024-13-45",
                "--end",
                "2024-12-31",
            ],
            vec!["\"2024-13-45\""],
        ),
        (
            vec![
                "--symbols",
                "AAPL",
                "--start",
                "2024-01-02",
                "--end",
                "2024-02-30",
            ],
            vec!["2024-02-30"],
        ),
        (
            vec![
                "--symbols",
                "AAPL",
                "--start",
                "1990-01-02",
                "--end",
                "1990-01-03",
            ],
            vec!["1990-01-02"],
        ),
        // Root ignores permission bits, so the unwritable data dir sits under a regular file.
        (
            with_day(&["--symbols", "AAPL", "--data-dir", "a-file/data"]),
            vec!["data dir a-file/data cannot be written"],
        ),
        (
            with_day(&["--symbols-file", "missing.txt"]),
            vec!["missing.txt"],
        ),
    ];
    for (args, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-file"), b"not a directory").unwrap();
        let out = mp(dir.path()).arg("ingest").args(&args).assert().code(2);
        let stderr = text(&out.get_output().stderr);
        for e in expected {
            assert!(stderr.contains(e), "{args:?}: {e:?} not in {stderr}");
        }
        // Nothing was touched: no data dir, no lake, no database.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["a-file"], "{args:?} created files");
    }

    // An unknown job id can only be found out in the database; no lake is created either.
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .args(["ingest", "--resume", "20240102T000000Z-abcdef"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("20240102T000000Z-abcdef"))
        .stderr(predicate::str::contains("not found"));
    assert!(!dir.path().join("lake").exists());
    assert!(!dir.path().join("data").join("lake").exists());
}

#[test]
fn corrupt_file_fails_its_partition_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let data_arg = data.to_str().unwrap();
    let args = ingest_args(
        "AAPL,MSFT",
        "2024-01-02",
        "2024-03-28",
        &["--data-dir", data_arg],
    );
    run_ok(dir.path(), &args);
    let good = lake::read_lake(&data);
    assert_eq!(good.len(), 2 * (8190 + 7800 + 7800));

    let bad = lake::partition_file(&data, "AAPL", 2024, 2);
    let garbage = b"this is not a Parquet file\n".repeat(100);
    std::fs::write(&bad, &garbage).unwrap();

    let out = mp(dir.path()).args(&args).assert().code(1);
    let stdout = text(&out.get_output().stdout);
    let stderr = text(&out.get_output().stderr);
    let bad_path = bad.display().to_string();
    assert!(stderr.contains(&bad_path), "{bad_path} not in {stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    let (id, state) = summary_job(&stdout);
    assert_eq!(state, "failed", "{stdout}");
    assert!(stdout.contains("6 run of 6 (1 failed)"), "{stdout}");
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        garbage,
        "the corrupt file was touched"
    );

    // Every other partition still reads, with its rows.
    let lake_root = lake::root(&data);
    let mut others: Vec<Row> = Vec::new();
    for file in lake::part_files(&lake_root) {
        if file == bad {
            continue;
        }
        let rows = lake::read_file(&file, &lake_root);
        let expected = if file.to_string_lossy().contains("month=1") {
            8190
        } else {
            7800
        };
        assert_eq!(rows.len(), expected, "{}", file.display());
        others.extend(rows);
    }
    others.sort_by(|a, b| (&a.symbol, a.ts).cmp(&(&b.symbol, b.ts)));
    let good_others: Vec<Row> = good
        .iter()
        .filter(|r| !(r.symbol == "AAPL" && r.file.contains("month=2")))
        .cloned()
        .collect();
    lake::assert_same_rows(&others, &good_others, "the untouched partitions");

    let show = mp(dir.path())
        .args(["--data-dir", data_arg, "jobs", "show", &id])
        .assert()
        .success();
    let show = text(&show.get_output().stdout);
    assert!(show.contains("state     failed"), "{show}");
    let failed_items: Vec<&str> = show
        .lines()
        .filter(|l| l.contains(" failed ") && l.contains("AAPL"))
        .collect();
    assert_eq!(failed_items.len(), 1, "{show}");
    assert!(failed_items[0].contains("2024-02-01"), "{show}");
    assert!(failed_items[0].contains(&bad_path), "{show}");

    let out = mp(dir.path())
        .args(["--data-dir", data_arg, "jobs", "list", "--json"])
        .assert()
        .success();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let job = listed.iter().find(|j| j["id"] == id.as_str()).unwrap();
    assert_eq!(job["state"], "failed");
    assert_eq!(job["items_done"], 5);

    // Once the bad file is removed, --resume redoes only the failed item.
    std::fs::remove_file(&bad).unwrap();
    let out = mp(dir.path())
        .args(["--data-dir", data_arg, "ingest", "--resume", &id])
        .assert()
        .success();
    let resumed = text(&out.get_output().stdout);
    assert_eq!(summary_job(&resumed), (id, "completed".to_owned()));
    assert!(resumed.contains("1 run of 6"), "{resumed}");
    lake::assert_same_rows(&lake::read_lake(&data), &good, "after --resume");
}

#[test]
fn symbols_file_and_aliases() {
    let (start, end) = ("2024-01-02", "2024-01-03");
    let reference = tempfile::tempdir().unwrap();
    run_ok(
        reference.path(),
        &ingest_args("AAPL,MSFT,IBM", start, end, &[]),
    );
    let reference_data = reference.path().join("data");
    assert_eq!(lake::read_lake(&reference_data).len(), 3 * 2 * 390);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("symbols.txt"),
        "# watchlist for the e2e test\n\nAAPL, MSFT   # two on a line\n\n   IBM\n# ORCL is commented out\nMSFT\n",
    )
    .unwrap();
    let stdout = run_ok(
        dir.path(),
        &[
            "ingest",
            "--symbols-file",
            "symbols.txt",
            "--start",
            start,
            "--end",
            end,
        ],
    );
    assert!(stdout.contains("symbols      3"), "{stdout}");
    lake::assert_same_lake(&dir.path().join("data"), &reference_data, "--symbols-file");

    for alias in [vec!["ohlcv", "ingest"], vec!["ingest-ohlcv"]] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = alias.clone();
        args.extend_from_slice(&ingest_args("AAPL,MSFT,IBM", start, end, &[])[1..]);
        let stdout = run_ok(dir.path(), &args);
        assert_eq!(summary_job(&stdout).1, "completed", "{alias:?}: {stdout}");
        lake::assert_same_lake(
            &dir.path().join("data"),
            &reference_data,
            &format!("{alias:?}"),
        );
    }

    // Extended hours: 04:00-20:00 New York (17:00 on the early close of 2024-07-03), and
    // the regular-hours bars among them are the regular run's.
    let (start, end) = ("2024-07-03", "2024-07-05");
    let regular = tempfile::tempdir().unwrap();
    run_ok(regular.path(), &ingest_args("AAPL", start, end, &[]));
    let extended = tempfile::tempdir().unwrap();
    run_ok(
        extended.path(),
        &ingest_args("AAPL", start, end, &["--extended-hours"]),
    );
    let rows = lake::read_lake(&extended.path().join("data"));
    let days = rows_per_day(&rows);
    let summary: Vec<(String, usize, String, String)> = days
        .iter()
        .map(|((_, date), bars)| {
            (
                date.to_string(),
                bars.len(),
                ny_hhmm(bars[0]),
                ny_hhmm(bars[bars.len() - 1]),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "2024-07-03".to_owned(),
                780,
                "04:00".to_owned(),
                "16:59".to_owned()
            ),
            (
                "2024-07-05".to_owned(),
                960,
                "04:00".to_owned(),
                "19:59".to_owned()
            ),
        ]
    );
    let sessions = sessions(start, end);
    let inside_regular: Vec<Row> = rows
        .iter()
        .filter(|r| {
            sessions[&date_of(r)].contains_minute(Timestamp::from_nanos(r.ts), SessionKind::Regular)
        })
        .cloned()
        .collect();
    assert_eq!(inside_regular.len(), 210 + 390);
    lake::assert_same_rows(
        &inside_regular,
        &lake::read_lake(&regular.path().join("data")),
        "regular hours of the extended run",
    );
}

/// Stores a `pending` job in `data_dir`'s database, as a run killed between creating its
/// job and starting it leaves one (a window of a few milliseconds that a kill cannot be
/// aimed at, hence planted through the store).
fn plant_pending_job(data_dir: &Path, id: &str, spec: marketpipe_domain::JobSpec) {
    use marketpipe_ports::JobRepository as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        std::fs::create_dir_all(data_dir).unwrap();
        let store = marketpipe_sqlite::SqliteStore::open(&data_dir.join("marketpipe.db"))
            .await
            .unwrap();
        let job = marketpipe_domain::IngestionJob::new(
            marketpipe_domain::JobId::new(id).unwrap(),
            spec,
            Timestamp::from_nanos(1_704_200_000_000_000_000),
        );
        store.create(&job).await.unwrap();
        store.close().await;
    });
}

#[test]
fn pending_job_left_by_a_kill_is_continued_by_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let id = "20240102T000000Z-0a0b0c";
    let spec = marketpipe_domain::JobSpec {
        provider: "fake".into(),
        feed: None,
        symbols: vec![marketpipe_domain::Symbol::new("AAPL").unwrap()],
        dates: DateRange::parse("2024-01-02", "2024-01-03").unwrap(),
        session: SessionKind::Regular,
    };
    plant_pending_job(&data, id, spec);
    assert_eq!(jobs(dir.path())[0]["state"], "pending");

    // Re-running the command continues the interrupted job, as it does a `running` one...
    let stdout = run_ok(
        dir.path(),
        &ingest_args("AAPL", "2024-01-02", "2024-01-03", &[]),
    );
    assert_eq!(
        summary_job(&stdout),
        (id.to_owned(), "completed".to_owned()),
        "{stdout}"
    );
}

#[test]
fn pending_job_left_by_a_kill_accepts_resume() {
    let dir = tempfile::tempdir().unwrap();
    let id = "20240102T000000Z-0a0b0d";
    let spec = marketpipe_domain::JobSpec {
        provider: "fake".into(),
        feed: None,
        symbols: vec![marketpipe_domain::Symbol::new("AAPL").unwrap()],
        dates: DateRange::parse("2024-01-02", "2024-01-03").unwrap(),
        session: SessionKind::Regular,
    };
    plant_pending_job(&dir.path().join("data"), id, spec);
    // ... and --resume accepts it.
    let stdout = run_ok(dir.path(), &["ingest", "--resume", id]);
    assert_eq!(
        summary_job(&stdout),
        (id.to_owned(), "completed".to_owned()),
        "{stdout}"
    );
}

/// The environment variables any Alpaca key could come from.
const ALPACA_KEY_VARIABLES: [&str; 4] = [
    "ALPACA_KEY_ID",
    "ALPACA_SECRET_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
];

/// [`mp`] with no Alpaca key anywhere in its environment.
fn mp_without_alpaca_keys(dir: &Path) -> assert_cmd::Command {
    let mut command = mp(dir);
    for var in ALPACA_KEY_VARIABLES {
        command.env_remove(var);
    }
    command
}

/// A configuration whose default provider is Alpaca.
fn alpaca_default_config(dir: &Path) {
    std::fs::write(
        dir.join("mp.yaml"),
        "config_version: 1\ndata_dir: ./data\ningest:\n  provider: alpaca\n",
    )
    .unwrap();
}

#[test]
fn a_killed_fake_job_resumes_with_its_own_provider_under_an_alpaca_default() {
    let dir = tempfile::tempdir().unwrap();
    alpaca_default_config(dir.path());
    // Without a provider flag, the default (Alpaca) needs keys that are not there: exit 2,
    // naming the variables to set, and no job is created.
    let mut plain = mp_without_alpaca_keys(dir.path());
    plain
        .args([
            "--config",
            "mp.yaml",
            "ingest",
            "--symbols",
            "AAPL",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-31",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ALPACA_KEY_ID"));

    // A fake job killed once its first partition is written.
    let mut args = vec!["--config", "mp.yaml"];
    args.extend(ingest_args(
        "AAPL,MSFT,BRK.B",
        "2024-01-02",
        "2024-12-31",
        &["--concurrency", "1"],
    ));
    let k = run_and_kill_without(
        dir.path(),
        &args,
        KillAt::NewPartFiles(1),
        &ALPACA_KEY_VARIABLES,
    );
    assert!(
        k.killed,
        "the run finished before it could be killed: {k:?}"
    );
    let listed = jobs(dir.path());
    let job = listed
        .iter()
        .find(|j| j["state"] == "interrupted")
        .unwrap_or_else(|| panic!("no interrupted job left by the kill: {listed:?}"));
    let id = job["id"].as_str().unwrap().to_owned();

    // --resume builds the job's provider (fake), not the configuration's default.
    let mut resume = mp_without_alpaca_keys(dir.path());
    let out = resume
        .args(["--config", "mp.yaml", "ingest", "--resume", &id])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert_eq!(
        summary_job(&stdout),
        (id, "completed".to_owned()),
        "{stdout}"
    );
    // Every partition of the three symbols' year is there.
    assert_eq!(
        lake::part_files(&lake::root(&dir.path().join("data"))).len(),
        36
    );
}

#[test]
fn resuming_a_job_whose_provider_lacks_credentials_names_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    let id = "20240102T000000Z-0a0b0e";
    let spec = marketpipe_domain::JobSpec {
        provider: "alpaca".into(),
        feed: Some("iex".into()),
        symbols: vec![marketpipe_domain::Symbol::new("AAPL").unwrap()],
        dates: DateRange::parse("2024-01-02", "2024-01-03").unwrap(),
        session: SessionKind::Regular,
    };
    plant_pending_job(&dir.path().join("data"), id, spec);
    let mut resume = mp_without_alpaca_keys(dir.path());
    let out = resume.args(["ingest", "--resume", id]).assert().code(2);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains(&format!("job {id} was ingested from alpaca"))
            && stderr.contains("ALPACA_KEY_ID and ALPACA_SECRET_KEY"),
        "{stderr}"
    );
    // Nothing ran: the job is still pending.
    assert_eq!(jobs(dir.path())[0]["state"], "pending");
}
