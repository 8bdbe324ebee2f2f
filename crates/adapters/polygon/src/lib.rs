//! # marketpipe-polygon
//!
//! The Polygon.io adapter (renamed Massive.com in 2025; same API): an adapter behind the
//! `MarketDataProvider` port that reads 1-minute aggregates from
//! `GET /v2/aggs/ticker/{T}/range/1/minute/{from}/{to}`, one symbol per request. In the
//! hexagonal architecture it depends only on the domain, the ports and
//! `marketpipe-provider-kit`, which owns the HTTP transport (rate limit, retries, circuit
//! breaker, secrets).
//!
//! - **Auth**: `Authorization: Bearer <key>`; the key never goes into a URL we build. It
//!   comes from the configuration key `api_key` (`${VAR}` placeholders allowed), else
//!   `POLYGON_API_KEY`, else `MASSIVE_API_KEY`.
//! - **Base URL**: `https://api.massive.com` (`https://api.polygon.io` is still served);
//!   `MP_POLYGON_BASE_URL` or the configured `base_url` override it.
//! - **Query**: `from` = the range start in Unix ms, `to` = the last millisecond before the
//!   range end (Polygon's `to` is inclusive; the port's ranges are `[start, end)`),
//!   `adjusted=false` for raw prices (`true` for split adjustment; Polygon has no dividend
//!   adjustment, so `dividend`/`all` are `Unsupported`), `sort=asc`, `limit` = the page size
//!   (at most and by default 50 000).
//! - **Paging**: the port's cursor is Polygon's `next_url`. It carries no key; the adapter
//!   re-requests its path and query against the configured base URL (so a `next_url` naming
//!   the real host still reaches a simulator), drops any `apiKey` parameter, and sends the
//!   key in the header again. A `next_url` equal to the page just fetched is `Malformed`
//!   (a loop).
//! - **Bars**: `t` (Unix ms, the bar's start) becomes UTC nanoseconds; prices are rounded to
//!   1e-9; `vw` and `n` may be absent (`None`); `results` may be absent or `null` (an empty
//!   page). Only bars inside the request's range and session hours are kept (Polygon sends
//!   04:00–20:00 ET whatever was asked).
//! - **Fractional volume**: `v` is a double and can be fractional (fractional-share
//!   prints), while a bar's volume is whole shares. The one rule: **round to the nearest
//!   whole share, ties away from zero** (`512034.5 → 512035`, `0.4 → 0`), and count every
//!   bar whose volume was rounded in `BarPage::fractional_volumes_rounded` (the job summary
//!   reports the total). A double without a fractional part (`1234.0`) is exact and not
//!   counted.
//! - **Errors**: 401 (`Unknown API Key`, `API Key was not provided`) and 403
//!   (`NOT_AUTHORIZED`, plan entitlements) → `Auth` naming the variables to set; 400/422 →
//!   `BadRequest` with Polygon's `error` text; 404 → `NotFound`; 429 and 5xx (HTML pages
//!   included) are retried by the kit.

