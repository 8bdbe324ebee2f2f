//! Global behaviour: help, version, usage errors, logging flags.

use predicates::prelude::*;

use crate::ingest::ingest_args;
use crate::{mp, run_ok, text};

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

#[test]
fn completions_for_every_shell_and_bash_parses() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = run_ok(dir.path(), &["completions", shell]);
        assert!(script.contains("ingest"), "{shell}: {script}");
        // (fish names long flags without their dashes: `-l data-dir`)
        assert!(script.contains("data-dir"), "{shell}: {script}");
    }
    let bash = run_ok(dir.path(), &["completions", "bash"]);
    let checked = tempfile::tempdir().unwrap();
    let file = checked.path().join("mp.bash");
    std::fs::write(&file, bash).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success(), "bash -n rejected the completion script");
    mp(dir.path())
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tcsh"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "completions created files: {left:?}");
}

#[test]
fn man_prints_one_roff_page_with_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let page = run_ok(dir.path(), &["man"]);
    assert!(page.contains("\n.TH MP 1 "), "{page}");
    assert_eq!(page.matches(".TH ").count(), 1, "one page");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH COMMANDS"] {
        assert!(page.contains(section), "{section} missing");
    }
    for command in [
        "mp ingest",
        "mp query",
        "mp aggregate",
        "mp validate",
        "mp jobs list",
        "mp jobs show",
        "mp providers list",
        "mp calendar",
        "mp completions",
    ] {
        assert!(
            page.contains(&format!(".SS \"{command}\"")),
            "{command} missing"
        );
    }
    assert!(page.contains("\\-\\-symbols"), "ingest's flags are listed");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "man created files: {left:?}");
}

/// An RFC 3339 UTC timestamp as `--json` prints it (`2024-01-02T14:30:00Z`, maybe with
/// fractional seconds).
fn assert_utc_timestamp(value: &serde_json::Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(text.ends_with('Z'), "{text}");
    chrono::DateTime::parse_from_rfc3339(text).unwrap();
}

/// A `YYYY-MM-DD` date.
fn assert_date(value: &serde_json::Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    assert_eq!(text.len(), 10, "{text}");
}

fn json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&run_ok(dir, args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `mp jobs list --json` and `mp jobs show ID --json` after the one fake ingest; the job id.
fn assert_jobs_json(d: &std::path::Path) -> String {
    let jobs = json(d, &["jobs", "list", "--json"]);
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["state"], "completed");
    assert_eq!(job["provider"], "fake");
    assert_eq!(job["symbols"], 1);
    assert_eq!(job["items_done"], 1);
    assert_eq!(job["items_total"], 1);
    assert_eq!(job["bars"], 4 * 390);
    assert_utc_timestamp(&job["created_at"]);
    assert_utc_timestamp(&job["finished_at"]);
    let id = job["id"].as_str().unwrap().to_owned();

    let shown = json(d, &["jobs", "show", &id, "--json"]);
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["state"], "completed");
    assert_eq!(shown["provider"], "fake");
    assert_eq!(shown["symbols"], serde_json::json!(["AAPL"]));
    assert_eq!(shown["start"], "2024-01-02");
    assert_eq!(shown["end"], "2024-01-05");
    assert_eq!(shown["session"], "regular");
    assert_eq!(shown["bars"], 4 * 390);
    assert!(shown["failure"].is_null());
    for key in ["created_at", "started_at", "finished_at"] {
        assert_utc_timestamp(&shown[key]);
    }
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["symbol"], "AAPL");
    assert_eq!(items[0]["status"], "done");
    assert_eq!(items[0]["bars"], 4 * 390);
    assert_date(&items[0]["start"]);
    assert_date(&items[0]["end"]);
    id
}

