//! `SymbolBarsAggregate` (one symbol's bars of one session) and its `DailySummary`, plus the
//! `vwap` and `daily_summary` domain services.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::bar::Bar;
use crate::calendar::{ny_date, ny_instant};
use crate::error::DomainError;
use crate::events::DomainEvent;
use crate::price::Price;
use crate::symbol::Symbol;
use crate::time::Timestamp;

/// One symbol's session summarised: OHLC, volume, VWAP and bar count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DailySummary {
    /// The instrument.
    pub symbol: Symbol,
    /// The session date (New York).
    pub date: NaiveDate,
    /// First bar's open.
    pub open: Price,
    /// Highest high.
    pub high: Price,
    /// Lowest low.
    pub low: Price,
    /// Last bar's close.
    pub close: Price,
    /// Summed volume.
    pub volume: u64,
    /// Volume-weighted average price (see [`vwap`]); `None` when no share traded.
    pub vwap: Option<Price>,
    /// Number of bars.
    pub bar_count: u32,
    /// Summed trade count, when every bar had one.
    pub trade_count: Option<u64>,
}

/// Running volume-weighted price: Σ(price × volume) and Σ volume, exact in 128 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VwapAccumulator {
    notional: i128,
    volume: u128,
}

impl VwapAccumulator {
    /// Adds a bar, weighting its VWAP (or, when it has none, its typical price) by volume.
    pub fn add_bar(&mut self, bar: &Bar) {
        let price = bar.vwap.unwrap_or_else(|| bar.typical_price());
        self.add(price, bar.volume);
    }

    /// Adds `volume` shares at `price`.
    pub fn add(&mut self, price: Price, volume: u64) {
        self.notional += i128::from(price.raw()) * i128::from(volume);
        self.volume += u128::from(volume);
    }

    /// The average, rounded half up to 1e-9; `None` when no volume was added.
    pub fn value(&self) -> Option<Price> {
        if self.volume == 0 {
            return None;
        }
        let vol = i128::try_from(self.volume).ok()?;
        let avg = (2 * self.notional + vol) / (2 * vol);
        Price::from_raw(i64::try_from(avg).ok()?).ok()
    }
}

/// The volume-weighted average price of `bars`: each bar contributes its own VWAP, or its
/// typical price `(h + l + c) / 3` when the provider sent none, weighted by its volume.
/// `None` when the bars carry no volume.
pub fn vwap(bars: &[Bar]) -> Option<Price> {
    let mut acc = VwapAccumulator::default();
    for b in bars {
        acc.add_bar(b);
    }
    acc.value()
}

/// One symbol's bars of one session, with running totals. Bars must arrive in strictly
/// increasing `ts` order, all of the aggregate's symbol and session date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolBarsAggregate {
    symbol: Symbol,
    date: NaiveDate,
    // The session date's New York day as UTC instants, so that `add_bar` needs no time-zone
    // lookup per bar.
    day_start: Timestamp,
    day_end: Timestamp,
    first: Option<Bar>,
    last: Option<Bar>,
    high: Price,
    low: Price,
    volume: u64,
    trade_count: Option<u64>,
    vwap: VwapAccumulator,
    bar_count: u32,
}

impl SymbolBarsAggregate {
    /// An empty aggregate for `symbol` on the session `date`.
    pub fn new(symbol: Symbol, date: NaiveDate) -> Self {
        let next = date.succ_opt().unwrap_or(date);
        Self {
            symbol,
            date,
            day_start: ny_instant(date, 0, 0),
            day_end: ny_instant(next, 0, 0),
            first: None,
            last: None,
            high: Price::ZERO,
            low: Price::ZERO,
            volume: 0,
            trade_count: Some(0),
            vwap: VwapAccumulator::default(),
            bar_count: 0,
        }
    }

    /// The aggregate's symbol.
    pub const fn symbol(&self) -> Symbol {
        self.symbol
    }

    /// The session date.
    pub const fn date(&self) -> NaiveDate {
        self.date
    }

