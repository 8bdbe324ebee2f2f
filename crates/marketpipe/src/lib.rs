//! # marketpipe
//!
//! The crate Rust users import: MarketPipe for library use. It sits outside the hexagon, beside
//! the `mp` app: it re-exports the domain ([`domain`]: `Symbol`, `Timeframe`, `DateRange`,
//! `Bar`, the XNYS calendar, …) and the ports ([`ports`]: `BarStore`, `PartitionKey`, …), and
//! adds the one thing a researcher wants first, the lake's bars as a [`polars`]
//! `DataFrame`: [`load_ohlcv`] (eager) and [`scan_ohlcv`] (a `LazyFrame` to filter, join or
//! aggregate before collecting). It reads the Parquet files of the lake directly (the layout of
//! `docs/storage.md`), never writes, and needs neither the metadata database nor a running
//! `mp`. Among MarketPipe's crates it depends only on the domain and the ports; polars lives
//! here and nowhere else in the workspace.
//!
//! ```
//! use marketpipe::{DateRange, Symbol, Timeframe, load_ohlcv};
//! # use marketpipe::ports::{BarStore, PartitionKey, WriteMeta};
//! # use marketpipe::{SessionKind, Timestamp, TradingCalendar};
//! # let dir = tempfile::tempdir()?;
//! # let lake_root = dir.path().join("lake");
//! # let store = marketpipe_parquet::ParquetLake::new(&lake_root, Default::default());
//! # let meta = WriteMeta {
//! #     provider: "fake".into(),
//! #     feed: None,
//! #     origin: marketpipe_ports::BarOrigin::Provider,
//! #     ingested_at: Timestamp::parse_rfc3339("2024-02-01T00:00:00Z")?,
//! #     job_id: None,
//! # };
//! # let january = DateRange::parse("2024-01-01", "2024-01-31")?;
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # for symbol in ["AAPL", "MSFT"] {
//! #     let symbol = Symbol::new(symbol)?;
//! #     let bars: Vec<_> = TradingCalendar::xnys()
//! #         .sessions(january)?
//! #         .iter()
//! #         .flat_map(|s| marketpipe_fake::FakeProvider::new().session_bars(symbol, s, SessionKind::Regular))
//! #         .collect();
//! #     let key = PartitionKey::for_date(Timeframe::M1, symbol, january.start());
//! #     runtime.block_on(store.write_partition(&key, &bars, &meta))?;
//! # }
//! // `lake_root` is a lake (`DATA_DIR/lake`) holding January 2024 of AAPL and MSFT
//! // (21 sessions of 390 regular-hours minutes).
//! let symbols = [Symbol::new("MSFT")?, Symbol::new("AAPL")?];
//! let week = DateRange::parse("2024-01-08", "2024-01-12")?;
//! let df = load_ohlcv(&lake_root, &symbols, week, Timeframe::M1)?;
//! assert_eq!(df.height(), 2 * 5 * 390);
//! assert_eq!(df.get_column_names(), marketpipe::COLUMNS);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use polars::prelude::{
    DataFrame, DataType, Expr, Field, HiveOptions, IntoLazy, LazyFrame, Literal, PlRefPath,
    PolarsError, Scalar, ScanArgsParquet, Schema, SortMultipleOptions, TimeUnit, TimeZone,
    UnionArgs, col, concat, lit,
};

pub use marketpipe_domain as domain;
pub use marketpipe_ports as ports;
/// The polars version this crate builds its frames with, for users who want exactly the same
/// types without declaring the dependency themselves.
pub use polars;

pub use marketpipe_domain::{
    Bar, DateRange, DomainError, PartitionPeriod, Price, Session, SessionKind, Symbol, TimeRange,
    Timeframe, Timestamp, TradingCalendar,
};
pub use marketpipe_ports::PartitionKey;
use marketpipe_ports::layout::{
    frame_dir, is_frame_dir_name, legacy_partition_file, parse_symbol_dir, partition_file,
};

/// The columns of [`load_ohlcv`]'s frames, in order. `ts` is the start of the bar,
/// `Datetime(ns, "UTC")`; prices are `f64` (round to 9 decimals for the exact stored value);
/// `volume` and `trade_count` are `i64`; `trade_count` and `vwap` may be null. The lake's
/// provenance columns (`provider`, `feed`, `ingested_at`) are left out.
pub const COLUMNS: [&str; 9] = [
    "symbol",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_count",
    "vwap",
];

