//! Global behaviour: help, version, usage errors, logging flags.

use predicates::prelude::*;

use crate::mp;

#[test]
fn help_and_version_touch_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["-h"],
        vec!["calendar", "--help"],
        vec!["help", "calendar"],
    ] {
        mp(dir.path())
            .args(&args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: mp"));
    }
    mp(dir.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("mp {}\n", env!("CARGO_PKG_VERSION")));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "help created files: {left:?}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
    mp(dir.path()).assert().code(2);
    mp(dir.path())
        .args(["calendar", "--start", "2024-01-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--end"));
    mp(dir.path())
        .args([
            "--log-format",
            "xml",
            "calendar",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("xml"));
}

#[test]
fn logs_go_to_stderr_in_text_or_json_and_respect_verbosity() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["calendar", "--start", "2024-01-02", "--end", "2024-01-02"];
    // Default (info): the debug line is filtered out, stdout holds only the result.
    let quiet = mp(dir.path()).args(args).assert().success();
    assert!(String::from_utf8_lossy(&quiet.get_output().stderr).is_empty());
    // -v: the debug line appears on stderr, never on stdout.
    let verbose = mp(dir.path()).arg("-v").args(args).assert().success();
    let out = verbose.get_output();
    assert!(String::from_utf8_lossy(&out.stderr).contains("computed XNYS sessions"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("computed XNYS sessions"));
    // JSON logs: one object per line.
    let json = mp(dir.path())
        .args(["-v", "--log-format", "json"])
        .args(args)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&json.get_output().stderr).to_string();
    let line = stderr
        .lines()
        .find(|l| l.contains("computed XNYS sessions"))
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(value["level"], "DEBUG");
    assert_eq!(value["sessions"], 1);
    // RUST_LOG overrides the flags.
    let env = mp(dir.path())
        .env("RUST_LOG", "off")
        .arg("-v")
        .args(args)
        .assert()
        .success();
    assert!(env.get_output().stderr.is_empty());
    // -q and -v conflict.
    mp(dir.path())
        .args(["-q", "-v"])
        .args(args)
        .assert()
        .code(2);
}

#[test]
fn help_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for (args, usage) in [
        (vec!["ingest", "--help"], "Usage: mp ingest"),
        (vec!["ingest-ohlcv", "--help"], "Usage: mp ingest"),
        (vec!["ohlcv", "ingest", "--help"], "Usage: mp ohlcv ingest"),
        (vec!["ohlcv", "--help"], "Usage: mp ohlcv"),
        (vec!["jobs", "--help"], "Usage: mp jobs"),
        (vec!["jobs", "list", "--help"], "Usage: mp jobs list"),
        (vec!["jobs", "show", "--help"], "Usage: mp jobs show"),
        (vec!["migrate", "--help"], "Usage: mp migrate"),
        (vec!["config", "--help"], "Usage: mp config"),
        (vec!["config", "init", "--help"], "Usage: mp config init"),
        (vec!["config", "show", "--help"], "Usage: mp config show"),
        (vec!["calendar", "--help"], "Usage: mp calendar"),
        (vec!["help", "ingest"], "Usage: mp ingest"),
    ] {
        mp(dir.path())
            .args(&args)
            .assert()
            .success()
            .stdout(predicate::str::contains(usage));
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "help created files: {left:?}");
}

#[test]
fn domain_events_are_logged_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let out = mp(dir.path())
        .args([
            "-v",
            "ingest",
            "--symbols",
            "AAPL",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-02",
        ])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for event in [
        "ingestion_job_started",
        "bars_ingested",
        "ingestion_job_completed",
    ] {
        assert!(stderr.contains(event), "{event} missing from:\n{stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        !stdout.contains("domain event"),
        "events never go to stdout"
    );
}
