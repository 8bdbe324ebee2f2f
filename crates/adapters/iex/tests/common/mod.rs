//! The shared synthetic day: 2024-03-15 (a Friday; New York is on EDT, UTC−4), AAPL and
//! MSFT requested, ZZZZ traded but never requested, with the bars it must give, written by
//! hand.
// Helpers of integration tests: each test file uses a part of them, and may unwrap.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)]

use marketpipe_domain::{Bar, Price, Symbol, Timestamp};
use marketpipe_testkit::hist::{HistMessage, Tops, TradeSpec, flags};

/// 2024-03-15 00:00 UTC.
pub const DAY_UTC: i64 = 1_710_460_800;
/// Seconds from 2024-03-15 to 2024-03-18 (the next session).
pub const MONDAY_SHIFT_SECS: i64 = 3 * 86_400;

/// `hh:mm:ss.mmm` New York time on the scenario day (+ `shift_secs`), as UTC ns.
pub fn et(h: i64, m: i64, s: i64, ms: i64, shift_secs: i64) -> i64 {
    ((DAY_UTC + shift_secs + (h + 4) * 3600 + m * 60 + s) * 1000 + ms) * 1_000_000
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

/// Dollars with 4 decimals as a TOPS price.
pub fn px(dollars: f64) -> i64 {
    (dollars * 10_000.0).round() as i64
}

fn price(tops: i64) -> Price {
    Price::from_raw(tops * 100_000).unwrap()
}

fn trade(symbol: &str, ts: i64, dollars: f64, size: u32, fl: u8, id: i64) -> HistMessage {
    HistMessage::Trade(
        TradeSpec::new(symbol, ts, px(dollars), size)
            .with_flags(fl)
            .with_id(id),
    )
}

/// A tiny deterministic generator for filler content.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The day's messages, shifted by `shift_secs`: trades, odd lots, Form-T trades, a break,
/// two requested symbols interleaved with an unrequested one, quotes, an unknown message
/// type, a lengthened trade message, a minute with no trades (09:32 ET), filler quotes and
/// trades of the unrequested symbol from 10:00 to 11:00 ET, a post-market trade, and the
/// end-of-messages event.
pub fn scenario(shift: i64) -> Vec<HistMessage> {
    let t = |h, m, s, ms| et(h, m, s, ms, shift);
    let mut v = vec![
        HistMessage::SystemEvent {
            code: b'O',
            ts_ns: t(7, 0, 0, 0),
        },
        // Pre-market (08:00 ET): Form-T trades only.
        trade("AAPL", t(8, 0, 1, 0), 170.00, 100, flags::EXTENDED_HOURS, 1),
        HistMessage::Quote {
            symbol: "AAPL".into(),
            ts_ns: t(8, 0, 2, 0),
            bid: px(169.9),
            ask: px(170.1),
            bid_size: 100,
            ask_size: 200,
        },
        trade(
            "AAPL",
            t(8, 0, 30, 0),
            170.50,
            50,
            flags::EXTENDED_HOURS | flags::ODD_LOT,
            2,
        ),
        HistMessage::Raw {
            ts_ns: t(8, 0, 40, 0),
            bytes: vec![0x99; 20],
        },
        HistMessage::SystemEvent {
            code: b'R',
            ts_ns: t(9, 30, 0, 0),
        },
        // 09:30 ET.
        trade("AAPL", t(9, 30, 1, 0), 172.00, 100, 0, 10),
        trade("MSFT", t(9, 30, 2, 0), 410.00, 200, 0, 11),
        trade("ZZZZ", t(9, 30, 3, 0), 1.00, 999, 0, 99),
        trade("AAPL", t(9, 30, 5, 0), 173.00, 10, flags::ODD_LOT, 12),
        trade("AAPL", t(9, 30, 10, 0), 171.50, 300, flags::ISO, 13),
        HistMessage::Quote {
            symbol: "MSFT".into(),
            ts_ns: t(9, 30, 15, 0),
            bid: px(409.0),
            ask: px(411.0),
            bid_size: 100,
            ask_size: 100,
        },
        trade(
            "AAPL",
            t(9, 30, 20, 0),
            172.50,
            100,
            flags::TRADE_THROUGH_EXEMPT,
            14,
        ),
        trade("MSFT", t(9, 30, 30, 0), 409.50, 100, 0, 15),
        trade("ZZZZ", t(9, 30, 40, 0), 1.10, 5, 0, 98),
        // 09:31 ET: trade 21 is broken at 09:34:10.
        trade("AAPL", t(9, 31, 0, 500), 172.60, 200, 0, 20),
        trade("AAPL", t(9, 31, 30, 0), 175.00, 100, 0, 21),
        trade("AAPL", t(9, 31, 45, 0), 172.70, 100, 0, 22),
        // 09:32 ET: quotes only, no trade.
        HistMessage::Quote {
            symbol: "AAPL".into(),
            ts_ns: t(9, 32, 10, 0),
            bid: px(172.6),
            ask: px(172.8),
            bid_size: 300,
            ask_size: 100,
        },
        // 09:33 ET: AAPL odd lots only; MSFT one trade in a lengthened (future-layout) message.
        trade("AAPL", t(9, 33, 1, 0), 172.80, 5, flags::ODD_LOT, 30),
        trade("AAPL", t(9, 33, 2, 0), 172.90, 7, flags::ODD_LOT, 31),
    ];
    let mut longer =
        HistMessage::Trade(TradeSpec::new("MSFT", t(9, 33, 3, 0), px(410.10), 100).with_id(32))
            .encode(Tops::V1_6);
    longer.extend_from_slice(&[0xAB; 6]);
    v.push(HistMessage::Raw {
        ts_ns: t(9, 33, 3, 0),
        bytes: longer,
    });
    v.push(HistMessage::Break(
        TradeSpec::new("ZZZZ", t(9, 34, 0, 0), px(1.0), 999).with_id(99),
    ));
    v.push(HistMessage::Break(
        TradeSpec::new("AAPL", t(9, 34, 10, 0), px(175.0), 100).with_id(21),
    ));
    // Filler: 10:00–11:00 ET, quotes and unrequested trades with varied content.
    let mut rng = Lcg(42);
    for i in 0..4000_i64 {
        let ts = t(10, 0, 0, 0) + i * 900_000_000;
        let p = 100_0000 + i64::try_from(rng.next() % 50_000).unwrap();
        if i % 5 == 0 {
            v.push(trade(
                "ZZZZ",
                ts,
                p as f64 / 10_000.0,
                u32::try_from(rng.next() % 1000 + 1).unwrap(),
                0,
                1000 + i,
            ));
        } else {
            v.push(HistMessage::Quote {
                symbol: if i % 2 == 0 {
                    "AAPL".into()
                } else {
                    "ZZZZ".into()
                },
                ts_ns: ts,
                bid: p,
                ask: p + i64::try_from(rng.next() % 500).unwrap(),
                bid_size: u32::try_from(rng.next() % 10_000).unwrap(),
                ask_size: u32::try_from(rng.next() % 10_000).unwrap(),
            });
        }
    }
    v.push(HistMessage::SystemEvent {
        code: b'M',
        ts_ns: t(16, 0, 0, 0),
    });
    // Post-market (16:05 ET).
    v.push(trade(
        "MSFT",
        t(16, 5, 0, 0),
        411.00,
        100,
        flags::EXTENDED_HOURS,
        40,
    ));
    v.push(HistMessage::SystemEvent {
        code: b'C',
        ts_ns: t(17, 0, 0, 0),
    });
    v
}

fn vwap(trades: &[(f64, u32)]) -> Price {
    let num: i128 = trades
        .iter()
        .map(|(p, s)| i128::from(px(*p)) * i128::from(*s))
        .sum();
    let vol: i128 = trades.iter().map(|(_, s)| i128::from(*s)).sum();
    Price::from_raw(i64::try_from((num * 100_000 + vol / 2) / vol).unwrap()).unwrap()
}

fn bar(symbol: &str, ts: i64, ohlc: [f64; 4], trades: &[(f64, u32)]) -> Bar {
    Bar {
        symbol: sym(symbol),
        ts: Timestamp::from_nanos(ts),
        open: price(px(ohlc[0])),
        high: price(px(ohlc[1])),
        low: price(px(ohlc[2])),
        close: price(px(ohlc[3])),
        volume: trades.iter().map(|(_, s)| u64::from(*s)).sum(),
        trade_count: Some(trades.len() as u64),
        vwap: Some(vwap(trades)),
    }
}

/// Every bar of the scenario (extended hours), AAPL first then MSFT, each by time.
pub fn expected_bars(shift: i64) -> Vec<Bar> {
    let t = |h, m| et(h, m, 0, 0, shift);
    vec![
        // Form-T only: OHLC from all trades (the fallback).
        bar(
            "AAPL",
            t(8, 0),
            [170.00, 170.50, 170.00, 170.50],
            &[(170.00, 100), (170.50, 50)],
        ),
        // The odd lot at 173.00 counts for volume and VWAP, not for prices.
        bar(
            "AAPL",
            t(9, 30),
            [172.00, 172.50, 171.50, 172.50],
            &[(172.00, 100), (173.00, 10), (171.50, 300), (172.50, 100)],
        ),
        // Trade 21 (175.00) broken.
        bar(
            "AAPL",
            t(9, 31),
            [172.60, 172.70, 172.60, 172.70],
            &[(172.60, 200), (172.70, 100)],
        ),
        // Odd lots only: the fallback.
        bar(
            "AAPL",
            t(9, 33),
            [172.80, 172.90, 172.80, 172.90],
            &[(172.80, 5), (172.90, 7)],
        ),
        bar(
            "MSFT",
            t(9, 30),
            [410.00, 410.00, 409.50, 409.50],
            &[(410.00, 200), (409.50, 100)],
        ),
        bar(
            "MSFT",
            t(9, 33),
            [410.10, 410.10, 410.10, 410.10],
            &[(410.10, 100)],
        ),
        bar(
            "MSFT",
            t(16, 5),
            [411.00, 411.00, 411.00, 411.00],
            &[(411.00, 100)],
        ),
    ]
}

/// The expected bars inside `[from, to)` New York hours (09:30–16:00 → regular).
pub fn expected_between(shift: i64, from: (i64, i64), to: (i64, i64)) -> Vec<Bar> {
    let (a, b) = (et(from.0, from.1, 0, 0, shift), et(to.0, to.1, 0, 0, shift));
    expected_bars(shift)
        .into_iter()
        .filter(|bar| a <= bar.ts.nanos() && bar.ts.nanos() < b)
        .collect()
}

pub fn requested() -> Vec<Symbol> {
    vec![sym("AAPL"), sym("MSFT")]
}
