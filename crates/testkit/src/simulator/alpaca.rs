//! Alpaca's market-data v2 bars: `/v2/stocks/bars?symbols=…` and `/v2/stocks/{symbol}/bars`,
//! both auth headers, the documented parameter checks, token paging across symbols and the
//! `X-Ratelimit-*` headers (see the module documentation of the simulator).

use chrono::{DateTime, SecondsFormat, Utc};
use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{Bar, Symbol, Timestamp};

use super::SimulatorConfig;
use super::bars::{SymbolBars, Window, json_price, json_str, ny_day, parse_date, vwap_of};
use super::codec::{STANDARD_ALPHABET, base64_decode, base64_encode, percent_decode};
use super::server::{Core, Reply, RequestInfo, WireFormat};

const ALPACA_JSON: &str = "application/json; charset=UTF-8";
const ALPACA_MAX_LIMIT: usize = 10_000;
const ALPACA_DEFAULT_LIMIT: usize = 1_000;

/// Alpaca's wire format, with the accepted `(key id, secret)` pairs.
pub(super) struct Alpaca {
    keys: Vec<(String, String)>,
}

impl Alpaca {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        Self {
            keys: config.alpaca_keys.clone(),
        }
    }
}

/// The two endpoints.
enum Endpoint<'a> {
    /// `/v2/stocks/bars?symbols=…`
    Multi,
    /// `/v2/stocks/{symbol}/bars`, with the symbol segment as sent.
    Single(&'a str),
}

impl<'a> Endpoint<'a> {
    fn of(path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["", "v2", "stocks", "bars"] => Some(Self::Multi),
            ["", "v2", "stocks", symbol, "bars"] => Some(Self::Single(symbol)),
            _ => None,
        }
    }

    const fn symbol(&self) -> Option<&'a str> {
        match self {
            Self::Multi => None,
            Self::Single(symbol) => Some(symbol),
        }
    }
}

