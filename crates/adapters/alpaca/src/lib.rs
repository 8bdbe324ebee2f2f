//! # marketpipe-alpaca
//!
//! The Alpaca Market Data v2 adapter: an adapter behind the `MarketDataProvider` port that
//! reads 1-minute bars from `GET /v2/stocks/bars` (many symbols per request). In the
//! hexagonal architecture it depends only on the domain, the ports and
//! `marketpipe-provider-kit`, which owns the HTTP transport (rate limit, retries, circuit
//! breaker, secrets); this crate translates requests into Alpaca's query and Alpaca's JSON
//! into domain `Bar`s and port errors.
//!
//! - **Auth**: headers `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`, from the configuration
//!   keys `key_id`/`secret_key` (`${VAR}` placeholders allowed), else `ALPACA_KEY_ID` /
//!   `ALPACA_SECRET_KEY`, else `APCA_API_KEY_ID` / `APCA_API_SECRET_KEY`.
//! - **Base URL**: `https://data.alpaca.markets`; `MP_ALPACA_BASE_URL` or the configured
//!   `base_url` override it.
//! - **Query**: `symbols` comma-joined, `timeframe=1Min`, `start`/`end` RFC 3339 UTC,
//!   `limit` (the request's page size, at most and by default 10 000, counted across
//!   symbols), `adjustment`, `feed` (default `sip`), `sort=asc`, and `page_token` from the
//!   previous page's `next_page_token` (the port's cursor).
//! - **End bound**: the port's ranges are half-open `[start, end)` while Alpaca's `end` is
//!   inclusive, so the adapter sends the last whole second before `end` (`end` − 1 s for a
//!   whole-second `end`): every 1-minute bar starts on a whole second, so a bar starting
//!   at `end` is excluded and the one starting a minute earlier is included, and the value
//!   needs no fractional seconds.
//! - **Bars**: `t` (RFC 3339, the bar's start) becomes UTC nanoseconds; prices are rounded to
//!   1e-9; `v`, `n`, `vw` as sent (`n`/`vw` may be absent, a fractional `v` is rounded to the
//!   nearest share, ties away from zero, and counted). A symbol's bars may continue on the
//!   next page; `"bars": null` is an empty page. Only bars inside the request's range and
//!   session hours are kept (Alpaca sends 04:00–20:00 ET whatever was asked).
//! - **Asset master**: [`AlpacaAssets`] lists `GET /v2/assets` of the Trading API as a
//!   `SymbolMasterSource` for `mp symbols update --source alpaca` (see [`assets`]).
//! - **Errors**: 401/403 → `Auth` naming the variables to set (a 403 about SIP data also
//!   says that free plans may query SIP bars only when older than 15 minutes); 400/422 →
//!   `BadRequest` with Alpaca's message; 404 → `NotFound`; 429 and 5xx are retried by the
//!   kit.

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{
    Adjustment, BarPage, BarRequest, MarketDataProvider, ProviderError, ProviderInfo, RateLimit,
};
use marketpipe_provider_kit::{
    Env, HttpClient, HttpClientConfig, HttpMetrics, ProviderSettings, Secret, SetupError,
    error_text, inclusive_end_second, prepare_request, recent_session, resolve_base_url,
    resolve_secret,
};
use url::Url;

pub mod assets;
mod wire;

pub use assets::AlpacaAssets;

/// The registry name.
pub const NAME: &str = "alpaca";

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://data.alpaca.markets";

/// Bars one page carries at most (Alpaca's `limit` maximum, across symbols).
pub const MAX_PAGE_SIZE: usize = 10_000;

/// Symbols one request carries at most (kept well below URL-length trouble).
pub const MAX_SYMBOLS_PER_REQUEST: usize = 100;

/// The feeds the adapter accepts.
pub const FEEDS: [&str; 3] = ["iex", "sip", "delayed_sip"];

/// The feed used when a request names none.
pub const DEFAULT_FEED: &str = "sip";