/// Why the lake could not be loaded. Each message names the value at fault and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The lake root does not exist (or is not a directory).
    #[error(
        "no lake at {}; run `mp ingest` first or pass the lake directory (DATA_DIR/lake)",
        path.display()
    )]
    NoLake {
        /// The path given as the lake root.
        path: PathBuf,
    },
    /// The path is a directory next to or inside the lake, not its root (a data directory,
    /// or a `frame=…` directory).
    #[error("{} is not a lake root; pass {} instead", path.display(), suggestion.display())]
    NotLakeRoot {
        /// The path given as the lake root.
        path: PathBuf,
        /// The lake root that was probably meant.
        suggestion: PathBuf,
    },
    /// A lake directory could not be listed.
    #[error("cannot list {}: {source}; check that it is readable", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// polars could not plan or read the partition files.
    #[error("polars could not read the lake at {}: {source}", lake.display())]
    Polars {
        /// The lake root.
        lake: PathBuf,
        /// polars' error.
        #[source]
        source: PolarsError,
    },
}

/// The schema of [`load_ohlcv`]'s frames: [`COLUMNS`] with their types.
pub fn schema() -> Schema {
    let ts = DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    [
        ("symbol", DataType::String),
        ("ts", ts),
        ("open", DataType::Float64),
        ("high", DataType::Float64),
        ("low", DataType::Float64),
        ("close", DataType::Float64),
        ("volume", DataType::Int64),
        ("trade_count", DataType::Int64),
        ("vwap", DataType::Float64),
    ]
    .into_iter()
    .map(|(name, dtype)| Field::new(name.into(), dtype))
    .collect()
}

/// Loads the bars of `symbols` for the New York session dates of `range` (inclusive) at
/// `timeframe` from the lake rooted at `lake` (`DATA_DIR/lake`, the directory holding
/// `frame=1m/…`) into a `DataFrame` with the columns [`COLUMNS`], sorted by `symbol`, then
/// `ts`.
///
/// A bar belongs to session date `d` when its `ts` is in `[d 00:00, d+1 00:00)` New York
/// time, the same rule that puts it in its lake partition: extended-hours bars after
/// 19:00 ET, already the next day in UTC, stay with their session. An empty `symbols` slice
/// means every symbol stored for the frame; a symbol, frame or period with no file gives no
/// rows rather than an error, so a frame not aggregated yet loads as an empty frame with the
/// right schema ([`schema`]). A `lake` that does not exist is an error ([`LoadError::NoLake`]):
/// it is almost always a wrong path, and an empty result would hide it.
///
/// ```
/// use marketpipe::{DateRange, Symbol, Timeframe, load_ohlcv};
/// # use marketpipe::ports::{BarStore, PartitionKey, WriteMeta};
/// # use marketpipe::{SessionKind, Timestamp, TradingCalendar};
/// # let dir = tempfile::tempdir()?;
/// # let lake = dir.path().join("lake");
/// # let store = marketpipe_parquet::ParquetLake::new(&lake, Default::default());
/// # let aapl = Symbol::new("AAPL")?;
/// # let march = DateRange::parse("2024-03-01", "2024-03-31")?;
/// # let bars: Vec<_> = TradingCalendar::xnys()
/// #     .sessions(march)?
/// #     .iter()
/// #     .flat_map(|s| marketpipe_fake::FakeProvider::new().session_bars(aapl, s, SessionKind::Regular))
/// #     .collect();
/// # let meta = WriteMeta {
/// #     provider: "fake".into(),
/// #     feed: None,
/// #     origin: marketpipe_ports::BarOrigin::Provider,
/// #     ingested_at: Timestamp::parse_rfc3339("2024-04-01T00:00:00Z")?,
/// #     job_id: None,
/// # };
/// # let key = PartitionKey::for_date(Timeframe::M1, aapl, march.start());
/// # tokio::runtime::Builder::new_current_thread()
/// #     .build()?
/// #     .block_on(store.write_partition(&key, &bars, &meta))?;
/// // The lake holds AAPL's 1m bars for March 2024: 20 sessions of 390 minutes.
/// let df = load_ohlcv(&lake, &[aapl], march, Timeframe::M1)?;
/// assert_eq!(df.height(), 20 * 390);
/// assert_eq!(df.width(), 9);
///
/// // Nothing stored for MSFT: no rows, same columns.
/// let msft = load_ohlcv(&lake, &[Symbol::new("MSFT")?], march, Timeframe::M1)?;
/// assert_eq!((msft.height(), msft.width()), (0, 9));
///
/// // A path that is not a lake is an error that says what to pass.
/// let err = load_ohlcv(dir.path().join("nope"), &[aapl], march, Timeframe::M1).unwrap_err();
/// assert!(err.to_string().contains("run `mp ingest` first"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_ohlcv(
    lake: impl AsRef<Path>,
    symbols: &[Symbol],
    range: DateRange,
    timeframe: Timeframe,
) -> Result<DataFrame, LoadError> {
    let lake = lake.as_ref();
    scan_ohlcv(lake, symbols, range, timeframe)?
        .collect()
        .map_err(|source| LoadError::Polars {
            lake: lake.to_path_buf(),
            source,
        })
}

