//! # marketpipe-fake
//!
//! The embedded default provider, an adapter behind the `MarketDataProvider` port that needs
//! no key and no network. It makes deterministic 1-minute bars: each (symbol, session date)
//! seeds its own generator, so the same request always yields the same bars however requests
//! are split, paged or ordered. Bars exist only on the XNYS calendar's sessions (regular hours
//! by default, 04:00–20:00 ET when asked; early closes end at 13:00 ET, their after-hours at
//! 17:00), prices sit on a one-cent grid with consistent OHLC, follow a random walk whose level
//! depends on the symbol, and volume is U-shaped over the day. Among our crates it depends only
//! on the ports and the domain.

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use marketpipe_domain::calendar::{FIRST_YEAR, LAST_YEAR, ny_date};
use marketpipe_domain::time::NANOS_PER_MINUTE;
use marketpipe_domain::{
    Bar, DateRange, Price, Session, SessionKind, Symbol, Timeframe, Timestamp, TradingCalendar,
};
use marketpipe_ports::telemetry;
use marketpipe_ports::{
    BarPage, BarRequest, MarketDataProvider, PageCursor, ProviderError, ProviderInfo,
};

/// The registry name.
pub const NAME: &str = "fake";

/// Bars one page carries at most.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// Symbols one request may carry.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 100;

/// One cent in 1e-9 price units.
const CENT: i64 = 10_000_000;

/// The deterministic provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeProvider {
    calendar: TradingCalendar,
}

impl FakeProvider {
    /// A fake provider on the XNYS calendar.
    pub const fn new() -> Self {
        Self {
            calendar: TradingCalendar::xnys(),
        }
    }

    /// Every bar of one symbol's session, for the requested hours. The extended session is
    /// always generated, so regular-hours bars are the same whichever hours were asked for.
    pub fn session_bars(&self, symbol: Symbol, session: &Session, kind: SessionKind) -> Vec<Bar> {
        let mut rng = SplitMix64::new(seed(symbol, session.date));
        let level = day_level_cents(symbol, session.date, &mut rng);
        let base_volume = base_volume(symbol);
        let (ext_open, ext_close) = session.bounds(SessionKind::Extended);
        let (reg_open, reg_close) = session.bounds(SessionKind::Regular);
        let minutes = (ext_close.nanos() - ext_open.nanos()) / NANOS_PER_MINUTE;
        let regular_minutes = ((reg_close.nanos() - reg_open.nanos()) / NANOS_PER_MINUTE).max(1);
        // Per-minute volatility: about 0.08 % of the price level, at least one cent.
        let sigma = (level / 1250).max(1);
        let mut close = level;
        let mut out = Vec::with_capacity(usize::try_from(minutes).unwrap_or(0));
        for m in 0..minutes {
            let ts = Timestamp::from_nanos(ext_open.nanos() + m * NANOS_PER_MINUTE);
            let regular = reg_open <= ts && ts < reg_close;
            // Draw every random number whether or not the bar is kept, so that the walk does
            // not depend on the hours asked for.
            let open = close;
            let step = rng.normal_ish(sigma);
            close = (open + step).max(1);
            let wick_up = rng.below(sigma.unsigned_abs() / 2 + 1).cast_signed();
            let wick_down = rng.below(sigma.unsigned_abs() / 2 + 1).cast_signed();
            let high = open.max(close) + wick_up;
            let low = (open.min(close) - wick_down).max(1);
            let noise = 0.5 + rng.unit();
            let avg_trade = 50 + rng.below(100);
            if kind == SessionKind::Regular && !regular {
                continue;
            }
            let shape = if regular {
                // U-shape over the regular session: busiest at the open and the close.
                let minute = (ts.nanos() - reg_open.nanos()) / NANOS_PER_MINUTE;
                #[allow(clippy::cast_precision_loss)]
                let x = (2.0 * minute as f64 / regular_minutes as f64) - 1.0;
                0.4 + 2.6 * x * x
            } else {
                0.05
            };
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let volume = ((base_volume as f64) * shape * noise).round().max(1.0) as u64;
            let trade_count = (volume / avg_trade).max(1);
            let vwap_units = (high + low + close) * CENT / 3;
            // VWAP on a 1e-4 grid, inside [low, high].
            let vwap_units = (vwap_units / 100_000) * 100_000;
            out.push(Bar {
                symbol,
                ts,
                open: cents(open),
                high: cents(high),
                low: cents(low),
                close: cents(close),
                volume,
                trade_count: Some(trade_count),
                vwap: Price::from_raw(vwap_units.clamp(low * CENT, high * CENT)).ok(),
            });
        }
        out
    }

