//! # Provider simulator
//!
//! A real HTTP/1.1 server on `127.0.0.1:<random port>` that speaks the wire formats of the
//! three HTTP bar providers, as written down in the provider wire-format notes (`alpaca.md`,
//! `polygon.md`, `finnhub.md` and their "Simulator checklist" sections), and serves the
//! deterministic bars of the fake generator ([`marketpipe_fake::FakeProvider::session_bars`],
//! extended hours, on the XNYS calendar), so that what an adapter reads through the simulator
//! can be compared bar for bar with the fake provider. Tests start one with [`Simulator::start`], point an adapter at
//! [`Simulator::base_url`], switch faults at run time with [`Simulator::set_faults`] and check
//! [`Simulator::stats`] and [`Simulator::requests`] afterwards. The server stops when the
//! [`Simulator`] is dropped.
//!
//! ## Endpoints (all `GET`; one host for all three providers)
//!
//! | provider | path | client base URL |
//! | --- | --- | --- |
//! | Alpaca | `/v2/stocks/bars?symbols=A,B&timeframe=1Min&…` and `/v2/stocks/{symbol}/bars` | `base_url()` |
//! | Polygon / Massive | `/v2/aggs/ticker/{T}/range/1/minute/{from}/{to}` | `base_url()` |
//! | Finnhub | `/api/v1/stock/candle?symbol=&resolution=1&from=&to=` | `format!("{}/api/v1", base_url())` |
//! | Alpaca (Trading API) | `/v2/assets?status=&asset_class=&exchange=` | `base_url()` |
//! | Polygon / Massive | `/v3/reference/tickers?…` (paged by `next_url`) and `/v3/reference/tickers/{T}` | `base_url()` |
//! | Nasdaq Trader | `/dynamic/SymDir/nasdaqlisted.txt`, `/dynamic/SymDir/otherlisted.txt` (no key) | `format!("{}/dynamic/SymDir/", base_url())` |
//!
//! Finnhub's documented base URL is `https://finnhub.io/api/v1`, so the simulator serves the
//! candle path under `/api/v1` and a Finnhub client must be given `{base_url}/api/v1`.
//!
//! ## What it reproduces
//!
//! * **Bars**: every minute 04:00–20:00 ET of each XNYS session in the window (17:00 on early
//!   closes), like the real providers; adapters filter to the hours they want. Prices are the
//!   exact shortest decimal of the `Price` (`171.48`, `169`); Alpaca `v`/`n` are integers; Polygon
//!   `v` is written alternately as `1234` and `1234.0` (it is documented as a double, so
//!   clients must accept both); Finnhub `v` are integers. Times: Alpaca RFC 3339 `Z` strings,
//!   Polygon Unix milliseconds, Finnhub Unix seconds, always the bar start.
//! * **Alpaca**: both auth headers (missing → 401 `{"message":"unauthorized."}`, wrong →
//!   403 `{"message":"forbidden"}`); the accepted parameter list (anything else → 400
//!   `{"code":40010000,"message":"unexpected parameter(s): <names>"}`); `timeframe` `1Min`/`1T`
//!   (else 422 `invalid timeframe`); `start`/`end` as RFC 3339 (`Z` or offset, any fraction) or
//!   `YYYY-MM-DD` (a New York day: `start` = 00:00 ET, `end` = the end of that day), both
//!   inclusive; `end` before `start` → 422; `limit` 1..=10000, default 1000, counted across
//!   symbols; order symbol (alphabetical) then time (`sort=desc` reverses time within each
//!   symbol); `next_page_token` = base64 of `SYMBOL|M|<RFC 3339 nanos of the last bar>` or
//!   `null`; bogus `page_token` → 400; `feed`, `adjustment`, `sort` values checked, `asof` and
//!   `currency` accepted and ignored; malformed symbol → 400 `{"message":"invalid symbol: X"}`.
//!   Empty: `{"bars":{},"next_page_token":null}` (single endpoint: `"bars":null`). With a rate
//!   limit configured, `X-Ratelimit-Limit/Remaining/Reset` on every authenticated response.
//! * **Polygon**: key by `Authorization: Bearer` or `apiKey=` (none → 401 `API Key was not
//!   provided`, wrong → 401 `Unknown API Key`); `from`/`to` as Unix ms or `YYYY-MM-DD` (New York
//!   day), inclusive, snapped to the minute; `adjusted`, `sort`, `limit` (default 5000, values
//!   above 50000 are clamped to 50000); `next_url` absolute, on this server, without the key:
//!   `{from}` (or `{to}` with `sort=desc`) replaced by the next bar's ms, the query replaced by
//!   `cursor=<base64url of limit=…&sort=…&adjusted=…>`; no `next_url` on the last page; empty →
//!   no `results`/`count` keys and `resultsCount` 0; 32-hex `request_id`s.
//! * **Finnhub**: token by `X-Finnhub-Token` or `token=` (none → 401 with the "API limit
//!   reached. Please sign up…" text, wrong → 401 `{"error":"Invalid API key"}`); free keys →
//!   403 `{"error":"You don't have access to this resource."}`; parallel arrays `c h l o s t v`;
//!   `{"s":"no_data"}` for empty windows, for `to` before `from` and for windows longer than 31
//!   days (the documented one-month intraday cap); `from`/`to` Unix seconds, inclusive.
//! * **Rate limits** ([`SimRateLimit`]): per key and provider, a fixed window that starts at the
//!   key's first request, on tokio's clock (so a test with a paused clock moves it with
//!   `tokio::time::advance`); over the limit → the provider's own 429 body, `X-Ratelimit-*` for
//!   Alpaca and Finnhub, `Retry-After` (seconds to the window's end, rounded up) when asked.
//!   A 429 does not use up the window.
//! * **Sessions without bars** ([`SimulatorConfig::no_bars`]): a symbol's session the
//!   providers have nothing for (a halt, a listing gap) is left out of every answer.
//! * **Faults** ([`Faults`]): bursts of dropped connections, forced 429s, 500/503s, HTML 502s,
//!   truncated and malformed JSON, slow responses, bars repeated across pages.
//!
//! ## Request pipeline
//!
//! Each request is recorded, then: unknown path → 404 `Not Found` (plain text), non-GET →
//! 405; authentication (failures count in [`SimStats::auth_failures`]); the rate limit (429s
//! count in [`SimStats::rate_limited`]); then at most one burst fault, taken in the order
//! dropped connection, forced 429, server error, HTML error, truncated JSON, malformed JSON
//! (each counts in [`SimStats::faults_injected`]); then parameter validation and the answer.
//! [`Faults::slow`] delays every response, including error answers and dropped connections.
//!
//! ## What it does not cover
//!
//! Timeframes other than one minute (Alpaca `5Min`, Polygon `range/5/minute`, Finnhub
//! `resolution=5` are refused with a 422/400); split/dividend adjustment (the fake has no
//! corporate actions, so `adjusted`/`adjustment` do not change the bars); unknown-but-valid
//! symbols (every well-formed symbol has fake bars); gaps inside sessions; fractional Polygon
//! volume, missing `n`/`vw`, legacy `"results": null`; gzip response compression; Alpaca
//! `feed`-dependent volumes, SIP-recency 403s and `asof` symbol mapping; Polygon plan
//! entitlements (403 `NOT_AUTHORIZED`); Finnhub's 30-per-second cap on top of the configured
//! window; HTTP/2 and TLS.
//!
//! ## Layout
//!
//! `server.rs` is the shared core: the hyper server on loopback, the request pipeline above
//! (recording, routing, authentication, the rate limit, faults, the delay) and the request
//! log. Each provider's wire format is one module (`alpaca.rs`, `polygon.rs`, `finnhub.rs`)
//! implementing the core's `WireFormat` trait: the paths it owns, its authentication, its
//! 429, 500 and malformed bodies, and its answers. `bars.rs` holds the bar windows and JSON
//! number helpers they share, `codec.rs` base64 and percent decoding. A new provider is one
//! module plus one line in `wire_formats` below (and, when it has keys of its own, a field of
//! [`SimulatorConfig`]).