    /// Whether `ts` falls on the aggregate's New York date.
    pub fn covers(&self, ts: Timestamp) -> bool {
        self.day_start <= ts && ts < self.day_end
    }

    /// Bars added so far.
    pub const fn bar_count(&self) -> u32 {
        self.bar_count
    }

    /// Adds the next bar; rejects another symbol, another session date, or a `ts` that is
    /// not after the previous bar's (out of order or duplicate).
    pub fn add_bar(&mut self, bar: &Bar) -> Result<(), DomainError> {
        let reject = |reason: String| DomainError::BarRejected {
            symbol: bar.symbol.to_string(),
            ts: bar.ts.to_rfc3339(),
            reason,
        };
        if bar.symbol != self.symbol {
            return Err(reject(format!("aggregate is for {}", self.symbol)));
        }
        if !self.covers(bar.ts) {
            return Err(reject(format!(
                "bar is on session {}, aggregate is for {}",
                ny_date(bar.ts),
                self.date
            )));
        }
        if let Some(last) = &self.last {
            if bar.ts == last.ts {
                return Err(reject("duplicate timestamp".into()));
            }
            if bar.ts < last.ts {
                return Err(reject(format!("out of order: after {}", last.ts)));
            }
        }
        if self.first.is_none() {
            self.first = Some(*bar);
            self.high = bar.high;
            self.low = bar.low;
        } else {
            self.high = self.high.max(bar.high);
            self.low = self.low.min(bar.low);
        }
        self.last = Some(*bar);
        self.volume = self.volume.saturating_add(bar.volume);
        self.trade_count = match (self.trade_count, bar.trade_count) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
        self.vwap.add_bar(bar);
        self.bar_count += 1;
        Ok(())
    }

    /// Closes the session: the summary and the `DailySummaryClosed` event. Fails when no bar
    /// was added.
    pub fn close_day(self) -> Result<(DailySummary, DomainEvent), DomainError> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Err(DomainError::NoBars {
                what: "closing a daily summary",
            });
        };
        let summary = DailySummary {
            symbol: self.symbol,
            date: self.date,
            open: first.open,
            high: self.high,
            low: self.low,
            close: last.close,
            volume: self.volume,
            vwap: self.vwap.value(),
            bar_count: self.bar_count,
            trade_count: self.trade_count,
        };
        Ok((summary, DomainEvent::DailySummaryClosed { summary }))
    }
}