use async_trait::async_trait;
use marketpipe_domain::{SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{
    Adjustment, BarPage, BarRequest, MarketDataProvider, PageCursor, ProviderError, ProviderInfo,
    RateLimit,
};
use marketpipe_provider_kit::{
    Env, HttpClient, HttpClientConfig, HttpMetrics, ProviderSettings, Secret, SetupError,
    error_text, inclusive_end_millis, prepare_request, recent_session, resolve_base_url,
    resolve_secret,
};
use url::Url;

pub mod reference;
mod wire;

pub use reference::PolygonTickers;

/// The registry name.
pub const NAME: &str = "polygon";

/// The production base URL (Massive.com; `https://api.polygon.io` also works).
pub const DEFAULT_BASE_URL: &str = "https://api.massive.com";

/// Bars one page carries at most (Polygon's `limit` maximum).
pub const MAX_PAGE_SIZE: usize = 50_000;

/// Symbols one request carries.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 1;

/// The free plan's budget: 5 requests per minute.
pub const FREE_RATE_LIMIT: RateLimit = RateLimit::per_minute(5);

/// The environment variables that carry the key, for messages.
pub const CREDENTIAL_VARIABLES: &str = "POLYGON_API_KEY (or MASSIVE_API_KEY)";

const KEY_VARS: [&str; 2] = ["POLYGON_API_KEY", "MASSIVE_API_KEY"];

/// The symbol the connection test asks for.
const TEST_SYMBOL: &str = "AAPL";

/// What Polygon offers, with the free plan's rate limit.
pub fn info() -> ProviderInfo {
    ProviderInfo {
        name: NAME.into(),
        display_name: "Polygon.io / Massive".into(),
        feeds: Vec::new(),
        default_feed: None,
        max_symbols_per_request: MAX_SYMBOLS_PER_REQUEST,
        max_page_size: MAX_PAGE_SIZE,
        rate_limit: Some(FREE_RATE_LIMIT),
        // History depth depends on the plan (about 2 years on the free one).
        history_start: None,
        requires_credentials: true,
        supports_extended_hours: true,
        retries_internally: true,
    }
}

fn api_key(settings: &ProviderSettings, env: &dyn Env) -> Result<Option<Secret>, SetupError> {
    resolve_secret(NAME, settings, "api_key", &KEY_VARS, env)
}

/// The key (as the `Authorization` header's `Bearer <key>`), the base URL and the HTTP client
/// every Polygon endpoint uses; a missing key is [`SetupError::MissingCredentials`] naming
/// the variables to set.
fn connect(settings: &ProviderSettings, env: &dyn Env) -> Result<(HttpClient, Secret), SetupError> {
    let key = api_key(settings, env)?.ok_or_else(|| SetupError::MissingCredentials {
        provider: NAME.into(),
        variables: CREDENTIAL_VARIABLES.into(),
    })?;
    let base_url = resolve_base_url(NAME, settings, DEFAULT_BASE_URL, env)?;
    let config = HttpClientConfig::from_settings(NAME, base_url, Some(FREE_RATE_LIMIT), settings);
    Ok((
        HttpClient::new(config)?,
        Secret::new(format!("Bearer {}", key.expose())),
    ))
}

/// Whether the key can be resolved from `settings` and `env`.
pub fn credentials_present(settings: &ProviderSettings, env: &dyn Env) -> bool {
    matches!(api_key(settings, env), Ok(Some(_)))
}

/// The Polygon provider. Cloning shares the HTTP client, so clones share one rate limiter
/// and circuit breaker.
#[derive(Debug, Clone)]
pub struct PolygonProvider {
    client: HttpClient,
    /// `Bearer <key>`, the `Authorization` header's value.
    bearer: Secret,
}

impl PolygonProvider {
    /// Resolves the key and the base URL and builds the HTTP client. A missing key is
    /// [`SetupError::MissingCredentials`] naming the variables to set.
    pub fn new(settings: &ProviderSettings, env: &dyn Env) -> Result<Self, SetupError> {
        let (client, bearer) = connect(settings, env)?;
        Ok(Self { client, bearer })
    }

    /// The transport's cumulative metrics.
    pub fn metrics(&self) -> HttpMetrics {
        self.client.metrics()
    }

    /// The URL of the page: the first page's aggregates URL, or the cursor's `next_url`
    /// rebased onto the configured base URL. `None` when the range is empty.
    fn page_url(&self, request: &BarRequest, symbol: Symbol) -> Result<Option<Url>, ProviderError> {
        if let Some(cursor) = &request.cursor {
            return self.follow(cursor, symbol).map(Some);
        }
        let adjusted = match request.adjustment {
            Adjustment::Raw => "false",
            Adjustment::Split => "true",
            Adjustment::Dividend | Adjustment::All => {
                return Err(ProviderError::Unsupported {
                    provider: NAME.into(),
                    what: "dividend adjustment: Polygon adjusts for splits only (ask for raw \
                           or split)"
                        .into(),
                });
            }
        };
        let from = request.range.start().nanos().div_euclid(1_000_000);
        let to = inclusive_end_millis(request.range.end());
        if request.range.is_empty() || to < from {
            return Ok(None);
        }
        let limit = request
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let (from, to) = (from.to_string(), to.to_string());
        let mut url = self.client.endpoint(&[
            "v2",
            "aggs",
            "ticker",
            symbol.as_str(),
            "range",
            "1",
            "minute",
            &from,
            &to,
        ]);
        url.query_pairs_mut()
            .append_pair("adjusted", adjusted)
            .append_pair("sort", "asc")
            .append_pair("limit", &limit.to_string());
        Ok(Some(url))
    }

    /// `next_url`'s path and query on the configured base URL, without any `apiKey`.
    fn follow(&self, cursor: &PageCursor, symbol: Symbol) -> Result<Url, ProviderError> {
        let bad = |why: &str| ProviderError::BadRequest {
            provider: NAME.into(),
            message: format!("invalid page cursor: {why}"),
        };
        let base = self.client.base_url();
        let next = Url::parse(&cursor.0)
            .or_else(|_| base.join(&cursor.0))
            .map_err(|_| bad("not a URL"))?;
        let path = path_below_base(base, &next);
        let mut segments = path.trim_start_matches('/').split('/');
        if segments.next() != Some("v2")
            || segments.next() != Some("aggs")
            || segments.next() != Some("ticker")
        {
            return Err(bad("not an aggregates URL"));
        }
        if segments.next() != Some(symbol.as_str()) {
            return Err(bad(&format!("not a page of {symbol}")));
        }
        Ok(on_base(base, path, &next))
    }
}

/// `next`'s path without the configured base URL's path prefix, when it has it (a server
/// names its public host; a proxy or the simulator has a prefix of its own).
fn path_below_base<'a>(base: &Url, next: &'a Url) -> &'a str {
    let prefix = base.path().trim_end_matches('/');
    let path = next.path();
    path.strip_prefix(prefix)
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path)
}

