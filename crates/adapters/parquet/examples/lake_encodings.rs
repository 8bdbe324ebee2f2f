//! Lake format 2 encodings, measured: bytes per 1m bar, write and read time of each column
//! encoding choice on the fake provider's bars (the benchmark of docs/performance.md, "Lake
//! format 2: bytes per bar").
//!
//! ```sh
//! cargo run --release -p marketpipe-parquet --example lake_encodings -- [SYMBOLS] [YEAR]
//! ```
//!
//! Every variant writes the same partitions (SYMBOLS x 12 months of regular-session 1m bars)
//! through `ParquetLake::write_partition` into its own temporary lake (the real write protocol,
//! fsyncs included), then reads every partition back with `read_partition` and checks that the
//! bars are unchanged. It prints, per variant: bytes per bar, the ratio to the default, and
//! the write and read times.

// A benchmark's output is its result.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use marketpipe_domain::{
    Bar, DateRange, SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar,
};
use marketpipe_fake::FakeProvider;
use marketpipe_parquet::{ColumnEncodings, LakeOptions, ParquetLake, PriceEncoding};
use marketpipe_ports::{BarOrigin, BarStore, PartitionKey, WriteMeta};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let symbols_n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let year: i32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;

    let partitions = generate(symbols_n, year)?;
    let bars: usize = partitions.iter().map(|(_, b)| b.len()).sum();
    println!(
        "machine: {} cores; {symbols_n} symbols x {year}: {} partitions, {bars} bars",
        std::thread::available_parallelism().map_or(0, usize::from),
        partitions.len()
    );

    let default = ColumnEncodings::default();
    let variants: Vec<(&str, ColumnEncodings)> = vec![
        ("default (as written)", default),
        (
            "format-1 encodings (all plain, zstd 1)",
            ColumnEncodings {
                prices: PriceEncoding::Plain,
                vwap: PriceEncoding::Plain,
                delta_counts: false,
                zstd_level: 1,
            },
        ),
        (
            "prices plain",
            ColumnEncodings {
                prices: PriceEncoding::Plain,
                ..default
            },
        ),
        (
            "prices byte-stream-split",
            ColumnEncodings {
                prices: PriceEncoding::ByteStreamSplit,
                ..default
            },
        ),
        (
            "vwap byte-stream-split",
            ColumnEncodings {
                vwap: PriceEncoding::ByteStreamSplit,
                ..default
            },
        ),
        (
            "vwap dictionary",
            ColumnEncodings {
                vwap: PriceEncoding::Dictionary,
                ..default
            },
        ),
        (
            "counts plain",
            ColumnEncodings {
                delta_counts: false,
                ..default
            },
        ),
        (
            "zstd 3",
            ColumnEncodings {
                zstd_level: 3,
                ..default
            },
        ),
        (
            "zstd 9",
            ColumnEncodings {
                zstd_level: 9,
                ..default
            },
        ),
    ];

    let mut baseline = None;
    println!(
        "{:<40} {:>12} {:>8} {:>10} {:>10}",
        "variant", "bytes/bar", "ratio", "write s", "read s"
    );
    for (name, encodings) in variants {
        let dir = tempfile::TempDir::new()?;
        let lake = ParquetLake::new(
            dir.path().join("lake"),
            LakeOptions {
                encodings,
                ..LakeOptions::default()
            },
        );
        let (write_s, read_s) = runtime.block_on(write_and_read(&lake, &partitions))?;
        let bytes = dir_bytes(lake.root())?;
        #[allow(clippy::cast_precision_loss)]
        let per_bar = bytes as f64 / bars as f64;
        let base = *baseline.get_or_insert(per_bar);
        println!(
            "{name:<40} {per_bar:>12.2} {:>8.3} {write_s:>10.2} {read_s:>10.2}",
            per_bar / base
        );
    }
    Ok(())
}

/// The fake provider's regular-session 1m bars of every symbol and month of `year`.
fn generate(symbols_n: usize, year: i32) -> Result<Vec<(PartitionKey, Vec<Bar>)>, Error> {
    let calendar = TradingCalendar::xnys();
    let provider = FakeProvider::new();
    let range = DateRange::parse(&format!("{year}-01-01"), &format!("{year}-12-31"))?;
    let sessions = calendar.sessions(range)?;
    let mut out = Vec::new();
    for i in 1..=symbols_n {
        let symbol = Symbol::new(&format!("SYM{i:03}"))?;
        let mut month: Option<(PartitionKey, Vec<Bar>)> = None;
        for session in &sessions {
            let key = PartitionKey::for_date(Timeframe::M1, symbol, session.date);
            if month.as_ref().is_some_and(|(k, _)| *k != key) {
                out.extend(month.take());
            }
            let entry = month.get_or_insert_with(|| (key, Vec::new()));
            entry
                .1
                .extend(provider.session_bars(symbol, session, SessionKind::Regular));
        }
        out.extend(month);
    }
    Ok(out)
}

async fn write_and_read(
    lake: &ParquetLake,
    partitions: &[(PartitionKey, Vec<Bar>)],
) -> Result<(f64, f64), Error> {
    let meta = WriteMeta {
        provider: "fake".into(),
        feed: None,
        origin: BarOrigin::Provider,
        ingested_at: Timestamp::parse_rfc3339("2026-12-04T00:00:00Z")?,
        job_id: None,
    };
    let started = Instant::now();
    for (key, bars) in partitions {
        lake.write_partition(key, bars, &meta).await?;
    }
    let write_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for (key, bars) in partitions {
        let read = lake.read_partition(key).await?;
        if read != *bars {
            return Err(format!("{key}: bars read back differ").into());
        }
    }
    Ok((write_s, started.elapsed().as_secs_f64()))
}

/// Bytes of every `*.parquet` file under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, Error> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            total += dir_bytes(&path)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
