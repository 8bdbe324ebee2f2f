//! One-minute bars from TOPS trades (iex.md B7).
//!
//! * **Bucket**: `floor(timestamp / 60 s)`; the bar's `ts` is the start of the minute, UTC.
//! * **Volume, trade count, VWAP** come from *every* trade of the minute (all trades are
//!   volume-eligible). VWAP = Σ(price × size) / Σ size, computed exactly in integers on the
//!   1e-4 prices and rounded once, half up, to 1e-9.
//! * **Open, high, low, close** come from the *price-eligible* trades (neither odd lot nor
//!   extended hours / Form T: `flags & 0x60 == 0`), in stream order. A minute with trades but
//!   none eligible (every pre- and post-market minute, odd-lot-only minutes) follows the
//!   [`PricePolicy`]: by default its OHLC come from all its trades (iex.md B7.4 option (a)),
//!   so its volume is never lost; [`PricePolicy::EligibleOnly`] drops such minutes instead.
//! * **No trades, no bar** (no forward fill). A minute whose every trade was broken has no
//!   bar either.
//! * **Trade breaks** remove the trade with the same trade id (and symbol) before the bar is
//!   computed. To apply a break whenever it comes, the builder keeps a 24-byte record per
//!   trade of the *requested* symbols until the file ends (the default): memory grows with
//!   the requested symbols' trades, never with the file's quote traffic. With a
//!   [`BarBuilder::with_break_window`] it instead finalises a minute once the feed's clock is
//!   `window` past the minute's end, so it holds at most `window + 1` minutes of trades; a
//!   break arriving later is counted in [`BuildStats::unmatched_breaks`] and reported by the
//!   caller, not applied.

use std::collections::VecDeque;
use std::time::Duration;

use marketpipe_domain::time::NANOS_PER_MINUTE;
use marketpipe_domain::{Bar, Price, Symbol, Timestamp};

use crate::tops::{TradeMessage, is_price_eligible};

/// 1e-4 dollars (TOPS prices) to 1e-9 (`Price` units).
const TOPS_TO_PRICE_UNITS: i64 = 100_000;

/// What a minute with trades but no price-eligible trade becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PricePolicy {
    /// A bar whose OHLC come from all the minute's trades (odd lots, Form T); volume,
    /// trade count and VWAP as for any bar. Every pre-/post-market bar is of this kind.
    #[default]
    FallbackToAllTrades,
    /// No bar: only minutes with at least one price-eligible trade make bars (strict spec;
    /// no extended-hours bars at all). The dropped volume is counted in the stats.
    EligibleOnly,
}

/// Counters of one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildStats {
    /// Trade reports of the requested symbols taken in.
    pub trades: u64,
    /// Trade breaks that removed a held trade.
    pub breaks_applied: u64,
    /// Trade breaks whose trade was not held (before the break window, or never reported).
    pub unmatched_breaks: u64,
    /// Trade reports rejected: negative price, a price beyond `Price`'s range, or size 0.
    pub invalid_trades: u64,
    /// Trades that arrived for a minute already finalised (only with a break window).
    pub late_trades: u64,
    /// Bars whose OHLC came from all trades because none was price-eligible.
    pub fallback_bars: u64,
    /// Minutes dropped by [`PricePolicy::EligibleOnly`].
    pub minutes_without_eligible_trade: u64,
    /// Shares of those dropped minutes.
    pub volume_without_bar: u64,
    /// Minutes left out because the file was damaged before they ended.
    pub incomplete_minutes_dropped: u64,
    /// Most trade records held at once.
    pub peak_held_trades: u64,
}

#[derive(Debug, Clone, Copy)]
struct TradeRec {
    id: i64,
    price: i64,
    size: u32,
    flags: u8,
}

#[derive(Debug)]
struct OpenMinute {
    start: i64,
    trades: Vec<TradeRec>,
}

#[derive(Debug)]
struct SymbolState {
    symbol: Symbol,
    open: VecDeque<OpenMinute>,
    /// Minutes starting before this are finalised.
    sealed_before: i64,
}

/// Builds the bars of the requested symbols from their trades, in stream order.
#[derive(Debug)]
pub struct BarBuilder {
    symbols: Vec<SymbolState>,
    window: Option<i64>,
    policy: PricePolicy,
    done: Vec<(usize, Bar)>,
    clock: i64,
    next_seal: i64,
    held: u64,
    stats: BuildStats,
}