mod alpaca;
mod bars;
mod codec;
mod finnhub;
mod polygon;
mod reference;
mod server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use reference::SimSecurity;
use server::{Core, WireFormat, accept_loop};

/// The wire formats the simulator speaks, in routing order (the first that owns a path
/// answers it). A new provider adds its module above and one line here.
fn wire_formats(config: &SimulatorConfig) -> Vec<Box<dyn WireFormat>> {
    vec![
        Box::new(alpaca::Alpaca::new(config)),
        Box::new(polygon::Polygon::new(config)),
        Box::new(finnhub::Finnhub::new(config)),
        Box::new(reference::AlpacaAssets::new(config)),
        Box::new(reference::PolygonReference::new(config)),
        Box::new(reference::NasdaqTrader::new(config)),
    ]
}

// ------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------

/// What the simulator accepts and how it misbehaves. `Default` accepts no key at all, has no
/// rate limit and no faults.
#[derive(Debug, Clone, Default)]
pub struct SimulatorConfig {
    /// Accepted Alpaca `(key id, secret)` pairs, sent as the `APCA-API-KEY-ID` and
    /// `APCA-API-SECRET-KEY` headers.
    pub alpaca_keys: Vec<(String, String)>,
    /// Accepted Polygon keys, sent as `Authorization: Bearer <key>` or `?apiKey=<key>`.
    pub polygon_keys: Vec<String>,
    /// Premium Finnhub keys (candles allowed), sent as `X-Finnhub-Token` or `?token=`.
    pub finnhub_keys: Vec<String>,
    /// Valid but free Finnhub keys: `/stock/candle` answers 403
    /// `{"error":"You don't have access to this resource."}`.
    pub finnhub_free_keys: Vec<String>,
    /// The per-key rate limit, applied to every provider; `None` = unlimited.
    pub rate_limit: Option<SimRateLimit>,
    /// The faults active from the start (see [`Simulator::set_faults`]).
    pub faults: Faults,
    /// `(symbol, session date)` pairs the providers have no bars for (a halt, a listing
    /// gap): every provider answers those sessions empty, as the real ones do.
    pub no_bars: Vec<(String, chrono::NaiveDate)>,
    /// The securities the reference endpoints list (Alpaca `/v2/assets`, Polygon
    /// `/v3/reference/tickers` and ticker details).
    pub securities: Vec<SimSecurity>,
    /// The Nasdaq Trader directory files served at `/dynamic/SymDir/`: the text of
    /// `nasdaqlisted.txt` and of `otherlisted.txt`, served as given.
    pub symbol_directory: Option<(String, String)>,
}

