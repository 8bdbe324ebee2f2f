//! # marketpipe-provider-kit
//!
//! The shared plumbing of MarketPipe's HTTP provider adapters (Alpaca, Polygon, Finnhub,
//! IEX HIST). In the hexagonal architecture it sits in the adapter ring: the adapters depend
//! on the domain, the ports and this crate, and this crate is the only one of them that
//! depends on reqwest, so no transport type ever crosses the `MarketDataProvider` port.
//!
//! What it holds:
//!
//! - [`Secret`]: a credential that prints as `***` everywhere;
//! - [`ProviderSettings`], [`Env`] and the resolvers of credentials (`${VAR}` placeholders,
//!   environment fallbacks) and base URLs (`MP_<PROVIDER>_BASE_URL`), with [`SetupError`];
//! - [`HttpClient`]: one reqwest client per provider (rustls, gzip, timeouts, `User-Agent:
//!   marketpipe/<version>`) with a shared sliding-window [`RateLimiter`], retries with
//!   full-jitter backoff that honour `Retry-After` and `X-Ratelimit-Reset`, a
//!   [`CircuitBreaker`], the mapping of HTTP answers to `ProviderError`, per-call
//!   `FetchStats` and cumulative [`HttpMetrics`];
//! - wire helpers ([`parse_json`], [`error_text`], [`WireVolume`] with the one rounding rule
//!   for fractional volumes, inclusive end bounds) and the [`SessionFilter`] that keeps a
//!   request's bars inside its range and session hours.
//!
//! No error, log line or `Debug` output of this crate carries a secret or a URL's query:
//! requests are described as `GET <path>`.

pub mod breaker;
pub mod client;
pub mod limiter;
pub mod retry;
pub mod secret;
pub mod session;
pub mod settings;
pub mod wire;

pub use breaker::{BreakerPolicy, BreakerState, CircuitBreaker, CircuitOpen};
pub use client::{
    Classifier, DEFAULT_TIMEOUT, DownloadError, HttpClient, HttpClientConfig, HttpMetrics,
    HttpResponse, USER_AGENT, default_error,
};
pub use limiter::RateLimiter;
pub use retry::{RetryPolicy, wait_hint};
pub use secret::Secret;
pub use session::{SessionFilter, prepare_request, recent_session};
pub use settings::{
    Env, MapEnv, ProcessEnv, ProviderSettings, SetupError, base_url_variable, expand_placeholders,
    resolve_base_url, resolve_secret,
};
pub use wire::{
    BarField, VolumeError, WireVolume, describe_request, error_text, inclusive_end_millis,
    inclusive_end_second, malformed, parse_json, price,
};
