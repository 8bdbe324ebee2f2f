//! The reference-data endpoints of the symbol master, over the securities of
//! [`SimulatorConfig::securities`]: Alpaca's `GET /v2/assets` (Trading API: both auth headers,
//! one JSON array, `status`/`asset_class`/`exchange` filters) and Polygon's
//! `GET /v3/reference/tickers` (key by bearer or `apiKey=`; `market`, `active`, `type`,
//! `exchange`, `ticker`, `limit` default 100 max 1000, `sort=ticker`, `order`; `next_url`
//! absolute, without the key, with an opaque `cursor`; `count` = the page's size) and
//! `GET /v3/reference/tickers/{ticker}` (overview with `market_cap`, `sic_code`,
//! `sic_description`; unknown → 404 `NOT_FOUND` "Ticker not found.").

use serde_json::{Value, json};

use super::SimulatorConfig;
use super::codec::{URL_ALPHABET, base64_decode, base64_encode};
use super::server::{Core, Reply, RequestInfo, WireFormat};

const JSON: &str = "application/json";

/// One security as the reference endpoints describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSecurity {
    /// The ticker as both vendors write it here (`BRK.B`; Polygon preferreds as `ABRpD`).
    pub ticker: String,
    /// The name.
    pub name: String,
    /// The primary exchange's MIC (`XNAS`, `XNYS`, `XASE`, `ARCX`, `BATS`, `IEXG`).
    pub mic: String,
    /// Polygon's type code (`CS`, `ETF`, `PFD`, …).
    pub kind: String,
    /// Market capitalisation, in the ticker details.
    pub market_cap: Option<f64>,
    /// SIC code, in the ticker details.
    pub sic_code: Option<String>,
    /// Still listed (`active` / `status`).
    pub active: bool,
}

impl SimSecurity {
    /// An active common stock with no details.
    pub fn stock(ticker: &str, name: &str, mic: &str) -> Self {
        Self {
            ticker: ticker.into(),
            name: name.into(),
            mic: mic.into(),
            kind: "CS".into(),
            market_cap: None,
            sic_code: None,
            active: true,
        }
    }

    fn alpaca_exchange(&self) -> &'static str {
        match self.mic.as_str() {
            "XNAS" => "NASDAQ",
            "XNYS" => "NYSE",
            "XASE" => "AMEX",
            "ARCX" => "ARCA",
            "BATS" => "BATS",
            _ => "",
        }
    }
}

/// Alpaca's `/v2/assets`.
pub(super) struct AlpacaAssets {
    keys: Vec<(String, String)>,
    securities: Vec<SimSecurity>,
}

impl AlpacaAssets {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        Self {
            keys: config.alpaca_keys.clone(),
            securities: config.securities.clone(),
        }
    }
}

impl WireFormat for AlpacaAssets {
    fn name(&self) -> &'static str {
        "alpaca"
    }

    fn owns(&self, path: &str) -> bool {
        path == "/v2/assets"
    }

    fn authenticate(&self, _core: &Core, incoming: &RequestInfo) -> Result<String, Reply> {
        let id = incoming.header("apca-api-key-id");
        let secret = incoming.header("apca-api-secret-key");
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(Reply::new(
                401,
                JSON,
                r#"{"code":40110000,"message":"request is not authorized"}"#,
            ));
        };
        if self.keys.iter().any(|(k, s)| k == id && s == secret) {
            Ok(id.to_owned())
        } else {
            Err(Reply::new(
                403,
                JSON,
                r#"{"code":40310000,"message":"forbidden"}"#,
            ))
        }
    }

    fn sends_rate_headers(&self) -> bool {
        true
    }

    fn too_many_requests(&self, _core: &Core) -> Reply {
        Reply::new(
            429,
            JSON,
            r#"{"code":42910000,"message":"rate limit exceeded"}"#,
        )
    }

    fn server_error(&self, _core: &Core) -> Reply {
        Reply::new(
            500,
            JSON,
            r#"{"code":50010000,"message":"internal server error"}"#,
        )
    }

    fn malformed(&self, _incoming: &RequestInfo, not_json: bool) -> Reply {
        let body = if not_json {
            "[{]garbage"
        } else {
            r#"[{"symbol":7,"name":[]}]"#
        };
        Reply::new(200, JSON, body)
    }

    fn serve(&self, _core: &Core, incoming: &RequestInfo, _duplicate: bool) -> Reply {
        // `status` defaults to every status; `asset_class` to us_equity.
        let status = incoming.param("status");
        if incoming
            .param("asset_class")
            .is_some_and(|c| c != "us_equity")
        {
            return Reply::new(200, JSON, "[]");
        }
        let exchange = incoming.param("exchange");
        let assets: Vec<Value> = self
            .securities
            .iter()
            .filter(|s| match status {
                Some("active") => s.active,
                Some("inactive") => !s.active,
                _ => true,
            })
            .filter(|s| exchange.is_none_or(|e| e == s.alpaca_exchange()))
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": format!("00000000-0000-4000-8000-{i:012}"),
                    "class": "us_equity",
                    "exchange": s.alpaca_exchange(),
                    "symbol": s.ticker,
                    "name": s.name,
                    "status": if s.active { "active" } else { "inactive" },
                    "tradable": s.active,
                    "marginable": true,
                    "shortable": true,
                    "borrow_status": "easy_to_borrow",
                    "fractionable": true,
                    "margin_requirement_long": "30",
                    "margin_requirement_short": "100",
                    "attributes": ["has_options"],
                })
            })
            .collect();
        Reply::new(200, JSON, Value::Array(assets).to_string())
    }
}