impl BarBuilder {
    /// A builder for `symbols` (indexed as given), holding trades until the end.
    pub fn new(symbols: &[Symbol], policy: PricePolicy) -> Self {
        Self {
            symbols: symbols
                .iter()
                .map(|s| SymbolState {
                    symbol: *s,
                    open: VecDeque::new(),
                    sealed_before: i64::MIN,
                })
                .collect(),
            window: None,
            policy,
            done: Vec::new(),
            clock: i64::MIN,
            next_seal: i64::MIN,
            held: 0,
            stats: BuildStats::default(),
        }
    }

    /// Finalise minutes once the feed clock is `window` past their end (at least one
    /// minute), bounding memory to `window + 1` minutes of trades; `None` holds every trade
    /// until the end, so every break applies.
    #[must_use]
    pub fn with_break_window(mut self, window: Option<Duration>) -> Self {
        self.window = window.map(|w| {
            i64::try_from(w.as_nanos())
                .unwrap_or(i64::MAX)
                .max(NANOS_PER_MINUTE)
        });
        self
    }

    /// The counters so far.
    pub const fn stats(&self) -> &BuildStats {
        &self.stats
    }

    /// Takes in a Trade Report of requested symbol `index`.
    pub fn trade(&mut self, index: usize, t: &TradeMessage) {
        if t.price < 0 || t.price.checked_mul(TOPS_TO_PRICE_UNITS).is_none() || t.size == 0 {
            self.stats.invalid_trades += 1;
            return;
        }
        let Some(state) = self.symbols.get_mut(index) else {
            return;
        };
        let start = t.timestamp.div_euclid(NANOS_PER_MINUTE) * NANOS_PER_MINUTE;
        if start < state.sealed_before {
            self.stats.late_trades += 1;
            return;
        }
        let rec = TradeRec {
            id: t.trade_id,
            price: t.price,
            size: t.size,
            flags: t.flags,
        };
        // Timestamps of one symbol never decrease, so the minute is almost always the last.
        match state.open.back_mut() {
            Some(m) if m.start == start => m.trades.push(rec),
            Some(m) if m.start > start => {
                let at = state.open.partition_point(|m| m.start < start);
                match state.open.get_mut(at) {
                    Some(m) if m.start == start => m.trades.push(rec),
                    _ => state.open.insert(
                        at,
                        OpenMinute {
                            start,
                            trades: vec![rec],
                        },
                    ),
                }
            }
            _ => state.open.push_back(OpenMinute {
                start,
                trades: vec![rec],
            }),
        }
        self.stats.trades += 1;
        self.held += 1;
        self.stats.peak_held_trades = self.stats.peak_held_trades.max(self.held);
    }

    /// Applies a Trade Break of requested symbol `index`: removes the held trade with its
    /// trade id. Returns whether one was found.
    pub fn trade_break(&mut self, index: usize, t: &TradeMessage) -> bool {
        let Some(state) = self.symbols.get_mut(index) else {
            return false;
        };
        for minute in state.open.iter_mut().rev() {
            if let Some(pos) = minute.trades.iter().rposition(|r| r.id == t.trade_id) {
                minute.trades.remove(pos);
                self.held -= 1;
                self.stats.breaks_applied += 1;
                return true;
            }
        }
        self.stats.unmatched_breaks += 1;
        false
    }

    /// Moves the feed clock (ns since the epoch) forward; with a break window, finalises
    /// the minutes that fell out of it.
    pub fn advance(&mut self, now: i64) {
        if now <= self.clock {
            return;
        }
        self.clock = now;
        let Some(window) = self.window else {
            return;
        };
        if now < self.next_seal {
            return;
        }
        // Minutes ending at or before `now - window` are final.
        let limit = now.saturating_sub(window).saturating_sub(NANOS_PER_MINUTE);
        for index in 0..self.symbols.len() {
            self.seal_symbol(index, limit);
        }
        // Check again a second later.
        self.next_seal = now.saturating_add(1_000_000_000);
    }

