//! `HttpClient`: one provider's HTTP transport — the reqwest client, the shared rate limiter
//! and circuit breaker, retries, error mapping and metrics.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use marketpipe_ports::{BoxError, FetchStats, ProviderError, RateLimit, telemetry};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::breaker::{BreakerPolicy, CircuitBreaker};
use crate::limiter::RateLimiter;
use crate::retry::{RetryPolicy, retry_delay, wait_hint};
use crate::secret::Secret;
use crate::settings::{ProviderSettings, SetupError};
use crate::wire::{describe_request, error_text, parse_json};

/// The default connect and whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("marketpipe/", env!("CARGO_PKG_VERSION"));

/// An adapter's mapping of a 4xx answer (other than 429) to a port error, from the status
/// and the body. `None` falls back to the generic mapping: 401/403 → `Auth`, 404 →
/// `NotFound`, anything else → `BadRequest`, each quoting the body's message.
pub type Classifier = dyn Fn(u16, &[u8]) -> Option<ProviderError> + Send + Sync;

/// How to build an [`HttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// The provider's registry name (labels errors, logs and metrics).
    pub provider: String,
    /// A feed label for the metrics, when the provider has feeds.
    pub feed: Option<String>,
    /// The base URL every endpoint is built on.
    pub base_url: Url,
    /// The client-side request budget (`None`: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// Retries.
    pub retry: RetryPolicy,
    /// The circuit breaker.
    pub breaker: BreakerPolicy,
    /// Connect timeout, read timeout, and the whole-request timeout of [`HttpClient::get`].
    pub timeout: Duration,
}