    /// Bars of one symbol over sessions from `from_date`, starting at `from_ts`, inside
    /// `[range_start, range_end)`, at most `limit` of them. Returns the bars and the `ts` to
    /// continue from when the limit cut the list.
    fn symbol_bars(
        &self,
        symbol: Symbol,
        from_ts: Timestamp,
        range_end: Timestamp,
        kind: SessionKind,
        limit: usize,
    ) -> Result<(Vec<Bar>, Option<Timestamp>), ProviderError> {
        let mut out = Vec::new();
        if from_ts >= range_end {
            return Ok((out, None));
        }
        let first_date = ny_date(from_ts);
        let last_date = ny_date(range_end.saturating_add_nanos(-1));
        let dates = DateRange::new(first_date, last_date).map_err(|e| bad_request(&e))?;
        for session in self.calendar.sessions(dates).map_err(|e| bad_request(&e))? {
            for bar in self.session_bars(symbol, &session, kind) {
                if bar.ts < from_ts || bar.ts >= range_end {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, Some(bar.ts)));
                }
                out.push(bar);
            }
        }
        Ok((out, None))
    }
}

fn bad_request(e: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::BadRequest {
        provider: NAME.into(),
        message: e.to_string(),
    }
}

fn cents(c: i64) -> Price {
    Price::from_raw(c * CENT).unwrap_or(Price::ZERO)
}

impl FakeProvider {
    /// One page of bars for `request`, or why the request is refused.
    fn serve_page(&self, request: &BarRequest) -> Result<BarPage, ProviderError> {
        if request.timeframe != Timeframe::M1 {
            return Err(ProviderError::Unsupported {
                provider: NAME.into(),
                what: format!(
                    "timeframe {} (the fake provider serves 1m bars)",
                    request.timeframe
                ),
            });
        }
        if request.symbols.is_empty() || request.symbols.len() > MAX_SYMBOLS_PER_REQUEST {
            return Err(bad_request(&format!(
                "a request carries 1 to {MAX_SYMBOLS_PER_REQUEST} symbols, not {}",
                request.symbols.len()
            )));
        }
        let years = FIRST_YEAR..=LAST_YEAR;
        let (start, end) = (request.range.start(), request.range.end());
        if !years.contains(&ny_date(start).year()) || !years.contains(&ny_date(end).year()) {
            return Err(bad_request(&format!(
                "range {start}..{end} is outside {FIRST_YEAR}-{LAST_YEAR}"
            )));
        }
        let (mut index, mut from) = match &request.cursor {
            None => (0, start),
            Some(c) => parse_cursor(c)?,
        };
        let limit = request
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let mut page = BarPage::default();
        while let Some(symbol) = request.symbols.get(index) {
            let room = limit - page.bars.len();
            let (bars, resume) =
                self.symbol_bars(*symbol, from.max(start), end, request.session, room)?;
            page.bars.extend(bars);
            if let Some(ts) = resume {
                page.next = Some(PageCursor(format!("{index}:{}", ts.nanos())));
                return Ok(page);
            }
            index += 1;
            from = start;
            if page.bars.len() == limit {
                if index < request.symbols.len() {
                    page.next = Some(PageCursor(format!("{index}:{}", start.nanos())));
                }
                return Ok(page);
            }
        }
        Ok(page)
    }
}

