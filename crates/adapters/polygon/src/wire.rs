//! Polygon's aggregates response and its translation into a `BarPage`.

use marketpipe_domain::{Bar, Symbol, Timestamp};
use marketpipe_ports::{BarPage, PageCursor, ProviderError};
use marketpipe_provider_kit::{
    BarField, SessionFilter, WireVolume, error_text, malformed, parse_json, price,
};
use serde::Deserialize;
use url::Url;

use crate::NAME;

/// One aggregate (`vw`, `n`, `otc` optional; `v` a double that may be fractional).
#[derive(Debug, Deserialize)]
struct WireAgg {
    t: i64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: WireVolume,
    #[serde(default)]
    vw: Option<f64>,
    /// Documented as an integer; read like a volume so that `12.0` is tolerated.
    #[serde(default)]
    n: Option<WireVolume>,
}

/// The response body (`results` omitted when empty; `null` in legacy answers).
#[derive(Debug, Deserialize)]
struct WireResponse {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    results: Option<Vec<WireAgg>>,
    #[serde(default)]
    next_url: Option<String>,
}

/// Decodes one page: the bars kept by `filter`, the count of rounded fractional volumes,
/// and `next_url` as the cursor.
pub(crate) fn parse_page(
    body: &[u8],
    url: &Url,
    symbol: Symbol,
    filter: &SessionFilter,
) -> Result<BarPage, ProviderError> {
    let response: WireResponse = parse_json(NAME, url, body)?;
    match response.status.as_deref() {
        None | Some("OK" | "DELAYED") => {}
        Some("NOT_AUTHORIZED") => {
            return Err(ProviderError::Auth {
                provider: NAME.into(),
                message: format!(
                    "{}; the plan of the key in {} does not include this data",
                    error_text(body),
                    crate::CREDENTIAL_VARIABLES
                ),
            });
        }
        Some(other) => {
            return Err(ProviderError::BadRequest {
                provider: NAME.into(),
                message: format!("status {other}: {}", error_text(body)),
            });
        }
    }
    let mut page = BarPage {
        next: response
            .next_url
            .filter(|u| !u.trim().is_empty())
            .map(PageCursor),
        ..BarPage::default()
    };
    for agg in response.results.unwrap_or_default() {
        let ts = Timestamp::from_millis(agg.t).ok_or_else(|| {
            malformed(
                NAME,
                url,
                format_args!("{symbol}: t {} is out of range", agg.t),
            )
        })?;
        if !filter.keeps(ts) {
            continue;
        }
        let (bar, rounded) = to_bar(symbol, ts, &agg, url)?;
        page.fractional_volumes_rounded += u64::from(rounded);
        page.bars.push(bar);
    }
    Ok(page)
}

fn to_bar(
    symbol: Symbol,
    ts: Timestamp,
    a: &WireAgg,
    url: &Url,
) -> Result<(Bar, bool), ProviderError> {
    let field = |name: &'static str| BarField { symbol, ts, name };
    let (volume, rounded) =
        a.v.to_shares()
            .map_err(|e| malformed(NAME, url, format_args!("{}: {e}", field("v"))))?;
    let trade_count = match a.n {
        Some(n) => Some(
            n.to_shares()
                .map_err(|e| malformed(NAME, url, format_args!("{}: {e}", field("n"))))?
                .0,
        ),
        None => None,
    };
    let vwap = match a.vw {
        Some(v) => Some(price(NAME, url, &field("vw"), v)?),
        None => None,
    };
    Ok((
        Bar {
            symbol,
            ts,
            open: price(NAME, url, &field("o"), a.o)?,
            high: price(NAME, url, &field("h"), a.h)?,
            low: price(NAME, url, &field("l"), a.l)?,
            close: price(NAME, url, &field("c"), a.c)?,
            volume,
            trade_count,
            vwap,
        },
        rounded,
    ))
}