/// Summarises sorted bars of one symbol into one `DailySummary` per New York session date.
pub fn daily_summary(bars: &[Bar]) -> Result<Vec<DailySummary>, DomainError> {
    let mut out = Vec::new();
    let mut current: Option<SymbolBarsAggregate> = None;
    for bar in bars {
        // One time-zone lookup per day, not per bar.
        if let Some(a) = current.as_mut()
            && a.symbol() == bar.symbol
            && a.covers(bar.ts)
        {
            a.add_bar(bar)?;
            continue;
        }
        let date = ny_date(bar.ts);
        if let Some(a) = current.as_ref()
            && a.symbol() == bar.symbol
            && date < a.date()
        {
            return Err(DomainError::BarRejected {
                symbol: bar.symbol.to_string(),
                ts: bar.ts.to_rfc3339(),
                reason: format!("out of order: session {date} after {}", a.date()),
            });
        }
        if current
            .as_ref()
            .is_some_and(|a| a.date() != date || a.symbol() != bar.symbol)
            && let Some(done) = current.take()
        {
            out.push(done.close_day()?.0);
        }
        current
            .get_or_insert_with(|| SymbolBarsAggregate::new(bar.symbol, date))
            .add_bar(bar)?;
    }
    if let Some(done) = current {
        out.push(done.close_day()?.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[allow(clippy::many_single_char_names)]
    fn bar(ts: &str, o: &str, h: &str, l: &str, c: &str, v: u64) -> Bar {
        let mut b = Bar::new(
            Symbol::new("AAPL").unwrap(),
            Timestamp::parse_rfc3339(ts).unwrap(),
            p(o),
            p(h),
            p(l),
            p(c),
            v,
        );
        b.trade_count = Some(v / 10);
        b
    }

    #[test]
    fn aggregate_keeps_running_totals() {
        let date = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let mut agg = SymbolBarsAggregate::new(Symbol::new("AAPL").unwrap(), date);
        let mut b1 = bar("2024-01-02T14:30:00Z", "10", "11", "9", "10.5", 100);
        b1.vwap = Some(p("10"));
        let mut b2 = bar("2024-01-02T14:31:00Z", "10.5", "12", "10", "11", 300);
        b2.vwap = Some(p("11"));
        agg.add_bar(&b1).unwrap();
        agg.add_bar(&b2).unwrap();
        assert_eq!(agg.bar_count(), 2);
        let (s, event) = agg.close_day().unwrap();
        assert_eq!(
            (s.open, s.high, s.low, s.close),
            (p("10"), p("12"), p("9"), p("11"))
        );
        assert_eq!(s.volume, 400);
        assert_eq!(s.vwap, Some(p("10.75")));
        assert_eq!(s.trade_count, Some(40));
        assert_eq!(event, DomainEvent::DailySummaryClosed { summary: s });
    }

    #[test]
    fn aggregate_rejects_disorder_duplicates_and_strangers() {
        let date = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let mut agg = SymbolBarsAggregate::new(Symbol::new("AAPL").unwrap(), date);
        let b1 = bar("2024-01-02T14:31:00Z", "10", "11", "9", "10", 1);
        agg.add_bar(&b1).unwrap();
        let dup = agg.add_bar(&b1).unwrap_err();
        assert!(dup.to_string().contains("duplicate"));
        let early = bar("2024-01-02T14:30:00Z", "10", "11", "9", "10", 1);
        assert!(
            agg.add_bar(&early)
                .unwrap_err()
                .to_string()
                .contains("out of order")
        );
        let other_day = bar("2024-01-03T14:30:00Z", "10", "11", "9", "10", 1);
        assert!(
            agg.add_bar(&other_day)
                .unwrap_err()
                .to_string()
                .contains("2024-01-03")
        );
        let mut stranger = b1;
        stranger.symbol = Symbol::new("MSFT").unwrap();
        assert!(agg.add_bar(&stranger).is_err());
        let empty = SymbolBarsAggregate::new(Symbol::new("AAPL").unwrap(), date);
        assert!(matches!(empty.close_day(), Err(DomainError::NoBars { .. })));
    }

    #[test]
    fn vwap_falls_back_to_typical_price_and_needs_volume() {
        let b = bar("2024-01-02T14:30:00Z", "10", "12", "9", "12", 10);
        assert_eq!(vwap(&[b]), Some(p("11")));
        let zero = bar("2024-01-02T14:30:00Z", "10", "12", "9", "12", 0);
        assert_eq!(vwap(&[zero]), None);
        assert_eq!(vwap(&[]), None);
    }

    #[test]
    fn daily_summary_splits_on_new_york_date() {
        // 2024-01-02 20:59 ET (01:59 UTC on the 3rd) still belongs to the 2nd.
        let bars = [
            bar("2024-01-02T14:30:00Z", "10", "11", "9", "10", 1),
            bar("2024-01-03T00:59:00Z", "10", "13", "9", "12", 1),
            bar("2024-01-03T14:30:00Z", "20", "21", "19", "20", 5),
        ];
        let days = daily_summary(&bars).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].date.to_string(), "2024-01-02");
        assert_eq!(days[0].high, p("13"));
        assert_eq!(days[0].close, p("12"));
        assert_eq!(days[1].volume, 5);
        let unsorted = [bars[2], bars[0]];
        assert!(
            daily_summary(&unsorted)
                .unwrap_err()
                .to_string()
                .contains("out of order")
        );
        let dup = [bars[0], bars[0]];
        assert!(daily_summary(&dup).is_err());
    }
}