impl HttpClientConfig {
    /// Defaults: no rate limit, 5 retries (250 ms base, 60 s cap), breaker 10 failures /
    /// 30 s, 30 s timeout.
    pub fn new(provider: impl Into<String>, base_url: Url) -> Self {
        Self {
            provider: provider.into(),
            feed: None,
            base_url,
            rate_limit: None,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The configuration an adapter builds from its settings: the settings' rate limit
    /// (else `default_rate_limit`), timeout and retry policy (count, base and maximum
    /// delay) over the defaults.
    pub fn from_settings(
        provider: impl Into<String>,
        base_url: Url,
        default_rate_limit: Option<RateLimit>,
        settings: &ProviderSettings,
    ) -> Self {
        let mut config = Self::new(provider, base_url);
        config.rate_limit = settings.rate_limit.or(default_rate_limit);
        if let Some(timeout) = settings.timeout.filter(|t| !t.is_zero()) {
            config.timeout = timeout;
        }
        if let Some(max_retries) = settings.max_retries {
            config.retry.max_retries = max_retries;
        }
        if let Some(base_delay) = settings.retry_base_delay {
            config.retry.base_delay = base_delay;
        }
        if let Some(max_delay) = settings.retry_max_delay {
            config.retry.max_delay = max_delay;
        }
        config
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The (decompressed) body.
    pub body: Bytes,
    /// What this call cost: requests, retries, 429s, limiter and retry waits.
    pub stats: FetchStats,
}

/// Cumulative transport counts of one provider (and feed), since the client was built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpMetrics {
    /// The provider.
    pub provider: String,
    /// The feed label, when set.
    pub feed: Option<String>,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries.
    pub retries: u64,
    /// HTTP 429 answers.
    pub rate_limited: u64,
    /// Calls refused by the open circuit breaker.
    pub circuit_rejections: u64,
    /// Time spent waiting for the rate limiter.
    pub throttled: Duration,
    /// Attempts whose latency was measured (every attempt that was sent).
    pub latency_count: u64,
    /// Sum of attempt latencies (send to end of body, or to the error).
    pub latency_sum: Duration,
    /// The slowest attempt.
    pub latency_max: Duration,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    circuit_rejections: AtomicU64,
    throttled_ns: AtomicU64,
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    latency_max_ns: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One provider's HTTP client. Cloning is cheap and shares everything — the connection
/// pool, the rate limiter, the circuit breaker and the metrics — so one client serves every
/// task of a run and the provider's budget is kept across all of them.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    provider: String,
    feed: Option<String>,
    base_url: Url,
    rate_limit: Option<RateLimit>,
    timeout: Duration,
    retry: RetryPolicy,
    client: reqwest::Client,
    /// For `download_to_file`: no transparent decompression, so the file holds the bytes
    /// as served (a `.pcap.gz` stays gzip).
    raw_client: reqwest::Client,
    limiter: RateLimiter,
    breaker: CircuitBreaker,
    counters: Counters,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.inner.provider)
            .field("base_url", &self.inner.base_url.as_str())
            .field("rate_limit", &self.inner.rate_limit)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Why [`HttpClient::download_to_file`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The provider or the network failed (after the client's retries).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A local file operation failed (a full disk, permissions, a directory in the way):
    /// permanent, never retried, and saying nothing of the provider.
    #[error("{what} {}: {source}", path.display())]
    Local {
        /// What was being done: `creating`, `writing`, `finishing`.
        what: &'static str,
        /// The directory or (temporary) file.
        path: PathBuf,
        /// The OS error (`ErrorKind::StorageFull` for a full disk).
        #[source]
        source: std::io::Error,
    },
}

impl DownloadError {
    /// Whether trying the download again may succeed: a provider error's own answer; never
    /// for a local failure.
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Provider(e) => e.is_retryable(),
            Self::Local { .. } => false,
        }
    }
}

/// What one attempt came to; `E` is the error of the call (a [`ProviderError`], or a
/// [`DownloadError`] when the attempt writes a file).
enum Outcome<T, E = ProviderError> {
    /// Success.
    Done(T),
    /// A transport error or 5xx: retried; counts against the breaker.
    Transient {
        message: String,
        source: Option<BoxError>,
    },
    /// HTTP 429: retried after the provider's hint.
    RateLimited { hint: Option<Duration> },
    /// The provider answered with a permanent error: not retried.
    Fatal(ProviderError),
    /// A local failure (e.g. writing a file): not retried; says nothing of the provider.
    Local(E),
}

impl HttpClient {
    /// Builds the client: rustls, gzip, `User-Agent: marketpipe/<version>`, connect and read
    /// timeouts.
    pub fn new(config: HttpClientConfig) -> Result<Self, SetupError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let build = |gzip: bool| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .default_headers(headers.clone())
                .gzip(gzip)
                .connect_timeout(config.timeout)
                .read_timeout(config.timeout)
                .build()
                .map_err(|e| SetupError::Client {
                    provider: config.provider.clone(),
                    message: e.to_string(),
                    source: Some(Box::new(e.without_url())),
                })
        };
        let client = build(true)?;
        let raw_client = build(false)?;
        let made = Self {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(config.rate_limit),
                breaker: CircuitBreaker::new(config.breaker),
                provider: config.provider,
                feed: config.feed,
                base_url: config.base_url,
                rate_limit: config.rate_limit,
                timeout: config.timeout,
                retry: config.retry,
                client,
                raw_client,
                counters: Counters::default(),
            }),
        };
        // Retries and 429s are series from the start, at 0, so that dashboards and rate()
        // see a zero rather than no data.
        metrics::counter!(telemetry::PROVIDER_RETRIES.name, &made.metric_labels()).increment(0);
        metrics::counter!(telemetry::PROVIDER_THROTTLED.name, &made.metric_labels()).increment(0);
        Ok(made)
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The client-side rate limit in force.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.inner.rate_limit
    }

    /// The base URL with `segments` appended to its path (each percent-encoded as needed),
    /// e.g. `endpoint(&["v2", "stocks", "bars"])`.
    pub fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A snapshot of the cumulative metrics.
    pub fn metrics(&self) -> HttpMetrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HttpMetrics {
            provider: self.inner.provider.clone(),
            feed: self.inner.feed.clone(),
            requests: get(&c.requests),
            retries: get(&c.retries),
            rate_limited: get(&c.rate_limited),
            circuit_rejections: get(&c.circuit_rejections),
            throttled: Duration::from_nanos(get(&c.throttled_ns)),
            latency_count: get(&c.latency_count),
            latency_sum: Duration::from_nanos(get(&c.latency_sum_ns)),
            latency_max: Duration::from_nanos(get(&c.latency_max_ns)),
        }
    }

    /// GETs `url` with the given secret headers (sent marked sensitive), under the rate
    /// limiter, the circuit breaker and the retry policy:
    ///
    /// - 2xx: the response, with this call's [`FetchStats`];
    /// - timeouts, connection errors (a dropped connection, an incomplete body), 408 and 5xx
    ///   (HTML bodies included): retried with full-jitter backoff, then `Transient`;
    /// - 429: retried after `Retry-After`, else `X-Ratelimit-Reset`, else backoff, holding
    ///   back every task of this provider meanwhile; then `RateLimited`;
    /// - other 4xx: `classify`, else the generic mapping (see [`Classifier`]); not retried.
    ///
    /// Error messages name the provider and the URL path, never the query, the host or a
    /// secret.
    pub async fn get(
        &self,
        url: Url,
        headers: &[(&'static str, &Secret)],
        classify: &Classifier,
    ) -> Result<HttpResponse, ProviderError> {
        let header_map = sensitive_headers(&self.inner.provider, headers)?;
        let secrets: Vec<&Secret> = headers.iter().map(|(_, s)| *s).collect();
        let url_ref = &url;
        let header_ref = &header_map;
        let secrets_ref = &secrets;
        let status = AtomicU16::new(0);
        let status_ref = &status;
        let ((code, response_headers, body), call_stats) = self
            .run(&url, &secrets, &status, || async move {
                self.attempt_get(url_ref, header_ref, secrets_ref, classify, status_ref)
                    .await
            })
            .await?;
        Ok(HttpResponse {
            status: code,
            headers: response_headers,
            body,
            stats: call_stats,
        })
    }

    /// [`HttpClient::get`], then the body decoded as JSON; a body that does not decode is
    /// `Malformed` (naming the provider, the URL path and the parser's error) and is not
    /// retried.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        headers: &[(&'static str, &Secret)],
        classify: &Classifier,
    ) -> Result<(T, FetchStats), ProviderError> {
        let response = self.get(url.clone(), headers, classify).await?;
        let value = parse_json(&self.inner.provider, &url, &response.body)?;
        Ok((value, response.stats))
    }

    /// Streams the body of `url` into `dest` through a temporary file in the same directory
    /// and a rename, so `dest` is either absent or complete; creates the directory. The same
    /// limiter, breaker and retry rules as [`HttpClient::get`] apply, an interrupted
    /// transfer starting over; there is no whole-request timeout (only connect and read
    /// timeouts), since captures can be gigabytes. Returns the bytes written.
    /// A local failure (the directory, the temporary file or the rename; a full disk) is a
    /// [`DownloadError::Local`]: not retried, and not a provider error.
    pub async fn download_to_file(&self, url: Url, dest: &Path) -> Result<u64, DownloadError> {
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| DownloadError::Local {
                    what: "creating",
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let url_ref = &url;
        let status = AtomicU16::new(0);
        let status_ref = &status;
        let (bytes, _stats) = self
            .run(&url, &[], &status, || async move {
                self.attempt_download(url_ref, dest, status_ref).await
            })
            .await?;
        Ok(bytes)
    }

    /// The retry loop around one kind of attempt. `status_seen` is where an attempt leaves the
    /// HTTP status it received (0: none arrived), for the request metrics.
    async fn run<T, E, F, Fut>(
        &self,
        url: &Url,
        secrets: &[&Secret],
        status_seen: &AtomicU16,
        mut attempt: F,
    ) -> Result<(T, FetchStats), E>
    where
        E: From<ProviderError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Outcome<T, E>>,
    {
        let inner = &*self.inner;
        let c = &inner.counters;
        let request = describe_request(url);
        let mut stats = FetchStats::default();
        let mut tries: u32 = 0;
        loop {
            if let Err(open) = inner.breaker.check() {
                c.circuit_rejections.fetch_add(1, Ordering::Relaxed);
                return Err(ProviderError::Transient {
                    provider: inner.provider.clone(),
                    message: format!(
                        "{request}: circuit open after {} consecutive failed attempts; not \
                         sending for another {} ms",
                        open.failures,
                        open.retry_in.as_millis()
                    ),
                    source: None,
                }
                .into());
            }
            let waited = inner.limiter.acquire().await;
            stats.throttled += waited;
            c.throttled_ns.fetch_add(nanos(waited), Ordering::Relaxed);
            stats.requests += 1;
            c.requests.fetch_add(1, Ordering::Relaxed);
            if tries > 0 {
                stats.retries += 1;
                c.retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(telemetry::PROVIDER_RETRIES.name, &self.metric_labels())
                    .increment(1);
            }
            status_seen.store(0, Ordering::Relaxed);
            let sent = Instant::now();
            let outcome = attempt().await;
            let latency = sent.elapsed();
            self.record_attempt(status_seen.load(Ordering::Relaxed), latency);
            c.latency_count.fetch_add(1, Ordering::Relaxed);
            c.latency_sum_ns
                .fetch_add(nanos(latency), Ordering::Relaxed);
            c.latency_max_ns
                .fetch_max(nanos(latency), Ordering::Relaxed);
            let (reason, hint, rate_limited, source) = match outcome {
                Outcome::Done(v) => {
                    inner.breaker.record_success();
                    debug!(provider = %inner.provider, %request, attempts = tries + 1, latency_ms = latency.as_millis(), "request done");
                    return Ok((v, stats));
                }
                Outcome::Fatal(e) => {
                    inner.breaker.record_success();
                    return Err(scrub_error(e, secrets, url).into());
                }
                Outcome::Local(e) => {
                    // Says nothing of the provider, and names only local paths.
                    inner.breaker.record_neutral();
                    return Err(e);
                }
                Outcome::Transient { message, source } => {
                    inner.breaker.record_failure();
                    (message, None, false, source)
                }
                Outcome::RateLimited { hint } => {
                    inner.breaker.record_success();
                    stats.rate_limited += 1;
                    c.rate_limited.fetch_add(1, Ordering::Relaxed);
                    ("HTTP 429 Too Many Requests".to_owned(), hint, true, None)
                }
            };
            let reason = scrub(&reason, secrets, url);
            if tries >= inner.retry.max_retries {
                let attempts = tries + 1;
                warn!(provider = %inner.provider, %request, attempts, %reason, "giving up");
                return Err(E::from(if rate_limited {
                    ProviderError::RateLimited {
                        provider: inner.provider.clone(),
                        retry_after: hint,
                    }
                } else {
                    ProviderError::Transient {
                        provider: inner.provider.clone(),
                        message: format!("{request}: {reason} (gave up after {attempts} attempts)"),
                        source,
                    }
                }));
            }
            let wait = retry_delay(&inner.retry, tries, hint);
            if rate_limited && hint.is_some() {
                inner.limiter.pause_until(Instant::now() + wait);
            }
            warn!(provider = %inner.provider, %request, attempt = tries + 1, wait_ms = wait.as_millis(), %reason, "retrying");
            stats.retry_wait += wait;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            tries += 1;
        }
    }

    /// The labels of this client's provider metrics.
    fn metric_labels(&self) -> [(&'static str, String); 2] {
        [
            (telemetry::LABEL_PROVIDER, self.inner.provider.clone()),
            (
                telemetry::LABEL_FEED,
                self.inner
                    .feed
                    .clone()
                    .unwrap_or_else(|| telemetry::FEED_NONE.to_owned()),
            ),
        ]
    }

    /// One attempt in the request metrics: its status (0 when no response arrived), a 429,
    /// and its latency.
    fn record_attempt(&self, status: u16, latency: Duration) {
        let [provider, feed] = self.metric_labels();
        let code = if status == 0 {
            "error".to_owned()
        } else {
            status.to_string()
        };
        metrics::counter!(
            telemetry::PROVIDER_REQUESTS.name,
            provider.0 => provider.1.clone(),
            feed.0 => feed.1.clone(),
            telemetry::LABEL_STATUS => code
        )
        .increment(1);
        if status == 429 {
            metrics::counter!(telemetry::PROVIDER_THROTTLED.name, &self.metric_labels())
                .increment(1);
        }
        metrics::histogram!(
            telemetry::PROVIDER_REQUEST_DURATION.name,
            provider.0 => provider.1,
            feed.0 => feed.1
        )
        .record(latency.as_secs_f64());
    }

    async fn attempt_get(
        &self,
        url: &Url,
        headers: &HeaderMap,
        secrets: &[&Secret],
        classify: &Classifier,
        status_seen: &AtomicU16,
    ) -> Outcome<(u16, HeaderMap, Bytes)> {
        let request = self
            .inner
            .client
            .get(url.clone())
            .headers(headers.clone())
            .timeout(self.inner.timeout);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure("sending the request", e, secrets, url),
        };
        let status = response.status().as_u16();
        status_seen.store(status, Ordering::Relaxed);
        let response_headers = response.headers().clone();
        if status == 429 {
            return Outcome::RateLimited {
                hint: wait_hint(&response_headers, SystemTime::now()),
            };
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return transport_failure("reading the body", e, secrets, url),
        };
        match status {
            200..=299 => Outcome::Done((status, response_headers, body)),
            _ => self.failure_status(status, &body, url, classify),
        }
    }

    /// Maps a non-2xx, non-429 status.
    fn failure_status<T, E>(
        &self,
        status: u16,
        body: &[u8],
        url: &Url,
        classify: &Classifier,
    ) -> Outcome<T, E> {
        if status == 408 || status >= 500 {
            return Outcome::Transient {
                message: format!("HTTP {status} {}", reason_phrase(status)),
                source: None,
            };
        }
        if let Some(e) = classify(status, body) {
            return Outcome::Fatal(e);
        }
        Outcome::Fatal(default_error(&self.inner.provider, url, status, body))
    }

    async fn attempt_download(
        &self,
        url: &Url,
        dest: &Path,
        status_seen: &AtomicU16,
    ) -> Outcome<u64, DownloadError> {
        let request = self
            .inner
            .raw_client
            .get(url.clone())
            .header(http::header::ACCEPT, "*/*");
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure("sending the request", e, &[], url),
        };
        let status = response.status().as_u16();
        status_seen.store(status, Ordering::Relaxed);
        if status == 429 {
            return Outcome::RateLimited {
                hint: wait_hint(response.headers(), SystemTime::now()),
            };
        }
        if !(200..=299).contains(&status) {
            let body = response.bytes().await.unwrap_or_default();
            return self.failure_status(status, &body, url, &|_, _| None);
        }
        let temp = temp_path(dest);
        let local = |what: &'static str, source: std::io::Error| {
            Outcome::Local(DownloadError::Local {
                what,
                path: temp.clone(),
                source,
            })
        };
        let mut file = match tokio::fs::File::create(&temp).await {
            Ok(f) => f,
            Err(e) => return local("creating", e),
        };
        let mut written: u64 = 0;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = file.write_all(&chunk).await {
                        drop(file);
                        let _ = tokio::fs::remove_file(&temp).await;
                        return local("writing", e);
                    }
                    written += chunk.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    drop(file);
                    let _ = tokio::fs::remove_file(&temp).await;
                    return transport_failure(
                        &format!("download interrupted after {written} bytes"),
                        e,
                        &[],
                        url,
                    );
                }
            }
        }
        let finished = async {
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, dest).await
        };
        if let Err(e) = finished.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return local("finishing", e);
        }
        Outcome::Done(written)
    }
}

