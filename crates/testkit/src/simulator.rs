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
//!   key's first request; over the limit → the provider's own 429 body, `X-Ratelimit-*` for
//!   Alpaca and Finnhub, `Retry-After` (seconds to the window's end, rounded up) when asked.
//!   A 429 does not use up the window.
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

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use marketpipe_domain::calendar::{FIRST_YEAR, LAST_YEAR, ny_date, ny_instant};
use marketpipe_domain::time::NANOS_PER_MINUTE;
use marketpipe_domain::{
    Bar, DateRange, Price, Session, SessionKind, Symbol, Timestamp, TradingCalendar,
};
use marketpipe_fake::FakeProvider;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

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
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves on a tokio task (HTTP/1.1, keep-alive) until dropped.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            shared,
            addr,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
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

// ------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------

/// The maximum span of one Finnhub intraday request (one month, as documented).
const FINNHUB_MAX_SPAN_SECS: i64 = 31 * 86_400;
const ALPACA_MAX_LIMIT: usize = 10_000;
const ALPACA_DEFAULT_LIMIT: usize = 1_000;
const POLYGON_MAX_LIMIT: usize = 50_000;
const POLYGON_DEFAULT_LIMIT: usize = 5_000;

const ALPACA_JSON: &str = "application/json; charset=UTF-8";
const POLYGON_JSON: &str = "application/json";
const FINNHUB_JSON: &str = "application/json; charset=utf-8";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html";

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

struct Shared {
    base_url: String,
    alpaca_keys: Vec<(String, String)>,
    polygon_keys: Vec<String>,
    finnhub_keys: Vec<String>,
    finnhub_free_keys: Vec<String>,
    rate_limit: Option<SimRateLimit>,
    fake: FakeProvider,
    id_seed: u64,
    ids: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    faults: Faults,
    stats: SimStats,
    requests: Vec<RecordedRequest>,
    windows: HashMap<String, KeyWindow>,
    server_errors_fired: u64,
    malformed_fired: u64,
}

struct KeyWindow {
    /// Tokio's clock, so that tests with a paused clock move the window in virtual time.
    started: tokio::time::Instant,
    started_wall: SystemTime,
    used: u32,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping the set (when this task is aborted) aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(error) => {
                    tracing::debug!(%error, "simulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = service_fn(move |request| handle(Arc::clone(&shared), request));
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = result {
        tracing::trace!(%error, "simulator: connection ended");
    }
}

/// The service's error: hyper closes the connection without writing a response.
#[derive(Debug)]
struct DroppedConnection;

impl fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated dropped connection")
    }
}

impl std::error::Error for DroppedConnection {}

/// What the handler needs of a request.
struct RequestInfo {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
}

