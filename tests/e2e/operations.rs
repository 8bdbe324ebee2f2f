//! Operations end to end: `mp backfill` over the provider simulator with the coverage map
//! (what is missing is asked once; a session the provider has nothing for is remembered; a
//! partition changed by another tool is re-read), and the job lifecycle.

use std::path::Path;

use marketpipe_testkit::simulator::{RecordedRequest, Simulator, SimulatorConfig};

use crate::lake;
use crate::providers::{assert_ok, config, run};

const WEEK: [&str; 4] = ["--start", "2024-03-04", "--end", "2024-03-08"];

fn backfill_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["backfill", "--provider", "alpaca", "--symbols", "AAPL,MSFT"];
    args.extend_from_slice(&WEEK);
    args.extend_from_slice(extra);
    args
}

/// The bar requests the simulator received after the first `since`, as
/// `symbols start end` with the query's percent-encoding undone.
fn bar_requests(sim: &Simulator, since: usize) -> Vec<String> {
    let param = |r: &RecordedRequest, name: &str| {
        r.query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap_or("")
            .replace("%3A", ":")
            .replace("%2C", ",")
    };
    sim.requests()
        .iter()
        .skip(since)
        .filter(|r| r.path == "/v2/stocks/bars")
        .map(|r| {
            format!(
                "{} {} {}",
                param(r, "symbols"),
                param(r, "start"),
                param(r, "end")
            )
        })
        .collect()
}

/// The simulator with no MSFT bars on 2024-03-06 (a halt).
async fn simulator_without_msft_on_march_6() -> Simulator {
    Simulator::start(SimulatorConfig {
        no_bars: vec![(
            "MSFT".into(),
            chrono::NaiveDate::from_ymd_opt(2024, 3, 6).unwrap(),
        )],
        ..config()
    })
    .await
    .unwrap()
}