    /// Finalises every minute of symbol `index` that starts at or before `limit`.
    fn seal_symbol(&mut self, index: usize, limit: i64) {
        let Some(state) = self.symbols.get_mut(index) else {
            return;
        };
        while state.open.front().is_some_and(|m| m.start <= limit) {
            if let Some(minute) = state.open.pop_front() {
                state.sealed_before = minute.start + NANOS_PER_MINUTE;
                self.held -= minute.trades.len() as u64;
                if let Some(bar) = make_bar(state.symbol, &minute, self.policy, &mut self.stats) {
                    self.done.push((index, bar));
                }
            }
        }
    }

    /// Finalises the remaining minutes and returns every bar, ordered by requested symbol
    /// then time. With `cutoff`, minutes starting at or after it are dropped (counted as
    /// incomplete): the caller passes the minute in which damaged data began.
    pub fn finish(mut self, cutoff: Option<i64>) -> (Vec<Bar>, BuildStats) {
        for index in 0..self.symbols.len() {
            if let Some(state) = self.symbols.get_mut(index) {
                let before = state.open.len();
                if let Some(c) = cutoff {
                    state.open.retain(|m| m.start < c);
                }
                self.stats.incomplete_minutes_dropped += (before - state.open.len()) as u64;
            }
            self.seal_symbol(index, i64::MAX);
        }
        self.done.sort_by_key(|(i, b)| (*i, b.ts));
        (self.done.into_iter().map(|(_, b)| b).collect(), self.stats)
    }
}

fn price(raw_tops: i64) -> Price {
    // Checked on intake: non-negative and within range.
    Price::from_raw(raw_tops.saturating_mul(TOPS_TO_PRICE_UNITS)).unwrap_or(Price::ZERO)
}