#[async_trait]
impl MarketDataProvider for FakeProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            display_name: "Fake (deterministic, offline)".into(),
            feeds: Vec::new(),
            default_feed: None,
            max_symbols_per_request: MAX_SYMBOLS_PER_REQUEST,
            max_page_size: MAX_PAGE_SIZE,
            rate_limit: None,
            history_start: NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1),
            requires_credentials: false,
            supports_extended_hours: true,
            retries_internally: false,
        }
    }

    /// Pages run symbol by symbol in request order; the cursor is `<symbol index>:<ts>`.
    async fn fetch_bars(&self, request: &BarRequest) -> Result<BarPage, ProviderError> {
        // Counted as a provider request like an HTTP adapter's, so that dashboards and
        // alerts work the same on the fake provider.
        let started = std::time::Instant::now();
        let page = self.serve_page(request);
        let status = if page.is_ok() { "200" } else { "400" };
        metrics::counter!(
            telemetry::PROVIDER_REQUESTS.name,
            telemetry::LABEL_PROVIDER => NAME,
            telemetry::LABEL_FEED => telemetry::FEED_NONE,
            telemetry::LABEL_STATUS => status
        )
        .increment(1);
        metrics::histogram!(
            telemetry::PROVIDER_REQUEST_DURATION.name,
            telemetry::LABEL_PROVIDER => NAME,
            telemetry::LABEL_FEED => telemetry::FEED_NONE
        )
        .record(started.elapsed().as_secs_f64());
        page
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn parse_cursor(cursor: &PageCursor) -> Result<(usize, Timestamp), ProviderError> {
    let malformed = || ProviderError::BadRequest {
        provider: NAME.into(),
        message: "invalid page cursor".into(),
    };
    let (index, ts) = cursor.0.split_once(':').ok_or_else(malformed)?;
    let index = index.parse().map_err(|_| malformed())?;
    let ts = ts.parse().map_err(|_| malformed())?;
    Ok((index, Timestamp::from_nanos(ts)))
}

/// FNV-1a of the symbol text: a stable, platform-independent hash (std's hasher is not).
fn symbol_hash(symbol: Symbol) -> u64 {
    symbol.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn seed(symbol: Symbol, date: NaiveDate) -> u64 {
    let day = u64::from(date.num_days_from_ce().cast_unsigned());
    symbol_hash(symbol) ^ day.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The symbol's price level on `date`, in cents: a symbol-dependent base between $20 and
/// $500, a slow yearly swing of ±25 % with a symbol-dependent phase, and 2 % daily noise.
fn day_level_cents(symbol: Symbol, date: NaiveDate, rng: &mut SplitMix64) -> i64 {
    let h = symbol_hash(symbol);
    #[allow(clippy::cast_precision_loss)]
    let base = 2_000.0 + (h % 48_000) as f64;
    #[allow(clippy::cast_precision_loss)]
    let phase = (h >> 20) as f64 % std::f64::consts::TAU;
    let day = f64::from(date.num_days_from_ce());
    let swing = 1.0 + 0.25 * (std::f64::consts::TAU * day / 365.25 + phase).sin();
    let noise = 1.0 + 0.02 * (rng.unit() * 2.0 - 1.0);
    #[allow(clippy::cast_possible_truncation)]
    let level = (base * swing * noise).round() as i64;
    level.max(100)
}

/// Shares per minute at the quietest time of day: between 2,000 and 50,000 by symbol.
fn base_volume(symbol: Symbol) -> u64 {
    2_000 + (symbol_hash(symbol) >> 8) % 48_000
}

/// `SplitMix64`: a tiny, fast, fully specified generator, so the bars never change with a
/// dependency's version.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    const fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[allow(clippy::cast_precision_loss)]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Roughly normal with standard deviation `sigma` (sum of three uniforms), rounded.
    fn normal_ish(&mut self, sigma: i64) -> i64 {
        let sum = self.unit() + self.unit() + self.unit() - 1.5;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let v = (sum * 2.0 * sigma as f64).round() as i64;
        v
    }
}

#[cfg(test)]
mod tests;
