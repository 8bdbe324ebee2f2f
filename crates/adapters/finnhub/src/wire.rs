//! Finnhub's candle response (parallel arrays) and its translation into a `BarPage`.

use marketpipe_domain::{Bar, Symbol, TimeRange, Timestamp};
use marketpipe_ports::{BarPage, ProviderError};
use marketpipe_provider_kit::{BarField, SessionFilter, WireVolume, malformed, parse_json, price};
use serde::Deserialize;
use url::Url;

use crate::NAME;

/// The response body: `s` is `ok` or `no_data` (then no arrays); `error` on failures.
#[derive(Debug, Deserialize)]
struct WireCandles {
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    t: Option<Vec<i64>>,
    #[serde(default)]
    o: Option<Vec<f64>>,
    #[serde(default)]
    h: Option<Vec<f64>>,
    #[serde(default)]
    l: Option<Vec<f64>>,
    #[serde(default)]
    c: Option<Vec<f64>>,
    #[serde(default)]
    v: Option<Vec<WireVolume>>,
    #[serde(default)]
    error: Option<String>,
}

/// Decodes one window: the bars kept by `filter` and inside `window`, and the count of
/// rounded fractional volumes (the cursor is the caller's).
pub(crate) fn parse_page(
    body: &[u8],
    url: &Url,
    symbol: Symbol,
    filter: &SessionFilter,
    window: TimeRange,
) -> Result<BarPage, ProviderError> {
    let candles: WireCandles = parse_json(NAME, url, body)?;
    match candles.s.as_deref() {
        Some("no_data") => return Ok(BarPage::default()),
        Some("ok") => {}
        None if candles.error.is_some() => {
            return Err(ProviderError::BadRequest {
                provider: NAME.into(),
                message: candles.error.unwrap_or_default(),
            });
        }
        other => {
            return Err(malformed(
                NAME,
                url,
                format_args!("unexpected status s = {other:?} (expected \"ok\" or \"no_data\")"),
            ));
        }
    }
    let times = candles.t.unwrap_or_default();
    let count = times.len();
    let column = |name: &str, len: Option<usize>| match len {
        Some(len) if len == count => Ok(()),
        Some(len) => Err(malformed(
            NAME,
            url,
            format_args!("array {name} has {len} values, t has {count}"),
        )),
        None if count == 0 => Ok(()),
        None => Err(malformed(
            NAME,
            url,
            format_args!("array {name} is missing"),
        )),
    };
    column("o", candles.o.as_ref().map(Vec::len))?;
    column("h", candles.h.as_ref().map(Vec::len))?;
    column("l", candles.l.as_ref().map(Vec::len))?;
    column("c", candles.c.as_ref().map(Vec::len))?;
    column("v", candles.v.as_ref().map(Vec::len))?;
    let opens = candles.o.unwrap_or_default();
    let highs = candles.h.unwrap_or_default();
    let lows = candles.l.unwrap_or_default();
    let closes = candles.c.unwrap_or_default();
    let volumes = candles.v.unwrap_or_default();
    let mut page = BarPage::default();
    for (i, &secs) in times.iter().enumerate() {
        let ts = Timestamp::from_secs(secs).ok_or_else(|| {
            malformed(
                NAME,
                url,
                format_args!("{symbol}: t {secs} is out of range"),
            )
        })?;
        if !window.contains(ts) || !filter.keeps(ts) {
            continue;
        }
        let field = |name: &'static str| BarField { symbol, ts, name };
        let (volume, rounded) = volumes[i]
            .to_shares()
            .map_err(|e| malformed(NAME, url, format_args!("{}: {e}", field("v"))))?;
        page.fractional_volumes_rounded += u64::from(rounded);
        page.bars.push(Bar {
            symbol,
            ts,
            open: price(NAME, url, &field("o"), opens[i])?,
            high: price(NAME, url, &field("h"), highs[i])?,
            low: price(NAME, url, &field("l"), lows[i])?,
            close: price(NAME, url, &field("c"), closes[i])?,
            volume,
            trade_count: None,
            vwap: None,
        });
    }
    Ok(page)
}