/// Polygon's `/v3/reference/tickers` and `/v3/reference/tickers/{ticker}`.
pub(super) struct PolygonReference {
    keys: Vec<String>,
    securities: Vec<SimSecurity>,
}

impl PolygonReference {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        let mut securities = config.securities.clone();
        securities.sort_by(|a, b| a.ticker.cmp(&b.ticker));
        Self {
            keys: config.polygon_keys.clone(),
            securities,
        }
    }
}

fn error_body(core: &Core, status: &str, key: &str, text: &str) -> String {
    json!({"status": status, "request_id": core.request_id(), key: text}).to_string()
}

impl WireFormat for PolygonReference {
    fn name(&self) -> &'static str {
        "polygon"
    }

    fn owns(&self, path: &str) -> bool {
        path == "/v3/reference/tickers"
            || path
                .strip_prefix("/v3/reference/tickers/")
                .is_some_and(|t| !t.is_empty() && !t.contains('/'))
    }

    fn authenticate(&self, core: &Core, incoming: &RequestInfo) -> Result<String, Reply> {
        super::polygon::polygon_key(&self.keys, core, incoming)
    }

    fn sends_rate_headers(&self) -> bool {
        false
    }

    fn too_many_requests(&self, core: &Core) -> Reply {
        Reply::new(
            429,
            JSON,
            error_body(
                core,
                "ERROR",
                "error",
                "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://polygon.io/pricing",
            ),
        )
    }

    fn server_error(&self, core: &Core) -> Reply {
        Reply::new(
            500,
            JSON,
            error_body(core, "ERROR", "error", "Internal Server Error"),
        )
    }

    fn malformed(&self, _incoming: &RequestInfo, not_json: bool) -> Reply {
        let body = if not_json {
            r#"{"results": [}}garbage"#
        } else {
            r#"{"results":[{"ticker":5}],"status":"OK"}"#
        };
        Reply::new(200, JSON, body)
    }

    fn serve(&self, core: &Core, incoming: &RequestInfo, _duplicate: bool) -> Reply {
        match incoming.path.strip_prefix("/v3/reference/tickers/") {
            Some(ticker) => self.details(core, ticker),
            None => self.list(core, incoming),
        }
    }
}

impl PolygonReference {
    fn details(&self, core: &Core, ticker: &str) -> Reply {
        let ticker = super::codec::percent_decode(ticker).unwrap_or_default();
        let Some(s) = self.securities.iter().find(|s| s.ticker == ticker) else {
            return Reply::new(
                404,
                JSON,
                error_body(core, "NOT_FOUND", "message", "Ticker not found."),
            );
        };
        let mut results = ticker_json(s);
        results["market_cap"] = json!(s.market_cap);
        results["sic_code"] = json!(s.sic_code);
        results["sic_description"] = json!(s.sic_code.as_ref().map(|_| "SIMULATED INDUSTRY"));
        results["round_lot"] = json!(100);
        let body = json!({"results": results, "status": "OK", "request_id": core.request_id()});
        Reply::new(200, JSON, body.to_string())
    }

