//! The HTTP providers end to end: `mp ingest --provider alpaca|polygon|finnhub` against the
//! provider simulator (a real HTTP server on 127.0.0.1:0, `marketpipe-testkit`), checked
//! against the fake provider's lake, with rate limits, faults, bad keys, and a scan of every
//! output and file for the keys' values.

use std::path::{Path, PathBuf};
use std::process::Output;

use marketpipe_domain::{DateRange, SessionKind, Symbol, TradingCalendar};
use marketpipe_fake::FakeProvider;
use marketpipe_testkit::simulator::{Faults, SimRateLimit, Simulator, SimulatorConfig};

use crate::lake::{self, Row};
use crate::{mp, text};

/// Recognisable credential values: no output or file may contain them.
const ALPACA_KEY: &str = "PKE2EKEYID7QX4";
const ALPACA_SECRET: &str = "e2eSecretValue9ZK2WQ";
pub(crate) const POLYGON_KEY: &str = "e2ePolygonKey4HV8";
const FINNHUB_KEY: &str = "e2eFinnhubKey3MN5";

/// Every variable a provider may read its credentials or base URL from: removed from the
/// environment `mp` inherits, so that a developer's real keys never reach a test.
const PROVIDER_VARS: [&str; 12] = [
    "ALPACA_KEY_ID",
    "ALPACA_SECRET_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "POLYGON_API_KEY",
    "MASSIVE_API_KEY",
    "FINNHUB_API_KEY",
    "MP_ALPACA_BASE_URL",
    "MP_ALPACA_TRADING_BASE_URL",
    "MP_POLYGON_BASE_URL",
    "MP_FINNHUB_BASE_URL",
    "MP_IEX_HIST_DIR",
];

const FIVE: &str = "AAPL,MSFT,BRK.B,NVDA,TSLA";
const MARCH: (&str, &str) = ("2024-03-01", "2024-03-31");

pub(crate) fn config() -> SimulatorConfig {
    SimulatorConfig {
        alpaca_keys: vec![(ALPACA_KEY.into(), ALPACA_SECRET.into())],
        polygon_keys: vec![POLYGON_KEY.into()],
        finnhub_keys: vec![FINNHUB_KEY.into()],
        ..SimulatorConfig::default()
    }
}

/// Runs `mp` against the simulator on a blocking thread (the simulator serves on the test's runtime).
pub(crate) async fn run(
    dir: &Path,
    sim: &Simulator,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Output {
    let (dir, base) = (dir.to_path_buf(), sim.base_url());
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = extra_env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let base = BaseUrl(base);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        mp_against_base(&dir, &base, &arg_refs, &env_refs)
    })
    .await
    .unwrap()
}

/// The part of a simulator a blocking thread needs.
struct BaseUrl(String);

/// `mp` with the simulator's base URL for every provider, the test keys, fast retries,
/// generous client rate limits for Polygon and Finnhub (the simulator's own limit is what a
/// test sets), and `extra_env` on top.
fn mp_against_base(
    dir: &Path,
    base: &BaseUrl,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Output {
    let mut std_cmd = crate::mp_process(dir);
    simulator_env(&mut std_cmd, &base.0);
    // output() captures only the streams not set otherwise.
    std_cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut cmd = assert_cmd::Command::from_std(std_cmd);
    cmd.env("POLYGON_API_KEY", POLYGON_KEY)
        .env("FINNHUB_API_KEY", FINNHUB_KEY)
        .env("MP_PROVIDERS_POLYGON_RATE_LIMIT_PER_MINUTE", "6000")
        .env("MP_PROVIDERS_FINNHUB_RATE_LIMIT_PER_MINUTE", "6000");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.args(args);
    cmd.output().unwrap()
}

/// The simulator's environment for `mp` (also a spawned one, that a test scrapes while it
/// runs): provider variables removed, the simulator's URLs, the Alpaca test keys and fast
/// retries set.
pub(crate) fn simulator_env(cmd: &mut std::process::Command, base: &str) {
    for var in PROVIDER_VARS {
        cmd.env_remove(var);
    }
    cmd.env("MP_ALPACA_BASE_URL", base)
        .env("MP_ALPACA_TRADING_BASE_URL", base)
        .env("MP_POLYGON_BASE_URL", base)
        .env("MP_FINNHUB_BASE_URL", format!("{base}/api/v1"))
        .env("ALPACA_KEY_ID", ALPACA_KEY)
        .env("ALPACA_SECRET_KEY", ALPACA_SECRET)
        .env("MP_INGEST_RETRY_BASE_DELAY_MS", "20");
}

fn ingest_args<'a>(provider: &'a str, symbols: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "ingest",
        "--provider",
        provider,
        "--symbols",
        symbols,
        "--start",
        MARCH.0,
        "--end",
        MARCH.1,
    ];
    args.extend_from_slice(extra);
    args
}

