//! Finnhub's stock candles: `/api/v1/stock/candle?symbol=&resolution=1&from=&to=`, the token
//! by header or `token=`, premium and free keys, parallel arrays and `{"s":"no_data"}` (see
//! the module documentation of the simulator).

use marketpipe_domain::{Bar, Symbol, Timestamp};

use super::SimulatorConfig;
use super::bars::{SymbolBars, Window, json_price, json_str, seconds};
use super::server::{Core, Reply, RequestInfo, WireFormat};

const FINNHUB_JSON: &str = "application/json; charset=utf-8";
/// The maximum span of one Finnhub intraday request (one month, as documented).
const FINNHUB_MAX_SPAN_SECS: i64 = 31 * 86_400;

/// Finnhub's wire format, with the premium keys (candles allowed) and the free ones (403).
pub(super) struct Finnhub {
    keys: Vec<String>,
    free_keys: Vec<String>,
}

impl Finnhub {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        Self {
            keys: config.finnhub_keys.clone(),
            free_keys: config.finnhub_free_keys.clone(),
        }
    }
}

impl WireFormat for Finnhub {
    fn name(&self) -> &'static str {
        "finnhub"
    }

    fn owns(&self, path: &str) -> bool {
        path == "/api/v1/stock/candle"
    }

    fn authenticate(&self, _core: &Core, incoming: &RequestInfo) -> Result<String, Reply> {
        let candidates: Vec<&str> = incoming
            .header("x-finnhub-token")
            .into_iter()
            .chain(incoming.param("token"))
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(key) = candidates
            .iter()
            .find(|c| self.keys.iter().any(|k| k == *c))
        {
            return Ok((*key).to_owned());
        }
        if candidates
            .iter()
            .any(|c| self.free_keys.iter().any(|k| k == c))
        {
            return Err(finnhub_error(
                403,
                "You don't have access to this resource.",
            ));
        }
        if candidates.is_empty() {
            return Err(finnhub_error(
                401,
                "API limit reached. Please sign up for a free account to continue using the API.",
            ));
        }
        Err(finnhub_error(401, "Invalid API key"))
    }

    fn sends_rate_headers(&self) -> bool {
        true
    }

    fn too_many_requests(&self, _core: &Core) -> Reply {
        finnhub_error(
            429,
            "API limit reached. Please try again later. Remaining Limit: 0",
        )
    }

    fn server_error(&self, _core: &Core) -> Reply {
        finnhub_error(500, "Internal server error")
    }

    fn malformed(&self, _incoming: &RequestInfo, not_json: bool) -> Reply {
        let body = if not_json {
            r#"{"c": [}}garbage"#
        } else {
            r#"{"c":[171.48],"h":"x","l":[1,2],"o":null,"s":"ok","t":["2024-03-15"],"v":[1]}"#
        };
        Reply::new(200, FINNHUB_JSON, body)
    }

    fn serve(&self, core: &Core, incoming: &RequestInfo, _duplicate: bool) -> Reply {
        // No pages, so nothing to repeat across them.
        candles(core, incoming)
    }
}

const FINNHUB_RESOLUTIONS: [&str; 8] = ["1", "5", "15", "30", "60", "D", "W", "M"];

fn finnhub_error(status: u16, error: &str) -> Reply {
    Reply::new(
        status,
        FINNHUB_JSON,
        format!(r#"{{"error":{}}}"#, json_str(error)),
    )
}

/// The candles answer.
fn candles(core: &Core, incoming: &RequestInfo) -> Reply {
    let no_data = || Reply::new(200, FINNHUB_JSON, r#"{"s":"no_data"}"#);
    let Some(symbol) = incoming.param("symbol").filter(|s| !s.is_empty()) else {
        return finnhub_error(400, "Missing symbol");
    };
    match incoming.param("resolution") {
        Some("1") => {}
        Some(r) if FINNHUB_RESOLUTIONS.contains(&r) => {
            return finnhub_error(400, "The simulator serves resolution=1 only");
        }
        _ => return finnhub_error(400, "Wrong resolution"),
    }
    let parse = |name: &str| {
        incoming
            .param(name)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(Timestamp::from_secs)
    };
    let (Some(from), Some(to)) = (parse("from"), parse("to")) else {
        return finnhub_error(400, "Wrong from/to: use Unix seconds");
    };
    if to < from || seconds(to) - seconds(from) > FINNHUB_MAX_SPAN_SECS {
        return no_data();
    }
    let Ok(symbol) = Symbol::new(symbol) else {
        return no_data();
    };
    let bars: Vec<Bar> = SymbolBars::new(
        core.fake(),
        symbol,
        Window {
            start: from,
            end: to,
        },
        false,
    )
    .without(core.no_bars_of(symbol))
    .collect();
    if bars.is_empty() {
        return no_data();
    }
    let column = |f: &dyn Fn(&Bar) -> String| {
        let items: Vec<String> = bars.iter().map(f).collect();
        format!("[{}]", items.join(","))
    };
    let body = format!(
        r#"{{"c":{},"h":{},"l":{},"o":{},"s":"ok","t":{},"v":{}}}"#,
        column(&|b| json_price(b.close)),
        column(&|b| json_price(b.high)),
        column(&|b| json_price(b.low)),
        column(&|b| json_price(b.open)),
        column(&|b| seconds(b.ts).to_string()),
        column(&|b| b.volume.to_string()),
    );
    Reply::new(200, FINNHUB_JSON, body)
}
