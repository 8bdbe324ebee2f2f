//! `HttpClient` against a scripted loopback server: retries, rate-limit answers, the
//! circuit breaker, error mapping, downloads and secret masking. Nothing asserts on measured
//! time, only on counts and on the waits the client computed. Tests that wait on purpose (a
//! `Retry-After`, the limiter's window, the breaker's cool-down) run with tokio's clock
//! paused: the client's limiter, breaker and retry sleeps and the server's quota window are
//! all on tokio's clock, which then moves only when every task waits on a timer (loopback
//! I/O is ready before the runtime idles), so those tests are exact and take no real time.
//! The others keep real but short waits (milliseconds of backoff).

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers and the server.
#![allow(clippy::unwrap_used)]

mod server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use marketpipe_ports::ProviderError;
use marketpipe_provider_kit::{
    BreakerPolicy, Classifier, DownloadError, HttpClient, HttpClientConfig, RetryPolicy, Secret,
};
use server::{Reply, Server};

const PATH: &str = "/v2/stocks/bars";
const QUERY_KEY: &str = "QUERYKEY123";
const HEADER_KEY: &str = "HEADERSECRET456";

fn fast_config(server: &Server) -> HttpClientConfig {
    let mut config = HttpClientConfig::new("testprov", server.base());
    config.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(3),
    };
    config.timeout = Duration::from_secs(5);
    config
}

fn client(server: &Server) -> HttpClient {
    HttpClient::new(fast_config(server)).unwrap()
}

fn no_classify() -> &'static Classifier {
    &|_, _| None
}

/// The URL every test requests: a path plus a query carrying a "key", which must never show.
fn url(server: &Server) -> url::Url {
    server.url(&format!("{PATH}?symbols=AAPL&apiKey={QUERY_KEY}"))
}

fn assert_clean(text: &str) {
    for needle in [QUERY_KEY, HEADER_KEY, "apiKey", "symbols=", "127.0.0.1"] {
        assert!(!text.contains(needle), "{needle:?} leaked into {text:?}");
    }
}

fn assert_error_clean(e: &ProviderError) {
    assert_clean(&e.to_string());
    assert_clean(&format!("{e:?}"));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        assert_clean(&s.to_string());
        assert_clean(&format!("{s:?}"));
        source = s.source();
    }
}

#[tokio::test]
async fn retries_5xx_and_html_then_succeeds() {
    let server = Server::start(
        vec![
            Reply::json(500, r#"{"message":"internal"}"#),
            Reply::new(
                503,
                "<html><body><h1>503 Service Unavailable</h1></body></html>",
            )
            .header("content-type", "text/html"),
        ],
        Reply::json(200, r#"{"ok":true}"#),
    )
    .await;
    let client = client(&server);
    let secret = Secret::new(HEADER_KEY);
    let (value, stats) = client
        .get_json::<serde_json::Value>(url(&server), &[("APCA-API-KEY-ID", &secret)], no_classify())
        .await
        .unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(
        (stats.requests, stats.retries, stats.rate_limited),
        (3, 2, 0)
    );
    assert!(stats.retry_wait <= Duration::from_millis(5 + 10));
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].headers["apca-api-key-id"], HEADER_KEY);
    assert!(
        seen[0].headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("marketpipe/")
    );
    let m = client.metrics();
    assert_eq!(
        (m.provider.as_str(), m.requests, m.retries),
        ("testprov", 3, 2)
    );
    assert_eq!(m.latency_count, 3);
    assert!(m.latency_max <= m.latency_sum);
}