pub(crate) fn assert_ok(out: &Output, what: &str) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    stdout
}

/// The fake provider's lake for `symbols` x March 2024, made by `mp` itself.
fn fake_lake(dir: &Path, symbols: &str) -> Vec<Row> {
    let out = mp(dir)
        .args(ingest_args("fake", symbols, &[]))
        .output()
        .unwrap();
    assert_ok(&out, "fake ingest");
    lake::read_lake(&dir.join("data"))
}

/// Rows with the provenance columns blanked (they name the provider), and the trade count
/// and VWAP too when the provider does not report them.
fn comparable(rows: &[Row], with_counts: bool) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            provider: String::new(),
            feed: None,
            trade_count: if with_counts { r.trade_count } else { None },
            vwap: if with_counts { r.vwap } else { None },
            ..r.clone()
        })
        .collect()
}

/// The (requests, bars) a 1-minute history of `symbols` x March 2024 is served as: every
/// extended-hours minute (what the real providers return, and the simulator too).
fn served_bars(symbols: &[Symbol]) -> usize {
    let cal = TradingCalendar::xnys();
    let sessions = cal
        .sessions(DateRange::parse(MARCH.0, MARCH.1).unwrap())
        .unwrap();
    let fake = FakeProvider::new();
    symbols
        .iter()
        .map(|s| {
            sessions
                .iter()
                .map(|session| fake.session_bars(*s, session, SessionKind::Extended).len())
                .sum::<usize>()
        })
        .sum()
}