/// `path` and `next`'s query on the configured base URL, without any `apiKey` (the key goes
/// in the header only); a query without one is kept byte for byte (opaque cursors).
fn on_base(base: &Url, path: &str, next: &Url) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    let has_key = next
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("apikey"));
    if has_key {
        let pairs: Vec<(String, String)> = next
            .query_pairs()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("apikey"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
    } else {
        url.set_query(next.query());
    }
    url
}

/// Polygon's error bodies (`{"status":"ERROR","error":…}`, `{"status":"NOT_AUTHORIZED",
/// "message":…}`) to port errors.
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
                "HTTP 403: {text}; the plan of the key in {CREDENTIAL_VARIABLES} does not \
                 include this data (the free plan has about two years of history and no \
                 data for the current day)"
            ),
        }),
        400 | 422 => Some(ProviderError::BadRequest {
            provider: NAME.into(),
            message: format!("HTTP {status}: {text}"),
        }),
        404 => Some(ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "the aggregates endpoint (HTTP 404: {text}); check the base URL \
                 ({DEFAULT_BASE_URL} or https://api.polygon.io)"
            ),
        }),
        _ => None,
    }
}

#[async_trait]
impl MarketDataProvider for PolygonProvider {
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
        let Some(url) = self.page_url(request, symbol)? else {
            return Ok(BarPage::default());
        };
        let headers = [("authorization", &self.bearer)];
        let response = self.client.get(url.clone(), &headers, &classify).await?;
        let mut page = wire::parse_page(&response.body, &url, symbol, &filter)?;
        let repeats = page
            .next
            .as_ref()
            .is_some_and(|next| self.follow(next, symbol).ok().as_ref() == Some(&url));
        if repeats {
            return Err(marketpipe_provider_kit::malformed(
                NAME,
                &url,
                "next_url repeats the page just fetched; stopping to avoid a loop",
            ));
        }
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
