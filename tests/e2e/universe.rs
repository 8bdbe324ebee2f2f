//! The symbol master and universes through the binary: Nasdaq Trader directory files loaded
//! as dated snapshots (a rename, a delisting), `symbols list --as-of` on each side of them,
//! universes over a fake lake checked against an independent DuckDB query over the same 1m
//! files (`tests/interop/universe_oracle.py`), `ingest --universe`, and the bad inputs that
//! must exit 2 and change nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::{mp, run_ok, text};

const NASDAQ_HEADER: &str = "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares";
const OTHER_HEADER: &str =
    "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol";

/// The twelve symbols the fake lake holds.
const LAKE: [&str; 12] = [
    "AAPL", "MSFT", "AMZN", "NVDA", "META", "JPM", "XOM", "KO", "BRK.B", "IBM", "GE", "DIS",
];

/// Writes the two directory files of one day into `dir`. `meta_name` is META's name that
/// day; `with_twtr` lists TWTR (delisted later).
fn directory(dir: &Path, trailer: &str, meta_name: &str, with_twtr: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut nasdaq = vec![NASDAQ_HEADER.to_owned()];
    for (symbol, name) in [
        ("AACIW", "Armada Acquisition Corp. II - Warrant"),
        ("AAPL", "Apple Inc. - Common Stock"),
        ("AMZN", "Amazon.com, Inc. - Common Stock"),
        ("META", meta_name),
        ("MSFT", "Microsoft Corporation - Common Stock"),
        ("NVDA", "NVIDIA Corporation - Common Stock"),
    ] {
        nasdaq.push(format!("{symbol}|{name}|Q|N|N|100|N|N"));
    }
    nasdaq.push("QQQ|Invesco QQQ Trust, Series 1|G|N|N|100|Y|N".into());
    if with_twtr {
        nasdaq.push("TWTR|Twitter, Inc. - Common Stock|Q|N|N|100|N|N".into());
    }
    nasdaq.push("ZXZZT|NASDAQ TEST STOCK|G|Y|N|100||N".into());
    nasdaq.push(format!("File Creation Time: {trailer}|||||||"));
    let mut other = vec![OTHER_HEADER.to_owned()];
    for (act, name, exchange, cqs) in [
        (
            "BRK.B",
            "Berkshire Hathaway Inc. New Common Stock",
            "N",
            "BRK/B",
        ),
        ("DIS", "Walt Disney Company (The) Common Stock", "N", "DIS"),
        ("GE", "GE Aerospace Common Stock", "N", "GE"),
        (
            "IBM",
            "International Business Machines Corporation Common Stock",
            "N",
            "IBM",
        ),
        ("JPM", "JP Morgan Chase & Co. Common Stock", "N", "JPM"),
        ("KO", "Coca-Cola Company (The) Common Stock", "N", "KO"),
        ("SPY", "SPDR S&P 500 ETF Trust", "P", "SPY"),
        ("XOM", "Exxon Mobil Corporation Common Stock", "N", "XOM"),
        (
            "ZXIET",
            "IEX Test Company Test Symbol Three for IEX",
            "V",
            "ZXIET",
        ),
    ] {
        let etf = if act == "SPY" { "Y" } else { "N" };
        let test = if act == "ZXIET" { "Y" } else { "N" };
        other.push(format!(
            "{act}|{name}|{exchange}|{cqs}|{etf}|100|{test}|{act}"
        ));
    }
    other.push(format!("File Creation Time: {trailer}||||||"));
    std::fs::write(dir.join("nasdaqlisted.txt"), nasdaq.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("otherlisted.txt"), other.join("\r\n") + "\r\n").unwrap();
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&run_ok(dir, args)).unwrap()
}