impl WireFormat for Alpaca {
    fn name(&self) -> &'static str {
        "alpaca"
    }

    fn owns(&self, path: &str) -> bool {
        Endpoint::of(path).is_some()
    }

    fn authenticate(&self, _core: &Core, incoming: &RequestInfo) -> Result<String, Reply> {
        let id = incoming.header("apca-api-key-id");
        let secret = incoming.header("apca-api-secret-key");
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(Reply::new(
                401,
                ALPACA_JSON,
                r#"{"message":"unauthorized."}"#,
            ));
        };
        if self.keys.iter().any(|(k, s)| k == id && s == secret) {
            Ok(id.to_owned())
        } else {
            Err(Reply::new(403, ALPACA_JSON, r#"{"message":"forbidden"}"#))
        }
    }

    fn sends_rate_headers(&self) -> bool {
        true
    }

    fn too_many_requests(&self, _core: &Core) -> Reply {
        Reply::new(429, ALPACA_JSON, r#"{"message":"too many requests."}"#)
    }

    fn server_error(&self, _core: &Core) -> Reply {
        Reply::new(
            500,
            ALPACA_JSON,
            r#"{"code":50010000,"message":"internal server error occurred"}"#,
        )
    }

    fn malformed(&self, incoming: &RequestInfo, not_json: bool) -> Reply {
        let body = if not_json {
            r#"{"bars": [}}garbage"#
        } else if matches!(Endpoint::of(&incoming.path), Some(Endpoint::Single(_))) {
            r#"{"bars":{"t":1710509400,"o":"171.17"},"symbol":5,"next_page_token":[]}"#
        } else {
            r#"{"bars":{"AAPL":[{"t":1710509400,"o":"171.17","h":null,"l":[],"c":{},"v":"x","n":-1,"vw":true}]},"next_page_token":7}"#
        };
        Reply::new(200, ALPACA_JSON, body)
    }

    fn serve(&self, core: &Core, incoming: &RequestInfo, duplicate: bool) -> Reply {
        match Endpoint::of(&incoming.path) {
            Some(endpoint) => bars_answer(core, incoming, endpoint.symbol(), duplicate),
            None => Reply::new(404, super::server::TEXT_PLAIN, "Not Found"),
        }
    }
}

const ALPACA_PARAMS: [&str; 11] = [
    "symbols",
    "timeframe",
    "start",
    "end",
    "limit",
    "adjustment",
    "feed",
    "asof",
    "currency",
    "sort",
    "page_token",
];
const ALPACA_FEEDS: [&str; 6] = ["iex", "sip", "delayed_sip", "boats", "overnight", "otc"];
const ALPACA_ADJUSTMENTS: [&str; 5] = ["raw", "split", "dividend", "all", "spin-off"];

struct AlpacaQuery {
    /// Sorted, without duplicates.
    symbols: Vec<Symbol>,
    window: Window,
    limit: usize,
    desc: bool,
    /// Index into `symbols` and the last bar's time of the previous page.
    token: Option<(usize, Timestamp)>,
}

fn alpaca_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::new(
        status,
        ALPACA_JSON,
        format!(r#"{{"code":{code},"message":{}}}"#, json_str(message)),
    )
}

fn alpaca_bad_value(message: &str) -> Reply {
    alpaca_error(400, 40_010_001, message)
}

fn alpaca_unprocessable(message: &str) -> Reply {
    alpaca_error(422, 42_210_000, message)
}

/// `start`/`end`: RFC 3339 or `YYYY-MM-DD` (a New York day; `end` = its last nanosecond).
fn parse_alpaca_time(text: &str, end: bool) -> Option<Timestamp> {
    if let Some(date) = parse_date(text) {
        let (first, last) = ny_day(date);
        return Some(if end { last } else { first });
    }
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    Timestamp::from_datetime(parsed.with_timezone(&Utc)).ok()
}

fn alpaca_token(symbol: Symbol, last: Timestamp) -> String {
    let text = format!(
        "{symbol}|M|{}",
        last.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
    );
    base64_encode(text.as_bytes(), STANDARD_ALPHABET, true)
}

fn parse_alpaca_token(token: &str, symbols: &[Symbol]) -> Option<(usize, Timestamp)> {
    let bytes = base64_decode(token)?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('|');
    let (symbol, kind, ts) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || kind != "M" {
        return None;
    }
    let index = symbols.iter().position(|s| s.as_str() == symbol)?;
    let ts = Timestamp::parse_rfc3339(ts).ok()?;
    Some((index, ts))
}

/// The bars answer of either endpoint (`single` = the symbol segment of the single one).
fn bars_answer(
    core: &Core,
    incoming: &RequestInfo,
    single: Option<&str>,
    duplicate: bool,
) -> Reply {
    let query = match alpaca_query(incoming, single) {
        Ok(query) => query,
        Err(reply) => return reply,
    };
    // The repeated bar needs a page size of 2 or more for paging to advance.
    let duplicate = duplicate && query.limit >= 2;
    let mut bars: Vec<Bar> = Vec::new();
    let mut more = false;
    let first = query.token.map_or(0, |(index, _)| index);
    'symbols: for (index, symbol) in query.symbols.iter().enumerate().skip(first) {
        let window = match query.token {
            Some((token_index, last)) if token_index == index => {
                query.window.after(last, query.desc, duplicate)
            }
            _ => query.window,
        };
        for bar in SymbolBars::new(core.fake(), *symbol, window, query.desc)
            .without(core.no_bars_of(*symbol))
        {
            if bars.len() == query.limit {
                more = true;
                break 'symbols;
            }
            bars.push(bar);
        }
    }
    let token = match bars.last() {
        Some(last) if more => json_str(&alpaca_token(last.symbol, last.ts)),
        _ => "null".to_owned(),
    };
    let body = if let Some(symbol) = single {
        let list = if bars.is_empty() {
            "null".to_owned()
        } else {
            alpaca_bar_list(&bars)
        };
        format!(
            r#"{{"bars":{list},"symbol":{},"next_page_token":{token}}}"#,
            json_str(&percent_decode(symbol).unwrap_or_default())
        )
    } else {
        {
            let mut groups = Vec::new();
            for chunk in bars.chunk_by(|a, b| a.symbol == b.symbol) {
                if let Some(first) = chunk.first() {
                    groups.push(format!(
                        "{}:{}",
                        json_str(first.symbol.as_str()),
                        alpaca_bar_list(chunk)
                    ));
                }
            }
            format!(
                r#"{{"bars":{{{}}},"next_page_token":{token}}}"#,
                groups.join(",")
            )
        }
    };
    Reply::new(200, ALPACA_JSON, body).with_header("X-Request-ID", core.request_id())
}