/// A temporary sibling of `dest`, unique per process and call.
fn temp_path(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map_or_else(|| "download".into(), |n| n.to_string_lossy().into_owned());
    dest.with_file_name(format!(".{name}.{}.{n}.part", std::process::id()))
}

/// The secret headers, each marked sensitive (hyper and reqwest then never print them).
fn sensitive_headers(
    provider: &str,
    headers: &[(&'static str, &Secret)],
) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (name, secret) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ProviderError::BadRequest {
                provider: provider.to_owned(),
                message: format!("invalid header name {name:?}"),
            }
        })?;
        let mut value =
            HeaderValue::from_str(secret.expose()).map_err(|_| ProviderError::Auth {
                provider: provider.to_owned(),
                message: format!(
                    "the credential sent as header {name} holds characters a header cannot carry \
                 (a line break or a control character?); check its value"
                ),
            })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The generic mapping of a 4xx answer: 401/403 → `Auth`, 404 → `NotFound`, else
/// `BadRequest`; each names the request path and quotes the body's message.
pub fn default_error(provider: &str, url: &Url, status: u16, body: &[u8]) -> ProviderError {
    let request = describe_request(url);
    let text = error_text(body);
    let provider = provider.to_owned();
    match status {
        401 | 403 => ProviderError::Auth {
            provider,
            message: format!("HTTP {status} on {request}: {text}"),
        },
        404 => ProviderError::NotFound {
            provider,
            what: format!("{request} (HTTP 404: {text}; is the base URL right?)"),
        },
        _ => ProviderError::BadRequest {
            provider,
            message: format!("HTTP {status} on {request}: {text}"),
        },
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// A reqwest failure as a retryable outcome: its message (with the URL stripped and the
/// source chain spelled out) and the error as the source.
fn transport_failure<T, E>(
    what: &str,
    error: reqwest::Error,
    secrets: &[&Secret],
    url: &Url,
) -> Outcome<T, E> {
    let error = error.without_url();
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_request() || error.is_body() || error.is_decode() {
        "connection dropped"
    } else {
        "transport error"
    };
    let mut message = format!("{what}: {kind}");
    let mut cause: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    Outcome::Transient {
        message: scrub(&message, secrets, url),
        source: Some(Box::new(error)),
    }
}

/// Removes every secret value and the URL's query from a message.
fn scrub(message: &str, secrets: &[&Secret], url: &Url) -> String {
    let mut out = message.to_owned();
    for s in secrets {
        if !s.expose().is_empty() {
            out = out.replace(s.expose(), "***");
        }
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        out = out.replace(query, "***");
    }
    out
}

fn scrub_error(error: ProviderError, secrets: &[&Secret], url: &Url) -> ProviderError {
    let s = |m: String| scrub(&m, secrets, url);
    match error {
        ProviderError::Auth { provider, message } => ProviderError::Auth {
            provider,
            message: s(message),
        },
        ProviderError::NotFound { provider, what } => ProviderError::NotFound {
            provider,
            what: s(what),
        },
        ProviderError::BadRequest { provider, message } => ProviderError::BadRequest {
            provider,
            message: s(message),
        },
        ProviderError::Transient {
            provider,
            message,
            source,
        } => ProviderError::Transient {
            provider,
            message: s(message),
            source,
        },
        ProviderError::Malformed {
            provider,
            message,
            source,
        } => ProviderError::Malformed {
            provider,
            message: s(message),
            source,
        },
        other => other,
    }
}
