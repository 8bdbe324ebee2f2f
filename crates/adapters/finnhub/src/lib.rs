//! # marketpipe-finnhub
//!
//! The Finnhub adapter: an adapter behind the `MarketDataProvider` port that reads 1-minute
//! candles from `GET /stock/candle`, one symbol per request. In the hexagonal architecture
//! it depends only on the domain, the ports and `marketpipe-provider-kit`, which owns the
//! HTTP transport (rate limit, retries, circuit breaker, secrets).
//!
//! Finnhub's stock candles need a **paid plan**: free keys get HTTP 403, which this adapter
//! reports as `Auth` with that explanation.
//!
//! - **Auth**: header `X-Finnhub-Token` (never the `token` query parameter), from the
//!   configuration key `api_key` (`${VAR}` placeholders allowed), else `FINNHUB_API_KEY`.
//! - **Base URL**: `https://finnhub.io/api/v1`; `MP_FINNHUB_BASE_URL` or the configured
//!   `base_url` override it.
//! - **Query**: `symbol`, `resolution=1`, `from` = the window start in Unix seconds, `to` =
//!   the last whole second before the window end (Finnhub's `to` is inclusive; the port's
//!   ranges are `[start, end)`).
//! - **Windows instead of pages**: Finnhub has no pagination and serves at most one month of
//!   intraday data per call (longer windows answer `no_data`). A request whose range is
//!   longer than [`MAX_WINDOW_DAYS`] days is cut into windows of that length: each
//!   `fetch_bars` call fetches one window, and the cursor is the next window's start (UTC
//!   nanoseconds, in decimal). The page size is ignored: a page is a whole window.
//! - **Bars**: parallel arrays `t o h l c v`; `t` (Unix seconds, the bar's start) becomes UTC
//!   nanoseconds; prices are rounded to 1e-9; Finnhub sends no VWAP and no trade count
//!   (`None`); a fractional `v` is rounded to the nearest share, ties away from zero, and
//!   counted. `{"s":"no_data"}` is an empty page. Only bars inside the request's range, the
//!   window and the session hours are kept (Finnhub sends pre- and post-market minutes).
//! - **Errors**: 401 → `Auth` naming `FINNHUB_API_KEY`; 403 → `Auth` explaining that stock
//!   candles need a paid Finnhub plan; 400/422 → `BadRequest` with Finnhub's `error` text;
//!   404 → `NotFound`; 429 and 5xx are retried by the kit.

use async_trait::async_trait;
use marketpipe_domain::time::NANOS_PER_DAY;
use marketpipe_domain::{SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{
    Adjustment, BarPage, BarRequest, MarketDataProvider, PageCursor, ProviderError, ProviderInfo,
    RateLimit,
};
use marketpipe_provider_kit::{
    Env, HttpClient, HttpClientConfig, HttpMetrics, ProviderSettings, Secret, SetupError,
    error_text, inclusive_end_second, prepare_request, recent_session, resolve_base_url,
    resolve_secret,
};
use url::Url;

mod wire;

/// The registry name.
pub const NAME: &str = "finnhub";

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://finnhub.io/api/v1";

/// The longest window one request asks for, in days (Finnhub: "one month of intraday data
/// per request").
pub const MAX_WINDOW_DAYS: i64 = 31;

/// Bars one page carries at most: every extended-hours minute (16 hours a day) of a
/// [`MAX_WINDOW_DAYS`]-day window. Finnhub has no page size; a page is one window.
pub const MAX_PAGE_SIZE: usize = 31 * 16 * 60;

/// Symbols one request carries.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 1;

/// The documented budget: 60 requests per minute (plus a 30-per-second cap, which a
/// 60-per-minute window never reaches in a burst of more than 60).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::per_minute(60);

/// The environment variable that carries the key, for messages.
pub const CREDENTIAL_VARIABLES: &str = "FINNHUB_API_KEY";

const KEY_VARS: [&str; 1] = ["FINNHUB_API_KEY"];

/// The symbol the connection test asks for.
const TEST_SYMBOL: &str = "AAPL";

/// What Finnhub offers, with the documented rate limit.
pub fn info() -> ProviderInfo {
    ProviderInfo {
        name: NAME.into(),
        display_name: "Finnhub (stock candles need a paid plan)".into(),
        feeds: Vec::new(),
        default_feed: None,
        max_symbols_per_request: MAX_SYMBOLS_PER_REQUEST,
        max_page_size: MAX_PAGE_SIZE,
        rate_limit: Some(DEFAULT_RATE_LIMIT),
        history_start: None,
        requires_credentials: true,
        supports_extended_hours: true,
        retries_internally: true,
    }
}

fn api_key(settings: &ProviderSettings, env: &dyn Env) -> Result<Option<Secret>, SetupError> {
    resolve_secret(NAME, settings, "api_key", &KEY_VARS, env)
}

/// Whether the key can be resolved from `settings` and `env`.
pub fn credentials_present(settings: &ProviderSettings, env: &dyn Env) -> bool {
    matches!(api_key(settings, env), Ok(Some(_)))
}

/// The Finnhub provider. Cloning shares the HTTP client, so clones share one rate limiter
/// and circuit breaker.
#[derive(Debug, Clone)]
pub struct FinnhubProvider {
    client: HttpClient,
    token: Secret,
}

/// One request's window: `[start, end)`, and where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: Timestamp,
    end: Timestamp,
    next: Option<Timestamp>,
}