/// The free plan's budget: 200 requests per minute.
pub const FREE_RATE_LIMIT: RateLimit = RateLimit::per_minute(200);

/// The environment variables that carry the credentials, for messages.
pub const CREDENTIAL_VARIABLES: &str =
    "ALPACA_KEY_ID and ALPACA_SECRET_KEY (or APCA_API_KEY_ID / APCA_API_SECRET_KEY)";

const KEY_ID_VARS: [&str; 2] = ["ALPACA_KEY_ID", "APCA_API_KEY_ID"];
const SECRET_KEY_VARS: [&str; 2] = ["ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY"];

/// The symbol the connection test asks for.
const TEST_SYMBOL: &str = "AAPL";

/// What Alpaca offers, with the free plan's rate limit.
pub fn info() -> ProviderInfo {
    ProviderInfo {
        name: NAME.into(),
        display_name: "Alpaca Market Data v2".into(),
        feeds: FEEDS.iter().map(|f| (*f).to_owned()).collect(),
        default_feed: Some(DEFAULT_FEED.into()),
        max_symbols_per_request: MAX_SYMBOLS_PER_REQUEST,
        max_page_size: MAX_PAGE_SIZE,
        rate_limit: Some(FREE_RATE_LIMIT),
        history_start: NaiveDate::from_ymd_opt(2016, 1, 1),
        requires_credentials: true,
        supports_extended_hours: true,
        retries_internally: true,
    }
}

fn credentials(
    settings: &ProviderSettings,
    env: &dyn Env,
) -> Result<Option<(Secret, Secret)>, SetupError> {
    let key_id = resolve_secret(NAME, settings, "key_id", &KEY_ID_VARS, env)?;
    let secret_key = resolve_secret(NAME, settings, "secret_key", &SECRET_KEY_VARS, env)?;
    Ok(key_id.zip(secret_key))
}

/// The key pair (a missing one is [`SetupError::MissingCredentials`] naming the variables to
/// set), the base URL resolved as `url_name` from `url_settings` (`MP_<URL_NAME>_BASE_URL`,
/// else `default_url`), and the HTTP client with the settings' rate limit and retries.
fn connect(
    settings: &ProviderSettings,
    env: &dyn Env,
    url_name: &str,
    url_settings: &ProviderSettings,
    default_url: &str,
) -> Result<(HttpClient, Secret, Secret), SetupError> {
    let (key_id, secret_key) =
        credentials(settings, env)?.ok_or_else(|| SetupError::MissingCredentials {
            provider: NAME.into(),
            variables: CREDENTIAL_VARIABLES.into(),
        })?;
    let base_url = resolve_base_url(url_name, url_settings, default_url, env)?;
    let config = HttpClientConfig::from_settings(NAME, base_url, Some(FREE_RATE_LIMIT), settings);
    Ok((HttpClient::new(config)?, key_id, secret_key))
}

/// Whether both credentials can be resolved from `settings` and `env`.
pub fn credentials_present(settings: &ProviderSettings, env: &dyn Env) -> bool {
    matches!(credentials(settings, env), Ok(Some(_)))
}

/// The Alpaca provider. Cloning shares the HTTP client, so clones share one rate limiter
/// and circuit breaker.
#[derive(Debug, Clone)]
pub struct AlpacaProvider {
    client: HttpClient,
    key_id: Secret,
    secret_key: Secret,
}

impl AlpacaProvider {
    /// Resolves credentials and the base URL and builds the HTTP client. Missing
    /// credentials are [`SetupError::MissingCredentials`] naming the variables to set.
    pub fn new(settings: &ProviderSettings, env: &dyn Env) -> Result<Self, SetupError> {
        let (client, key_id, secret_key) =
            connect(settings, env, NAME, settings, DEFAULT_BASE_URL)?;
        Ok(Self {
            client,
            key_id,
            secret_key,
        })
    }

    /// The transport's cumulative metrics.
    pub fn metrics(&self) -> HttpMetrics {
        self.client.metrics()
    }