fn make_bar(
    symbol: Symbol,
    minute: &OpenMinute,
    policy: PricePolicy,
    stats: &mut BuildStats,
) -> Option<Bar> {
    let trades = &minute.trades;
    if trades.is_empty() {
        return None;
    }
    let volume: u64 = trades.iter().map(|t| u64::from(t.size)).sum();
    let eligible = trades.iter().any(|t| is_price_eligible(t.flags));
    if !eligible {
        match policy {
            PricePolicy::FallbackToAllTrades => stats.fallback_bars += 1,
            PricePolicy::EligibleOnly => {
                stats.minutes_without_eligible_trade += 1;
                stats.volume_without_bar += volume;
                return None;
            }
        }
    }
    let mut setting = trades
        .iter()
        .filter(|t| !eligible || is_price_eligible(t.flags))
        .map(|t| t.price);
    let first = setting.next()?;
    let (mut high, mut low, mut last) = (first, first, first);
    for p in setting {
        high = high.max(p);
        low = low.min(p);
        last = p;
    }
    let notional: i128 = trades
        .iter()
        .map(|t| i128::from(t.price) * i128::from(t.size))
        .sum();
    let volume_i = i128::from(volume);
    let vwap_units = (notional * i128::from(TOPS_TO_PRICE_UNITS) + volume_i / 2) / volume_i;
    let vwap = i64::try_from(vwap_units)
        .ok()
        .and_then(|v| Price::from_raw(v).ok());
    Some(Bar {
        symbol,
        ts: Timestamp::from_nanos(minute.start),
        open: price(first),
        high: price(high),
        low: price(low),
        close: price(last),
        volume,
        trade_count: Some(trades.len() as u64),
        vwap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tops::{FLAG_EXTENDED_HOURS, FLAG_ODD_LOT};

    const T0: i64 = 1_710_509_400_000_000_000; // 2024-03-15T13:30:00Z

    fn t(sec: i64, price: i64, size: u32, flags: u8, id: i64) -> TradeMessage {
        TradeMessage {
            flags,
            timestamp: T0 + sec * 1_000_000_000,
            size,
            price,
            trade_id: id,
        }
    }

    fn px(p: i64) -> Price {
        Price::from_raw(p * 100_000).unwrap()
    }

    #[test]
    fn ohlc_from_eligible_volume_and_vwap_from_all() {
        let s = Symbol::new("AAPL").unwrap();
        let mut b = BarBuilder::new(&[s], PricePolicy::default());
        b.trade(0, &t(1, 1_000_000, 10, FLAG_ODD_LOT, 1)); // $100, odd lot
        b.trade(0, &t(2, 1_010_000, 100, 0, 2));
        b.trade(0, &t(3, 1_020_000, 5, FLAG_ODD_LOT, 3)); // odd-lot high, not eligible
        b.trade(0, &t(4, 1_005_000, 200, 0, 4));
        b.trade(0, &t(70, 1_000_000, 3, FLAG_ODD_LOT, 5)); // odd-lot-only minute
        let (bars, stats) = b.finish(None);
        assert_eq!(bars.len(), 2);
        let bar = bars[0];
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (px(1_010_000), px(1_010_000), px(1_005_000), px(1_005_000))
        );
        assert_eq!(bar.volume, 315);
        assert_eq!(bar.trade_count, Some(4));
        let num: i128 = 1_000_000 * 10 + 1_010_000 * 100 + 1_020_000 * 5 + 1_005_000 * 200;
        let expect = (num * 100_000 + 315 / 2) / 315;
        assert_eq!(bar.vwap.unwrap().raw(), i64::try_from(expect).unwrap());
        assert_eq!(bars[1].open, px(1_000_000));
        assert_eq!(bars[1].ts.nanos(), T0 + 60_000_000_000);
        assert_eq!(stats.fallback_bars, 1);
    }

    #[test]
    fn eligible_only_drops_priceless_minutes() {
        let s = Symbol::new("AAPL").unwrap();
        let mut b = BarBuilder::new(&[s], PricePolicy::EligibleOnly);
        b.trade(0, &t(1, 1_000_000, 10, FLAG_EXTENDED_HOURS, 1));
        let (bars, stats) = b.finish(None);
        assert!(bars.is_empty());
        assert_eq!(
            (
                stats.minutes_without_eligible_trade,
                stats.volume_without_bar
            ),
            (1, 10)
        );
    }

    #[test]
    fn breaks_within_and_beyond_the_window() {
        let s = Symbol::new("AAPL").unwrap();
        let mut b = BarBuilder::new(&[s], PricePolicy::default())
            .with_break_window(Some(Duration::from_mins(2)));
        b.trade(0, &t(1, 1_000_000, 100, 0, 1));
        b.trade(0, &t(2, 1_100_000, 100, 0, 2));
        b.advance(T0 + 100 * 1_000_000_000);
        assert!(b.trade_break(0, &t(100, 1_100_000, 100, 0, 2)));
        b.trade(0, &t(300, 1_000_000, 100, 0, 3));
        b.advance(T0 + 400 * 1_000_000_000); // minute 0 is sealed (ended 340 s before)
        assert!(!b.trade_break(0, &t(400, 1_000_000, 100, 0, 1)));
        b.trade(0, &t(30, 1, 1, 0, 9)); // late trade for a sealed minute
        let (bars, stats) = b.finish(None);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].high, bars[0].volume), (px(1_000_000), 100));
        assert_eq!(
            (
                stats.breaks_applied,
                stats.unmatched_breaks,
                stats.late_trades
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_fully_broken_minute_has_no_bar_and_cutoff_drops_the_tail() {
        let s = Symbol::new("AAPL").unwrap();
        let mut b = BarBuilder::new(&[s], PricePolicy::default());
        b.trade(0, &t(1, 1_000_000, 100, 0, 1));
        b.trade(0, &t(61, 1_000_000, 100, 0, 2));
        b.trade(0, &t(121, 1_000_000, 100, 0, 3));
        assert!(b.trade_break(0, &t(130, 1_000_000, 100, 0, 1)));
        let (bars, stats) = b.finish(Some(T0 + 120_000_000_000));
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].ts.nanos(), T0 + 60_000_000_000);
        assert_eq!(stats.incomplete_minutes_dropped, 1);
        assert_eq!(stats.peak_held_trades, 3);
    }

    #[test]
    fn invalid_trades_are_counted() {
        let s = Symbol::new("AAPL").unwrap();
        let mut b = BarBuilder::new(&[s], PricePolicy::default());
        b.trade(0, &t(1, -5, 100, 0, 1));
        b.trade(0, &t(1, 5, 0, 0, 2));
        b.trade(0, &t(1, i64::MAX / 10, 1, 0, 3));
        let (bars, stats) = b.finish(None);
        assert!(bars.is_empty());
        assert_eq!(stats.invalid_trades, 3);
    }
}