impl FinnhubProvider {
    /// Resolves the key and the base URL and builds the HTTP client. A missing key is
    /// [`SetupError::MissingCredentials`] naming `FINNHUB_API_KEY`.
    pub fn new(settings: &ProviderSettings, env: &dyn Env) -> Result<Self, SetupError> {
        let token = api_key(settings, env)?.ok_or_else(|| SetupError::MissingCredentials {
            provider: NAME.into(),
            variables: CREDENTIAL_VARIABLES.into(),
        })?;
        let base_url = resolve_base_url(NAME, settings, DEFAULT_BASE_URL, env)?;
        let config =
            HttpClientConfig::from_settings(NAME, base_url, Some(DEFAULT_RATE_LIMIT), settings);
        Ok(Self {
            client: HttpClient::new(config)?,
            token,
        })
    }

    /// The transport's cumulative metrics.
    pub fn metrics(&self) -> HttpMetrics {
        self.client.metrics()
    }

    /// The candle URL of one window; `None` when the window holds no whole second.
    fn candle_url(&self, symbol: Symbol, window: Window) -> Option<Url> {
        let from = window.start.nanos().div_euclid(1_000_000_000);
        let to = inclusive_end_second(window.end)
            .nanos()
            .div_euclid(1_000_000_000);
        if window.start >= window.end || to < from {
            return None;
        }
        let mut url = self.client.endpoint(&["stock", "candle"]);
        url.query_pairs_mut()
            .append_pair("symbol", symbol.as_str())
            .append_pair("resolution", "1")
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string());
        Some(url)
    }
}

/// The window a request asks for: from its cursor (or its start), at most
/// [`MAX_WINDOW_DAYS`] days, within its range.
fn window(request: &BarRequest) -> Result<Window, ProviderError> {
    let range = request.range;
    let start = match &request.cursor {
        None => range.start(),
        Some(cursor) => cursor
            .0
            .parse::<i64>()
            .ok()
            .map(Timestamp::from_nanos)
            .filter(|t| range.start() <= *t && *t < range.end())
            .ok_or_else(|| ProviderError::BadRequest {
                provider: NAME.into(),
                message: "invalid page cursor (not a window start inside the request's range)"
                    .into(),
            })?,
    };
    let limit = start.saturating_add_nanos(MAX_WINDOW_DAYS * NANOS_PER_DAY);
    let end = limit.min(range.end());
    Ok(Window {
        start,
        end,
        next: (end < range.end()).then_some(end),
    })
}

/// Finnhub's error bodies (`{"error":…}`) to port errors.
fn classify(status: u16, body: &[u8]) -> Option<ProviderError> {
    let text = error_text(body);
    match status {
        401 => Some(ProviderError::Auth {
            provider: NAME.into(),
            message: format!("HTTP 401: {text}; set {CREDENTIAL_VARIABLES} to a valid API key"),
        }),
        403 => Some(ProviderError::Auth {
            provider: NAME.into(),
            message: format!(
                "HTTP 403: {text}; Finnhub's stock candles (/stock/candle) need a paid Finnhub \
                 plan, and free keys are refused: set {CREDENTIAL_VARIABLES} to the key of a \
                 plan that includes stock candles, or use another provider"
            ),
        }),
        400 | 422 => Some(ProviderError::BadRequest {
            provider: NAME.into(),
            message: format!("HTTP {status}: {text}"),
        }),
        404 => Some(ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "the candle endpoint (HTTP 404: {text}); check the base URL, which includes \
                 /api/v1 ({DEFAULT_BASE_URL})"
            ),
        }),
        _ => None,
    }
}

#[async_trait]
impl MarketDataProvider for FinnhubProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            rate_limit: self.client.rate_limit(),
            ..info()
        }
    }

    async fn fetch_bars(&self, request: &BarRequest) -> Result<BarPage, ProviderError> {
        let filter = prepare_request(NAME, request, MAX_SYMBOLS_PER_REQUEST)?;
        let Some(&symbol) = request.symbols.first() else {
            return Ok(BarPage::default());
        };
        if request.range.is_empty() {
            return Ok(BarPage::default());
        }
        let window = window(request)?;
        let next = window.next.map(|t| PageCursor(t.nanos().to_string()));
        let Some(url) = self.candle_url(symbol, window) else {
            return Ok(BarPage {
                next,
                ..BarPage::default()
            });
        };
        let headers = [("X-Finnhub-Token", &self.token)];
        let response = self.client.get(url.clone(), &headers, &classify).await?;
        let range =
            TimeRange::new(window.start, window.end).map_err(|e| ProviderError::BadRequest {
                provider: NAME.into(),
                message: e.to_string(),
            })?;
        let mut page = wire::parse_page(&response.body, &url, symbol, &filter, range)?;
        page.next = next;
        page.stats = response.stats;
        Ok(page)
    }

    /// Asks for the first five regular minutes of AAPL on a recent past session (a free
    /// key fails here with the paid-plan explanation).
    async fn test_connection(&self) -> Result<(), ProviderError> {
        let now = Timestamp::from_datetime(chrono::Utc::now()).unwrap_or(Timestamp::EPOCH);
        let bad = |e: &dyn std::fmt::Display| ProviderError::BadRequest {
            provider: NAME.into(),
            message: e.to_string(),
        };
        let session = recent_session(now).map_err(|e| bad(&e))?;
        let symbol = Symbol::new(TEST_SYMBOL).map_err(|e| bad(&e))?;
        let range = TimeRange::new(
            session.open,
            session.open.saturating_add_nanos(5 * 60 * 1_000_000_000),
        )
        .map_err(|e| bad(&e))?;
        let request = BarRequest {
            symbols: vec![symbol],
            range,
            timeframe: Timeframe::M1,
            session: SessionKind::Regular,
            feed: None,
            adjustment: Adjustment::Raw,
            page_size: None,
            cursor: None,
        };
        self.fetch_bars(&request).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests;