#[tokio::test]
async fn gives_up_naming_the_path_but_never_the_query_or_a_secret() {
    let server = Server::start(
        vec![],
        Reply::new(502, "<html>502 Bad Gateway</html>").header("content-type", "text/html"),
    )
    .await;
    let client = client(&server);
    let secret = Secret::new(HEADER_KEY);
    let err = client
        .get(url(&server), &[("x-finnhub-token", &secret)], no_classify())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(
        text.starts_with("testprov: transient failure: GET /v2/stocks/bars: HTTP 502"),
        "{text}"
    );
    assert!(text.contains("after 4 attempts"), "{text}");
    assert_error_clean(&err);
    assert_eq!(server.seen().len(), 4);
    // The client's Debug shows its base URL (no secret there), never a key.
    let debug = format!("{client:?}");
    assert!(!debug.contains(HEADER_KEY) && !debug.contains(QUERY_KEY));
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let server = Server::start(
        vec![Reply::json(200, r#"{"bars":{"AAPL":[{"t":"#).cut()],
        Reply::json(200, r#"{"ok":1}"#),
    )
    .await;
    let client = client(&server);
    let (value, stats) = client
        .get_json::<serde_json::Value>(url(&server), &[], no_classify())
        .await
        .unwrap();
    assert_eq!(value["ok"], 1);
    assert_eq!((stats.requests, stats.retries), (2, 1));
}

#[tokio::test]
async fn a_dropped_connection_every_time_ends_transient_and_clean() {
    let server = Server::start(vec![], Reply::json(200, r#"{"partial":"#).cut()).await;
    let mut config = fast_config(&server);
    config.retry.max_retries = 1;
    let client = HttpClient::new(config).unwrap();
    let err = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("connection dropped"), "{err}");
    assert_error_clean(&err);
}

// Virtual time: the 300 ms timeout against the 3 s delay is exact, so a loaded machine
// cannot make the second attempt time out as well.
#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried() {
    let server = Server::start(
        vec![Reply::json(200, r#"{"slow":true}"#).delay(Duration::from_secs(3))],
        Reply::json(200, r#"{"slow":false}"#),
    )
    .await;
    let mut config = fast_config(&server);
    config.timeout = Duration::from_millis(300);
    let client = HttpClient::new(config).unwrap();
    let (value, stats) = client
        .get_json::<serde_json::Value>(url(&server), &[], no_classify())
        .await
        .unwrap();
    assert_eq!(value["slow"], false);
    assert_eq!(stats.requests, 2);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_retry_after_seconds() {
    let server = Server::start(
        vec![Reply::json(429, r#"{"message":"too many requests."}"#).header("retry-after", "1")],
        Reply::json(200, "{}"),
    )
    .await;
    let client = client(&server);
    let response = client.get(url(&server), &[], no_classify()).await.unwrap();
    let s = response.stats;
    assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 1));
    assert_eq!(s.retry_wait, Duration::from_secs(1));
    assert_eq!(client.metrics().rate_limited, 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_retry_after_http_date() {
    // The client reads the date against the wall clock (whole seconds): 30 s ahead the wait
    // is between 29 and 30 s when the answer comes at once, and far above the backoff (a few
    // ms here) even on a machine that stalls for seconds. The wait itself is virtual.
    let at = chrono::Utc::now() + chrono::Duration::seconds(30);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let server = Server::start(
        vec![Reply::json(429, "{}").header("retry-after", date)],
        Reply::json(200, "{}"),
    )
    .await;
    let mut config = fast_config(&server);
    config.retry.max_delay = Duration::from_mins(1);
    let client = HttpClient::new(config).unwrap();
    let s = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap()
        .stats;
    assert_eq!(s.rate_limited, 1);
    assert!(
        s.retry_wait > Duration::from_secs(10) && s.retry_wait <= Duration::from_secs(30),
        "{s:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_x_ratelimit_reset() {
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let server = Server::start(
        vec![
            Reply::json(
                429,
                r#"{"error":"API limit reached. Please try again later. Remaining Limit: 0"}"#,
            )
            .header("x-ratelimit-limit", "60")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", reset.to_string()),
        ],
        Reply::json(200, "{}"),
    )
    .await;
    let client = client(&server);
    let s = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap()
        .stats;
    assert_eq!((s.requests, s.rate_limited), (2, 1));
    assert!(s.retry_wait <= Duration::from_secs(1), "{s:?}");
}

#[tokio::test]
async fn rate_limited_until_retries_run_out() {
    let server = Server::start(
        vec![],
        Reply::json(
            429,
            r#"{"status":"ERROR","error":"You've exceeded the maximum requests per minute"}"#,
        ),
    )
    .await;
    let mut config = fast_config(&server);
    config.retry.max_retries = 2;
    let client = HttpClient::new(config).unwrap();
    let err = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_error_clean(&err);
    assert_eq!(client.metrics().rate_limited, 3);
    assert_eq!(server.seen().len(), 3);
}

/// The acceptance rule at a small scale: the server allows 20 requests in a fixed window
/// of 1 s from the first request; 30 concurrent requests through a client limited to 20/s
/// get no 429 (20 go at once, 10 when the window has passed). In virtual time, so the
/// server's window can be exactly the client's limit: a slow first connection on a loaded
/// machine takes no virtual time.
#[tokio::test(start_paused = true)]
async fn the_limiter_keeps_a_fixed_window_quota_without_429() {
    let server = Server::start(vec![], Reply::json(200, "{}")).await;
    server.set_quota(20, Duration::from_secs(1));
    let mut config = fast_config(&server);
    config.rate_limit = Some(marketpipe_ports::RateLimit {
        requests: 20,
        per: Duration::from_secs(1),
    });
    let client = HttpClient::new(config).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let client = client.clone();
        let url = url(&server);
        tasks.spawn(async move { client.get(url, &[], no_classify()).await.map(|r| r.stats) });
    }
    let mut throttled = 0;
    while let Some(result) = tasks.join_next().await {
        let stats = result.unwrap().unwrap();
        assert_eq!(stats.rate_limited, 0);
        throttled += usize::from(!stats.throttled.is_zero());
    }
    assert_eq!(server.rejected(), 0);
    assert_eq!(server.seen().len(), 30);
    assert_eq!(throttled, 10);
    assert_eq!(client.metrics().rate_limited, 0);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_fails_fast_then_half_opens_and_closes() {
    let server = Server::start(
        vec![
            Reply::new(500, "boom"),
            Reply::new(500, "boom"),
            Reply::new(500, "boom"),
        ],
        Reply::json(200, "{}"),
    )
    .await;
    let mut config = fast_config(&server);
    config.retry.max_retries = 0;
    config.breaker = BreakerPolicy {
        failure_threshold: 3,
        cool_down: Duration::from_millis(300),
    };
    let client = HttpClient::new(config).unwrap();
    let clone = client.clone(); // clones share the breaker
    for c in [&client, &clone, &client] {
        let err = c.get(url(&server), &[], no_classify()).await.unwrap_err();
        assert!(err.to_string().contains("HTTP 500"), "{err}");
    }
    let err = clone
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }));
    assert!(err.to_string().contains("circuit open"), "{err}");
    assert_error_clean(&err);
    assert_eq!(server.seen().len(), 3, "an open breaker sends nothing");
    assert_eq!(client.metrics().circuit_rejections, 1);
    // Still open inside the cool-down (300 ms); half-open after it.
    tokio::time::advance(Duration::from_millis(250)).await;
    let err = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("circuit open"), "{err}");
    tokio::time::advance(Duration::from_millis(100)).await;
    // Half-open: one trial goes through; its success closes the breaker.
    client.get(url(&server), &[], no_classify()).await.unwrap();
    clone.get(url(&server), &[], no_classify()).await.unwrap();
    assert_eq!(server.seen().len(), 5);
    assert_eq!(client.metrics().circuit_rejections, 2);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_reopens_when_the_trial_fails() {
    let server = Server::start(vec![], Reply::new(503, "down")).await;
    let mut config = fast_config(&server);
    config.retry.max_retries = 0;
    config.breaker = BreakerPolicy {
        failure_threshold: 2,
        cool_down: Duration::from_millis(200),
    };
    let client = HttpClient::new(config).unwrap();
    for _ in 0..2 {
        client
            .get(url(&server), &[], no_classify())
            .await
            .unwrap_err();
    }
    tokio::time::advance(Duration::from_millis(250)).await;
    let trial = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(trial.to_string().contains("HTTP 503"), "{trial}");
    let refused = client
        .get(url(&server), &[], no_classify())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("circuit open"), "{refused}");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn malformed_json_is_not_retried_and_names_the_path_only() {
    // A complete HTTP answer whose JSON is truncated.
    let server = Server::start(
        vec![],
        Reply::json(
            200,
            r#"{"bars":{"AAPL":[{"t":"2024-03-15T13:30:00Z","o":171.17"#,
        ),
    )
    .await;
    let client = client(&server);
    let secret = Secret::new(HEADER_KEY);
    let err = client
        .get_json::<serde_json::Value>(
            url(&server),
            &[("apca-api-secret-key", &secret)],
            no_classify(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.starts_with("testprov: malformed response: GET /v2/stocks/bars: EOF while parsing"),
        "{text}"
    );
    assert!(text.contains("line 1 column"), "{text}");
    assert_error_clean(&err);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn client_errors_go_to_classify_then_to_the_generic_mapping() {
    let server = Server::start(
        vec![
            Reply::json(
                403,
                r#"{"error":"You don't have access to this resource."}"#,
            ),
            Reply::json(403, r#"{"message":"forbidden"}"#),
            Reply::new(404, "Not Found"),
            Reply::json(422, r#"{"code":42210000,"message":"invalid timeframe"}"#),
        ],
        Reply::json(200, "{}"),
    )
    .await;
    let client = client(&server);
    let classify: &Classifier = &|status, body| {
        (status == 403 && String::from_utf8_lossy(body).contains("access")).then(|| {
            ProviderError::Auth {
                provider: "testprov".into(),
                message: "needs a paid plan".into(),
            }
        })
    };
    let e = client.get(url(&server), &[], classify).await.unwrap_err();
    assert!(matches!(&e, ProviderError::Auth { message, .. } if message == "needs a paid plan"));
    let e = client.get(url(&server), &[], classify).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Auth { message, .. } if message == "HTTP 403 on GET /v2/stocks/bars: forbidden"),
        "{e:?}"
    );
    let e = client.get(url(&server), &[], classify).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::NotFound { what, .. } if what.contains("GET /v2/stocks/bars")),
        "{e:?}"
    );
    let e = client.get(url(&server), &[], classify).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::BadRequest { message, .. } if message.ends_with("invalid timeframe")),
        "{e:?}"
    );
    assert_error_clean(&e);
    // Permanent errors are not retried: one request each.
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn secrets_go_out_as_headers_and_never_in_text() {
    let server = Server::start(vec![], Reply::json(200, "{}")).await;
    let client = client(&server);
    let bearer = Secret::new(format!("Bearer {HEADER_KEY}"));
    let response = client
        .get(
            client.endpoint(&["v2", "aggs", "ticker", "BRK.B"]),
            &[("authorization", &bearer)],
            no_classify(),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let seen = server.seen();
    assert_eq!(seen[0].path_and_query, "/v2/aggs/ticker/BRK.B");
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {HEADER_KEY}").as_str()
    );
    assert_eq!(format!("{bearer:?} {bearer}"), "*** ***");
    let debug = format!("{client:?} {response:?}");
    assert!(!debug.contains(HEADER_KEY), "{debug}");
    // A credential that cannot be a header value is refused without echoing it.
    let bad = Secret::new(format!("{HEADER_KEY}\n"));
    let e = client
        .get(url(&server), &[("authorization", &bad)], no_classify())
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Auth { .. }));
    assert_error_clean(&e);
}

#[tokio::test]
async fn download_streams_to_a_file_and_starts_over_after_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let server = Server::start(
        vec![Reply::new(200, payload[..5000].to_vec()).cut()],
        Reply::new(200, payload.clone()),
    )
    .await;
    let client = client(&server);
    let dest = dir
        .path()
        .join("sub")
        .join("20240315_IEXTP1_TOPS1.6.pcap.gz");
    let n = client
        .download_to_file(server.url("/hist/file.pcap.gz?alt=media"), &dest)
        .await
        .unwrap();
    assert_eq!(n, payload.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), payload);
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(client.metrics().retries, 1);
}

#[tokio::test]
async fn download_of_a_missing_file_is_not_found_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(vec![], Reply::new(404, "Not Found")).await;
    let client = client(&server);
    let dest = dir.path().join("x.pcap.gz");
    let e = client
        .download_to_file(server.url("/hist/x.pcap.gz?token=abc"), &dest)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DownloadError::Provider(ProviderError::NotFound { .. })),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("token=abc"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
