//! `Bar`: one OHLCV interval of one symbol.

use serde::{Deserialize, Serialize};

use crate::price::Price;
use crate::symbol::Symbol;
use crate::time::Timestamp;

/// One OHLCV bar. `ts` is the *start* of the interval, in UTC nanoseconds.
///
/// A `Bar` does not enforce OHLC consistency on construction: stored data can be wrong,
/// and the validation rules must be able to see and report it. Use
/// [`Bar::is_ohlc_consistent`] where a hard check is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bar {
    /// The instrument.
    pub symbol: Symbol,
    /// Start of the interval, UTC.
    pub ts: Timestamp,
    /// First trade price.
    pub open: Price,
    /// Highest trade price.
    pub high: Price,
    /// Lowest trade price.
    pub low: Price,
    /// Last trade price.
    pub close: Price,
    /// Whole shares traded.
    pub volume: u64,
    /// Number of trades, when the provider reports it.
    pub trade_count: Option<u64>,
    /// Volume-weighted average price, when the provider reports it.
    pub vwap: Option<Price>,
}

impl Bar {
    /// A bar with OHLCV only (no trade count, no VWAP).
    pub const fn new(
        symbol: Symbol,
        ts: Timestamp,
        open: Price,
        high: Price,
        low: Price,
        close: Price,
        volume: u64,
    ) -> Self {
        Self {
            symbol,
            ts,
            open,
            high,
            low,
            close,
            volume,
            trade_count: None,
            vwap: None,
        }
    }

    /// `high >= max(open, close)`, `low <= min(open, close)` and `high >= low`.
    pub fn is_ohlc_consistent(&self) -> bool {
        self.high >= self.low
            && self.high >= self.open.max(self.close)
            && self.low <= self.open.min(self.close)
    }

    /// `(high + low + close) / 3`, rounded down to 1e-9: the stand-in for VWAP when a
    /// provider sends none.
    pub fn typical_price(&self) -> Price {
        let sum =
            i128::from(self.high.raw()) + i128::from(self.low.raw()) + i128::from(self.close.raw());
        // The mean of three non-negative i64 values fits in i64.
        Price::from_raw(i64::try_from(sum / 3).unwrap_or(i64::MAX)).unwrap_or(Price::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn consistency_and_typical_price() {
        let sym = Symbol::new("AAPL").unwrap();
        let mut bar = Bar::new(
            sym,
            Timestamp::EPOCH,
            p("10"),
            p("12"),
            p("9"),
            p("11"),
            100,
        );
        assert!(bar.is_ohlc_consistent());
        assert_eq!(bar.typical_price(), p("10.666666666"));
        bar.high = p("10.5");
        assert!(!bar.is_ohlc_consistent());
        bar.high = p("8");
        assert!(!bar.is_ohlc_consistent());
        let json = serde_json::to_string(&bar).unwrap();
        assert_eq!(serde_json::from_str::<Bar>(&json).unwrap(), bar);
    }
}
