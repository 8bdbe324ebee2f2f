//! The `resample` domain service: streaming OHLCV aggregation over sorted bars.

use crate::aggregate::VwapAccumulator;
use crate::bar::Bar;
use crate::calendar::{ny_date, ny_instant, ny_offset_nanos};
use crate::error::DomainError;
use crate::time::{NANOS_PER_HOUR, Timestamp};
use crate::timeframe::Timeframe;

/// The start of the `timeframe` bucket holding `ts`.
///
/// Up to 1h this is the floor of `ts` to the width, which equals the New York clock because
/// New York's UTC offsets are whole hours. 4h buckets are aligned to the New York clock
/// (00:00, 04:00, … ET), and a 1d bucket is the session date: its `ts` is 00:00 New York
/// time of that date.
pub fn bucket_start(timeframe: Timeframe, ts: Timestamp) -> Timestamp {
    match timeframe.intraday_nanos() {
        Some(width) if width <= NANOS_PER_HOUR => ts.floor_to(width),
        Some(width) => {
            let offset = ny_offset_nanos(ts);
            Timestamp::from_nanos(ts.saturating_add_nanos(offset).floor_to(width).nanos() - offset)
        }
        None => ny_instant(ny_date(ts), 0, 0),
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    bar: Bar,
    inputs: u32,
    vwap: VwapAccumulator,
    vwap_complete: bool,
}

impl Bucket {
    fn open(start: Timestamp, first: &Bar) -> Self {
        let mut vwap = VwapAccumulator::default();
        if let Some(v) = first.vwap {
            vwap.add(v, first.volume);
        }
        Self {
            bar: Bar {
                ts: start,
                ..*first
            },
            inputs: 1,
            vwap,
            vwap_complete: first.vwap.is_some(),
        }
    }

    fn add(&mut self, next: &Bar) {
        let b = &mut self.bar;
        b.high = b.high.max(next.high);
        b.low = b.low.min(next.low);
        b.close = next.close;
        b.volume = b.volume.saturating_add(next.volume);
        b.trade_count = match (b.trade_count, next.trade_count) {
            (Some(x), Some(y)) => Some(x.saturating_add(y)),
            _ => None,
        };
        match next.vwap {
            Some(v) => self.vwap.add(v, next.volume),
            None => self.vwap_complete = false,
        }
        self.inputs += 1;
    }

    fn finish(mut self) -> Bar {
        // A single input passes through unchanged (1m -> 1m is the identity); otherwise the
        // VWAP is the volume-weighted mean of the inputs' VWAPs, when all of them had one.
        if self.inputs > 1 {
            self.bar.vwap = if self.vwap_complete {
                self.vwap.value()
            } else {
                None
            };
        }
        self.bar
    }
}

/// A streaming resampler: push bars sorted by `ts` (one symbol at a time; a new symbol starts
/// a new series), get each finished bucket as soon as a later bucket begins.
///
/// open = first open, high = max, low = min, close = last close, volume and trade count are
/// summed (trade count only when every input has one), VWAP is volume-weighted. Output bars
/// carry the bucket start as `ts`.
#[derive(Debug, Clone)]
pub struct Resampler {
    target: Timeframe,
    current: Option<Bucket>,
    last_input: Option<Bar>,
}

impl Resampler {
    /// A resampler to `target`.
    pub const fn new(target: Timeframe) -> Self {
        Self {
            target,
            current: None,
            last_input: None,
        }
    }

    /// Feeds the next bar; returns the previous bucket when this bar starts a new one.
    /// Rejects a bar whose `ts` is not after the previous bar's of the same symbol.
    pub fn push(&mut self, bar: &Bar) -> Result<Option<Bar>, DomainError> {
        if let Some(prev) = &self.last_input
            && prev.symbol == bar.symbol
            && bar.ts <= prev.ts
        {
            return Err(DomainError::BarRejected {
                symbol: bar.symbol.to_string(),
                ts: bar.ts.to_rfc3339(),
                reason: format!(
                    "resample needs strictly increasing timestamps; previous was {}",
                    prev.ts
                ),
            });
        }
        self.last_input = Some(*bar);
        let start = bucket_start(self.target, bar.ts);
        match &mut self.current {
            Some(bucket) if bucket.bar.ts == start && bucket.bar.symbol == bar.symbol => {
                bucket.add(bar);
                Ok(None)
            }
            _ => {
                let done = self.current.replace(Bucket::open(start, bar));
                Ok(done.map(Bucket::finish))
            }
        }
    }

    /// Ends the stream, returning the last open bucket.
    pub fn finish(self) -> Option<Bar> {
        self.current.map(Bucket::finish)
    }
}

/// Resamples bars sorted by `ts` (grouped by symbol) to `target`.
pub fn resample(bars: &[Bar], target: Timeframe) -> Result<Vec<Bar>, DomainError> {
    let mut resampler = Resampler::new(target);
    let mut out = Vec::with_capacity(bars.len());
    for bar in bars {
        if let Some(done) = resampler.push(bar)? {
            out.push(done);
        }
    }
    out.extend(resampler.finish());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::price::Price;
    use crate::symbol::Symbol;
    use crate::time::NANOS_PER_MINUTE;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn bucket_alignment() {
        let t = ts("2024-01-02T14:37:00Z");
        assert_eq!(
            bucket_start(Timeframe::M5, t).to_string(),
            "2024-01-02T14:35:00Z"
        );
        assert_eq!(
            bucket_start(Timeframe::M15, t).to_string(),
            "2024-01-02T14:30:00Z"
        );
        assert_eq!(
            bucket_start(Timeframe::H1, t).to_string(),
            "2024-01-02T14:00:00Z"
        );
        // 09:37 ET in winter: the 4h bucket starts 08:00 ET = 13:00 UTC.
        assert_eq!(
            bucket_start(Timeframe::H4, t).to_string(),
            "2024-01-02T13:00:00Z"
        );
        // In summer 08:00 ET = 12:00 UTC.
        let summer = ts("2024-07-01T13:37:00Z");
        assert_eq!(
            bucket_start(Timeframe::H4, summer).to_string(),
            "2024-07-01T12:00:00Z"
        );
        // 19:59 ET on Jan 2 is 00:59 UTC on Jan 3, but its session is Jan 2.
        let late = ts("2024-01-03T00:59:00Z");
        assert_eq!(
            bucket_start(Timeframe::D1, late).to_string(),
            "2024-01-02T05:00:00Z"
        );
    }

    #[test]
    fn rejects_unsorted_and_duplicates() {
        let sym = Symbol::new("AAPL").unwrap();
        let p = Price::from_raw(1).unwrap();
        let a = Bar::new(sym, ts("2024-01-02T14:31:00Z"), p, p, p, p, 1);
        let b = Bar::new(sym, ts("2024-01-02T14:30:00Z"), p, p, p, p, 1);
        assert!(resample(&[a, b], Timeframe::M5).is_err());
        assert!(resample(&[a, a], Timeframe::M5).is_err());
        // A new symbol starts a new series.
        let other = Bar {
            symbol: Symbol::new("MSFT").unwrap(),
            ..b
        };
        assert_eq!(resample(&[a, other], Timeframe::M5).unwrap().len(), 2);
        assert!(resample(&[], Timeframe::M5).unwrap().is_empty());
    }

    /// Sorted, unique, minute-aligned bars of one symbol inside a few regular sessions, with
    /// gaps, with and without VWAP and trade counts.
    fn minute_bars() -> impl Strategy<Value = Vec<Bar>> {
        let base = ts("2024-03-08T14:30:00Z").nanos();
        let minutes: Vec<i64> = (0..390).chain(3 * 1440..3 * 1440 + 390).collect();
        (
            proptest::sample::subsequence(minutes, 0..=780),
            proptest::collection::vec(
                (1u64..50_000, 0u64..500, 0u64..500, 0u64..10_000, 0u64..100),
                780,
            ),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(mins, vals, with_vwap, with_trades)| {
                let sym = Symbol::new("TEST").unwrap();
                mins.iter()
                    .zip(vals)
                    .map(|(m, (base_c, up, down, vol, tc))| {
                        let cents = |c: u64| {
                            Price::from_raw(i64::try_from(c).unwrap() * 10_000_000).unwrap()
                        };
                        let open = base_c + 500;
                        let close = base_c + 500 + up / 2;
                        let high = open.max(close) + up;
                        let low = open.min(close) - down.min(open.min(close));
                        let mut b = Bar::new(
                            sym,
                            Timestamp::from_nanos(base + m * NANOS_PER_MINUTE),
                            cents(open),
                            cents(high),
                            cents(low),
                            cents(close),
                            vol,
                        );
                        if with_vwap {
                            b.vwap = Some(cents(u64::midpoint(high, low)));
                        }
                        if with_trades {
                            b.trade_count = Some(tc);
                        }
                        b
                    })
                    .collect()
            })
    }

    fn assert_same_except_vwap_rounding(a: &[Bar], b: &[Bar]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(Bar { vwap: None, ..*x }, Bar { vwap: None, ..*y });
            // VWAP is rounded to 1e-9 at each stage, so two stages may differ from one by
            // at most one raw unit; anything more would be a real weighting error.
            match (x.vwap, y.vwap) {
                (Some(p), Some(q)) => assert!((p.raw() - q.raw()).abs() <= 1, "{p:?} vs {q:?}"),
                (p, q) => assert_eq!(p, q),
            }
        }
    }

    proptest! {
        #[test]
        fn one_minute_to_one_minute_is_identity(bars in minute_bars()) {
            prop_assert_eq!(resample(&bars, Timeframe::M1).unwrap(), bars);
        }

        #[test]
        fn resampling_composes(bars in minute_bars()) {
            let via_5m = resample(&resample(&bars, Timeframe::M5).unwrap(), Timeframe::M15).unwrap();
            let direct_15m = resample(&bars, Timeframe::M15).unwrap();
            assert_same_except_vwap_rounding(&via_5m, &direct_15m);
            let via_15m = resample(&direct_15m, Timeframe::H1).unwrap();
            let direct_1h = resample(&bars, Timeframe::H1).unwrap();
            assert_same_except_vwap_rounding(&via_15m, &direct_1h);
            let via_1h = resample(&direct_1h, Timeframe::D1).unwrap();
            let direct_1d = resample(&bars, Timeframe::D1).unwrap();
            assert_same_except_vwap_rounding(&via_1h, &direct_1d);
        }

        #[test]
        fn output_invariants(bars in minute_bars(), tf_index in 0usize..7) {
            let tf = Timeframe::ALL[tf_index];
            let out = resample(&bars, tf).unwrap();
            let total_in: u64 = bars.iter().map(|b| b.volume).sum();
            let total_out: u64 = out.iter().map(|b| b.volume).sum();
            prop_assert_eq!(total_in, total_out, "volume is conserved");
            for pair in out.windows(2) {
                prop_assert!(pair[0].ts < pair[1].ts, "sorted and unique");
            }
            for b in &out {
                prop_assert_eq!(bucket_start(tf, b.ts), b.ts, "aligned");
                let inputs: Vec<&Bar> = bars.iter().filter(|i| bucket_start(tf, i.ts) == b.ts).collect();
                prop_assert!(!inputs.is_empty());
                prop_assert_eq!(b.high, inputs.iter().map(|i| i.high).max().unwrap());
                prop_assert_eq!(b.low, inputs.iter().map(|i| i.low).min().unwrap());
                prop_assert_eq!(b.open, inputs[0].open);
                prop_assert_eq!(b.close, inputs[inputs.len() - 1].close);
            }
        }
    }
}