fn listed(dir: &Path, as_of: &str) -> BTreeSet<String> {
    json(dir, &["symbols", "list", "--as-of", as_of, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `mp` expecting exit 2; returns stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = mp(dir).args(args).assert().code(2);
    text(&out.get_output().stderr)
}

/// Loads the two snapshots: 2024-03-01 and 2024-04-01 (META renamed, TWTR delisted).
fn load_master(root: &Path) {
    let first = root.join("symdir-0301");
    let second = root.join("symdir-0401");
    directory(
        &first,
        "0301202418:00",
        "Facebook, Inc. - Class A Common Stock",
        true,
    );
    directory(
        &second,
        "0401202418:00",
        "Meta Platforms, Inc. - Class A Common Stock",
        false,
    );
    for from in [&first, &second] {
        run_ok(
            root,
            &[
                "symbols",
                "update",
                "--source",
                "nasdaq-trader",
                "--from",
                from.to_str().unwrap(),
            ],
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one history, read back on each side of its changes
fn snapshots_give_each_date_its_own_securities_and_bad_input_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    directory(
        &root.join("symdir-0301"),
        "0301202418:00",
        "Facebook, Inc. - Class A Common Stock",
        true,
    );
    let dry = run_ok(
        root,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            "symdir-0301",
            "--dry-run",
        ],
    );
    assert!(
        dry.contains("would load nasdaq-trader snapshot of 2024-03-01"),
        "{dry}"
    );
    refused(root, &["symbols", "list", "--as-of", "2024-03-15"]);
    load_master(root);

    let everything: Vec<&str> = LAKE
        .iter()
        .copied()
        .chain(["AACIW", "QQQ", "ZXZZT", "SPY", "ZXIET"])
        .collect();
    let mut march = set(&everything);
    march.insert("TWTR".into());
    assert_eq!(listed(root, "2024-03-01"), march);
    assert_eq!(listed(root, "2024-03-31"), march);
    assert_eq!(
        listed(root, "2024-04-01"),
        set(&everything),
        "TWTR is gone from April 1"
    );
    assert_eq!(listed(root, "2026-12-01"), set(&everything));

    let rows = json(
        root,
        &["symbols", "list", "--as-of", "2024-03-15", "--json"],
    );
    let meta = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["symbol"] == "META")
        .unwrap();
    assert_eq!(meta["name"], "Facebook, Inc. - Class A Common Stock");
    assert_eq!(meta["exchange"], "NASDAQ");
    assert_eq!(meta["asset_type"], "stock");
    assert_eq!(meta["valid_from"], "2024-03-01");
    assert_eq!(meta["valid_to"], "2024-04-01");
    let brk = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["symbol"] == "BRK.B")
        .unwrap();
    assert_eq!(
        brk["vendor_symbol"], "BRK/B",
        "read from the old CQS spelling"
    );
    assert_eq!(brk["exchange"], "NYSE");
    let nyse = json(
        root,
        &[
            "symbols",
            "list",
            "--as-of",
            "2024-04-02",
            "--exchange",
            "NYSE_ARCA",
            "--json",
        ],
    );
    assert_eq!(nyse.as_array().unwrap().len(), 1);
    assert_eq!(nyse[0]["symbol"], "SPY");
    assert_eq!(nyse[0]["asset_type"], "etf");

    let history = json(root, &["symbols", "show", "META", "--json"]);
    let versions = history["history"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history:#}");
    assert_eq!(
        versions[1]["name"],
        "Meta Platforms, Inc. - Class A Common Stock"
    );
    assert_eq!(versions[1]["valid_from"], "2024-04-01");
    assert!(versions[1]["valid_to"].is_null());
    let twtr = json(root, &["symbols", "show", "TWTR", "--json"]);
    assert_eq!(twtr["history"][0]["valid_to"], "2024-04-01");
    let shown = run_ok(root, &["symbols", "show", "BRK-B"]);
    assert!(
        shown.contains("BRK.B") && shown.contains("Berkshire"),
        "{shown}"
    );

    // A truncated directory file: exit 2 naming it, and nothing changes.
    let before = run_ok(
        root,
        &["symbols", "list", "--as-of", "2026-12-01", "--json"],
    );
    let cut = root.join("symdir-cut");
    directory(
        &cut,
        "0502202418:00",
        "Meta Platforms, Inc. - Class A Common Stock",
        false,
    );
    let other = std::fs::read_to_string(cut.join("otherlisted.txt")).unwrap();
    let truncated = &other[..other.find("SPY|").unwrap()];
    std::fs::write(cut.join("otherlisted.txt"), truncated).unwrap();
    let err = refused(
        root,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            "symdir-cut",
        ],
    );
    assert!(
        err.contains("otherlisted.txt") && err.contains("truncated"),
        "{err}"
    );
    // An older snapshot than the latest, and a missing directory, are refused too.
    let err = refused(
        root,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            "symdir-0301",
        ],
    );
    assert!(
        err.contains("2024-03-01") && err.contains("date order"),
        "{err}"
    );
    let err = refused(
        root,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            "no-such-dir",
        ],
    );
    assert!(err.contains("nasdaqlisted.txt"), "{err}");
    let err = refused(root, &["symbols", "list", "--as-of", "2024-13-01"]);
    assert!(err.contains("2024-13-01"), "{err}");
    let after = run_ok(
        root,
        &["symbols", "list", "--as-of", "2026-12-01", "--json"],
    );
    assert_eq!(before, after);
    let again = json(
        root,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            "symdir-0401",
            "--json",
        ],
    );
    assert_eq!(again["as_of"], "2024-04-01", "{again:#}");
    assert_eq!(again["replaced_day"], true, "{again:#}");
    assert_eq!(
        again["changed"],
        serde_json::json!(["META"]),
        "as its first load: {again:#}"
    );
    assert_eq!(again["removed"], serde_json::json!(["TWTR"]), "{again:#}");
    let history_after = run_ok(
        root,
        &["symbols", "list", "--as-of", "2026-12-01", "--json"],
    );
    assert_eq!(history_after, before, "loading a day again changes nothing");
    let meta = json(root, &["symbols", "show", "META", "--json"]);
    assert_eq!(meta["history"].as_array().unwrap().len(), 2, "{meta:#}");
}