impl RequestInfo {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a query parameter.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let incoming = RequestInfo {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        params: url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        query,
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let index = shared.record(&incoming);
    let (action, delay) = shared.decide(&incoming);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let (reply, ok) = match action {
        Action::Reply(reply) => (reply, false),
        Action::Serve(serve) => {
            let Some(answer) = shared.answer(&incoming, serve) else {
                shared.finish(index, 0, false);
                return Err(DroppedConnection);
            };
            answer
        }
    };
    shared.finish(index, reply.status, ok);
    Ok(reply.into_response())
}

/// A response to send.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, self.content_type);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::from(self.body)))
            .unwrap_or_else(|_| {
                let mut fallback = Response::new(Full::new(Bytes::new()));
                *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                fallback
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Alpaca,
    Polygon,
    Finnhub,
}

enum Route {
    AlpacaMulti,
    AlpacaSingle(String),
    Polygon(PolygonPath),
    Finnhub,
}

impl Route {
    const fn provider(&self) -> Provider {
        match self {
            Self::AlpacaMulti | Self::AlpacaSingle(_) => Provider::Alpaca,
            Self::Polygon(_) => Provider::Polygon,
            Self::Finnhub => Provider::Finnhub,
        }
    }
}

/// The path segments of a Polygon aggregates request, as sent (percent-encoded).
struct PolygonPath {
    ticker: String,
    multiplier: String,
    timespan: String,
    from: String,
    to: String,
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "v2", "stocks", "bars"] => Some(Route::AlpacaMulti),
        ["", "v2", "stocks", symbol, "bars"] => Some(Route::AlpacaSingle((*symbol).to_owned())),
        [
            "",
            "v2",
            "aggs",
            "ticker",
            ticker,
            "range",
            multiplier,
            timespan,
            from,
            to,
        ] => Some(Route::Polygon(PolygonPath {
            ticker: (*ticker).to_owned(),
            multiplier: (*multiplier).to_owned(),
            timespan: (*timespan).to_owned(),
            from: (*from).to_owned(),
            to: (*to).to_owned(),
        })),
        ["", "api", "v1", "stock", "candle"] => Some(Route::Finnhub),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Dropped,
    Forced429,
    ServerError { json: bool },
    Html,
    Truncated,
    Malformed { not_json: bool },
}

/// An authenticated request that passed the rate limit.
struct Serve {
    route: Route,
    fault: Option<Fault>,
    rate_headers: Vec<(&'static str, String)>,
    duplicate: bool,
}

enum Action {
    Reply(Reply),
    Serve(Serve),
}

enum RateCheck {
    Allowed,
    Limited { retry_after_secs: u64 },
}

impl Shared {
    fn new(config: SimulatorConfig, base_url: String) -> Self {
        let id_seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5eed, |d| {
                u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0x5eed)
            });
        Self {
            base_url,
            alpaca_keys: config.alpaca_keys,
            polygon_keys: config.polygon_keys,
            finnhub_keys: config.finnhub_keys,
            finnhub_free_keys: config.finnhub_free_keys,
            rate_limit: config.rate_limit,
            fake: FakeProvider::new(),
            id_seed,
            ids: AtomicU64::new(0),
            state: Mutex::new(State {
                faults: config.faults,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, incoming: &RequestInfo) -> usize {
        let mut state = self.lock();
        state.stats.requests += 1;
        state.requests.push(RecordedRequest {
            // Tokio's clock (as a std instant): virtual time under a paused test clock.
            at: tokio::time::Instant::now().into_std(),
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            status: 0,
            headers: incoming.headers.clone(),
        });
        state.requests.len() - 1
    }

    fn finish(&self, index: usize, status: u16, ok: bool) {
        let mut state = self.lock();
        if let Some(recorded) = state.requests.get_mut(index) {
            recorded.status = status;
        }
        if ok {
            state.stats.ok += 1;
        }
    }

    /// A Polygon-style request id: 32 lower-case hex digits.
    fn request_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(self.id_seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = splitmix64(a);
        format!("{a:016x}{b:016x}")
    }

    /// Routing, authentication, rate limit and fault selection, under the lock. Returns the
    /// action and the delay to apply before answering.
    fn decide(&self, incoming: &RequestInfo) -> (Action, Option<Duration>) {
        let mut state = self.lock();
        let delay = state.faults.slow;
        let Some(route) = route(&incoming.path) else {
            return (
                Action::Reply(Reply::new(404, TEXT_PLAIN, "Not Found")),
                delay,
            );
        };
        if incoming.method != "GET" {
            return (
                Action::Reply(Reply::new(405, TEXT_PLAIN, "Method Not Allowed")),
                delay,
            );
        }
        let provider = route.provider();
        let key = match self.authenticate(provider, incoming) {
            Ok(key) => key,
            Err(reply) => {
                state.stats.auth_failures += 1;
                return (Action::Reply(reply), delay);
            }
        };
        let now = tokio::time::Instant::now();
        if let Some(limit) = self.rate_limit
            && let RateCheck::Limited { retry_after_secs } = state.check_rate(&key, limit, now)
        {
            state.stats.rate_limited += 1;
            let mut reply = self.too_many_requests(provider);
            reply
                .headers
                .extend(state.rate_headers(provider, &key, limit));
            if limit.retry_after {
                reply = reply.with_header("Retry-After", retry_after_secs.to_string());
            }
            return (Action::Reply(reply), delay);
        }
        let fault = state.take_fault();
        if fault.is_some() {
            state.stats.faults_injected += 1;
        }
        let mut rate_headers = Vec::new();
        if let Some(limit) = self.rate_limit {
            if fault != Some(Fault::Forced429)
                && let Some(window) = state.windows.get_mut(&key)
            {
                window.used = window.used.saturating_add(1);
            }
            rate_headers = state.rate_headers(provider, &key, limit);
        }
        let serve = Serve {
            route,
            fault,
            rate_headers,
            duplicate: state.faults.duplicate_across_pages,
        };
        (Action::Serve(serve), delay)
    }

    /// The rate-limit key (`provider:key`) or the provider's 401/403 answer.
    fn authenticate(&self, provider: Provider, incoming: &RequestInfo) -> Result<String, Reply> {
        match provider {
            Provider::Alpaca => {
                let id = incoming.header("apca-api-key-id");
                let secret = incoming.header("apca-api-secret-key");
                let (Some(id), Some(secret)) = (id, secret) else {
                    return Err(Reply::new(
                        401,
                        ALPACA_JSON,
                        r#"{"message":"unauthorized."}"#,
                    ));
                };
                if self.alpaca_keys.iter().any(|(k, s)| k == id && s == secret) {
                    Ok(format!("alpaca:{id}"))
                } else {
                    Err(Reply::new(403, ALPACA_JSON, r#"{"message":"forbidden"}"#))
                }
            }
            Provider::Polygon => {
                let bearer = incoming.header("authorization").and_then(|value| {
                    let (scheme, token) = value.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                });
                let candidates: Vec<&str> =
                    bearer.into_iter().chain(incoming.param("apiKey")).collect();
                if let Some(key) = candidates
                    .iter()
                    .find(|c| self.polygon_keys.iter().any(|k| k == *c))
                {
                    return Ok(format!("polygon:{key}"));
                }
                let error = if candidates.iter().all(|c| c.is_empty()) {
                    "API Key was not provided"
                } else {
                    "Unknown API Key"
                };
                Err(Reply::new(
                    401,
                    POLYGON_JSON,
                    polygon_error_body(&self.request_id(), error),
                ))
            }
            Provider::Finnhub => {
                let candidates: Vec<&str> = incoming
                    .header("x-finnhub-token")
                    .into_iter()
                    .chain(incoming.param("token"))
                    .filter(|c| !c.is_empty())
                    .collect();
                if let Some(key) = candidates
                    .iter()
                    .find(|c| self.finnhub_keys.iter().any(|k| k == *c))
                {
                    return Ok(format!("finnhub:{key}"));
                }
                if candidates
                    .iter()
                    .any(|c| self.finnhub_free_keys.iter().any(|k| k == c))
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
        }
    }

    fn too_many_requests(&self, provider: Provider) -> Reply {
        match provider {
            Provider::Alpaca => Reply::new(429, ALPACA_JSON, r#"{"message":"too many requests."}"#),
            Provider::Polygon => Reply::new(
                429,
                POLYGON_JSON,
                polygon_error_body(
                    &self.request_id(),
                    "You've exceeded the maximum requests per minute, please wait or upgrade your \
                     subscription to continue. https://polygon.io/pricing",
                ),
            ),
            Provider::Finnhub => finnhub_error(
                429,
                "API limit reached. Please try again later. Remaining Limit: 0",
            ),
        }
    }

    /// Builds the answer of an authenticated request; `None` = drop the connection. The flag
    /// says whether it counts as `ok`.
    fn answer(&self, incoming: &RequestInfo, serve: Serve) -> Option<(Reply, bool)> {
        let provider = serve.route.provider();
        let (mut reply, ok) = match serve.fault {
            Some(Fault::Dropped) => return None,
            Some(Fault::Forced429) => (
                self.too_many_requests(provider)
                    .with_header("Retry-After", "1"),
                false,
            ),
            Some(Fault::ServerError { json: true }) => (self.server_error(provider), false),
            Some(Fault::ServerError { json: false }) => {
                (Reply::new(503, TEXT_PLAIN, "Service Unavailable"), false)
            }
            Some(Fault::Html) => (Reply::new(502, TEXT_HTML, HTML_502), false),
            Some(Fault::Truncated) => {
                let mut reply = self.serve(incoming, &serve.route, serve.duplicate);
                let cut = reply.body.len() / 2;
                reply.body.truncate(cut);
                reply.status = 200;
                (reply, false)
            }
            Some(Fault::Malformed { not_json }) => (malformed(&serve.route, not_json), false),
            None => {
                let reply = self.serve(incoming, &serve.route, serve.duplicate);
                let ok = reply.status == 200;
                (reply, ok)
            }
        };
        reply.headers.extend(serve.rate_headers);
        Some((reply, ok))
    }

    fn server_error(&self, provider: Provider) -> Reply {
        match provider {
            Provider::Alpaca => Reply::new(
                500,
                ALPACA_JSON,
                r#"{"code":50010000,"message":"internal server error occurred"}"#,
            ),
            Provider::Polygon => Reply::new(
                500,
                POLYGON_JSON,
                polygon_error_body(&self.request_id(), "Internal Server Error"),
            ),
            Provider::Finnhub => finnhub_error(500, "Internal server error"),
        }
    }

    /// The normal answer (data, empty, or a 4xx for bad parameters).
    fn serve(&self, incoming: &RequestInfo, route: &Route, duplicate: bool) -> Reply {
        match route {
            Route::AlpacaMulti => self.alpaca(incoming, None, duplicate),
            Route::AlpacaSingle(symbol) => self.alpaca(incoming, Some(symbol), duplicate),
            Route::Polygon(path) => self.polygon(incoming, path, duplicate),
            Route::Finnhub => self.finnhub(incoming),
        }
    }
}

impl State {
    /// Whether `key` may make a request now (does not use up the window).
    fn check_rate(
        &mut self,
        key: &str,
        limit: SimRateLimit,
        now: tokio::time::Instant,
    ) -> RateCheck {
        let window = self
            .windows
            .entry(key.to_owned())
            .or_insert_with(|| KeyWindow {
                started: now,
                started_wall: SystemTime::now(),
                used: 0,
            });
        if now.duration_since(window.started) >= limit.window {
            window.started = now;
            window.started_wall = SystemTime::now();
            window.used = 0;
        }
        if window.used < limit.requests {
            return RateCheck::Allowed;
        }
        let left = (window.started + limit.window).saturating_duration_since(now);
        RateCheck::Limited {
            retry_after_secs: ceil_secs(left).max(1),
        }
    }

    /// `X-Ratelimit-*` headers for Alpaca and Finnhub (none for Polygon).
    fn rate_headers(
        &self,
        provider: Provider,
        key: &str,
        limit: SimRateLimit,
    ) -> Vec<(&'static str, String)> {
        if provider == Provider::Polygon {
            return Vec::new();
        }
        let Some(window) = self.windows.get(key) else {
            return Vec::new();
        };
        let reset = (window.started_wall + limit.window)
            .duration_since(UNIX_EPOCH)
            .map_or(0, ceil_secs);
        vec![
            ("X-Ratelimit-Limit", limit.requests.to_string()),
            (
                "X-Ratelimit-Remaining",
                limit.requests.saturating_sub(window.used).to_string(),
            ),
            ("X-Ratelimit-Reset", reset.to_string()),
        ]
    }

    /// Takes the next burst fault, in priority order.
    fn take_fault(&mut self) -> Option<Fault> {
        let faults = &mut self.faults;
        if take(&mut faults.dropped_connections) {
            return Some(Fault::Dropped);
        }
        if take(&mut faults.forced_429) {
            return Some(Fault::Forced429);
        }
        if take(&mut faults.server_errors) {
            let json = self.server_errors_fired.is_multiple_of(2);
            self.server_errors_fired += 1;
            return Some(Fault::ServerError { json });
        }
        if take(&mut faults.html_errors) {
            return Some(Fault::Html);
        }
        if take(&mut faults.truncated_json) {
            return Some(Fault::Truncated);
        }
        if take(&mut faults.malformed_json) {
            let not_json = !self.malformed_fired.is_multiple_of(2);
            self.malformed_fired += 1;
            return Some(Fault::Malformed { not_json });
        }
        None
    }
}

fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn malformed(route: &Route, not_json: bool) -> Reply {
    let (content_type, body) = match (route.provider(), not_json) {
        (Provider::Alpaca, true) => (ALPACA_JSON, r#"{"bars": [}}garbage"#),
        (Provider::Polygon, true) => (POLYGON_JSON, r#"{"results": [}}garbage"#),
        (Provider::Finnhub, true) => (FINNHUB_JSON, r#"{"c": [}}garbage"#),
        (Provider::Alpaca, false) => match route {
            Route::AlpacaSingle(_) => (
                ALPACA_JSON,
                r#"{"bars":{"t":1710509400,"o":"171.17"},"symbol":5,"next_page_token":[]}"#,
            ),
            _ => (
                ALPACA_JSON,
                r#"{"bars":{"AAPL":[{"t":1710509400,"o":"171.17","h":null,"l":[],"c":{},"v":"x","n":-1,"vw":true}]},"next_page_token":7}"#,
            ),
        },
        (Provider::Polygon, false) => (
            POLYGON_JSON,
            r#"{"ticker":"AAPL","queryCount":"1","resultsCount":1,"adjusted":"no","results":[{"v":"1432211","vw":null,"o":"x","c":[],"h":{},"l":true,"t":"2024-03-15T13:30:00Z","n":"many"}],"status":"OK","request_id":7}"#,
        ),
        (Provider::Finnhub, false) => (
            FINNHUB_JSON,
            r#"{"c":[171.48],"h":"x","l":[1,2],"o":null,"s":"ok","t":["2024-03-15"],"v":[1]}"#,
        ),
    };
    Reply::new(200, content_type, body)
}

// ------------------------------------------------------------------------------------------
// Bars
// ------------------------------------------------------------------------------------------

/// An inclusive instant window `[start, end]`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Timestamp,
    end: Timestamp,
}

impl Window {
    /// The part after `last` in the paging direction (`last` itself kept when `inclusive`).
    fn after(self, last: Timestamp, desc: bool, inclusive: bool) -> Self {
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
struct SymbolBars {
    fake: FakeProvider,
    symbol: Symbol,
    window: Window,
    desc: bool,
    sessions: Vec<Session>,
    taken: usize,
    buffer: std::vec::IntoIter<Bar>,
}

impl SymbolBars {
    fn new(fake: FakeProvider, symbol: Symbol, window: Window, desc: bool) -> Self {
        Self {
            fake,
            symbol,
            window,
            desc,
            sessions: sessions_in(window),
            taken: 0,
            buffer: Vec::new().into_iter(),
        }
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
fn ny_day(date: NaiveDate) -> (Timestamp, Timestamp) {
    let next = date.succ_opt().unwrap_or(date);
    (
        ny_instant(date, 0, 0),
        ny_instant(next, 0, 0).saturating_add_nanos(-1),
    )
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn millis(ts: Timestamp) -> i64 {
    ts.nanos().div_euclid(1_000_000)
}

fn seconds(ts: Timestamp) -> i64 {
    ts.nanos().div_euclid(1_000_000_000)
}

fn json_f64(value: f64) -> String {
    serde_json::Number::from_f64(value).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn json_str(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A price as a JSON number: its exact shortest decimal (`171.48`, `169`), as the providers
/// write them. (`Price::to_f64` is not correctly rounded, so printing that float could give
/// `120.53659999999999` for `120.5366`.)
fn json_price(price: Price) -> String {
    price.to_string()
}

fn vwap_of(bar: &Bar) -> Price {
    bar.vwap.unwrap_or_else(|| bar.typical_price())
}

// ------------------------------------------------------------------------------------------
// Alpaca
// ------------------------------------------------------------------------------------------

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

impl Shared {
    fn alpaca(&self, incoming: &RequestInfo, single: Option<&str>, duplicate: bool) -> Reply {
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
            for bar in SymbolBars::new(self.fake, *symbol, window, query.desc) {
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
        Reply::new(200, ALPACA_JSON, body).with_header("X-Request-ID", self.request_id())
    }
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

// ------------------------------------------------------------------------------------------
// Polygon
// ------------------------------------------------------------------------------------------

fn polygon_error_body(request_id: &str, error: &str) -> String {
    format!(
        r#"{{"status":"ERROR","request_id":"{request_id}","error":{}}}"#,
        json_str(error)
    )
}

struct PolygonQuery {
    window: Window,
    limit: usize,
    desc: bool,
    adjusted: bool,
}

/// `from`/`to`: Unix milliseconds (snapped to the minute) or a New York day.
fn parse_polygon_time(text: &str, end: bool) -> Option<Timestamp> {
    if let Some(date) = parse_date(text) {
        let (first, last) = ny_day(date);
        return Some(if end { last } else { first });
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ts = Timestamp::from_millis(text.parse::<i64>().ok()?)?;
    Some(ts.floor_to(NANOS_PER_MINUTE))
}

impl Shared {
    fn polygon_bad_request(&self, error: &str) -> Reply {
        Reply::new(
            400,
            POLYGON_JSON,
            polygon_error_body(&self.request_id(), error),
        )
    }

    fn polygon_query(
        &self,
        incoming: &RequestInfo,
        path: &PolygonPath,
    ) -> Result<PolygonQuery, Reply> {
        if path.multiplier != "1" || path.timespan != "minute" {
            return Err(self.polygon_bad_request(&format!(
                "The simulator serves range/1/minute only, not range/{}/{}",
                path.multiplier, path.timespan
            )));
        }
        let from = parse_polygon_time(&path.from, false).ok_or_else(|| {
            self.polygon_bad_request(
                "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps",
            )
        })?;
        let to = parse_polygon_time(&path.to, true).ok_or_else(|| {
            self.polygon_bad_request(
                "Could not parse the time parameter: 'to'. Use YYYY-MM-DD or Unix MS Timestamps",
            )
        })?;
        if to < from {
            return Err(self.polygon_bad_request(
                "The parameter 'to' cannot be a time that occurs before 'from'",
            ));
        }
        // The cursor carries the paging parameters; plain query parameters come second.
        let cursor: Vec<(String, String)> = match incoming.param("cursor") {
            None => Vec::new(),
            Some(text) => base64_decode(text)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(|decoded| {
                    url::form_urlencoded::parse(decoded.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .ok_or_else(|| self.polygon_bad_request("Invalid cursor"))?,
        };
        let param = |name: &str| {
            cursor
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .or_else(|| incoming.param(name))
        };
        let adjusted = match param("adjusted") {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(self.polygon_bad_request("Invalid value for 'adjusted'")),
        };
        let desc = match param("sort") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(self.polygon_bad_request("Invalid value for 'sort'")),
        };
        let limit = match param("limit") {
            None => POLYGON_DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= 1 => n.min(POLYGON_MAX_LIMIT),
                _ => return Err(self.polygon_bad_request("Invalid value for 'limit'")),
            },
        };
        Ok(PolygonQuery {
            window: Window {
                start: from,
                end: to,
            },
            limit,
            desc,
            adjusted,
        })
    }

    fn polygon(&self, incoming: &RequestInfo, path: &PolygonPath, duplicate: bool) -> Reply {
        let query = match self.polygon_query(incoming, path) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let ticker = percent_decode(&path.ticker).unwrap_or_else(|| path.ticker.clone());
        let bars: Vec<Bar> = match Symbol::new(&ticker) {
            Ok(symbol) => SymbolBars::new(self.fake, symbol, query.window, query.desc)
                .take(query.limit.saturating_add(1))
                .collect(),
            // A ticker the domain cannot hold is an unknown ticker: an empty answer.
            Err(_) => Vec::new(),
        };
        let page = &bars[..bars.len().min(query.limit)];
        let head = format!(
            r#"{{"ticker":{},"queryCount":{n},"resultsCount":{n},"adjusted":{}"#,
            json_str(&ticker),
            query.adjusted,
            n = page.len()
        );
        let request_id = self.request_id();
        if page.is_empty() {
            return Reply::new(
                200,
                POLYGON_JSON,
                format!(r#"{head},"status":"OK","request_id":"{request_id}"}}"#),
            );
        }
        let results: Vec<String> = page
            .iter()
            .map(|bar| {
                // `v` is a double on the wire: alternate the two spellings of whole numbers.
                #[allow(clippy::cast_precision_loss)]
                let volume = if (bar.ts.nanos() / NANOS_PER_MINUTE) % 2 == 0 {
                    bar.volume.to_string()
                } else {
                    json_f64(bar.volume as f64)
                };
                format!(
                    r#"{{"v":{volume},"vw":{},"o":{},"c":{},"h":{},"l":{},"t":{},"n":{}}}"#,
                    json_price(vwap_of(bar)),
                    json_price(bar.open),
                    json_price(bar.close),
                    json_price(bar.high),
                    json_price(bar.low),
                    millis(bar.ts),
                    bar.trade_count.unwrap_or(0),
                )
            })
            .collect();
        let mut body = format!(
            r#"{head},"results":[{}],"status":"OK","request_id":"{request_id}","count":{}"#,
            results.join(","),
            page.len()
        );
        if let (Some(next), Some(last)) = (bars.get(query.limit), page.last()) {
            // With the duplicate fault the next page starts at this page's last bar.
            let resume = if duplicate && query.limit >= 2 {
                last.ts
            } else {
                next.ts
            };
            let (from, to) = if query.desc {
                (path.from.clone(), millis(resume).to_string())
            } else {
                (millis(resume).to_string(), path.to.clone())
            };
            let cursor = format!(
                "limit={}&sort={}&adjusted={}",
                query.limit,
                if query.desc { "desc" } else { "asc" },
                query.adjusted
            );
            let next_url = format!(
                "{}/v2/aggs/ticker/{}/range/1/minute/{from}/{to}?cursor={}",
                self.base_url,
                path.ticker,
                base64_encode(cursor.as_bytes(), URL_ALPHABET, false)
            );
            body.push_str(r#","next_url":"#);
            body.push_str(&json_str(&next_url));
        }
        body.push('}');
        Reply::new(200, POLYGON_JSON, body)
    }
}

// ------------------------------------------------------------------------------------------
// Finnhub
// ------------------------------------------------------------------------------------------

const FINNHUB_RESOLUTIONS: [&str; 8] = ["1", "5", "15", "30", "60", "D", "W", "M"];

fn finnhub_error(status: u16, error: &str) -> Reply {
    Reply::new(
        status,
        FINNHUB_JSON,
        format!(r#"{{"error":{}}}"#, json_str(error)),
    )
}

impl Shared {
    fn finnhub(&self, incoming: &RequestInfo) -> Reply {
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
            self.fake,
            symbol,
            Window {
                start: from,
                end: to,
            },
            false,
        )
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
}

// ------------------------------------------------------------------------------------------
// Small codecs
// ------------------------------------------------------------------------------------------

const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_encode(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(alphabet[index as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    // A single leftover symbol (6 bits) cannot end a valid encoding.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

/// Decodes `%XX` escapes of a path segment; `None` when malformed or not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

const fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_both_alphabets() {
        for text in [
            "",
            "A",
            "AB",
            "ABC",
            "AAPL|M|2024-03-15T13:32:00.000000000Z",
        ] {
            let standard = base64_encode(text.as_bytes(), STANDARD_ALPHABET, true);
            let url_safe = base64_encode(text.as_bytes(), URL_ALPHABET, false);
            assert_eq!(base64_decode(&standard).unwrap(), text.as_bytes());
            assert_eq!(base64_decode(&url_safe).unwrap(), text.as_bytes());
        }
        // The examples of the wire-format docs.
        assert_eq!(
            base64_encode(
                b"AAPL|M|2024-03-15T13:32:00.000000000Z",
                STANDARD_ALPHABET,
                true
            ),
            "QUFQTHxNfDIwMjQtMDMtMTVUMTM6MzI6MDAuMDAwMDAwMDAwWg=="
        );
        assert_eq!(
            base64_encode(b"limit=5000&sort=asc", URL_ALPHABET, false),
            "bGltaXQ9NTAwMCZzb3J0PWFzYw"
        );
        assert!(base64_decode("A").is_none());
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("BRK%2EB").as_deref(), Some("BRK.B"));
        assert_eq!(percent_decode("AAPL").as_deref(), Some("AAPL"));
        assert!(percent_decode("A%2").is_none());
        assert!(percent_decode("A%zz").is_none());
    }

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

    #[test]
    fn polygon_times_snap_to_the_minute() {
        let ts = parse_polygon_time("1710509579999", true).unwrap();
        assert_eq!(millis(ts), 1_710_509_520_000);
        assert!(parse_polygon_time("-5", false).is_none());
        assert!(parse_polygon_time("2024/03/15", false).is_none());
    }

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

    #[test]
    fn request_ids_are_32_hex_digits() {
        let shared = Shared::new(SimulatorConfig::default(), "http://x".into());
        let a = shared.request_id();
        let b = shared.request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
