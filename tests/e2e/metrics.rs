//! Metrics end to end: `--metrics-addr` scraped while an ingest runs, `--metrics-textfile`
//! after a run with a forced 429, the history (`mp metrics`), `mp metrics serve`, and the
//! dashboard and alert rules in `ops/` checked against a real scrape. `promtool` (Debian's
//! `prometheus` package, installed by `.ci/run`) checks every exposition; without it those
//! checks print that they were skipped.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use marketpipe_testkit::simulator::{Faults, Simulator, SimulatorConfig};

use crate::ingest::ingest_args;
use crate::providers::{assert_ok, config, run, simulator_env};
use crate::{mp, mp_process, text};

/// `promtool`, when installed; a skipped check says so, visibly.
#[allow(clippy::print_stderr)]
fn promtool() -> Option<PathBuf> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Some(PathBuf::from("promtool"))
    } else {
        eprintln!(
            "SKIPPED: promtool checks: promtool is not installed (Debian package `prometheus`; \
             .ci/run installs it)"
        );
        None
    }
}

/// `promtool check metrics` on an exposition: passes, or the test fails with its complaint.
fn assert_promtool_accepts(exposition: &str, what: &str) {
    let Some(promtool) = promtool() else { return };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics rejects {what}:\n{}{}\n--- exposition ---\n{exposition}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `GET /metrics` from `addr`: the body, or `None` while nothing listens there.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "scrape answered:\n{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_owned())
}