/// The lazy variant of [`load_ohlcv`]: the same rows, columns and order as a `LazyFrame`,
/// so further filters, projections and aggregations are pushed into the Parquet scan.
///
/// The partition files are chosen when this is called (those that exist then); their rows are
/// read when the frame is collected.
///
/// ```
/// use marketpipe::polars::prelude::{col, lit};
/// use marketpipe::{DateRange, Symbol, Timeframe, scan_ohlcv};
/// # use marketpipe::ports::{BarStore, PartitionKey, WriteMeta};
/// # use marketpipe::{SessionKind, Timestamp, TradingCalendar};
/// # let dir = tempfile::tempdir()?;
/// # let lake = dir.path().join("lake");
/// # let store = marketpipe_parquet::ParquetLake::new(&lake, Default::default());
/// # let aapl = Symbol::new("AAPL")?;
/// # let january = DateRange::parse("2024-01-01", "2024-01-31")?;
/// # let bars: Vec<_> = TradingCalendar::xnys()
/// #     .sessions(january)?
/// #     .iter()
/// #     .flat_map(|s| marketpipe_fake::FakeProvider::new().session_bars(aapl, s, SessionKind::Regular))
/// #     .collect();
/// # let meta = WriteMeta {
/// #     provider: "fake".into(),
/// #     feed: None,
/// #     origin: marketpipe_ports::BarOrigin::Provider,
/// #     ingested_at: Timestamp::parse_rfc3339("2024-02-01T00:00:00Z")?,
/// #     job_id: None,
/// # };
/// # let key = PartitionKey::for_date(Timeframe::M1, aapl, january.start());
/// # tokio::runtime::Builder::new_current_thread()
/// #     .build()?
/// #     .block_on(store.write_partition(&key, &bars, &meta))?;
/// // AAPL's January 2024 in 1m bars is in the lake; total volume of the first session.
/// let first_session = DateRange::parse("2024-01-02", "2024-01-02")?;
/// let df = scan_ohlcv(&lake, &[aapl], first_session, Timeframe::M1)?
///     .select([col("volume").sum(), col("ts").count().alias("bars")])
///     .collect()?;
/// assert_eq!(df.column("bars")?.u32()?.get(0), Some(390));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn scan_ohlcv(
    lake: impl AsRef<Path>,
    symbols: &[Symbol],
    range: DateRange,
    timeframe: Timeframe,
) -> Result<LazyFrame, LoadError> {
    let lake = lake.as_ref();
    check_root(lake)?;
    let files = partition_files(lake, symbols, range, timeframe)?;
    if files.is_empty() {
        return Ok(DataFrame::empty_with_schema(&schema()).lazy());
    }
    let polars_err = |source| LoadError::Polars {
        lake: lake.to_path_buf(),
        source,
    };
    let args = ScanArgsParquet {
        // The symbol comes from the partition the file was found as (lake format 2 files
        // hold no `symbol` column, format 1 files did); the other hive directories (`frame`,
        // `year`, `month`) only partition it.
        hive_options: HiveOptions::new_disabled(),
        glob: false,
        ..ScanArgsParquet::default()
    };
    // One scan per file: the lake may hold format-1 files (nanosecond `ts`) beside format-2
    // ones (microseconds) until `mp lake upgrade`; each is cast to the frame's type.
    let ts_type = DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    let scans = files
        .iter()
        .map(|(symbol, path)| {
            let path = PlRefPath::try_from_path(path)?;
            let scan =
                LazyFrame::scan_parquet_files(vec![path].into_iter().collect(), args.clone())?;
            Ok(scan.select(COLUMNS.map(|name| match name {
                "symbol" => lit(symbol.as_str()).alias("symbol"),
                "ts" => col("ts").cast(ts_type.clone()),
                other => col(other),
            })))
        })
        .collect::<Result<Vec<_>, PolarsError>>()
        .map_err(polars_err)?;
    let (lo, hi) = TradingCalendar::xnys().utc_bounds(range);
    let scan = concat(scans, UnionArgs::default()).map_err(polars_err)?;
    Ok(scan
        .filter(col("ts").gt_eq(utc_lit(lo)).and(col("ts").lt(utc_lit(hi))))
        .sort(["symbol", "ts"], SortMultipleOptions::default()))
}