fn mtimes(dir: &Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    lake::part_files(&lake::root(&dir.join("data")))
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, m)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_fills_the_gaps_once_remembers_empty_sessions_and_rereads_changed_files() {
    let sim = simulator_without_msft_on_march_6().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    // The plan of an empty data dir: every session, in one request for both symbols.
    let dry = run(dir, &sim, &backfill_args(&["--dry-run"]), &[]).await;
    let stdout = assert_ok(&dry, "dry run");
    assert!(
        stdout.contains("10 ended, 10 to ask for (10 missing) in 2 request(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing fetched"), "{stdout}");
    assert!(sim.requests().is_empty(), "a dry run asks nothing");
    assert!(lake::part_files(&lake::root(&dir.join("data"))).is_empty());

    let first = run(dir, &sim, &backfill_args(&[]), &[]).await;
    let stdout = assert_ok(&first, "first backfill");
    assert!(stdout.contains("filled       9"), "{stdout}");
    assert!(stdout.contains("empty        1"), "{stdout}");
    assert!(
        stdout.contains("MSFT 2024-03-06: the provider has no bars"),
        "{stdout}"
    );
    assert_eq!(
        bar_requests(&sim, 0),
        ["AAPL,MSFT 2024-03-04T05:00:00Z 2024-03-09T04:59:59Z"],
        "one request for both symbols' week"
    );
    let rows = lake::read_lake(&dir.join("data"));
    let sessions = |symbol: &str| {
        let mut days: Vec<String> = rows
            .iter()
            .filter(|r| r.symbol == symbol)
            .map(|r| {
                marketpipe_domain::calendar::ny_date(marketpipe_domain::Timestamp::from_nanos(r.ts))
                    .to_string()
            })
            .collect();
        days.dedup();
        days
    };
    assert_eq!(sessions("AAPL").len(), 5);
    assert_eq!(
        sessions("MSFT"),
        ["2024-03-04", "2024-03-05", "2024-03-07", "2024-03-08"]
    );
    assert_eq!(rows.len(), 9 * 390);

    // Another tool deletes AAPL's 2024-03-05 from its partition file.
    let file = lake::partition_file(&dir.join("data"), "AAPL", 2024, 3);
    let (from, to) = (1_709_649_000_000_000_000, 1_709_672_400_000_000_000); // 09:30-16:00 ET
    assert_eq!(lake::remove_rows_outside_mp(&file, from, to), 390);
    let seen = sim.requests().len();
    let second = run(dir, &sim, &backfill_args(&[]), &[]).await;
    let stdout = assert_ok(&second, "backfill after the file changed");
    assert!(
        stdout.contains("1 to ask for (1 lake_changed) in 1 request(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("re-read      1m/AAPL/2024-03"), "{stdout}");
    assert_eq!(
        bar_requests(&sim, seen),
        ["AAPL 2024-03-05T05:00:00Z 2024-03-06T04:59:59Z"],
        "only the deleted session is asked again"
    );
    assert_eq!(lake::read_lake(&dir.join("data")).len(), 9 * 390);

    // Nothing missing: no request, no file rewritten.
    let before = mtimes(dir);
    let seen = sim.requests().len();
    let third = run(dir, &sim, &backfill_args(&[]), &[]).await;
    let stdout = assert_ok(&third, "backfill with nothing missing");
    assert!(stdout.contains("nothing to ask"), "{stdout}");
    assert_eq!(sim.requests().len(), seen, "no request at all");
    assert_eq!(mtimes(dir), before, "no file rewritten");

    // --recheck asks again for the empty session, and only for it.
    let fourth = run(dir, &sim, &backfill_args(&["--recheck"]), &[]).await;
    let stdout = assert_ok(&fourth, "recheck");
    assert!(stdout.contains("1 to ask for (1 recheck)"), "{stdout}");
    assert_eq!(
        bar_requests(&sim, seen),
        ["MSFT 2024-03-06T05:00:00Z 2024-03-07T04:59:59Z"]
    );
    assert!(stdout.contains("empty        1"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookback_counts_sessions_back_from_the_clock_and_skips_the_open_session() {
    let sim = Simulator::start(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Friday 2024-03-08 at 15:00 ET: that session has not ended.
    let now = [("MP_NOW", "2024-03-08T20:00:00Z")];
    let args = [
        "backfill",
        "--provider",
        "alpaca",
        "--symbols",
        "AAPL",
        "--lookback",
        "5d",
        "--dry-run",
        "--json",
    ];
    let out = run(dir.path(), &sim, &args, &now).await;
    let plan: serde_json::Value = serde_json::from_str(&assert_ok(&out, "lookback plan")).unwrap();
    assert_eq!(plan["start"], "2024-03-04");
    assert_eq!(plan["end"], "2024-03-08");
    assert_eq!(plan["not_ended"], serde_json::json!(["2024-03-08"]));
    assert_eq!(plan["sessions"].as_array().unwrap().len(), 4);
    assert_eq!(
        plan["requests"],
        serde_json::json!([{"symbol": "AAPL", "start": "2024-03-04", "end": "2024-03-07"}])
    );
    // Bad spans are usage errors naming the value.
    for (bad, expect) in [("5h", "\"5h\""), ("0d", "at least 1")] {
        let args = [
            "backfill",
            "--symbols",
            "AAPL",
            "--lookback",
            bad,
            "--dry-run",
        ];
        let out = run(dir.path(), &sim, &args, &now).await;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
    }
    let bad_now = run(dir.path(), &sim, &args, &[("MP_NOW", "yesterday")]).await;
    assert_eq!(bad_now.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_now.stderr).contains("MP_NOW"));
}

// ------------------------------------------------------------------------------------------
// mp gaps --html, rendered in headless Chromium
// ------------------------------------------------------------------------------------------

/// Headless Chromium (Debian's `chromium`, installed by `.ci/run`), or `MP_CHROMIUM`.
fn chromium() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("MP_CHROMIUM") {
        return Some(path.into());
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
}

/// Screenshots `page` at 900 x 300 CSS pixels into `png`.
fn screenshot(browser: &Path, page: &Path, png: &Path, profile: &Path) {
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=900,300",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pixels of an 8-bit RGB or RGBA PNG (what Chromium writes), as RGB triples.
#[allow(clippy::cast_possible_truncation)] // bytes of the format, in range by construction
fn png_pixels(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    use std::io::Read as _;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let (mut width, mut height, mut channels) = (0, 0, 0);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit samples");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("PNG colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(stride + 1).take(height) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = line.to_vec();
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => u16::midpoint(u16::from(a), u16::from(b)) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
        pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (width, height, pixels)
}

#[allow(clippy::cast_possible_truncation)] // the three bytes of an RGB colour
fn count_colour(pixels: &[[u8; 3]], hex: u32) -> usize {
    let want = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
    pixels
        .iter()
        .filter(|p| p.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 8))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // one data set, looked at in each form in turn
async fn gaps_show_the_coverage_map_as_a_table_json_and_a_heat_map_chromium_renders() {
    let sim = simulator_without_msft_on_march_6().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let args = [
        "backfill",
        "--provider",
        "alpaca",
        "--symbols",
        "AAPL,MSFT",
        "--start",
        "2024-03-04",
        "--end",
        "2024-03-06",
    ];
    assert_ok(&run(dir, &sim, &args, &[]).await, "backfill three sessions");
    // The map asks about five sessions; two were never asked for.
    let gaps = [
        "gaps",
        "--symbols",
        "AAPL,MSFT",
        "--start",
        "2024-03-04",
        "--end",
        "2024-03-08",
    ];
    let table = assert_ok(&run(dir, &sim, &gaps, &[]).await, "gaps table");
    let row = |symbol: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(symbol))
            .unwrap_or_else(|| panic!("{symbol} in {table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // symbol, expected, filled, partial, empty, failed, missing
    assert_eq!(
        row("AAPL"),
        ["AAPL", "5", "3", "0", "0", "0", "2"],
        "{table}"
    );
    assert_eq!(
        row("MSFT"),
        ["MSFT", "5", "2", "0", "1", "0", "2"],
        "{table}"
    );
    let mut json_args = gaps.to_vec();
    json_args.push("--json");
    let json: serde_json::Value = serde_json::from_str(&assert_ok(
        &run(dir, &sim, &json_args, &[]).await,
        "gaps json",
    ))
    .unwrap();
    assert_eq!(
        json["symbols"][1]["cells"],
        serde_json::json!(["filled", "filled", "empty_confirmed", "missing", "missing"])
    );
    assert_eq!(json["totals"]["filled"], 5);

    let page = dir.join("gaps.html");
    let mut html_args = gaps.to_vec();
    html_args.extend_from_slice(&["--html", page.to_str().unwrap()]);
    let out = assert_ok(&run(dir, &sim, &html_args, &[]).await, "gaps html");
    assert!(out.contains("heat map written to"), "{out}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("2 symbols x 5 sessions"),
        "a title with the shape"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );

    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: the heat map was not rendered: no chromium on PATH (apt-get install \
             chromium, or set MP_CHROMIUM); .ci/run installs it"
        );
        return;
    };
    let png = dir.join("gaps.png");
    screenshot(&browser, &page, &png, &dir.join("chromium-profile"));
    let (width, height, pixels) = png_pixels(&std::fs::read(&png).unwrap());
    assert!(width >= 800 && height >= 250, "{width}x{height}");
    // Cells are at least 3 x 14 CSS pixels: 5 filled, 1 empty, 4 missing.
    let filled = count_colour(&pixels, 0x002e_7d32);
    let empty = count_colour(&pixels, 0x005c_6bc0);
    let missing = count_colour(&pixels, 0x00e0_e0e0);
    assert!(filled >= 5 * 3 * 14, "filled cells drawn: {filled} px");
    assert!(empty >= 3 * 14, "the empty session drawn: {empty} px");
    assert!(missing >= 4 * 3 * 14, "missing cells drawn: {missing} px");
    assert!(
        filled > empty,
        "more filled than empty: {filled} vs {empty}"
    );
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
    if std::env::var_os("MP_UPDATE_SCREENSHOTS").is_some() {
        std::fs::create_dir_all(&shots).unwrap();
        std::fs::copy(&png, shots.join("gaps.png")).unwrap();
    }
}

// ------------------------------------------------------------------------------------------
// mp health, mp prune
// ------------------------------------------------------------------------------------------

fn fake_ingest(dir: &Path, symbols: &str, start: &str, end: &str, extra: &[&str]) {
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
    crate::run_ok(dir, &args);
}

#[test]
fn health_passes_on_a_healthy_dir_and_names_a_truncated_partition() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fake_ingest(
        dir,
        "AAPL,MSFT",
        "2024-03-01",
        "2024-04-30",
        &["--aggregate"],
    );
    let health = crate::run_ok(dir, &["health"]);
    for check in [
        "config",
        "data_dir",
        "database",
        "lake_integrity",
        "manifest",
        "orphans",
        "lake_format",
        "jobs",
        "credentials",
    ] {
        assert!(
            health
                .lines()
                .any(|l| l.starts_with("ok ") && l.contains(check)),
            "{check} ok in:\n{health}"
        );
    }
    let full = crate::run_ok(dir, &["health", "--full", "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&full).unwrap();
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "ok"),
        "{full}"
    );

    // Another tool reorders one file's rows: the default check (which hashes every partition
    // of a lake this small) says so.
    let reordered = lake::partition_file(&dir.join("data"), "AAPL", 2024, 3);
    let original = std::fs::read(&reordered).unwrap();
    lake::unsort_rows_outside_mp(&reordered);
    let out = crate::mp(dir).arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = crate::text(&out.stdout);
    assert!(
        report.lines().any(|l| l.starts_with("fail  manifest")
            && l.contains("1m/AAPL/2024-03")
            && l.contains("not sorted")),
        "{report}"
    );
    std::fs::write(&reordered, original).unwrap();
    crate::run_ok(dir, &["health"]);

    // Truncate one 1m partition to half its size.
    let file = lake::partition_file(&dir.join("data"), "MSFT", 2024, 4);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = crate::mp(dir).arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = crate::text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.starts_with("fail") && l.contains("lake_integrity"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        line.contains("frame=1m/symbol=MSFT/year=2024/month=4/part-0.parquet"),
        "names the partition: {line}"
    );
    assert!(line.contains("mp backfill"), "says what to do: {line}");
    assert!(crate::text(&out.stderr).contains("lake_integrity"));
}

#[test]
fn prune_parquet_removes_every_row_before_the_cut_and_keeps_the_rest_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fake_ingest(
        dir,
        "AAPL,MSFT",
        "2024-06-01",
        "2024-07-31",
        &["--aggregate"],
    );
    // 2024-07-01 00:00 ET.
    let cut = 1_719_806_400_000_000_000_i64;
    let before = lake::read_lake(&dir.join("data"));
    let later: Vec<_> = before.iter().filter(|r| r.ts >= cut).cloned().collect();
    assert!(before.iter().any(|r| r.ts < cut) && !later.is_empty());
    let snapshot = lake::snapshot(&lake::root(&dir.join("data")));

    let dry = crate::run_ok(
        dir,
        &["prune", "parquet", "--before", "2024-07-01", "--dry-run"],
    );
    assert!(dry.contains("would remove  1m/AAPL/2024-06"), "{dry}");
    assert!(dry.contains("would rewrite 1h/MSFT/2024"), "{dry}");
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    assert_eq!(
        lake::snapshot(&lake::root(&dir.join("data"))),
        snapshot,
        "a dry run changes nothing"
    );

    let done = crate::run_ok(dir, &["prune", "parquet", "--before", "2024-07-01"]);
    assert!(done.contains("removed   1m/AAPL/2024-06"), "{done}");
    let after = lake::read_lake(&dir.join("data"));
    assert!(
        after.iter().all(|r| r.ts >= cut),
        "no row before the cut in any frame"
    );
    lake::assert_same_rows(
        &after
            .iter()
            .map(|r| lake::Row {
                file: String::new(),
                ..r.clone()
            })
            .collect::<Vec<_>>(),
        &later
            .iter()
            .map(|r| lake::Row {
                file: String::new(),
                ..r.clone()
            })
            .collect::<Vec<_>>(),
        "every later row as it was",
    );
    // July's monthly files were not touched at all.
    let july: Vec<_> = snapshot
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("month=7"))
        .collect();
    let now = lake::snapshot(&lake::root(&dir.join("data")));
    for (path, state) in july {
        assert_eq!(now.get(path), Some(state), "{} untouched", path.display());
    }
    // The views and the manifest agree.
    let sql = "select (select count(*) from bars_1m where ts < TIMESTAMPTZ '2024-07-01 04:00:00+00') \
               + (select count(*) from bars_1h where ts < TIMESTAMPTZ '2024-07-01 04:00:00+00') \
               + (select count(*) from bars_1d where ts < TIMESTAMPTZ '2024-07-01 04:00:00+00') as n";
    assert_eq!(
        crate::run_ok(dir, &["query", "--format", "csv", sql]),
        "n\n0\n"
    );
    let health = crate::run_ok(dir, &["health", "--full"]);
    assert!(health.contains("ok    manifest"), "{health}");
    let gaps = crate::run_ok(
        dir,
        &[
            "gaps",
            "--symbols",
            "AAPL",
            "--start",
            "2024-06-03",
            "--end",
            "2024-07-03",
            "--json",
        ],
    );
    let gaps: serde_json::Value = serde_json::from_str(&gaps).unwrap();
    let aapl = &gaps["symbols"][0];
    // June 3-28 has 19 sessions (not Juneteenth); July 1-3 three.
    assert_eq!(
        aapl["missing"], 19,
        "June's coverage went with its rows: {aapl}"
    );
    assert_eq!(aapl["filled"], 3);
    // Again: nothing left to prune.
    let again = crate::run_ok(dir, &["prune", "parquet", "--before", "2024-07-01"]);
    assert!(again.contains("removed 0 rows in 0 partitions"), "{again}");
    // Bad input is a usage error naming it.
    let out = crate::mp(dir)
        .args(["prune", "parquet", "--older-than", "5x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::text(&out.stderr).contains("\"5x\""));
}

#[test]
fn prune_sqlite_forgets_old_finished_jobs_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fake_ingest(dir, "AAPL", "2024-03-01", "2024-03-31", &["--validate"]);
    let dry = crate::run_ok(
        dir,
        &[
            "prune",
            "sqlite",
            "--older-than",
            "18m",
            "--dry-run",
            "--json",
        ],
    );
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["jobs"], 0, "the job just ran: {dry}");
    // As if 19 months from now (the clock port): the job is old.
    let later = [("MP_NOW", "2099-01-01T00:00:00Z")];
    let mut cmd = crate::mp(dir);
    for (k, v) in later {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["prune", "database", "--older-than", "18m", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    let pruned: serde_json::Value = serde_json::from_str(&crate::text(&out.stdout)).unwrap();
    assert_eq!(pruned["jobs"], 1, "{pruned}");
    assert!(pruned["work_items"].as_u64().unwrap() >= 1);
    assert!(pruned["reports"].as_u64().unwrap() >= 1);
    let jobs = crate::run_ok(dir, &["jobs", "list", "--json"]);
    assert_eq!(jobs.trim(), "[]");
    // The lake and the manifest stay.
    let health = crate::run_ok(dir, &["health"]);
    assert!(health.contains("ok    manifest"), "{health}");
}

// ------------------------------------------------------------------------------------------
// Job lifecycle
// ------------------------------------------------------------------------------------------

/// A long fake ingest (40 symbols x 2024, one batch at a time), started in the background.
fn long_ingest(dir: &Path) -> std::process::Child {
    let symbols: Vec<String> = (1..=40).map(|i| format!("LC{i:03}")).collect();
    crate::mp_process(dir)
        .args([
            "ingest",
            "--provider",
            "fake",
            "--symbols",
            &symbols.join(","),
            "--start",
            "2024-01-01",
            "--end",
            "2024-12-31",
            "--concurrency",
            "1",
        ])
        .spawn()
        .unwrap()
}

/// `mp jobs list --json`'s first job, once it has done at least one item and still runs.
fn wait_for_progress(dir: &Path, child: &mut std::process::Child) -> serde_json::Value {
    for _ in 0..6000 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the ingest ended too soon"
        );
        let out = crate::mp(dir)
            .args(["jobs", "list", "--json"])
            .output()
            .unwrap();
        if out.status.success()
            && let Ok(jobs) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && let Some(job) = jobs.get(0)
            && job["state"] == "running"
            && job["items_done"].as_u64().unwrap_or(0) > 0
        {
            return job.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the ingest never made progress");
}

#[test]
fn a_killed_ingest_is_interrupted_and_mp_jobs_kill_cancels_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let mut first = long_ingest(dir);
    let job = wait_for_progress(dir, &mut first);
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["owner"]["pid"], first.id());
    first.kill().unwrap(); // SIGKILL: no chance to say anything
    first.wait().unwrap();
    let listed = crate::run_ok(dir, &["jobs", "list"]);
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains("interrupted"), "{listed}");
    let shown = crate::run_ok(dir, &["jobs", "show", &id]);
    assert!(shown.contains("state     interrupted"), "{shown}");
    assert!(
        shown.contains(&format!("mp ingest --resume {id}")),
        "{shown}"
    );
    let doctor = crate::mp(dir).args(["jobs", "doctor"]).output().unwrap();
    assert_eq!(doctor.status.code(), Some(1));
    assert!(crate::text(&doctor.stdout).contains(&format!("interrupted job {id}")));
    // The SIGKILL may also have left a write's temporary file: then `orphans` fails too.
    let health = crate::mp(dir).arg("health").output().unwrap();
    let report = crate::text(&health.stdout);
    assert!(
        report.contains("warn  jobs") && report.contains(&id),
        "{report}"
    );
    assert!(
        health.status.success()
            || report
                .lines()
                .filter(|l| l.starts_with("fail"))
                .all(|l| l.contains("orphans")),
        "{report}"
    );

    // A re-run of the same command takes the interrupted job over and runs it to the end.
    let mut second = long_ingest(dir);
    let job = wait_for_progress(dir, &mut second);
    assert_eq!(job["id"], id.as_str(), "the same job, taken over");
    assert_eq!(job["owner"]["pid"], second.id());
    let killed = crate::run_ok(dir, &["jobs", "kill", &id]);
    assert!(killed.contains("cancelled"), "{killed}");
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a cancelled ingest exits 1");
    let shown: serde_json::Value =
        serde_json::from_str(&crate::run_ok(dir, &["jobs", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["state"], "cancelled");
    let done = shown["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "done")
        .count();
    assert!(done > 0, "finished items are kept");
    // Killing it again is a usage error; the job resumes to completion.
    let again = crate::mp(dir).args(["jobs", "kill", &id]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    crate::run_ok(dir, &["-q", "ingest", "--resume", &id]);
    let shown: serde_json::Value =
        serde_json::from_str(&crate::run_ok(dir, &["jobs", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["state"], "completed");
    crate::run_ok(dir, &["jobs", "doctor"]);
}

#[test]
fn jobs_doctor_fix_marks_interrupted_jobs_and_removes_orphaned_files() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut child = long_ingest(dir);
    let job = wait_for_progress(dir, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let id = job["id"].as_str().unwrap();
    // An interrupted write's leftovers.
    let part_dir = lake::partition_file(&dir.join("data"), "ZZZ", 2024, 1);
    let part_dir = part_dir.parent().unwrap();
    std::fs::create_dir_all(part_dir).unwrap();
    std::fs::write(part_dir.join(".part-0.parquet.lock"), b"").unwrap();
    std::fs::write(part_dir.join(".part-0.parquet.tmp-99999-0"), b"partial").unwrap();
    let health = crate::mp(dir).arg("health").output().unwrap();
    assert_eq!(health.status.code(), Some(1));
    assert!(crate::text(&health.stdout).contains("fail  orphans"));
    let fixed = crate::run_ok(dir, &["jobs", "doctor", "--fix"]);
    assert!(
        fixed.contains(&format!("interrupted job {id} - marked failed")),
        "{fixed}"
    );
    assert!(fixed.contains("- removed"), "{fixed}");
    assert!(!part_dir.join(".part-0.parquet.lock").exists());
    assert!(!part_dir.join(".part-0.parquet.tmp-99999-0").exists());
    let clean = crate::run_ok(dir, &["jobs", "doctor"]);
    assert!(
        clean.contains("no interrupted jobs, no orphaned files"),
        "{clean}"
    );
    let shown = crate::run_ok(dir, &["jobs", "show", id]);
    assert!(
        shown.contains("state     failed") && shown.contains("interrupted"),
        "{shown}"
    );
    // cleanup: a finished job older than the cut goes.
    let mut cmd = crate::mp(dir);
    cmd.env("MP_NOW", "2099-01-01T00:00:00Z")
        .args(["jobs", "cleanup", "--older-than", "30d"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    assert!(crate::text(&out.stdout).contains("removed 1 finished job(s)"));
}

// ------------------------------------------------------------------------------------------
// Scheduling units
// ------------------------------------------------------------------------------------------

#[test]
fn the_systemd_units_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
    else {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian's systemd package has it)");
        return;
    };
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops");
    let units = tempfile::tempdir().unwrap();
    let script = ops.join("bin/marketpipe-daily");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(ops.join("systemd")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        // The units name the installed paths; verify them against this build's.
        let text = std::fs::read_to_string(entry.path())
            .unwrap()
            .replace("/usr/local/bin/marketpipe-daily", script.to_str().unwrap())
            .replace("/usr/local/bin/mp", env!("CARGO_BIN_EXE_mp"));
        std::fs::write(units.path().join(&name), text).unwrap();
        names.push(units.path().join(&name));
    }
    assert!(names.len() >= 4, "{names:?}");
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .args(&names)
        .current_dir(units.path())
        .output()
        .unwrap();
    let stderr = crate::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("Unknown") && !stderr.contains("Failed"),
        "no warnings: {stderr}"
    );
    // The daily script parses (sh -n) and the cron file names it.
    let sh = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(sh.success());
    let cron = std::fs::read_to_string(ops.join("cron/marketpipe")).unwrap();
    assert!(cron.contains("marketpipe-daily") && cron.contains("prune parquet"));
}