/// The sum of every sample of `name` (all label sets) in an exposition; `None` when absent.
fn sample_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let series_name = line.split(['{', ' ']).next().unwrap_or("");
        if series_name == name {
            let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// The sample of `name` whose labels include every `key="value"` of `labels`.
fn sample_with(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// Every sample name of an exposition.
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Reads the spawned `mp`'s stderr until it names the address it serves metrics at; the
/// rest of its stderr is drained on a thread (kept for a failure message).
fn announced_addr(
    child: &mut Child,
    marker: &str,
) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let stream: Box<dyn Read + Send> = if marker.starts_with("mp: ") {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = BufReader::new(stream);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "mp ended without announcing its metrics address:\n{seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.split("http://").nth(1)
            && line.contains(marker)
        {
            let addr = rest.trim().trim_end_matches("/metrics").parse().unwrap();
            let rest = std::thread::spawn(move || {
                let mut tail = String::new();
                let _ = lines.read_to_string(&mut tail);
                seen + &tail
            });
            return (addr, rest);
        }
    }
}

// ------------------------------------------------------------------------------------------
// --metrics-addr during an ingest
// ------------------------------------------------------------------------------------------

#[allow(clippy::too_many_lines)] // one run, scraped, then each figure checked
#[tokio::test(flavor = "multi_thread")]
async fn scrapes_during_an_ingest_show_the_bars_rising_and_promtool_accepts_them() {
    // Slow answers stretch the ingest over several seconds: six months written one after
    // another, so the counter rises between scrapes a second apart.
    let sim = Simulator::start(SimulatorConfig {
        faults: Faults {
            slow: Some(Duration::from_millis(300)),
            ..Faults::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = mp_process(dir.path());
    simulator_env(&mut cmd, &sim.base_url());
    cmd.args([
        "ingest",
        "--provider",
        "alpaca",
        "--symbols",
        "AAPL,MSFT",
        "--start",
        "2024-01-01",
        "--end",
        "2024-06-30",
        "--concurrency",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ])
    .stderr(Stdio::piped());
    // Scrapes a second apart until the ingest ends (on a blocking thread: the simulator
    // serves on this runtime): the counter never falls and rises between at least one pair.
    let scrapes = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let (addr, stderr) = announced_addr(&mut child, "mp: serving metrics");
        let mut scrapes: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_mins(2);
        while Instant::now() < deadline {
            match scrape(addr) {
                Some(body) => scrapes.push(body),
                None => break, // the run ended and its endpoint with it
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let status = child.wait().unwrap();
        (scrapes, status, stderr.join().unwrap())
    })
    .await
    .unwrap();
    let (scrapes, status, stderr) = scrapes;
    assert!(status.success(), "ingest failed: {status:?}\n{stderr}");
    let bars: Vec<f64> = scrapes
        .iter()
        .map(|body| sample_sum(body, "marketpipe_bars_ingested_total").unwrap_or(0.0))
        .collect();
    assert!(
        scrapes.len() >= 3,
        "too few scrapes during the run: {bars:?}"
    );
    assert!(
        bars.windows(2).all(|w| w[0] <= w[1]),
        "the counter fell between scrapes: {bars:?}"
    );
    // Consecutive scrapes are a second apart (the loop sleeps 1 s between them).
    let rising = bars.windows(2).any(|b| b[1] > b[0] && b[0] > 0.0);
    assert!(
        rising,
        "no two consecutive scrapes show the bars rising: {bars:?}"
    );
    let last = scrapes.last().unwrap();
    assert!(
        sample_sum(last, "marketpipe_provider_requests_total").unwrap() > 0.0,
        "{last}"
    );
    for body in [&scrapes[0], last] {
        assert_promtool_accepts(body, "a scrape during the ingest");
    }
    // Every request the provider served was counted by the end (checked on the textfile
    // test's run); here: no symbol and no job id is a label.
    assert!(!last.contains("AAPL") && !last.contains("job="), "{last}");
}

// ------------------------------------------------------------------------------------------
// --metrics-textfile after a run with a forced 429
// ------------------------------------------------------------------------------------------

/// The simulator whose first request is answered 429 (`Retry-After: 1`).
async fn simulator_with_one_429() -> Simulator {
    Simulator::start(SimulatorConfig {
        faults: Faults {
            forced_429: 1,
            ..Faults::default()
        },
        ..config()
    })
    .await
    .unwrap()
}

#[allow(clippy::too_many_lines)] // one run, then each figure of its textfile checked
#[tokio::test(flavor = "multi_thread")]
async fn a_textfile_counts_one_429_and_every_request_the_simulator_saw() {
    let sim = simulator_with_one_429().await;
    let dir = tempfile::tempdir().unwrap();
    let collector = dir.path().join("textfile-collector");
    std::fs::create_dir(&collector).unwrap();
    let file = collector.join("marketpipe.prom");
    let file_arg = file.display().to_string();
    let out = run(
        dir.path(),
        &sim,
        &[
            "--metrics-textfile",
            &file_arg,
            "ingest",
            "--provider",
            "alpaca",
            "--symbols",
            "AAPL,MSFT,NVDA",
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-31",
        ],
        &[("MP_INGEST_PAGE_SIZE", "2000")],
    )
    .await;
    assert_ok(&out, "ingest with a forced 429");
    let stats = sim.stats();
    assert_eq!(stats.faults_injected, 1, "{stats:?}");
    assert!(stats.requests > 10, "pages of 2000 bars: {stats:?}");

    let names: Vec<String> = std::fs::read_dir(&collector)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["marketpipe.prom"],
        "only the file, no temporary file"
    );
    let exposition = std::fs::read_to_string(&file).unwrap();
    assert_promtool_accepts(&exposition, "the textfile");

    let throttled = sample_sum(&exposition, "marketpipe_provider_throttled_total");
    assert_eq!(throttled, Some(1.0), "{exposition}");
    let histogram_count = sample_sum(
        &exposition,
        "marketpipe_provider_request_duration_seconds_count",
    );
    #[allow(clippy::cast_precision_loss)]
    let served = stats.requests as f64;
    assert_eq!(histogram_count, Some(served), "{exposition}");
    assert_eq!(
        sample_sum(&exposition, "marketpipe_provider_requests_total"),
        Some(served)
    );
    assert_eq!(
        sample_with(
            &exposition,
            "marketpipe_provider_requests_total",
            &["status=\"429\""]
        ),
        Some(1.0),
        "{exposition}"
    );
    assert!(sample_sum(&exposition, "marketpipe_provider_retries_total").unwrap() >= 1.0);
    // The bars counted are those the lake holds.
    let stored = crate::lake::read_lake(&dir.path().join("data")).len();
    #[allow(clippy::cast_precision_loss)]
    let stored = stored as f64;
    assert_eq!(
        sample_sum(&exposition, "marketpipe_bars_ingested_total"),
        Some(stored)
    );
    assert_eq!(
        sample_with(
            &exposition,
            "marketpipe_jobs_total",
            &["command=\"ingest\"", "outcome=\"success\""]
        ),
        Some(1.0),
        "{exposition}"
    );
    // The histogram's buckets are cumulative and end at +Inf with the count.
    assert_eq!(
        sample_with(
            &exposition,
            "marketpipe_provider_request_duration_seconds_bucket",
            &["le=\"+Inf\""]
        ),
        Some(served)
    );
    for secret in [
        "PKE2EKEYID7QX4",
        "e2eSecretValue9ZK2WQ",
        sim.base_url().as_str(),
    ] {
        assert!(!exposition.contains(secret), "{secret} in the textfile");
    }
}

#[test]
fn metrics_flags_refuse_a_missing_textfile_directory_a_taken_port_and_a_command_without_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (flag, value, named) in [
        ("--metrics-textfile", "no/such/dir/mp.prom", "no/such/dir"),
        ("--metrics-addr", addr.as_str(), addr.as_str()),
    ] {
        let out = mp(dir.path())
            .args([flag, value])
            .args(ingest_args("AAPL", "2024-03-01", "2024-03-01", &[]))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(named), "{}", text(&out.stderr));
        assert!(
            !dir.path().join("data").exists(),
            "{flag}: refused before any work"
        );
    }

    let calendar = ["calendar", "--start", "2024-01-02", "--end", "2024-01-05"];
    let out = mp(dir.path())
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(calendar)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("mp metrics serve"),
        "{}",
        text(&out.stderr)
    );
    // From an environment file shared by every command, the variables do not apply here.
    let out = mp(dir.path())
        .env("MP_METRICS_TEXTFILE", dir.path().join("mp.prom"))
        .args(calendar)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("mp.prom").exists());
}

