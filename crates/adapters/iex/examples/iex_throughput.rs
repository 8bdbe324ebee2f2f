//! Throughput of the HIST reader on a synthetic day.
//!
//! ```text
//! iex_throughput                                   # generate ~1 GB in a temp dir, read it, delete it
//! iex_throughput generate FILE [--mb 1024]         # write FILE (gzip'd pcap-ng, TOPS 1.6)
//! iex_throughput read FILE [--symbols 10]          # time read_day on FILE
//! ```
//!
//! The day mimics a real TOPS file's mix: about 94 % quote updates and 6 % trade reports
//! (a 2018 day held 16 M quotes and 1 M trades) over 500 symbols from 04:00 to 20:00 ET on
//! 2024-03-15, a few system events and trade breaks, six messages per IEX-TP segment,
//! gzip level 6. `read` asks for the first N symbols (default 10) and prints MB/s of the
//! uncompressed stream, messages/s and bars/s. Build it with
//! `cargo build --release -p marketpipe-iex --example iex_throughput`.

// A command-line report: printing is its job, and a failed setup may abort.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use marketpipe_domain::Symbol;
use marketpipe_iex::{ReadOptions, read_day};
use marketpipe_testkit::hist::{CaptureOptions, HistMessage, TradeSpec, create_writer, flags};

const SYMBOLS: usize = 500;
/// 2024-03-15 04:00 ET (08:00 UTC), ns.
const DAY_START: i64 = 1_710_489_600_000_000_000;
/// 16 hours, ns.
const DAY_LEN: i64 = 16 * 3_600_000_000_000;
/// 09:30 and 16:00 ET, ns.
const RTH: (i64, i64) = (1_710_509_400_000_000_000, 1_710_532_800_000_000_000);

fn symbol_name(i: usize) -> String {
    let mut s = String::new();
    let mut x = i;
    for _ in 0..4 {
        s.push(char::from(b'A' + u8::try_from(x % 26).unwrap()));
        x /= 26;
    }
    s
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn generate(path: &Path, mb: u64) {
    let target = mb * 1_000_000;
    // ~58 uncompressed bytes per message on average (44-byte quote blocks, 40-byte trade
    // blocks, and a share of the per-segment framing).
    let estimated_messages = i64::try_from(target / 58).unwrap().max(1);
    let spacing = (DAY_LEN / estimated_messages).max(1);
    let options = CaptureOptions {
        messages_per_segment: 6,
        record_index: false,
        ..CaptureOptions::default()
    };
    let names: Vec<String> = (0..SYMBOLS).map(symbol_name).collect();
    let mut levels: Vec<i64> = (0..SYMBOLS)
        .map(|i| 200_000 + 10_000 * i64::try_from(i).unwrap())
        .collect();
    let mut rng = Rng(7);
    let started = Instant::now();
    let mut writer = create_writer(path, options).unwrap();
    writer
        .push(&HistMessage::SystemEvent {
            code: b'O',
            ts_ns: DAY_START,
        })
        .unwrap();
    let mut n: i64 = 0;
    let mut trade_id = 0;
    while writer.uncompressed_bytes() < target {
        let ts = DAY_START + n * spacing;
        // Popular symbols are busier: square the uniform draw.
        let draw = usize::try_from(rng.next() % 1000).unwrap();
        let s = draw * draw * SYMBOLS / 1_000_000;
        let step = i64::try_from(rng.next() % 201).unwrap() - 100;
        levels[s] = (levels[s] + step).max(10_000);
        if rng.next() % 100 < 6 {
            trade_id += 1;
            let mut fl = 0;
            let size = if rng.next() % 10 < 3 {
                fl |= flags::ODD_LOT;
                u32::try_from(rng.next() % 99 + 1).unwrap()
            } else {
                100 * u32::try_from(rng.next() % 10 + 1).unwrap()
            };
            if ts < RTH.0 || ts >= RTH.1 {
                fl |= flags::EXTENDED_HOURS;
            }
            let t = TradeSpec::new(&names[s], ts, levels[s], size)
                .with_flags(fl)
                .with_id(trade_id);
            writer.push(&HistMessage::Trade(t.clone())).unwrap();
            if trade_id % 50_000 == 0 {
                writer
                    .push(&HistMessage::Break(TradeSpec { ts_ns: ts + 1, ..t }))
                    .unwrap();
            }
        } else {
            let spread = i64::try_from(rng.next() % 50 + 1).unwrap() * 100;
            writer
                .push(&HistMessage::Quote {
                    symbol: names[s].clone(),
                    ts_ns: ts,
                    bid: levels[s],
                    ask: levels[s] + spread,
                    bid_size: u32::try_from(rng.next() % 5 + 1).unwrap() * 100,
                    ask_size: u32::try_from(rng.next() % 5 + 1).unwrap() * 100,
                })
                .unwrap();
        }
        n += 1;
    }
    writer
        .push(&HistMessage::SystemEvent {
            code: b'C',
            ts_ns: DAY_START + DAY_LEN,
        })
        .unwrap();
    let (_, summary) = writer.finish().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {}: {:.1} MB uncompressed, {:.1} MB gzip'd, {} messages, {} segments in {secs:.1} s",
        path.display(),
        mb_of(summary.uncompressed_bytes),
        mb_of(summary.file_bytes),
        summary.messages,
        summary.segments,
    );
}

#[allow(clippy::cast_precision_loss)]
fn mb_of(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn read(path: &Path, symbols: usize) {
    let wanted: Vec<Symbol> = (0..symbols.min(SYMBOLS))
        .map(|i| Symbol::new(&symbol_name(i)).unwrap())
        .collect();
    let started = Instant::now();
    let day = read_day(path, &wanted, &ReadOptions::default()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    if let Some(e) = &day.damage {
        eprintln!("damage: {e}");
    }
    let file_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    #[allow(clippy::cast_precision_loss)]
    let per_sec = |n: u64| n as f64 / secs;
    println!(
        "read {} for {} symbols in {secs:.2} s: {:.1} MB uncompressed ({:.1} MB/s), {:.1} MB gzip'd ({:.1} MB/s), \
         {} messages ({:.2} M/s), {} trades kept, {} bars ({:.0} bars/s), peak held trades {}, gaps {}",
        path.display(),
        wanted.len(),
        mb_of(day.stats.bytes),
        mb_of(day.stats.bytes) / secs,
        mb_of(file_bytes),
        mb_of(file_bytes) / secs,
        day.stats.messages,
        per_sec(day.stats.messages) / 1e6,
        day.stats.build.trades,
        day.bars.len(),
        per_sec(day.bars.len() as u64),
        day.stats.build.peak_held_trades,
        day.gaps.len(),
    );
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => {
            let path = PathBuf::from(args.get(1).expect("generate FILE"));
            generate(&path, flag(&args, "--mb", 1024));
        }
        Some("read") => {
            let path = PathBuf::from(args.get(1).expect("read FILE"));
            read(
                &path,
                usize::try_from(flag(&args, "--symbols", 10)).unwrap(),
            );
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz");
            generate(&path, flag(&args, "--mb", 1024));
            read(
                &path,
                usize::try_from(flag(&args, "--symbols", 10)).unwrap(),
            );
        }
    }
}