/// Thresholds halfway between two neighbouring values, so that float rounding in either
/// tool cannot move a symbol across one.
fn midway(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let k = values.len() / 2;
    f64::midpoint(values[k - 1], values[k])
}

fn members(universe: &Value) -> BTreeSet<String> {
    universe["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["symbol"].as_str().unwrap().to_owned())
        .collect()
}

fn build(root: &Path, name: &str, filters: &str, as_of: &str) -> Value {
    let file = root.join(format!("{name}.yml"));
    std::fs::write(&file, filters).unwrap();
    json(
        root,
        &[
            "universe",
            "build",
            "--filters",
            file.to_str().unwrap(),
            "--as-of",
            as_of,
            "--json",
        ],
    )
}

#[test]
#[allow(clippy::too_many_lines)] // one lake, each filter in turn, then the oracle
fn universes_select_what_an_independent_duckdb_query_selects_and_feed_the_ingest() {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    load_master(root);
    let symbols = LAKE.join(",");
    run_ok(
        root,
        &[
            "ingest",
            "--provider",
            "fake",
            "--symbols",
            &symbols,
            "--start",
            "2024-01-02",
            "--end",
            "2024-03-28",
        ],
    );
    let as_of = "2024-03-28";

    // Every candidate's figures, from a universe without bounds.
    let open = build(root, "open", "config_version: 1\n", as_of);
    assert!(members(&open).is_superset(&set(&LAKE)), "{open:#}");
    let figures = |key: &str| -> Vec<f64> {
        open["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| LAKE.contains(&m["symbol"].as_str().unwrap()))
            .map(|m| m[key].as_f64().unwrap())
            .collect()
    };
    let price = midway(&mut figures("price"));
    let adv = midway(&mut figures("avg_dollar_volume"));
    let vol = midway(&mut figures("avg_volume"));
    let cases: [(&str, String, Value); 5] = [
        (
            "price",
            format!("config_version: 1\nprice: {{min: {price}}}\n"),
            serde_json::json!({"price_min": price}),
        ),
        (
            "adv",
            format!("config_version: 1\navg_dollar_volume: {{min: {adv}, sessions: 20}}\n"),
            serde_json::json!({"adv_min": adv}),
        ),
        (
            "vol",
            format!("config_version: 1\navg_volume: {{min: {vol}, sessions: 10}}\n"),
            serde_json::json!({"vol_min": vol}),
        ),
        (
            "top",
            "config_version: 1\nsort_by: avg_dollar_volume\nmax_symbols: 5\n".to_owned(),
            serde_json::json!({"top": 5}),
        ),
        (
            "all",
            format!(
                "config_version: 1\nexchanges: [NASDAQ, NYSE]\nasset_types: [stock]\n\
                 price: {{min: {}}}\navg_dollar_volume: {{min: {}, sessions: 20}}\n\
                 avg_volume: {{min: {}, sessions: 10}}\nmax_symbols: 3\n",
                price / 2.0,
                adv / 2.0,
                vol / 2.0
            ),
            serde_json::json!({"price_min": price / 2.0, "adv_min": adv / 2.0, "vol_min": vol / 2.0, "top": 3}),
        ),
    ];
    let oracle_cases: Vec<Value> = cases
        .iter()
        .map(|(name, _, bounds)| {
            let mut case = serde_json::json!({
                "name": name, "price_min": null, "adv_min": null, "adv_sessions": 20,
                "vol_min": null, "vol_sessions": 10, "top": null,
            });
            for (k, v) in bounds.as_object().unwrap() {
                case[k] = v.clone();
            }
            case
        })
        .collect();
    let mut built = Vec::new();
    for (name, filters, _) in &cases {
        let universe = build(root, name, filters, as_of);
        assert!(!members(&universe).is_empty(), "{name}: {universe:#}");
        built.push((*name, members(&universe)));
    }
    // A filter alone excludes some and keeps some, and all together keep the top 3.
    for (name, got) in &built {
        assert!(
            got.len() < LAKE.len(),
            "{name} selected everything: {got:?}"
        );
    }
    assert_eq!(built[4].1.len(), 3);

    // The last build (all filters) is the universe of the as-of date: its CSV and ingest.
    let csv = std::fs::read_to_string(root.join("data/universe/universe-2024-03-28.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "symbol,name,exchange,asset_type,price,avg_dollar_volume,avg_volume,market_cap,sector,rank"
        )
    );
    let csv_symbols: BTreeSet<String> = lines
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(csv_symbols, built[4].1);
    let shown = json(root, &["universe", "show", "latest", "--json"]);
    assert_eq!(members(&shown), built[4].1);
    run_ok(
        root,
        &[
            "ingest",
            "--universe",
            as_of,
            "--provider",
            "fake",
            "--start",
            "2024-04-01",
            "--end",
            "2024-04-05",
        ],
    );
    let april: BTreeSet<String> = std::fs::read_dir(root.join("data/lake/frame=1m"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("year=2024/month=4").is_dir())
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_start_matches("symbol=")
                .to_owned()
        })
        .collect();
    assert_eq!(
        april, built[4].1,
        "ingest --universe takes exactly the members"
    );
    let plan = json(
        root,
        &[
            "backfill",
            "--universe",
            "latest",
            "--provider",
            "fake",
            "--start",
            "2024-04-08",
            "--end",
            "2024-04-09",
            "--dry-run",
            "--json",
        ],
    );
    let planned: BTreeSet<String> = plan["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        planned, built[4].1,
        "backfill --universe plans exactly the members: {plan:#}"
    );

    // A diff from the top-5 universe of another day names why each left.
    build(root, "top", &cases[3].1, "2024-03-27");
    let diff = json(root, &["universe", "diff", "2024-03-27", as_of, "--json"]);
    assert!(
        !diff["removed"].as_array().unwrap().is_empty()
            || !diff["added"].as_array().unwrap().is_empty(),
        "the two universes differ: {diff:#}"
    );
    for removed in diff["removed"].as_array().unwrap() {
        assert!(
            removed["excluded_by"].is_string() && removed["reason"].is_string(),
            "{diff:#}"
        );
    }
    let list = json(root, &["universe", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Bad filters and an as-of before every snapshot exit 2 and change nothing.
    let before = run_ok(root, &["universe", "list", "--json"]);
    let bad = root.join("bad.yml");
    std::fs::write(&bad, "config_version: 1\nmin_price: 5\n").unwrap();
    let err = refused(
        root,
        &[
            "universe",
            "build",
            "--filters",
            bad.to_str().unwrap(),
            "--as-of",
            "2024-03-26",
        ],
    );
    assert!(err.contains("min_price"), "{err}");
    let ok = root.join("open.yml");
    let err = refused(
        root,
        &[
            "universe",
            "build",
            "--filters",
            ok.to_str().unwrap(),
            "--as-of",
            "2023-12-29",
        ],
    );
    assert!(
        err.contains("2023-12-29") && err.contains("snapshot"),
        "{err}"
    );
    let err = refused(
        root,
        &[
            "ingest",
            "--universe",
            "2024-01-05",
            "--start",
            "2024-04-01",
            "--end",
            "2024-04-05",
        ],
    );
    assert!(err.contains("2024-01-05"), "{err}");
    assert_eq!(run_ok(root, &["universe", "list", "--json"]), before);
    assert!(!root.join("data/universe/universe-2024-03-26.csv").exists());
    assert!(!root.join("data/universe/universe-2023-12-29.csv").exists());

    // The same selections by DuckDB over the 1m files.
    // CI names the readers' interpreter: there the comparison must run, never skip.
    let required = std::env::var_os("MP_INTEROP_PYTHON").is_some();
    let python = std::env::var("MP_INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/universe_oracle.py");
    let output = match Command::new(&python)
        .arg(&script)
        .arg(root.join("data/lake"))
        .arg(as_of)
        .arg(Value::Array(oracle_cases).to_string())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            let reason = format!(
                "SKIPPED the DuckDB comparison: cannot run {python} ({e}); run `bash .ci/run` or set MP_INTEROP_PYTHON"
            );
            assert!(!required, "{reason}");
            println!("{reason}");
            eprintln!("{reason}");
            return;
        }
    };
    let stdout = text(&output.stdout);
    if output.status.code() == Some(77) {
        let reason = format!(
            "SKIPPED the DuckDB comparison: {} ({python})",
            stdout.trim()
        );
        assert!(!required, "{reason}");
        println!("{reason}");
        eprintln!("{reason}");
        return;
    }
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let expected: Value = serde_json::from_str(&stdout).unwrap();
    for (name, got) in &built {
        let want: BTreeSet<String> = expected[*name]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, &want, "{name}: mp universe build vs DuckDB");
    }
}