#[test]
fn every_listing_command_prints_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Before any data: empty arrays, and still no database.
    assert_eq!(
        json(d, &["validate", "--list", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(json(d, &["jobs", "list", "--json"]), serde_json::json!([]));
    assert!(!d.join("data").exists());

    run_ok(d, &ingest_args("AAPL", "2024-01-02", "2024-01-05", &[]));
    let mut validate = ingest_args("AAPL", "2024-01-02", "2024-01-05", &[]);
    validate.splice(0..3, ["validate"]); // `ingest --provider fake` -> `validate`
    run_ok(d, &validate);

    let id = assert_jobs_json(d);

    let providers = json(d, &["providers", "list", "--json"]);
    let fake = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fake")
        .unwrap();
    for key in [
        "display_name",
        "feeds",
        "rate_limit_per_minute",
        "max_page_size",
        "max_symbols_per_request",
        "extended_hours",
        "credentials",
    ] {
        assert!(fake.get(key).is_some(), "{key} missing: {fake}");
    }

    let reports = json(d, &["validate", "--list", "--json"]);
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["symbol"], "AAPL");
    assert_eq!(report["bars_checked"], 4 * 390);
    assert_eq!(report["errors"], 0);
    assert!(report["warnings"].is_u64());
    assert!(report["run_id"].is_string());
    assert_utc_timestamp(&report["created_at"]);
    let name = report["name"].as_str().unwrap().to_owned();

    let shown = json(d, &["validate", "--show", &name, "--json"]);
    assert_eq!(shown["name"], name.as_str());
    assert_eq!(shown["symbol"], "AAPL");
    assert_eq!(shown["frame"], "1m");
    assert_eq!(shown["errors"], 0);
    assert_eq!(shown["warnings"], report["warnings"]);
    let findings = shown["findings"].as_array().unwrap();
    let warnings = findings
        .iter()
        .filter(|f| f["severity"] == "warning")
        .count();
    assert_eq!(shown["warnings"], warnings);
    for f in findings {
        assert_utc_timestamp(&f["ts"]);
        assert!(f["rule"].is_string() && f["detail"].is_string(), "{f}");
        assert!(
            ["warning", "info"].contains(&f["severity"].as_str().unwrap()),
            "{f}"
        );
    }

    let sessions = json(
        d,
        &[
            "calendar",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-05",
            "--json",
            "--include-closed",
        ],
    );
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 5);
    assert_eq!(sessions[0]["status"], "closed");
    assert_eq!(sessions[1]["date"], "2024-01-02");
    assert_eq!(sessions[1]["open_utc"], "2024-01-02T14:30:00Z");
    for s in sessions {
        assert_date(&s["date"]);
    }

    // --json only goes with a listing.
    mp(d)
        .args(["validate", "--json", "--job-id", &id])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--json"));
}

/// `mp -v ingest …` of four sessions: debug logs and progress lines on stderr.
fn ingest_verbose() -> Vec<&'static str> {
    let mut args = vec!["-v"];
    args.extend(ingest_args("AAPL", "2024-01-02", "2024-01-05", &[]));
    args
}

#[test]
fn no_color_output_has_no_escape_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let out = mp(dir.path())
        .env("NO_COLOR", "1")
        .args(ingest_verbose())
        .assert()
        .success();
    let out = out.get_output();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("progress"), "{stderr}");
    assert!(!out.stderr.contains(&0x1b), "{stderr:?}");
    assert!(!out.stdout.contains(&0x1b));
}

/// The same on a real terminal, where colours and the progress bar are allowed: through
/// util-linux `script`, which runs the command on a pseudo-terminal. Skipped where `script`
/// is missing.
#[test]
fn no_color_on_a_terminal_has_no_escape_sequence() {
    let on_pty = |dir: &std::path::Path, no_color: Option<&str>| -> Vec<u8> {
        let command = std::iter::once(env!("CARGO_BIN_EXE_mp"))
            .chain(ingest_verbose())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-q", "-e", "-c", &command, "/dev/null"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("MP_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stdout));
        out.stdout
    };
    let usable = std::process::Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        return; // no `script` here, or no pseudo-terminals
    }
    let dir = tempfile::tempdir().unwrap();
    let coloured = on_pty(dir.path(), None);
    assert!(
        coloured.contains(&0x1b),
        "a terminal gets colours: {:?}",
        text(&coloured)
    );
    let dir = tempfile::tempdir().unwrap();
    let plain = on_pty(dir.path(), Some("1"));
    assert!(text(&plain).contains("progress"), "{:?}", text(&plain));
    assert!(!plain.contains(&0x1b), "{:?}", text(&plain));
}