fn alpaca_bar_list(bars: &[Bar]) -> String {
    let items: Vec<String> = bars
        .iter()
        .map(|bar| {
            format!(
                r#"{{"t":"{}","o":{},"h":{},"l":{},"c":{},"v":{},"n":{},"vw":{}}}"#,
                bar.ts.to_rfc3339(),
                json_price(bar.open),
                json_price(bar.high),
                json_price(bar.low),
                json_price(bar.close),
                bar.volume,
                bar.trade_count.unwrap_or(0),
                json_price(vwap_of(bar)),
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn alpaca_query(incoming: &RequestInfo, single: Option<&str>) -> Result<AlpacaQuery, Reply> {
    let mut unexpected: Vec<&str> = Vec::new();
    for (name, _) in &incoming.params {
        let allowed =
            ALPACA_PARAMS.contains(&name.as_str()) && !(single.is_some() && name == "symbols");
        if !allowed && !unexpected.contains(&name.as_str()) {
            unexpected.push(name);
        }
    }
    if !unexpected.is_empty() {
        return Err(alpaca_error(
            400,
            40_010_000,
            &format!("unexpected parameter(s): {}", unexpected.join(", ")),
        ));
    }
    let symbols = alpaca_symbols(incoming, single)?;
    if !matches!(incoming.param("timeframe"), Some("1Min" | "1T")) {
        return Err(alpaca_unprocessable("invalid timeframe"));
    }
    let window = alpaca_window(incoming)?;
    let limit = match incoming.param("limit") {
        None => ALPACA_DEFAULT_LIMIT,
        Some(text) => match text.parse::<i64>() {
            Err(_) => return Err(alpaca_bad_value(&format!("invalid limit: {text}"))),
            Ok(n) => match usize::try_from(n) {
                Ok(n) if (1..=ALPACA_MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(alpaca_unprocessable(&format!(
                        "invalid limit: must be between 1 and {ALPACA_MAX_LIMIT}"
                    )));
                }
            },
        },
    };
    if let Some(feed) = incoming.param("feed")
        && !ALPACA_FEEDS.contains(&feed)
    {
        return Err(alpaca_bad_value(&format!("invalid feed: {feed}")));
    }
    if let Some(adjustment) = incoming.param("adjustment")
        && !adjustment
            .split(',')
            .all(|a| ALPACA_ADJUSTMENTS.contains(&a.trim()))
    {
        return Err(alpaca_bad_value(&format!(
            "invalid adjustment: {adjustment}"
        )));
    }
    let desc = match incoming.param("sort") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(alpaca_bad_value(&format!("invalid sort: {other}"))),
    };
    let token = match incoming.param("page_token") {
        None | Some("") => None,
        Some(text) => Some(
            parse_alpaca_token(text, &symbols)
                .ok_or_else(|| alpaca_bad_value("invalid page token"))?,
        ),
    };
    Ok(AlpacaQuery {
        symbols,
        window,
        limit,
        desc,
        token,
    })
}

fn alpaca_symbols(incoming: &RequestInfo, single: Option<&str>) -> Result<Vec<Symbol>, Reply> {
    let texts: Vec<String> = match single {
        Some(segment) => vec![percent_decode(segment).unwrap_or_else(|| segment.to_owned())],
        None => incoming
            .param("symbols")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    if texts.is_empty() {
        return Err(alpaca_bad_value("missing symbols"));
    }
    let mut symbols = Vec::with_capacity(texts.len());
    for text in &texts {
        let symbol = Symbol::new(text).map_err(|_| {
            Reply::new(
                400,
                ALPACA_JSON,
                format!(
                    r#"{{"message":{}}}"#,
                    json_str(&format!("invalid symbol: {text}"))
                ),
            )
        })?;
        symbols.push(symbol);
    }
    symbols.sort_unstable();
    symbols.dedup();
    Ok(symbols)
}

fn alpaca_window(incoming: &RequestInfo) -> Result<Window, Reply> {
    let now = Timestamp::from_datetime(Utc::now()).unwrap_or(Timestamp::EPOCH);
    let start = match incoming.param("start") {
        None => ny_day(ny_date(now)).0,
        Some(text) => parse_alpaca_time(text, false)
            .ok_or_else(|| alpaca_bad_value(&format!("invalid start: {text}")))?,
    };
    let end = match incoming.param("end") {
        None => now,
        Some(text) => parse_alpaca_time(text, true)
            .ok_or_else(|| alpaca_bad_value(&format!("invalid end: {text}")))?,
    };
    if end < start {
        return Err(alpaca_unprocessable("end should not be before start"));
    }
    Ok(Window { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpaca_times() {
        let z = parse_alpaca_time("2024-03-15T13:30:00Z", false).unwrap();
        let offset = parse_alpaca_time("2024-03-15T09:30:00-04:00", false).unwrap();
        let nanos = parse_alpaca_time("2024-03-15T13:30:00.000000000Z", false).unwrap();
        assert_eq!(z, offset);
        assert_eq!(z, nanos);
        let (start, end) = (
            parse_alpaca_time("2024-03-15", false).unwrap(),
            parse_alpaca_time("2024-03-15", true).unwrap(),
        );
        assert_eq!(start.to_rfc3339(), "2024-03-15T04:00:00Z");
        assert_eq!(
            end.saturating_add_nanos(1).to_rfc3339(),
            "2024-03-16T04:00:00Z"
        );
        assert!(parse_alpaca_time("2024-03-15 13:30", false).is_none());
    }
}
