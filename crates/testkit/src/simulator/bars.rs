//! The bars every provider serves: the fake generator's extended-hours bars of the XNYS
//! sessions in an inclusive window, generated lazily in either direction, and the time and
//! JSON number helpers the wire formats share.

use chrono::NaiveDate;
use marketpipe_domain::calendar::{FIRST_YEAR, LAST_YEAR, ny_date, ny_instant};
use marketpipe_domain::{
    Bar, DateRange, Price, Session, SessionKind, Symbol, Timestamp, TradingCalendar,
};
use marketpipe_fake::FakeProvider;

/// An inclusive instant window `[start, end]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
}

impl Window {
    /// The part after `last` in the paging direction (`last` itself kept when `inclusive`).
    pub(super) fn after(self, last: Timestamp, desc: bool, inclusive: bool) -> Self {
        let step = i64::from(!inclusive);
        if desc {
            Self {
                start: self.start,
                end: self.end.min(last.saturating_add_nanos(-step)),
            }
        } else {
            Self {
                start: self.start.max(last.saturating_add_nanos(step)),
                end: self.end,
            }
        }
    }
}

/// The bars of one symbol in a window, session by session, generated lazily.
pub(super) struct SymbolBars {
    fake: FakeProvider,
    symbol: Symbol,
    window: Window,
    desc: bool,
    sessions: Vec<Session>,
    taken: usize,
    buffer: std::vec::IntoIter<Bar>,
    without: Vec<NaiveDate>,
}

impl SymbolBars {
    pub(super) fn new(fake: FakeProvider, symbol: Symbol, window: Window, desc: bool) -> Self {
        Self {
            fake,
            symbol,
            window,
            desc,
            sessions: sessions_in(window),
            taken: 0,
            buffer: Vec::new().into_iter(),
            without: Vec::new(),
        }
    }

    /// The same bars without those of `dates` (sessions the provider has nothing for).
    pub(super) fn without(mut self, dates: Vec<NaiveDate>) -> Self {
        self.without = dates;
        self
    }
}

impl Iterator for SymbolBars {
    type Item = Bar;

    fn next(&mut self) -> Option<Bar> {
        loop {
            if let Some(bar) = self.buffer.next() {
                return Some(bar);
            }
            let count = self.sessions.len();
            if self.taken >= count {
                return None;
            }
            let index = if self.desc {
                count - 1 - self.taken
            } else {
                self.taken
            };
            self.taken += 1;
            let session = self.sessions.get(index)?;
            if self.without.contains(&session.date) {
                continue;
            }
            let mut bars = self
                .fake
                .session_bars(self.symbol, session, SessionKind::Extended);
            let window = self.window;
            bars.retain(|b| window.start <= b.ts && b.ts <= window.end);
            if self.desc {
                bars.reverse();
            }
            self.buffer = bars.into_iter();
        }
    }
}

/// The XNYS sessions whose New York dates the window touches, inside the calendar's years.
fn sessions_in(window: Window) -> Vec<Session> {
    if window.start > window.end {
        return Vec::new();
    }
    let (Some(min), Some(max)) = (
        NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1),
        NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31),
    ) else {
        return Vec::new();
    };
    let first = ny_date(window.start).max(min);
    let last = ny_date(window.end).min(max);
    if first > last {
        return Vec::new();
    }
    DateRange::new(first, last)
        .and_then(|range| TradingCalendar::xnys().sessions(range))
        .unwrap_or_default()
}

/// The start of the New York day `date` and the last nanosecond of it.
pub(super) fn ny_day(date: NaiveDate) -> (Timestamp, Timestamp) {
    let next = date.succ_opt().unwrap_or(date);
    (
        ny_instant(date, 0, 0),
        ny_instant(next, 0, 0).saturating_add_nanos(-1),
    )
}

pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub(super) fn millis(ts: Timestamp) -> i64 {
    ts.nanos().div_euclid(1_000_000)
}

pub(super) fn seconds(ts: Timestamp) -> i64 {
    ts.nanos().div_euclid(1_000_000_000)
}

pub(super) fn json_f64(value: f64) -> String {
    serde_json::Number::from_f64(value).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

pub(super) fn json_str(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A price as a JSON number: its exact shortest decimal (`171.48`, `169`), as the providers
/// write them. (`Price::to_f64` is not correctly rounded, so printing that float could give
/// `120.53659999999999` for `120.5366`.)
pub(super) fn json_price(price: Price) -> String {
    price.to_string()
}

pub(super) fn vwap_of(bar: &Bar) -> Price {
    bar.vwap.unwrap_or_else(|| bar.typical_price())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_bars_run_both_ways_and_skip_closed_days() {
        let fake = FakeProvider::new();
        let symbol = Symbol::new("AAPL").unwrap();
        // Thursday 2024-03-28, Good Friday 2024-03-29, a weekend, Monday 2024-04-01.
        let window = Window {
            start: ny_day(NaiveDate::from_ymd_opt(2024, 3, 28).unwrap()).0,
            end: ny_day(NaiveDate::from_ymd_opt(2024, 4, 1).unwrap()).1,
        };
        let asc: Vec<Bar> = SymbolBars::new(fake, symbol, window, false).collect();
        let mut desc: Vec<Bar> = SymbolBars::new(fake, symbol, window, true).collect();
        assert_eq!(asc.len(), 2 * 960);
        desc.reverse();
        assert_eq!(asc, desc);
        let after = window.after(asc[959].ts, false, false);
        let rest: Vec<Bar> = SymbolBars::new(fake, symbol, after, false).collect();
        assert_eq!(rest, asc[960..]);
    }
}