    /// The URL of one page: `/v2/stocks/bars` with the query described in the crate docs.
    /// `None` when the range holds no whole second (nothing to ask for).
    fn bars_url(&self, request: &BarRequest) -> Result<Option<Url>, ProviderError> {
        let feed = request.feed.as_deref().unwrap_or(DEFAULT_FEED);
        if !FEEDS.contains(&feed) {
            return Err(ProviderError::Unsupported {
                provider: NAME.into(),
                what: format!("feed {feed:?} (use one of {})", FEEDS.join(", ")),
            });
        }
        let start = request.range.start();
        let end = inclusive_end_second(request.range.end());
        if request.range.is_empty() || end < start {
            return Ok(None);
        }
        let symbols: Vec<&str> = request.symbols.iter().map(Symbol::as_str).collect();
        let limit = request
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let mut url = self.client.endpoint(&["v2", "stocks", "bars"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("symbols", &symbols.join(","))
                .append_pair("timeframe", "1Min")
                .append_pair("start", &start.to_rfc3339())
                .append_pair("end", &end.to_rfc3339())
                .append_pair("limit", &limit.to_string())
                .append_pair("adjustment", adjustment(request.adjustment))
                .append_pair("feed", feed)
                .append_pair("sort", "asc");
            if let Some(cursor) = &request.cursor {
                q.append_pair("page_token", &cursor.0);
            }
        }
        Ok(Some(url))
    }

    fn headers(&self) -> [(&'static str, &Secret); 2] {
        [
            ("APCA-API-KEY-ID", &self.key_id),
            ("APCA-API-SECRET-KEY", &self.secret_key),
        ]
    }
}

fn adjustment(a: Adjustment) -> &'static str {
    match a {
        Adjustment::Raw => "raw",
        Adjustment::Split => "split",
        Adjustment::Dividend => "dividend",
        Adjustment::All => "all",
    }
}

/// Alpaca's error bodies (`{"code":…,"message":…}` or `{"message":…}`) to port errors.
fn classify(status: u16, body: &[u8]) -> Option<ProviderError> {
    let text = error_text(body);
    match status {
        401 | 403 => {
            let hint = if text.contains("SIP") || text.contains("subscription") {
                format!(
                    "the plan does not cover this data: free plans may query SIP bars only \
                     when they are older than 15 minutes, so ask for feed iex or delayed_sip \
                     or end the range earlier; the credentials come from {CREDENTIAL_VARIABLES}"
                )
            } else {
                format!(
                    "check the credentials: set {CREDENTIAL_VARIABLES} to a valid market-data \
                     key pair"
                )
            };
            Some(ProviderError::Auth {
                provider: NAME.into(),
                message: format!("HTTP {status}: {text}; {hint}"),
            })
        }
        400 | 422 => Some(ProviderError::BadRequest {
            provider: NAME.into(),
            message: format!("HTTP {status}: {text}"),
        }),
        404 => Some(ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "the bars endpoint /v2/stocks/bars (HTTP 404: {text}); check the base URL: \
                 bars are served by {DEFAULT_BASE_URL}, not by the trading API hosts"
            ),
        }),
        _ => None,
    }
}

#[async_trait]
impl MarketDataProvider for AlpacaProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            rate_limit: self.client.rate_limit(),
            ..info()
        }
    }

    async fn fetch_bars(&self, request: &BarRequest) -> Result<BarPage, ProviderError> {
        let filter = prepare_request(NAME, request, MAX_SYMBOLS_PER_REQUEST)?;
        let Some(url) = self.bars_url(request)? else {
            return Ok(BarPage::default());
        };
        let response = self
            .client
            .get(url.clone(), &self.headers(), &classify)
            .await?;
        let mut page = wire::parse_page(&response.body, &url, request, &filter)?;
        page.stats = response.stats;
        Ok(page)
    }

    /// Asks for the first five regular minutes of AAPL on a recent past session.
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
            page_size: Some(5),
            cursor: None,
        };
        self.fetch_bars(&request).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests;