    fn list(&self, core: &Core, incoming: &RequestInfo) -> Reply {
        // A cursor carries the original query and the offset; the filters are not sent again.
        let decoded;
        let (query, offset): (Vec<(String, String)>, usize) = match incoming.param("cursor") {
            Some(cursor) => {
                decoded = base64_decode(cursor).and_then(|b| String::from_utf8(b).ok());
                let Some(text) = decoded.as_deref() else {
                    return Reply::new(
                        400,
                        JSON,
                        error_body(core, "ERROR", "error", "invalid cursor"),
                    );
                };
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let offset = pairs
                    .iter()
                    .find(|(k, _)| k == "page_marker")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                (pairs, offset)
            }
            None => (incoming.params.clone(), 0),
        };
        let get = |name: &str| {
            query
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let limit = match get("limit").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => {
                return Reply::new(
                    400,
                    JSON,
                    error_body(core, "ERROR", "error", "limit must be between 1 and 1000"),
                );
            }
        };
        if get("market").is_some_and(|m| m != "stocks") {
            return page(core, &[], None);
        }
        let active = get("active") != Some("false");
        let selected: Vec<&SimSecurity> = self
            .securities
            .iter()
            .filter(|s| s.active == active)
            .filter(|s| get("type").is_none_or(|t| t == s.kind))
            .filter(|s| get("exchange").is_none_or(|e| e == s.mic))
            .filter(|s| get("ticker").is_none_or(|t| t == s.ticker))
            .collect();
        let mut ordered = selected;
        if get("order") == Some("desc") {
            ordered.reverse();
        }
        let chunk: Vec<Value> = ordered
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| ticker_json(s))
            .collect();
        let next = (offset + limit < ordered.len()).then(|| {
            let mut carried: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "page_marker" && k != "apiKey" && k != "cursor")
                .cloned()
                .collect();
            carried.push(("page_marker".into(), (offset + limit).to_string()));
            let text = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(carried)
                .finish();
            format!(
                "{}/v3/reference/tickers?cursor={}",
                core.base_url(),
                base64_encode(text.as_bytes(), URL_ALPHABET, false)
            )
        });
        page(core, &chunk, next)
    }
}

fn page(core: &Core, results: &[Value], next_url: Option<String>) -> Reply {
    let count = results.len();
    let mut body = json!({
        "results": results,
        "status": "OK",
        "request_id": core.request_id(),
        "count": count,
    });
    if let Some(next) = next_url {
        body["next_url"] = json!(next);
    }
    Reply::new(200, JSON, body.to_string())
}

fn ticker_json(s: &SimSecurity) -> Value {
    let mut value = json!({
        "ticker": s.ticker,
        "name": s.name,
        "market": "stocks",
        "locale": "us",
        "primary_exchange": s.mic,
        "type": s.kind,
        "active": s.active,
        "currency_name": "usd",
        "last_updated_utc": "2024-03-01T00:00:00Z",
    });
    if !s.active {
        value["delisted_utc"] = json!("2024-02-01T00:00:00Z");
    }
    value
}

/// The Nasdaq Trader symbol directory: `GET /dynamic/SymDir/nasdaqlisted.txt` and
/// `/dynamic/SymDir/otherlisted.txt` (no key), serving [`SimulatorConfig::symbol_directory`]
/// as given (so a test can serve a truncated file); 404 when none is configured.
pub(super) struct NasdaqTrader {
    files: Option<(String, String)>,
}

impl NasdaqTrader {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        Self {
            files: config.symbol_directory.clone(),
        }
    }
}

const SYMDIR: &str = "/dynamic/SymDir/";

impl WireFormat for NasdaqTrader {
    fn name(&self) -> &'static str {
        "nasdaq-trader"
    }

    fn owns(&self, path: &str) -> bool {
        path.strip_prefix(SYMDIR)
            .is_some_and(|f| f == "nasdaqlisted.txt" || f == "otherlisted.txt")
    }

    fn authenticate(&self, _core: &Core, _incoming: &RequestInfo) -> Result<String, Reply> {
        Ok("public".into())
    }

    fn sends_rate_headers(&self) -> bool {
        false
    }

    fn too_many_requests(&self, _core: &Core) -> Reply {
        Reply::new(429, super::server::TEXT_PLAIN, "Too Many Requests")
    }

    fn server_error(&self, _core: &Core) -> Reply {
        Reply::new(500, super::server::TEXT_PLAIN, "Internal Server Error")
    }

    fn malformed(&self, _incoming: &RequestInfo, _not_json: bool) -> Reply {
        Reply::new(
            200,
            super::server::TEXT_PLAIN,
            "<html>not a directory file</html>",
        )
    }

    fn serve(&self, _core: &Core, incoming: &RequestInfo, _duplicate: bool) -> Reply {
        let file = incoming.path.strip_prefix(SYMDIR).unwrap_or("");
        match (&self.files, file) {
            (Some((nasdaq, _)), "nasdaqlisted.txt") => {
                Reply::new(200, super::server::TEXT_PLAIN, nasdaq.clone())
            }
            (Some((_, other)), "otherlisted.txt") => {
                Reply::new(200, super::server::TEXT_PLAIN, other.clone())
            }
            _ => Reply::new(404, super::server::TEXT_PLAIN, "Not Found"),
        }
    }
}
