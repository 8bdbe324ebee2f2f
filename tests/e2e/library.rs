//! The library facade reads what the CLI wrote: `marketpipe::load_ohlcv` for one symbol and a
//! month returns the same rows as the `bars_1m` (and, after `mp aggregate`, `bars_1d`) view
//! of `mp query`.

use std::path::Path;

use marketpipe::polars::prelude::{DataFrame, DataType};
use marketpipe::{DateRange, Symbol, Timeframe, Timestamp, load_ohlcv};

use crate::{mp, text};

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = mp(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mp {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `ts,open,high,low,close,volume` lines as `mp query --format csv` prints them.
fn frame_lines(df: &DataFrame) -> Vec<String> {
    let s = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    let ts = s("ts").cast(&DataType::Int64).unwrap();
    let (open, high, low, close) = (s("open"), s("high"), s("low"), s("close"));
    let volume = s("volume");
    (0..df.height())
        .map(|i| {
            format!(
                "{},{},{},{},{},{}",
                Timestamp::from_nanos(ts.i64().unwrap().get(i).unwrap()),
                open.f64().unwrap().get(i).unwrap(),
                high.f64().unwrap().get(i).unwrap(),
                low.f64().unwrap().get(i).unwrap(),
                close.f64().unwrap().get(i).unwrap(),
                volume.i64().unwrap().get(i).unwrap(),
            )
        })
        .collect()
}

fn query_lines(dir: &Path, sql: &str) -> Vec<String> {
    run_ok(dir, &["query", sql, "--format", "csv"])
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn load_ohlcv_returns_the_rows_of_the_views() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        dir.path(),
        &[
            "ingest",
            "--provider",
            "fake",
            "--symbols",
            "AAPL,MSFT",
            "--start",
            "2024-02-01",
            "--end",
            "2024-04-30",
        ],
    );
    run_ok(dir.path(), &["aggregate", "--frames", "1d"]);
    let lake = dir.path().join("data/lake");
    let msft = Symbol::new("MSFT").unwrap();
    let march = DateRange::parse("2024-03-01", "2024-03-31").unwrap();

    let df = load_ohlcv(&lake, &[msft], march, Timeframe::M1).unwrap();
    let view = query_lines(
        dir.path(),
        "select ts, open, high, low, close, volume from bars_1m \
         where symbol = 'MSFT' and year = 2024 and month = 3 order by ts",
    );
    assert_eq!(view.len(), 20 * 390, "20 March sessions of 390 bars");
    assert_eq!(frame_lines(&df), view);

    let daily = load_ohlcv(&lake, &[msft], march, Timeframe::D1).unwrap();
    let view = query_lines(
        dir.path(),
        "select ts, open, high, low, close, volume from bars_1d where symbol = 'MSFT' \
         and ts::TIMESTAMP::DATE between DATE '2024-03-01' and DATE '2024-03-31' order by ts",
    );
    assert_eq!(view.len(), 20);
    assert_eq!(frame_lines(&daily), view);
}
