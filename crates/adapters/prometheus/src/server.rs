//! `GET /metrics` over HTTP/1.1 on tokio (hyper).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use marketpipe_ports::BoxError;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::recorder::MetricsRecorder;
use crate::render::render;

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where a scrape's text comes from.
#[async_trait]
pub trait Exposition: Send + Sync + 'static {
    /// The current exposition text.
    async fn render(&self) -> Result<String, BoxError>;
}

#[async_trait]
impl Exposition for &'static MetricsRecorder {
    async fn render(&self) -> Result<String, BoxError> {
        Ok(render(&self.snapshot()))
    }
}

/// The metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}; pass a free local address such as 127.0.0.1:9464")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not start.
    #[error("cannot start the metrics server: {0}")]
    Start(#[source] std::io::Error),
}

/// Binds `addr`, tells `on_bound` the address bound (the actual port when 0 was asked
/// for), then serves `GET /metrics` from `exposition` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    exposition: Arc<dyn Exposition>,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_bound(listener.local_addr().map_err(ServeError::Start)?);
    accept_until(listener, exposition, shutdown).await;
    Ok(())
}

/// A metrics endpoint on a thread of its own (with a one-thread runtime), so that a scrape
/// never waits for the work nor the work for a scrape. Stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` now (so that a bad address fails before any work starts) and serves
    /// `exposition` until dropped.
    pub fn spawn(addr: SocketAddr, exposition: Arc<dyn Exposition>) -> Result<Self, ServeError> {
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = std_listener.local_addr().map_err(ServeError::Start)?;
        std_listener
            .set_nonblocking(true)
            .map_err(ServeError::Start)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Start)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => {
                            accept_until(listener, exposition, async {
                                let _ = stopped.await;
                            })
                            .await;
                        }
                        Err(error) => tracing::warn!(%error, "metrics server not started"),
                    }
                });
            })
            .map_err(ServeError::Start)?;
        tracing::info!(addr = %bound, "serving metrics at http://{bound}/metrics");
        Ok(Self {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address bound (the actual port when 0 was asked for).
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_until(
    listener: TcpListener,
    exposition: Arc<dyn Exposition>,
    shutdown: impl Future<Output = ()> + Send,
) {
    // Dropping the set aborts the connections still open.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let exposition = Arc::clone(&exposition);
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            handle(Arc::clone(&exposition), request)
                        });
                        let result = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(10))
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(error) = result {
                            tracing::trace!(%error, "metrics connection ended");
                        }
                    });
                }
                Err(error) => {
                    tracing::debug!(%error, "metrics server: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    exposition: Arc<dyn Exposition>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(response)
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET /metrics is served\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => match exposition.render().await {
            Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
            Err(error) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("cannot read the metrics: {error}\n"),
            ),
        },
        "/" => reply(
            StatusCode::OK,
            "text/plain",
            "MarketPipe metrics: GET /metrics\n".into(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: the metrics are at /metrics\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    #[derive(Debug)]
    struct Failing;

    #[async_trait]
    impl Exposition for Failing {
        async fn render(&self) -> Result<String, BoxError> {
            Err("the store is locked".into())
        }
    }

    #[test]
    fn serves_the_recorders_text_at_metrics_and_stops_when_dropped() {
        let recorder: &'static MetricsRecorder = Box::leak(Box::new(MetricsRecorder::new()));
        metrics::with_local_recorder(recorder, || {
            metrics::counter!("served_total").increment(3);
        });
        let server =
            MetricsServer::spawn("127.0.0.1:0".parse().unwrap(), Arc::new(recorder)).unwrap();
        let addr = server.addr();
        let response = get(addr, "/metrics");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("content-type: text/plain; version=0.0.4"),
            "{response}"
        );
        assert!(response.contains("\nserved_total 3\n"), "{response}");
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/").contains("GET /metrics"));

        let taken = MetricsServer::spawn(addr, Arc::new(recorder)).unwrap_err();
        assert!(matches!(taken, ServeError::Bind { .. }));
        assert!(taken.to_string().contains(&addr.to_string()), "{taken}");

        drop(server);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening"
        );
    }

    #[tokio::test]
    async fn serve_reports_a_failing_source_as_500_and_stops_on_shutdown() {
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound_tx, bound_rx) = oneshot::channel::<SocketAddr>();
        let task = tokio::spawn(serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Failing),
            move |bound| {
                let _ = bound_tx.send(bound);
            },
            async {
                let _ = stopped.await;
            },
        ));
        let addr = bound_rx.await.unwrap();
        assert_ne!(addr.port(), 0);
        let response = loop {
            let attempt =
                tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr).map(|_| ()))
                    .await
                    .unwrap();
            if attempt.is_ok() {
                break tokio::task::spawn_blocking(move || get(addr, "/metrics"))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(response.starts_with("HTTP/1.1 500"), "{response}");
        assert!(response.contains("the store is locked"), "{response}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