/// The simulator's reference data: a few named securities and enough generated ones for
/// Polygon's list to take two pages of 1,000.
fn reference_securities() -> Vec<marketpipe_testkit::simulator::SimSecurity> {
    use marketpipe_testkit::simulator::SimSecurity;
    let mut brk = SimSecurity::stock("BRK.B", "Berkshire Hathaway Inc. Class B", "XNYS");
    brk.market_cap = Some(900_000_000_000.0);
    brk.sic_code = Some("6331".into());
    let mut aapl = SimSecurity::stock("AAPL", "Apple Inc.", "XNAS");
    aapl.market_cap = Some(3_000_000_000_000.0);
    aapl.sic_code = Some("3571".into());
    let mut spy = SimSecurity::stock("SPY", "SPDR S&P 500 ETF Trust", "ARCX");
    spy.kind = "ETF".into();
    let mut gone = SimSecurity::stock("GONE", "Delisted Corp", "XNYS");
    gone.active = false;
    let mut out = vec![aapl, brk, spy, gone];
    out.extend(
        (0..1003).map(|i| SimSecurity::stock(&format!("T{i:04}"), &format!("Test Co {i}"), "XNAS")),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // two sources loaded, merged, then one universe over them
async fn alpaca_and_polygon_masters_over_the_simulator_feed_a_market_cap_universe() {
    use crate::providers::{POLYGON_KEY, assert_ok, config, run};
    use marketpipe_testkit::simulator::{Simulator, SimulatorConfig};
    let dir = TempDir::new().unwrap();
    let files = dir.path().join("served");
    directory(
        &files,
        "0301202418:00",
        "Meta Platforms, Inc. - Class A Common Stock",
        true,
    );
    let read = |name: &str| std::fs::read_to_string(files.join(name)).unwrap();
    let sim = Simulator::start(SimulatorConfig {
        securities: reference_securities(),
        symbol_directory: Some((read("nasdaqlisted.txt"), read("otherlisted.txt"))),
        ..config()
    })
    .await
    .unwrap();
    // The Nasdaq Trader files from an HTTP base URL (the trailing slash is added).
    let symdir = format!("{}/dynamic/SymDir", sim.base_url());
    let out = run(
        dir.path(),
        &sim,
        &[
            "symbols",
            "update",
            "--source",
            "nasdaq-trader",
            "--from",
            &symdir,
            "--json",
        ],
        &[],
    )
    .await;
    let report: Value = serde_json::from_str(&assert_ok(&out, "nasdaq-trader over HTTP")).unwrap();
    assert_eq!(report["as_of"], "2024-03-01");
    assert_eq!(report["securities"], 18, "{report:#}");
    let fetched: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/dynamic/SymDir/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        fetched,
        [
            "/dynamic/SymDir/nasdaqlisted.txt",
            "/dynamic/SymDir/otherlisted.txt"
        ]
    );
    let key = [
        ("POLYGON_API_KEY", POLYGON_KEY),
        ("MP_PROVIDERS_POLYGON_RATE_LIMIT_PER_MINUTE", "600000"),
    ];
    let out = run(
        dir.path(),
        &sim,
        &[
            "symbols",
            "update",
            "--source",
            "polygon",
            "--details",
            "--as-of",
            "2024-03-01",
            "--json",
        ],
        &key,
    )
    .await;
    let report: Value = serde_json::from_str(&assert_ok(&out, "polygon update")).unwrap();
    assert_eq!(
        report["securities"], 1006,
        "every active ticker over two pages: {report:#}"
    );
    let lists: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v3/reference/tickers")
        .collect();
    assert_eq!(lists.len(), 2, "one request per page of 1,000");
    assert!(lists[1].query.starts_with("cursor="), "{}", lists[1].query);
    let out = run(
        dir.path(),
        &sim,
        &["symbols", "update", "--source", "alpaca", "--json"],
        // Alpaca lists today's assets only: its snapshot is of today.
        &[("MP_NOW", "2024-03-01T21:00:00Z")],
    )
    .await;
    let report: Value = serde_json::from_str(&assert_ok(&out, "alpaca update")).unwrap();
    assert_eq!(report["securities"], 1006, "{report:#}");

    let out = run(
        dir.path(),
        &sim,
        &["symbols", "show", "BRK.B", "--json"],
        &[],
    )
    .await;
    let history: Value = serde_json::from_str(&assert_ok(&out, "show")).unwrap();
    let rows = history["history"].as_array().unwrap();
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["alpaca", "nasdaq-trader", "polygon"]);
    let polygon = &rows[2];
    assert_eq!(polygon["market_cap"], 900_000_000_000.0);
    assert_eq!(polygon["sector"], "finance");
    assert_eq!(polygon["exchange"], "NYSE");
    let out = run(
        dir.path(),
        &sim,
        &[
            "symbols",
            "list",
            "--as-of",
            "2024-03-01",
            "--exchange",
            "NYSE_ARCA",
            "--json",
        ],
        &[],
    )
    .await;
    let arca: Value = serde_json::from_str(&assert_ok(&out, "list")).unwrap();
    assert_eq!(
        arca.as_array().unwrap().len(),
        3,
        "SPY in each source: {arca:#}"
    );
    assert!(
        arca.as_array()
            .unwrap()
            .iter()
            .all(|r| r["symbol"] == "SPY" && r["asset_type"] == "etf"),
        "{arca:#}"
    );

    // Market cap and sector come from Polygon's details, merged with Alpaca's rows.
    let filters = dir.path().join("caps.yml");
    std::fs::write(
        &filters,
        "config_version: 1\nmarket_cap: {min: 1000000000}\nsectors: {include: [manufacturing, finance]}\nsort_by: market_cap\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &sim,
        &[
            "universe",
            "build",
            "--filters",
            filters.to_str().unwrap(),
            "--as-of",
            "2024-03-01",
            "--json",
        ],
        &[],
    )
    .await;
    let universe: Value = serde_json::from_str(&assert_ok(&out, "build")).unwrap();
    let ranked: Vec<&str> = universe["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(ranked, ["AAPL", "BRK.B"], "by market cap, descending");
    let out = run(
        dir.path(),
        &sim,
        &["universe", "show", "latest", "--all", "--json"],
        &[],
    )
    .await;
    let shown: Value = serde_json::from_str(&assert_ok(&out, "show")).unwrap();
    let excluded = shown["excluded"].as_array().unwrap();
    let spy = excluded.iter().find(|e| e["symbol"] == "SPY").unwrap();
    assert_eq!(spy["excluded_by"], "market_cap", "{spy:#}");
    assert!(
        excluded.iter().all(|e| e["symbol"] != "T0000"),
        "only the primary source (nasdaq-trader) says which securities exist"
    );
    // A source with only today's list cannot be dated earlier.
    let out = run(
        dir.path(),
        &sim,
        &[
            "symbols",
            "update",
            "--source",
            "alpaca",
            "--as-of",
            "2024-02-01",
        ],
        &[("MP_NOW", "2024-03-04T21:00:00Z")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("into the past"),
        "{}",
        text(&out.stderr)
    );

    // No key for Polygon: exit 2 naming the variable.
    let out = run(
        dir.path(),
        &sim,
        &["symbols", "update", "--source", "polygon"],
        &[("POLYGON_API_KEY", "")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("POLYGON_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}
