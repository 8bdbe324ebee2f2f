//! Alpaca's bars response and its translation into a `BarPage`.

use std::fmt;

use marketpipe_domain::{Bar, Symbol, Timestamp};
use marketpipe_ports::{BarPage, BarRequest, PageCursor, ProviderError};
use marketpipe_provider_kit::{BarField, SessionFilter, WireVolume, malformed, parse_json, price};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use url::Url;

use crate::NAME;

/// One bar as Alpaca sends it (all fields documented as present; `n`/`vw` tolerated absent).
#[derive(Debug, Deserialize)]
struct WireBar {
    t: String,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: WireVolume,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    vw: Option<f64>,
}

/// `bars`: an object keyed by symbol (multi endpoint; symbol order kept, a `null` list
/// tolerated), or a list (single endpoint).
#[derive(Debug)]
enum WireBars {
    BySymbol(Vec<(String, Option<Vec<WireBar>>)>),
    Single(Vec<WireBar>),
}

impl<'de> Deserialize<'de> for WireBars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireBars;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of bar lists keyed by symbol, or a list of bars")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireBars, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Option<Vec<WireBar>>>()? {
                    out.push(entry);
                }
                Ok(WireBars::BySymbol(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireBars, A::Error> {
                let mut out = Vec::new();
                while let Some(bar) = seq.next_element::<WireBar>()? {
                    out.push(bar);
                }
                Ok(WireBars::Single(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The response body.
#[derive(Debug, Deserialize)]
struct WireResponse {
    #[serde(default)]
    bars: Option<WireBars>,
    #[serde(default)]
    next_page_token: Option<String>,
    /// Present on the single-symbol endpoint only.
    #[serde(default)]
    symbol: Option<String>,
}

/// Decodes one page: the bars kept by `filter` (in Alpaca's order: symbol, then time), the
/// count of rounded fractional volumes, and the next cursor.
pub(crate) fn parse_page(
    body: &[u8],
    url: &Url,
    request: &BarRequest,
    filter: &SessionFilter,
) -> Result<BarPage, ProviderError> {
    let response: WireResponse = parse_json(NAME, url, body)?;
    let next = response
        .next_page_token
        .filter(|t| !t.is_empty())
        .map(PageCursor);
    if next.is_some() && next == request.cursor {
        return Err(malformed(
            NAME,
            url,
            "next_page_token repeats this request's page_token; stopping to avoid a loop",
        ));
    }
    let groups = match response.bars {
        None => Vec::new(),
        Some(WireBars::BySymbol(groups)) => groups,
        Some(WireBars::Single(bars)) => {
            let symbol = match (response.symbol, request.symbols.as_slice()) {
                (Some(s), _) => s,
                (None, [only]) => only.as_str().to_owned(),
                (None, _) => {
                    return Err(malformed(
                        NAME,
                        url,
                        "a list of bars without a symbol for a multi-symbol request",
                    ));
                }
            };
            vec![(symbol, Some(bars))]
        }
    };
    let mut page = BarPage {
        next,
        ..BarPage::default()
    };
    for (text, bars) in groups {
        let bars = bars.unwrap_or_default();
        let Ok(symbol) = Symbol::new(&text) else {
            tracing::warn!(provider = NAME, symbol = %text, bars = bars.len(), "skipping bars of a symbol MarketPipe cannot store");
            continue;
        };
        for wire in bars {
            let ts = Timestamp::parse_rfc3339(&wire.t)
                .map_err(|e| malformed(NAME, url, format_args!("{symbol} bar: {e}")))?;
            if !filter.keeps(ts) {
                continue;
            }
            let (bar, rounded) = to_bar(symbol, ts, &wire, url)?;
            page.fractional_volumes_rounded += u64::from(rounded);
            page.bars.push(bar);
        }
    }
    Ok(page)
}

fn to_bar(
    symbol: Symbol,
    ts: Timestamp,
    w: &WireBar,
    url: &Url,
) -> Result<(Bar, bool), ProviderError> {
    let field = |name: &'static str| BarField { symbol, ts, name };
    let (volume, rounded) =
        w.v.to_shares()
            .map_err(|e| malformed(NAME, url, format_args!("{}: {e}", field("v"))))?;
    let vwap = match w.vw {
        Some(v) => Some(price(NAME, url, &field("vw"), v)?),
        None => None,
    };
    Ok((
        Bar {
            symbol,
            ts,
            open: price(NAME, url, &field("o"), w.o)?,
            high: price(NAME, url, &field("h"), w.h)?,
            low: price(NAME, url, &field("l"), w.l)?,
            close: price(NAME, url, &field("c"), w.c)?,
            volume,
            trade_count: w.n,
            vwap,
        },
        rounded,
    ))
}