/// A literal of the `ts` column's type, `Datetime(ns, "UTC")`.
fn utc_lit(ts: Timestamp) -> Expr {
    Scalar::new_datetime(ts.nanos(), TimeUnit::Nanoseconds, Some(TimeZone::UTC)).lit()
}

/// Fails unless `lake` is an existing directory that looks like a lake root.
fn check_root(lake: &Path) -> Result<(), LoadError> {
    if !lake.is_dir() {
        return Err(LoadError::NoLake {
            path: lake.to_path_buf(),
        });
    }
    // Given `DATA_DIR/lake/frame=1m`: suggest its parent.
    if lake
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_frame_dir_name)
        && let Some(parent) = lake.parent()
    {
        return Err(LoadError::NotLakeRoot {
            path: lake.to_path_buf(),
            suggestion: parent.to_path_buf(),
        });
    }
    // Given `DATA_DIR`: it holds `lake/` and no `frame=…` directories.
    let inner = lake.join("lake");
    if inner.is_dir() && frame_dirs(lake)?.is_empty() {
        return Err(LoadError::NotLakeRoot {
            path: lake.to_path_buf(),
            suggestion: inner,
        });
    }
    Ok(())
}

/// Names of the `frame=…` directories directly under `lake`.
fn frame_dirs(lake: &Path) -> Result<Vec<String>, LoadError> {
    Ok(list_dir(lake)?
        .into_iter()
        .filter(|name| is_frame_dir_name(name))
        .collect())
}

/// Names of the subdirectories of `dir` (empty when `dir` does not exist).
fn list_dir(dir: &Path) -> Result<Vec<String>, LoadError> {
    let io_err = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        if entry.path().is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// The existing partition files of `symbols` (all stored symbols when empty) that can hold
/// the session dates of `range`, in symbol then period order, each with its symbol: the
/// current location, or lake format 1's (`month=01`) while the partition is not upgraded.
fn partition_files(
    lake: &Path,
    symbols: &[Symbol],
    range: DateRange,
    frame: Timeframe,
) -> Result<Vec<(Symbol, PathBuf)>, LoadError> {
    let symbols: BTreeSet<Symbol> = if symbols.is_empty() {
        list_dir(&frame_dir(lake, frame))?
            .iter()
            .filter_map(|name| parse_symbol_dir(name))
            .collect()
    } else {
        symbols.iter().copied().collect()
    };
    let keys: BTreeSet<PartitionKey> = symbols
        .iter()
        .flat_map(|&symbol| {
            range
                .months()
                .into_iter()
                .map(move |month| PartitionKey::for_date(frame, symbol, month.start()))
        })
        .collect();
    Ok(keys
        .iter()
        .filter_map(|key| {
            let current = partition_file(lake, key);
            if current.is_file() {
                return Some((key.symbol, current));
            }
            legacy_partition_file(lake, key)
                .filter(|legacy| legacy.is_file())
                .map(|legacy| (key.symbol, legacy))
        })
        .collect())
}