/// A fixed-window rate limit per key: at most `requests` accepted requests in `window`, the
/// window starting at the key's first request (and again at its first request after the
/// window ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimRateLimit {
    /// Accepted requests per window.
    pub requests: u32,
    /// The window length.
    pub window: Duration,
    /// Whether a 429 carries `Retry-After: <seconds until the window ends, rounded up>`.
    pub retry_after: bool,
}

/// Injected faults. The counters are bursts: each of the next N authenticated requests that
/// the rate limit lets through gets the fault, and the counter goes down as they fire. At most
/// one fault fires per request, taken in this order: `dropped_connections`, `forced_429`,
/// `server_errors`, `html_errors`, `truncated_json`, `malformed_json`.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// The next N requests answer, alternately, 500 with the provider's JSON error body and
    /// 503 with a plain-text body (`Service Unavailable`), starting with the 500.
    pub server_errors: u32,
    /// The next N requests answer 502 with an nginx HTML page (`Content-Type: text/html`).
    pub html_errors: u32,
    /// The next N requests get no response: the connection is closed after the request is read.
    pub dropped_connections: u32,
    /// The next N requests answer 200 with the normal JSON body cut in half (the
    /// `Content-Length` matches the cut body, so the HTTP message itself is complete).
    pub truncated_json: u32,
    /// The next N requests answer 200 with a body that is not the documented shape,
    /// alternately valid JSON with wrong types (strings for numbers, `null`s, a number for the
    /// page token) and text that is not JSON at all (`{"bars": [}}garbage`), starting with
    /// the wrong types.
    pub malformed_json: u32,
    /// The next N requests answer the provider's own 429 body with `Retry-After: 1` (these do
    /// not use up the rate-limit window and count as faults, not in `rate_limited`).
    pub forced_429: u32,
    /// Delay every response (errors and dropped connections included) by this much.
    pub slow: Option<Duration>,
    /// Repeat the last bar of each page as the first bar of the next page (Alpaca and
    /// Polygon; Finnhub has no pages). Applies only when the page size is at least 2, so that
    /// paging still advances; not counted in `faults_injected`.
    pub duplicate_across_pages: bool,
}

/// Counters since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request received.
    pub requests: u64,
    /// 200 answers with the documented body (data or empty), faults excluded.
    pub ok: u64,
    /// 429 answers from the configured rate limit (forced 429s are faults).
    pub rate_limited: u64,
    /// 401/403 answers for a missing, wrong or (Finnhub) free key.
    pub auth_failures: u64,
    /// Burst faults fired (see [`Faults`]; `slow` and `duplicate_across_pages` not counted).
    pub faults_injected: u64,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// When it arrived, on tokio's clock (so in virtual time when a test pauses the clock).
    pub at: Instant,
    /// `GET`, …
    pub method: String,
    /// The path, as sent (percent-encoded).
    pub path: String,
    /// The query string without `?`, as sent; empty when there was none.
    pub query: String,
    /// The status answered; 0 when the connection was dropped (or the answer is not sent yet).
    pub status: u16,
    /// The request headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
}

/// A running simulator; the server stops when this is dropped.
pub struct Simulator {
    shared: Arc<Core>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.shared.base_url())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves on a tokio task (HTTP/1.1, keep-alive) until dropped.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let formats = wire_formats(&config);
        let shared = Arc::new(Core::new(formats, config, format!("http://{addr}")));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            shared,
            addr,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_owned()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the faults (burst counters included) for the following requests.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The faults still pending (the burst counters go down as they fire).
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Stops the server and waits until the listener and every connection are closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The accept loop (and with it every connection) is dropped when this returns.
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
