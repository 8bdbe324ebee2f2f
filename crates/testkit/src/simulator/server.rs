//! The shared server core: the hyper server on loopback and the request pipeline every
//! provider goes through (recording, routing, authentication, the rate limit, faults, the
//! delay), with the counters and the request log. What differs between providers is behind
//! [`WireFormat`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use marketpipe_fake::FakeProvider;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::codec::splitmix64;
use super::{Faults, RecordedRequest, SimRateLimit, SimStats, SimulatorConfig};

pub(super) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html";

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// One provider's wire format: the paths it owns, its authentication, its error bodies and
/// its answers. The core does everything else, the same way for every provider.
pub(super) trait WireFormat: Send + Sync {
    /// The provider's name, the prefix of its rate-limit keys (`alpaca:<key id>`).
    fn name(&self) -> &'static str;

    /// Whether `path` (as sent, percent-encoded) is one of the provider's endpoints.
    fn owns(&self, path: &str) -> bool;

    /// The request's key (its rate-limit key without the prefix), or the provider's 401/403
    /// answer.
    fn authenticate(&self, core: &Core, incoming: &RequestInfo) -> Result<String, Reply>;

    /// Whether answers carry `X-Ratelimit-Limit/Remaining/Reset` when a rate limit is set.
    fn sends_rate_headers(&self) -> bool;

    /// The provider's own 429 answer.
    fn too_many_requests(&self, core: &Core) -> Reply;

    /// The provider's own 500 answer (a JSON body).
    fn server_error(&self, core: &Core) -> Reply;

    /// A 200 whose body is not the documented shape: valid JSON with wrong types, or
    /// (`not_json`) text that is not JSON at all.
    fn malformed(&self, incoming: &RequestInfo, not_json: bool) -> Reply;

    /// The normal answer: data, empty, or a 4xx for bad parameters. With `duplicate`, a
    /// page's last bar is repeated as the next page's first (see
    /// [`Faults::duplicate_across_pages`]).
    fn serve(&self, core: &Core, incoming: &RequestInfo, duplicate: bool) -> Reply;
}

/// What the server tasks share: the configuration, the wire formats and the mutable state.
pub(super) struct Core {
    base_url: String,
    formats: Vec<Box<dyn WireFormat>>,
    rate_limit: Option<SimRateLimit>,
    fake: FakeProvider,
    no_bars: Vec<(String, chrono::NaiveDate)>,
    id_seed: u64,
    ids: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) faults: Faults,
    pub(super) stats: SimStats,
    pub(super) requests: Vec<RecordedRequest>,
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

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Core>) {
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

async fn serve_connection(stream: TcpStream, shared: Arc<Core>) {
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
pub(super) struct RequestInfo {
    method: String,
    pub(super) path: String,
    query: String,
    headers: Vec<(String, String)>,
    pub(super) params: Vec<(String, String)>,
}

impl RequestInfo {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a query parameter.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn handle(
    shared: Arc<Core>,
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
pub(super) struct Reply {
    pub(super) status: u16,
    content_type: &'static str,
    pub(super) body: Vec<u8>,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(super) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub(super) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
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
    /// Index into [`Core::formats`].
    format: usize,
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

impl Core {
    pub(super) fn new(
        formats: Vec<Box<dyn WireFormat>>,
        config: SimulatorConfig,
        base_url: String,
    ) -> Self {
        let id_seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5eed, |d| {
                u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0x5eed)
            });
        Self {
            base_url,
            formats,
            rate_limit: config.rate_limit,
            fake: FakeProvider::new(),
            no_bars: config.no_bars.clone(),
            id_seed,
            ids: AtomicU64::new(0),
            state: Mutex::new(State {
                faults: config.faults,
                ..State::default()
            }),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(super) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The generator whose bars every provider serves.
    pub(super) const fn fake(&self) -> FakeProvider {
        self.fake
    }

    /// The sessions `symbol` has no bars on ([`super::SimulatorConfig::no_bars`]).
    pub(super) fn no_bars_of(&self, symbol: marketpipe_domain::Symbol) -> Vec<chrono::NaiveDate> {
        self.no_bars
            .iter()
            .filter(|(s, _)| s == symbol.as_str())
            .map(|(_, d)| *d)
            .collect()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
    pub(super) fn request_id(&self) -> String {
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
        let Some((index, format)) = self
            .formats
            .iter()
            .enumerate()
            .find(|(_, format)| format.owns(&incoming.path))
        else {
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
        let key = match format.authenticate(self, incoming) {
            Ok(key) => format!("{}:{key}", format.name()),
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
            let mut reply = format.too_many_requests(self);
            reply
                .headers
                .extend(state.rate_headers(format.as_ref(), &key, limit));
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
            rate_headers = state.rate_headers(format.as_ref(), &key, limit);
        }
        let serve = Serve {
            format: index,
            fault,
            rate_headers,
            duplicate: state.faults.duplicate_across_pages,
        };
        (Action::Serve(serve), delay)
    }

    /// Builds the answer of an authenticated request; `None` = drop the connection. The flag
    /// says whether it counts as `ok`.
    fn answer(&self, incoming: &RequestInfo, serve: Serve) -> Option<(Reply, bool)> {
        let format = self.formats.get(serve.format)?;
        let (mut reply, ok) = match serve.fault {
            Some(Fault::Dropped) => return None,
            Some(Fault::Forced429) => (
                format
                    .too_many_requests(self)
                    .with_header("Retry-After", "1"),
                false,
            ),
            Some(Fault::ServerError { json: true }) => (format.server_error(self), false),
            Some(Fault::ServerError { json: false }) => {
                (Reply::new(503, TEXT_PLAIN, "Service Unavailable"), false)
            }
            Some(Fault::Html) => (Reply::new(502, TEXT_HTML, HTML_502), false),
            Some(Fault::Truncated) => {
                let mut reply = format.serve(self, incoming, serve.duplicate);
                let cut = reply.body.len() / 2;
                reply.body.truncate(cut);
                reply.status = 200;
                (reply, false)
            }
            Some(Fault::Malformed { not_json }) => (format.malformed(incoming, not_json), false),
            None => {
                let reply = format.serve(self, incoming, serve.duplicate);
                let ok = reply.status == 200;
                (reply, ok)
            }
        };
        reply.headers.extend(serve.rate_headers);
        Some((reply, ok))
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

    /// `X-Ratelimit-*` headers, for the providers that send them.
    fn rate_headers(
        &self,
        format: &dyn WireFormat,
        key: &str,
        limit: SimRateLimit,
    ) -> Vec<(&'static str, String)> {
        if !format.sends_rate_headers() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_32_hex_digits() {
        let core = Core::new(Vec::new(), SimulatorConfig::default(), "http://x".into());
        let a = core.request_id();
        let b = core.request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
