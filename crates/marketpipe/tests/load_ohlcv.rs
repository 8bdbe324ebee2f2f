//! `load_ohlcv` / `scan_ohlcv` against real lakes written by `marketpipe-parquet` in
//! temporary directories, with deterministic fake bars of fixed 2024 dates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use marketpipe::domain::calendar::ny_date;
use marketpipe::domain::resample;
use marketpipe::polars::prelude::{DataFrame, DataType, col, lit};
use marketpipe::ports::{BarStore, PartitionKey, WriteMeta};
use marketpipe::{
    Bar, COLUMNS, DateRange, LoadError, SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar,
    load_ohlcv, scan_ohlcv,
};
use marketpipe_fake::FakeProvider;
use marketpipe_parquet::{LakeOptions, ParquetLake};
use tempfile::TempDir;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn dates(start: &str, end: &str) -> DateRange {
    DateRange::parse(start, end).unwrap()
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

/// The fake provider's 1m bars of `symbol` for the sessions of `range`.
fn fake_bars(symbol: &str, range: DateRange, kind: SessionKind) -> Vec<Bar> {
    TradingCalendar::xnys()
        .sessions(range)
        .unwrap()
        .iter()
        .flat_map(|s| FakeProvider::new().session_bars(sym(symbol), s, kind))
        .collect()
}

/// A lake in a temporary directory.
struct Lake {
    dir: TempDir,
    store: ParquetLake,
    runtime: tokio::runtime::Runtime,
}

impl Lake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = ParquetLake::new(dir.path().join("lake"), LakeOptions::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        Self {
            dir,
            store,
            runtime,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// Writes `bars` of `frame` into their partitions (by New York session date).
    fn write(&self, frame: Timeframe, bars: &[Bar]) {
        let mut parts: BTreeMap<PartitionKey, Vec<Bar>> = BTreeMap::new();
        for bar in bars {
            parts
                .entry(PartitionKey::for_bar(frame, bar.symbol, bar.ts))
                .or_default()
                .push(*bar);
        }
        let meta = WriteMeta {
            provider: "fake".into(),
            feed: Some("test".into()),
            origin: marketpipe_ports::BarOrigin::Provider,
            ingested_at: ts("2024-12-31T00:00:00Z"),
            job_id: None,
        };
        for (key, bars) in parts {
            self.runtime
                .block_on(self.store.write_partition(&key, &bars, &meta))
                .unwrap();
        }
    }

    fn load(&self, symbols: &[&str], range: DateRange, frame: Timeframe) -> DataFrame {
        let symbols: Vec<Symbol> = symbols.iter().map(|s| sym(s)).collect();
        load_ohlcv(self.root(), &symbols, range, frame).unwrap()
    }
}

/// One row as plain values: symbol, ts (ns), OHLC, volume, trade count, VWAP.
type Row = (
    String,
    i64,
    f64,
    f64,
    f64,
    f64,
    i64,
    Option<i64>,
    Option<f64>,
);

fn rows(df: &DataFrame) -> Vec<Row> {
    let s = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    let symbol = s("symbol");
    let ts = s("ts").cast(&DataType::Int64).unwrap();
    let (open, high, low, close, volume, trades, vwap) = (
        s("open"),
        s("high"),
        s("low"),
        s("close"),
        s("volume"),
        s("trade_count"),
        s("vwap"),
    );
    (0..df.height())
        .map(|i| {
            (
                symbol.str().unwrap().get(i).unwrap().to_owned(),
                ts.i64().unwrap().get(i).unwrap(),
                open.f64().unwrap().get(i).unwrap(),
                high.f64().unwrap().get(i).unwrap(),
                low.f64().unwrap().get(i).unwrap(),
                close.f64().unwrap().get(i).unwrap(),
                volume.i64().unwrap().get(i).unwrap(),
                trades.i64().unwrap().get(i),
                vwap.f64().unwrap().get(i),
            )
        })
        .collect()
}

fn expected(bars: &[Bar]) -> Vec<Row> {
    bars.iter()
        .map(|b| {
            (
                b.symbol.as_str().to_owned(),
                b.ts.nanos(),
                b.open.to_f64(),
                b.high.to_f64(),
                b.low.to_f64(),
                b.close.to_f64(),
                i64::try_from(b.volume).unwrap(),
                b.trade_count.map(|n| i64::try_from(n).unwrap()),
                b.vwap.map(marketpipe::Price::to_f64),
            )
        })
        .collect()
}

fn column_names(df: &DataFrame) -> Vec<&str> {
    df.get_column_names().iter().map(|c| c.as_str()).collect()
}

#[test]
fn one_symbol_one_month_returns_exactly_the_bars_of_its_file() {
    let lake = Lake::new();
    let january = dates("2024-01-01", "2024-01-31");
    let bars = fake_bars("AAPL", january, SessionKind::Regular);
    lake.write(Timeframe::M1, &bars);
    // Neighbouring months and another symbol must not leak in.
    lake.write(
        Timeframe::M1,
        &fake_bars(
            "AAPL",
            dates("2023-12-26", "2024-02-05"),
            SessionKind::Regular,
        ),
    );
    lake.write(
        Timeframe::M1,
        &fake_bars("MSFT", january, SessionKind::Regular),
    );

    let df = lake.load(&["AAPL"], january, Timeframe::M1);
    assert_eq!(df.height(), 21 * 390);
    assert_eq!(df.height(), bars.len());
    let got = rows(&df);
    let want = expected(&bars);
    assert_eq!(got.first().unwrap().1, ts("2024-01-02T14:30:00Z").nanos());
    assert_eq!(got.last().unwrap().1, ts("2024-01-31T20:59:00Z").nanos());
    assert_eq!(got.first(), want.first());
    assert_eq!(got[1234], want[1234]);
    assert_eq!(got.last(), want.last());
    assert_eq!(got, want);
    assert_eq!(df.schema().as_ref(), &marketpipe::schema());
}

#[test]
fn a_range_cut_inside_months_keeps_only_its_session_dates() {
    let lake = Lake::new();
    // Extended hours: the 19:00–20:00 ET bars are already the next day in UTC.
    let bars = fake_bars(
        "AAPL",
        dates("2024-01-02", "2024-02-29"),
        SessionKind::Extended,
    );
    lake.write(Timeframe::M1, &bars);

    let range = dates("2024-01-10", "2024-01-19");
    let df = lake.load(&["AAPL"], range, Timeframe::M1);
    let want: Vec<Bar> = bars
        .iter()
        .copied()
        .filter(|b| range.contains(ny_date(b.ts)))
        .collect();
    assert_eq!(df.height(), 7 * 960); // 10,11,12,16,17,18,19 (MLK day the 15th).
    assert_eq!(rows(&df), expected(&want));

    // January 31's session ends at 20:00 ET = 01:00 UTC on February 1, in January's file.
    let jan31 = lake.load(&["AAPL"], dates("2024-01-31", "2024-01-31"), Timeframe::M1);
    let got = rows(&jan31);
    assert_eq!(got.len(), 960);
    assert_eq!(got[0].1, ts("2024-01-31T09:00:00Z").nanos());
    assert_eq!(got[959].1, ts("2024-02-01T00:59:00Z").nanos());
    let feb1 = lake.load(&["AAPL"], dates("2024-02-01", "2024-02-01"), Timeframe::M1);
    assert_eq!(rows(&feb1)[0].1, ts("2024-02-01T09:00:00Z").nanos());
    assert_eq!(feb1.height(), 960);

    // Across the month boundary: two files, cut at both ends.
    let span = dates("2024-01-30", "2024-02-02");
    let df = lake.load(&["AAPL"], span, Timeframe::M1);
    let want: Vec<Bar> = bars
        .iter()
        .copied()
        .filter(|b| span.contains(ny_date(b.ts)))
        .collect();
    assert_eq!(df.height(), 4 * 960);
    assert_eq!(rows(&df), expected(&want));
}

#[test]
fn several_symbols_come_sorted_by_symbol_then_ts() {
    let lake = Lake::new();
    let range = dates("2024-03-01", "2024-04-30");
    for s in ["MSFT", "BRK.B", "AAPL"] {
        lake.write(Timeframe::M1, &fake_bars(s, range, SessionKind::Regular));
    }
    let asked = dates("2024-03-28", "2024-04-02");
    let df = lake.load(&["MSFT", "AAPL", "BRK.B", "AAPL"], asked, Timeframe::M1);
    // 28th, 1st, 2nd (Good Friday the 29th), three symbols.
    assert_eq!(df.height(), 3 * 3 * 390);
    let got = rows(&df);
    let keys: Vec<(String, i64)> = got.iter().map(|r| (r.0.clone(), r.1)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "sorted by (symbol, ts) without duplicates");
    let order: Vec<&str> = got
        .iter()
        .map(|r| r.0.as_str())
        .fold(Vec::new(), |mut acc, s| {
            if acc.last() != Some(&s) {
                acc.push(s);
            }
            acc
        });
    assert_eq!(order, ["AAPL", "BRK.B", "MSFT"]);

    // An empty symbol list means every stored symbol.
    let all = lake.load(&[], asked, Timeframe::M1);
    assert_eq!(rows(&all), got);
}

#[test]
fn a_yearly_frame_reads_its_year_files() {
    let lake = Lake::new();
    let one_m = fake_bars(
        "AAPL",
        dates("2023-12-20", "2024-01-12"),
        SessionKind::Regular,
    );
    let hourly = resample(&one_m, Timeframe::H1).unwrap();
    lake.write(Timeframe::H1, &hourly);
    assert!(
        lake.root()
            .join("frame=1h/symbol=AAPL/year=2023/part-0.parquet")
            .is_file()
    );
    assert!(
        lake.root()
            .join("frame=1h/symbol=AAPL/year=2024/part-0.parquet")
            .is_file()
    );

    let range = dates("2023-12-28", "2024-01-03");
    let df = lake.load(&["AAPL"], range, Timeframe::H1);
    let want: Vec<Bar> = hourly
        .iter()
        .copied()
        .filter(|b| range.contains(ny_date(b.ts)))
        .collect();
    // 28th, 29th, 2nd, 3rd; 7 hourly buckets (09:00 partial … 15:00) per session.
    assert_eq!(df.height(), 4 * 7);
    assert_eq!(rows(&df), expected(&want));

    // Nothing at 1d yet: an empty frame with the columns.
    let daily = lake.load(&["AAPL"], range, Timeframe::D1);
    assert_eq!(daily.height(), 0);
    assert_eq!(column_names(&daily), COLUMNS);
}

#[test]
fn missing_symbols_give_no_rows_and_the_same_columns() {
    let lake = Lake::new();
    let march = dates("2024-03-01", "2024-03-31");
    lake.write(
        Timeframe::M1,
        &fake_bars("AAPL", march, SessionKind::Regular),
    );

    let none = lake.load(&["ZZZZ"], march, Timeframe::M1);
    assert_eq!(none.height(), 0);
    assert_eq!(column_names(&none), COLUMNS);
    assert_eq!(none.schema().as_ref(), &marketpipe::schema());

    let mixed = lake.load(&["ZZZZ", "AAPL"], march, Timeframe::M1);
    assert_eq!(mixed.height(), 20 * 390);

    // A range outside the stored months, and one inside a stored file with no session.
    assert_eq!(
        lake.load(&["AAPL"], dates("2024-06-01", "2024-06-30"), Timeframe::M1)
            .height(),
        0
    );
    let weekend = lake.load(&["AAPL"], dates("2024-03-09", "2024-03-10"), Timeframe::M1);
    assert_eq!(weekend.height(), 0);
    assert_eq!(weekend.schema().as_ref(), &marketpipe::schema());
}

#[test]
fn columns_are_the_nine_bar_columns_in_order() {
    let lake = Lake::new();
    let range = dates("2024-01-02", "2024-01-02");
    lake.write(
        Timeframe::M1,
        &fake_bars("AAPL", range, SessionKind::Regular),
    );
    let df = lake.load(&["AAPL"], range, Timeframe::M1);
    assert_eq!(
        column_names(&df),
        [
            "symbol",
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "trade_count",
            "vwap"
        ]
    );
    assert_eq!(column_names(&df), COLUMNS);
}

#[test]
fn the_lazy_variant_takes_further_work_before_collecting() {
    let lake = Lake::new();
    let january = dates("2024-01-01", "2024-01-31");
    let bars = fake_bars("AAPL", january, SessionKind::Regular);
    lake.write(Timeframe::M1, &bars);
    let df = scan_ohlcv(lake.root(), &[sym("AAPL")], january, Timeframe::M1)
        .unwrap()
        .filter(col("volume").gt(lit(1000)))
        .select([col("volume").sum(), col("ts").count().alias("bars")])
        .collect()
        .unwrap();
    let big: Vec<&Bar> = bars.iter().filter(|b| b.volume > 1000).collect();
    let total: u64 = big.iter().map(|b| b.volume).sum();
    assert_eq!(
        df.column("volume").unwrap().i64().unwrap().get(0),
        Some(i64::try_from(total).unwrap())
    );
    assert_eq!(
        df.column("bars").unwrap().u32().unwrap().get(0),
        Some(u32::try_from(big.len()).unwrap())
    );
}

#[test]
fn wrong_paths_are_errors_that_say_what_to_pass() {
    let lake = Lake::new();
    let range = dates("2024-01-02", "2024-01-02");
    let aapl = [sym("AAPL")];

    let missing = lake.dir.path().join("no-such-dir");
    let err = load_ohlcv(&missing, &aapl, range, Timeframe::M1).unwrap_err();
    assert!(matches!(err, LoadError::NoLake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.contains("run `mp ingest` first"), "{text}");
    assert!(text.contains("DATA_DIR/lake"), "{text}");

    lake.write(
        Timeframe::M1,
        &fake_bars("AAPL", range, SessionKind::Regular),
    );
    // The data directory instead of the lake.
    let err = load_ohlcv(lake.dir.path(), &aapl, range, Timeframe::M1).unwrap_err();
    let LoadError::NotLakeRoot { suggestion, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(suggestion, &lake.root());
    assert!(err.to_string().contains("not a lake root; pass"), "{err}");
    // A frame directory instead of the lake.
    let err = load_ohlcv(lake.root().join("frame=1m"), &aapl, range, Timeframe::M1).unwrap_err();
    assert!(
        matches!(&err, LoadError::NotLakeRoot { suggestion, .. } if suggestion == &lake.root()),
        "{err:?}"
    );
    // An empty, existing lake is fine.
    let empty = lake.dir.path().join("empty-lake");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        load_ohlcv(&empty, &aapl, range, Timeframe::M1)
            .unwrap()
            .height(),
        0
    );
    assert!(Path::new(&lake.root()).is_dir());
}