// ------------------------------------------------------------------------------------------
// The history, mp metrics serve, and ops/ against a real scrape
// ------------------------------------------------------------------------------------------

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `marketpipe_*` name in a file.
fn marketpipe_names(content: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = content;
    while let Some(start) = rest.find("marketpipe_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[allow(clippy::too_many_lines)] // one history, looked at through each flag in turn
#[tokio::test(flavor = "multi_thread")]
async fn the_history_lists_plots_and_serves_every_series_the_dashboard_and_rules_name() {
    let sim = simulator_with_one_429().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let now = ("MP_NOW", "2024-07-15T20:00:00Z");
    let fake_ingest = |at: &str, symbols: &str, start: &str, end: &str| {
        let out = mp(dir)
            .env("MP_NOW", at)
            .args(ingest_args(symbols, start, end, &[]))
            .output()
            .unwrap();
        assert_ok(&out, "fake ingest");
    };
    #[allow(clippy::cast_precision_loss)]
    let lake_rows = || crate::lake::read_lake(&dir.join("data")).len() as f64;
    // The two ingests run in different weeks of one month (for --avg).
    fake_ingest(
        "2024-07-09T20:00:00Z",
        "AAPL,MSFT",
        "2024-06-03",
        "2024-06-28",
    );
    let june = lake_rows();
    fake_ingest(now.1, "AAPL,MSFT", "2024-07-01", "2024-07-12");
    let july = lake_rows() - june;
    assert!(june > 0.0 && july > 0.0);
    let backfill = run(
        dir,
        &sim,
        &[
            "backfill",
            "--provider",
            "alpaca",
            "--symbols",
            "NVDA",
            "--start",
            "2024-07-08",
            "--end",
            "2024-07-12",
        ],
        &[now],
    )
    .await;
    assert_ok(&backfill, "backfill over the simulator");
    for args in [
        &[
            "aggregate",
            "--symbols",
            "AAPL,MSFT",
            "--start",
            "2024-06-03",
            "--end",
            "2024-07-12",
        ][..],
        &[
            "validate",
            "--symbols",
            "AAPL,MSFT",
            "--start",
            "2024-06-03",
            "--end",
            "2024-07-12",
        ],
        &["prune", "parquet", "--before", "2024-06-10"],
    ] {
        let out = mp(dir).env(now.0, now.1).args(args).output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1) && !text(&out.stderr).contains("panicked"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        if args[0] != "validate" {
            assert_ok(&out, args[0]);
        }
    }
    let metrics = |args: &[&str]| {
        let mut full = vec!["metrics"];
        full.extend_from_slice(args);
        mp(dir).env(now.0, now.1).args(&full).output().unwrap()
    };

    // --list names what was recorded, with its help.
    let list = assert_ok(&metrics(&["--list"]), "metrics --list");
    for name in [
        "marketpipe_bars_ingested_total",
        "marketpipe_provider_requests_total",
        "marketpipe_provider_throttled_total",
        "marketpipe_validation_findings_total",
        "marketpipe_aggregation_bars_total",
        "marketpipe_pruned_total",
        "marketpipe_jobs_total",
        "marketpipe_job_duration_seconds",
    ] {
        assert!(list.contains(name), "{name} not listed:\n{list}");
    }

    // One value per run: the two fake ingests and the backfill.
    let shown = assert_ok(
        &metrics(&["--metric", "marketpipe_bars_ingested_total"]),
        "one metric",
    );
    assert!(shown.contains("provider=\"fake\""), "{shown}");
    assert!(shown.contains("provider=\"alpaca\""), "{shown}");
    assert!(shown.contains("2024-07-15T20:00:00"), "{shown}");
    let plot = assert_ok(
        &metrics(&["--metric", "marketpipe_bars_ingested_total", "--plot"]),
        "--plot",
    );
    assert!(
        plot.chars().any(|c| ('▁'..='█').contains(&c)),
        "no sparkline:\n{plot}"
    );
    let json = assert_ok(
        &metrics(&["--metric", "marketpipe_bars_ingested_total", "--json"]),
        "--json",
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["metric"], "marketpipe_bars_ingested_total");
    let series = value["series"].as_array().unwrap();
    let fake = series
        .iter()
        .find(|s| s["labels"]["provider"] == "fake")
        .unwrap_or_else(|| panic!("{json}"));
    let points = fake["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "two fake ingests: {json}");
    // Each run's value is the bars it added to the lake.
    let values: Vec<f64> = points
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [june, july], "{json}");
    assert!(
        points.iter().all(|p| p["job"].is_string()),
        "kept with their job: {json}"
    );

    let fake_points = |args: &[&str]| {
        let mut full = vec!["--metric", "marketpipe_bars_ingested_total", "--json"];
        full.extend_from_slice(args);
        let json = assert_ok(&metrics(&full), "metrics --json");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["labels"]["provider"] == "fake")
            .map(|s| s["points"].as_array().unwrap().clone())
            .unwrap_or_default()
    };
    // By month: one mean of both runs; by week: one point each; since 3 days: the last run.
    let monthly = fake_points(&["--avg", "1m"]);
    assert_eq!(monthly.len(), 1, "{monthly:?}");
    assert_eq!(monthly[0]["samples"], 2);
    assert_eq!(monthly[0]["at"], "2024-07-01T00:00:00Z");
    let mean = monthly[0]["value"].as_f64().unwrap();
    assert!(
        (mean - f64::midpoint(values[0], values[1])).abs() < 1e-6,
        "{monthly:?}"
    );
    let weekly = fake_points(&["--avg", "1w"]);
    let weeks: Vec<&str> = weekly.iter().map(|p| p["at"].as_str().unwrap()).collect();
    assert_eq!(weeks, ["2024-07-08T00:00:00Z", "2024-07-15T00:00:00Z"]);
    let recent = fake_points(&["--since", "3d"]);
    assert_eq!(recent.len(), 1, "{recent:?}");
    assert!(
        (recent[0]["value"].as_f64().unwrap() - july).abs() < 1e-6,
        "{recent:?}"
    );

    let svg = dir.join("bars.svg");
    let svg_arg = svg.display().to_string();
    assert_ok(
        &metrics(&[
            "--metric",
            "marketpipe_bars_ingested_total",
            "--plot-file",
            &svg_arg,
        ]),
        "--plot-file",
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("<polyline"),
        "{chart}"
    );

    // Bad input: exit 2, naming the value.
    for (args, named) in [
        (
            &["--metric", "marketpipe_nope_total"][..],
            "marketpipe_nope_total",
        ),
        (
            &["--metric", "marketpipe_jobs_total", "--since", "5x"],
            "5x",
        ),
        (
            &[
                "--metric",
                "marketpipe_jobs_total",
                "--plot-file",
                "chart.png",
            ],
            "chart.png",
        ),
    ] {
        let out = metrics(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(named), "{}", text(&out.stderr));
    }

    // mp metrics serve: the latest run of each command, for Prometheus.
    let mut serve = mp_process(dir);
    serve
        .env(now.0, now.1)
        .args(["metrics", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped());
    let mut child = serve.spawn().unwrap();
    let (addr, _stdout) = announced_addr(&mut child, "serving the metrics history");
    let exposition = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap()
        .expect("mp metrics serve answers");
    assert_promtool_accepts(&exposition, "mp metrics serve");
    let exported = sample_names(&exposition);
    let mut named = marketpipe_names(&repo_file("ops/grafana/marketpipe.json"));
    let rules = repo_file("ops/prometheus/marketpipe.rules.yml");
    named.extend(marketpipe_names(&rules));
    assert!(named.len() >= 12, "{named:?}");
    let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "named in ops/ but not exported: {missing:?}\nexported: {exported:?}"
    );
    assert_eq!(
        sample_with(
            &exposition,
            "marketpipe_provider_throttled_total",
            &["provider=\"alpaca\""]
        ),
        Some(1.0),
        "{exposition}"
    );
    // The clock starts at MP_NOW (and runs on from it while the command works).
    let last_success = sample_with(
        &exposition,
        "marketpipe_job_last_success_timestamp_seconds",
        &["command=\"backfill\""],
    )
    .unwrap_or_else(|| panic!("{exposition}"));
    assert!(
        (1_721_073_600.0..1_721_073_660.0).contains(&last_success),
        "the clock's now (MP_NOW): {last_success}"
    );

    // SIGTERM stops it cleanly.
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve after SIGTERM: {status:?}");

    if let Some(promtool) = promtool() {
        let rules_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/prometheus/marketpipe.rules.yml");
        let out = std::process::Command::new(promtool)
            .arg("check")
            .arg("rules")
            .arg(&rules_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check rules:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