/// The `requests N (…)` figure of an ingest summary.
fn summary_requests(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("requests"))
        .unwrap_or_else(|| panic!("no requests line in:\n{stdout}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_http_adapter_fills_a_lake_equal_to_the_fake_providers_through_pagination() {
    let reference = tempfile::tempdir().unwrap();
    let expected = fake_lake(reference.path(), FIVE);
    assert!(expected.len() > 5 * 19 * 390, "{} rows", expected.len());

    // Small pages, so that every adapter pages: Alpaca's token with symbols running across
    // pages, Polygon's next_url; Finnhub windows by month (one request per symbol).
    for (provider, page_size, with_counts) in [
        ("alpaca", "2000", true),
        ("polygon", "3000", true),
        ("finnhub", "0", false),
    ] {
        let sim = Simulator::start(config()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            dir.path(),
            &sim,
            &ingest_args(provider, FIVE, &[]),
            &[("MP_INGEST_PAGE_SIZE", page_size)],
        )
        .await;
        let stdout = assert_ok(&out, provider);
        assert!(stdout.contains(" completed"), "{provider}: {stdout}");
        let got = lake::read_lake(&dir.path().join("data"));
        assert_eq!(got.len(), expected.len(), "{provider}: row count");
        assert!(
            comparable(&got, with_counts) == comparable(&expected, with_counts),
            "{provider}: the lake differs from the fake provider's"
        );
        assert!(got.iter().all(|r| r.provider == provider), "{provider}");
        if provider == "alpaca" {
            // A 5m bar built from Alpaca's 1m bars says alpaca, with their feed.
            let feed = got[0].feed.clone().unwrap_or_default();
            assert!(!feed.is_empty(), "alpaca bars carry their feed");
            let aggregated = mp(dir.path())
                .args(["aggregate", "--frames", "5m,1d"])
                .output()
                .unwrap();
            assert_ok(&aggregated, "aggregate alpaca's bars");
            let sql = "select distinct provider, feed, origin from bars_5m union all \
                       select distinct provider, feed, origin from bars_1d";
            let queried = mp(dir.path())
                .args(["query", "--format", "csv", sql])
                .output()
                .unwrap();
            assert_eq!(
                assert_ok(&queried, "query the 5m and 1d provenance"),
                format!(
                    "provider,feed,origin\nalpaca,{feed},aggregate:1m\nalpaca,{feed},aggregate:1m\n"
                )
            );
        }
        let requests = sim.requests();
        let continued = requests
            .iter()
            .filter(|r| r.query.contains("page_token=") || r.query.contains("cursor="))
            .count();
        match provider {
            "finnhub" => assert_eq!(requests.len(), 5, "one month window per symbol"),
            _ => assert!(continued >= 5, "{provider}: {continued} continued pages"),
        }
        assert_eq!(
            summary_requests(&stdout),
            requests.len() as u64,
            "{provider}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpaca_packs_many_symbols_into_full_pages() {
    let symbols: Vec<String> = (0..50).map(|i| format!("S{i:03}")).collect();
    let list = symbols.join(",");
    let parsed = Symbol::parse_list(&list).unwrap();
    let minimum = served_bars(&parsed).div_ceil(10_000);
    let sim = Simulator::start(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &sim, &ingest_args("alpaca", &list, &[]), &[]).await;
    let stdout = assert_ok(&out, "alpaca 50 symbols");
    let requests = sim.requests().len();
    #[allow(clippy::cast_precision_loss)]
    let ratio = requests as f64 / minimum as f64;
    println!(
        "alpaca, 50 symbols x March 2024: {requests} requests, minimum {minimum}, ratio {ratio:.3}"
    );
    assert!(
        ratio <= 1.05,
        "{requests} requests for a minimum of {minimum}"
    );
    assert_eq!(summary_requests(&stdout), requests as u64);
    // Every symbol's month is there.
    let rows = lake::read_lake(&dir.path().join("data"));
    let stored: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(stored.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_the_rate_limit_gets_no_429_and_a_forced_429_is_waited_out() {
    // 200 requests per minute per key; 16 symbols x March in pages of 1000 bars need
    // 16 x 19,200 / 1,000 = 308 requests, so the job must wait for a second window.
    let sim = Simulator::start(SimulatorConfig {
        rate_limit: Some(SimRateLimit {
            requests: 200,
            window: std::time::Duration::from_mins(1),
            retry_after: true,
        }),
        ..config()
    })
    .await
    .unwrap();
    let symbols: Vec<String> = (0..16).map(|i| format!("R{i:02}")).collect();
    let list = symbols.join(",");
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("alpaca", &list, &[]),
        &[("MP_INGEST_PAGE_SIZE", "1000")],
    )
    .await;
    let stdout = assert_ok(&out, "rate-limited alpaca job");
    let stats = sim.stats();
    assert_eq!(
        stats.rate_limited, 0,
        "the client kept under the limit: {stdout}"
    );
    assert!(stats.requests > 200, "{} requests", stats.requests);
    // The limit allows 200 requests at once and the rest one window later: about 60 s.
    let requests = sim.requests();
    let span = requests.last().unwrap().at - requests.first().unwrap().at;
    println!(
        "{} requests under 200/min: first to last {:.1} s (minimum 60 s)",
        stats.requests,
        span.as_secs_f64()
    );
    assert!(stdout.contains("throttled"), "{stdout}");

    // The simulator answers 429 to the next three requests anyway (Retry-After: 1): the run
    // waits as told and completes.
    let sim = Simulator::start(config()).await.unwrap();
    sim.set_faults(Faults {
        forced_429: 3,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("alpaca", "AAPL,MSFT", &[]),
        &[],
    )
    .await;
    let stdout = assert_ok(&out, "forced 429");
    assert!(stdout.contains("3 rate-limited"), "{stdout}");
    // The simulator counts forced answers as injected faults; its log has the three 429s.
    assert_eq!(sim.stats().faults_injected, 3);
    assert_eq!(sim.requests().iter().filter(|r| r.status == 429).count(), 3);
    let rows = lake::read_lake(&dir.path().join("data"));
    let reference = tempfile::tempdir().unwrap();
    assert_eq!(
        comparable(&rows, true),
        comparable(&fake_lake(reference.path(), "AAPL,MSFT"), true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_html_pages_and_dropped_connections_are_retried_to_a_complete_lake() {
    let reference = tempfile::tempdir().unwrap();
    let expected = comparable(&fake_lake(reference.path(), "AAPL,MSFT"), true);
    for (provider, faults) in [
        (
            "polygon",
            Faults {
                server_errors: 3,
                html_errors: 2,
                dropped_connections: 2,
                ..Faults::default()
            },
        ),
        (
            "alpaca",
            Faults {
                dropped_connections: 2,
                html_errors: 1,
                server_errors: 1,
                duplicate_across_pages: true,
                ..Faults::default()
            },
        ),
    ] {
        let sim = Simulator::start(config()).await.unwrap();
        sim.set_faults(faults);
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            dir.path(),
            &sim,
            &ingest_args(provider, "AAPL,MSFT", &[]),
            &[("MP_INGEST_PAGE_SIZE", "5000")],
        )
        .await;
        let stdout = assert_ok(&out, provider);
        assert!(stdout.contains(" completed"), "{provider}: {stdout}");
        assert!(sim.stats().faults_injected >= 4, "{provider}");
        let rows = comparable(&lake::read_lake(&dir.path().join("data")), true);
        assert!(
            rows == expected,
            "{provider}: lake incomplete or different after faults"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_fails_the_item_naming_provider_path_and_problem() {
    let sim = Simulator::start(config()).await.unwrap();
    sim.set_faults(Faults {
        malformed_json: 1,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("finnhub", "AAPL", &["--concurrency", "1"]),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("finnhub"), "{all}");
    assert!(
        all.contains("/api/v1/stock/candle"),
        "names the URL path: {all}"
    );
    assert!(all.contains("malformed"), "says what was wrong: {all}");
    assert!(
        !all.contains("token="),
        "no query string with the key: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_fast_naming_the_variable_to_set() {
    let sim = Simulator::start(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let many: Vec<String> = (0..40).map(|i| format!("W{i:02}")).collect();
    let list = many.join(",");
    let out = run(
        dir.path(),
        &sim,
        &[
            "ingest",
            "--provider",
            "alpaca",
            "--symbols",
            &list,
            "--start",
            "2024-01-02",
            "--end",
            "2024-06-28",
        ],
        &[("ALPACA_SECRET_KEY", "wrong-secret")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("ALPACA_SECRET_KEY"),
        "names the variable: {all}"
    );
    // Fails fast: a handful of requests (those in flight), not one per month of the job.
    let requests = sim.requests().len();
    assert!(requests <= 8, "{requests} requests after the first refusal");
    assert!(!all.contains("wrong-secret"), "{all}");

    // No key at all: a usage error before any request, naming the variables.
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("polygon", "AAPL", &[]),
        &[("POLYGON_API_KEY", "")],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("POLYGON_API_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_list_and_test_show_credentials_presence_never_their_value() {
    let sim = Simulator::start(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &sim, &["providers", "list"], &[]).await;
    let stdout = assert_ok(&out, "providers list");
    for name in ["fake", "alpaca", "polygon", "finnhub", "iex"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    let out = run(dir.path(), &sim, &["providers", "list", "--json"], &[]).await;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alpaca = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alpaca")
        .unwrap();
    assert_eq!(alpaca["credentials"], "present");
    assert_eq!(alpaca["max_page_size"], 10_000);
    for provider in ["alpaca", "polygon", "finnhub"] {
        let out = run(dir.path(), &sim, &["providers", "test", provider], &[]).await;
        assert_ok(&out, provider);
    }
    let out = run(
        dir.path(),
        &sim,
        &["providers", "test", "polygon"],
        &[("POLYGON_API_KEY", "not-the-key")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("POLYGON_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    lake::all_files(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_log_or_file_contains_a_keys_value() {
    let sim = Simulator::start(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut captured = Vec::new();
    let debug = [("RUST_LOG", "debug")];
    for args in [
        ingest_args("alpaca", "AAPL,MSFT", &["-v"]),
        ingest_args("polygon", "AAPL", &["-v", "--validate"]),
        ingest_args("finnhub", "AAPL", &["-v"]),
        vec!["providers", "list", "-v"],
        vec!["providers", "test", "alpaca", "-v"],
        vec!["config", "show"],
        vec!["jobs", "list", "--json"],
    ] {
        for log_format in ["text", "json"] {
            let out = run(
                dir.path(),
                &sim,
                &args,
                &[debug[0], ("MP_LOG_FORMAT", log_format)],
            )
            .await;
            captured.push((args.join(" "), out.stdout));
            captured.push((args.join(" "), out.stderr));
        }
    }
    // Failures too: a wrong key and a malformed page.
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("polygon", "NVDA", &["-v"]),
        &[("POLYGON_API_KEY", "wrong-but-recognisable-KEY")],
    )
    .await;
    captured.push(("wrong key".into(), out.stderr));
    sim.set_faults(Faults {
        malformed_json: 2,
        truncated_json: 2,
        ..Faults::default()
    });
    let out = run(
        dir.path(),
        &sim,
        &ingest_args("alpaca", "TSLA", &["-v"]),
        &debug,
    )
    .await;
    captured.push(("malformed".into(), out.stderr));

    let keys = [
        ALPACA_KEY,
        ALPACA_SECRET,
        POLYGON_KEY,
        FINNHUB_KEY,
        "wrong-but-recognisable-KEY",
    ];
    let mut scanned = 0;
    for (what, bytes) in captured.iter().cloned().chain(
        files_under(dir.path())
            .into_iter()
            .map(|(p, b)| (p.display().to_string(), b)),
    ) {
        scanned += bytes.len();
        let haystack = String::from_utf8_lossy(&bytes);
        for key in keys {
            assert!(!haystack.contains(key), "{what} contains the key {key}");
        }
    }
    assert!(scanned > 10_000, "scanned {scanned} bytes");
}
