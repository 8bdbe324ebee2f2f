//! The `MarketDataProvider` port: one page of bars per call; the coordinator owns paging,
//! rate limits, retries and checkpoints so that adapters stay thin.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{Bar, SessionKind, Symbol, TimeRange, Timeframe};
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;

/// A request budget: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests allowed in each window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per minute.
    pub const fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            per: Duration::from_mins(1),
        }
    }

    /// The steady interval between requests that keeps within the limit.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// What a provider can do, for planning and for `mp providers list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Registry name (`fake`, `alpaca`, `polygon`, …).
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Feeds the provider offers (`iex`, `sip`, …); empty when it has one.
    pub feeds: Vec<String>,
    /// The feed used when none is asked for.
    pub default_feed: Option<String>,
    /// Symbols one request may carry.
    pub max_symbols_per_request: usize,
    /// Bars one page may carry.
    pub max_page_size: usize,
    /// The documented request budget, when there is one.
    pub rate_limit: Option<RateLimit>,
    /// Earliest date with 1-minute history, when documented.
    pub history_start: Option<NaiveDate>,
    /// Whether credentials are needed.
    pub requires_credentials: bool,
    /// Whether 04:00–20:00 ET bars are available.
    pub supports_extended_hours: bool,
    /// Whether the adapter retries transient failures and rate limits itself (the HTTP
    /// adapters do, through provider-kit); the coordinator then does not retry on top.
    pub retries_internally: bool,
}

/// Price adjustment for corporate actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adjustment {
    /// As traded.
    #[default]
    Raw,
    /// Split-adjusted.
    Split,
    /// Dividend-adjusted.
    Dividend,
    /// Split- and dividend-adjusted.
    All,
}

/// An opaque continuation token handed back by the provider adapter.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageCursor(pub String);

impl fmt::Debug for PageCursor {
    // Cursors may be URLs; show only their length so a key that a provider echoed into one
    // never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageCursor(<{} bytes>)", self.0.len())
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarRequest {
    /// Symbols (at most `max_symbols_per_request`).
    pub symbols: Vec<Symbol>,
    /// The instants wanted, `[start, end)`.
    pub range: TimeRange,
    /// Bar width (1m for ingestion).
    pub timeframe: Timeframe,
    /// Which hours to keep.
    pub session: SessionKind,
    /// Feed, when the provider has several.
    pub feed: Option<String>,
    /// Corporate-action adjustment.
    pub adjustment: Adjustment,
    /// Page size wanted (capped at `max_page_size`).
    pub page_size: Option<usize>,
    /// Where to continue, from the previous page.
    pub cursor: Option<PageCursor>,
}

/// What fetching one page cost at the transport level, for the job summary. Adapters without
/// a transport leave it zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a transient failure or a rate-limit answer.
    pub retries: u64,
    /// Rate-limit answers (HTTP 429) received.
    pub rate_limited: u64,
    /// Time spent waiting for the client-side rate limiter before sending.
    pub throttled: Duration,
    /// Time spent waiting before retries (backoff, `Retry-After`).
    pub retry_wait: Duration,
}

impl FetchStats {
    /// Adds another page's counts.
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.rate_limited += other.rate_limited;
        self.throttled += other.throttled;
        self.retry_wait += other.retry_wait;
    }
}

/// One page of bars.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BarPage {
    /// Bars of the page, in the provider's order.
    pub bars: Vec<Bar>,
    /// The next page, if any.
    pub next: Option<PageCursor>,
    /// Bars whose fractional volume was rounded to whole shares.
    pub fractional_volumes_rounded: u64,
    /// What the page cost at the transport level (`requests == 0` when not measured).
    pub stats: FetchStats,
}

/// A source of 1-minute bars.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MarketDataProvider: Send + Sync + fmt::Debug {
    /// Capabilities and limits.
    fn info(&self) -> ProviderInfo;

    /// One page of bars for `request`.
    async fn fetch_bars(&self, request: &BarRequest) -> Result<BarPage, ProviderError>;

    /// A cheap call that proves credentials and reachability.
    async fn test_connection(&self) -> Result<(), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rate_limit_interval() {
        assert_eq!(
            RateLimit::per_minute(200).interval(),
            Duration::from_millis(300)
        );
        assert_eq!(
            RateLimit {
                requests: 0,
                per: Duration::from_secs(1)
            }
            .interval(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn cursor_debug_hides_content() {
        let c = PageCursor("https://x/?apiKey=SECRET".into());
        assert_eq!(format!("{c:?}"), "PageCursor(<24 bytes>)");
    }

    #[tokio::test]
    async fn usable_as_arc_dyn_through_a_mock() {
        let mut mock = MockMarketDataProvider::new();
        mock.expect_fetch_bars().times(1).returning(|_| {
            Err(ProviderError::RateLimited {
                provider: "m".into(),
                retry_after: None,
            })
        });
        mock.expect_info().returning(|| ProviderInfo {
            name: "m".into(),
            display_name: "Mock".into(),
            feeds: vec![],
            default_feed: None,
            max_symbols_per_request: 1,
            max_page_size: 10,
            rate_limit: Some(RateLimit::per_minute(60)),
            history_start: None,
            requires_credentials: false,
            supports_extended_hours: true,
            retries_internally: false,
        });
        let provider: Arc<dyn MarketDataProvider> = Arc::new(mock);
        let request = BarRequest {
            symbols: vec![Symbol::new("AAPL").unwrap()],
            range: TimeRange::new(
                marketpipe_domain::Timestamp::EPOCH,
                marketpipe_domain::Timestamp::EPOCH,
            )
            .unwrap(),
            timeframe: Timeframe::M1,
            session: SessionKind::Regular,
            feed: None,
            adjustment: Adjustment::default(),
            page_size: None,
            cursor: None,
        };
        let err = provider.fetch_bars(&request).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(provider.info().max_page_size, 10);
    }
}
