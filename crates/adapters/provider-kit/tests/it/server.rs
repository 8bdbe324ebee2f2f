//! A tiny scripted HTTP server on 127.0.0.1:0 (hyper 1): each request takes the next reply
//! of the script, or the fallback when the script is empty, and is recorded.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How a reply's body is sent.
#[derive(Debug, Clone)]
pub(crate) enum Send {
    /// The whole body.
    Full,
    /// The body's bytes, then the connection breaks (a `Content-Length` promises more).
    Cut,
    /// Wait, then the whole body.
    Delay(Duration),
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) send: Send,
}

impl Reply {
    pub(crate) fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            send: Send::Full,
        }
    }

    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self::new(status, body).header("content-type", "application/json")
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn cut(mut self) -> Self {
        self.send = Send::Cut;
        self
    }

    pub(crate) fn delay(mut self, d: Duration) -> Self {
        self.send = Send::Delay(d);
        self
    }
}

/// A request the server saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
}

#[derive(Debug)]
struct State {
    script: VecDeque<Reply>,
    fallback: Reply,
    seen: Vec<Seen>,
    /// A provider-like quota: at most `n` requests per fixed window starting at the first
    /// request of the window; others get 429.
    quota: Option<Quota>,
}

#[derive(Debug)]
struct Quota {
    n: usize,
    window: Duration,
    started: Option<tokio::time::Instant>,
    count: usize,
    rejected: usize,
}

/// The server; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A body that sends its bytes and then, when `fail`, an error (which aborts the
/// connection).
struct TestBody {
    data: Option<Bytes>,
    fail: bool,
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        if self.fail {
            self.fail = false;
            return Poll::Ready(Some(Err(std::io::Error::other("connection cut by test"))));
        }
        Poll::Ready(None)
    }
}

impl Server {
    pub(crate) async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            fallback,
            seen: Vec::new(),
            quota: None,
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(respond(&state, &req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    pub(crate) fn url(&self, path_and_query: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap()
    }

    pub(crate) fn base(&self) -> url::Url {
        self.url("/")
    }

    /// Enforces a fixed-window quota from now on.
    pub(crate) fn set_quota(&self, n: usize, window: Duration) {
        self.state.lock().unwrap().quota = Some(Quota {
            n,
            window,
            started: None,
            count: 0,
            rejected: 0,
        });
    }

    /// Requests the quota rejected.
    pub(crate) fn rejected(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .quota
            .as_ref()
            .map_or(0, |q| q.rejected)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn respond(state: &Mutex<State>, req: &Request<Incoming>) -> Response<TestBody> {
    let reply = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            path_and_query: req
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            headers: req.headers().clone(),
        });
        let over_quota = s.quota.as_mut().is_some_and(|q| {
            let now = tokio::time::Instant::now();
            if q.started.is_none_or(|t| now >= t + q.window) {
                q.started = Some(now);
                q.count = 0;
            }
            q.count += 1;
            let over = q.count > q.n;
            q.rejected += usize::from(over);
            over
        });
        if over_quota {
            Reply::json(429, r#"{"message":"too many requests."}"#)
        } else {
            s.script.pop_front().unwrap_or_else(|| s.fallback.clone())
        }
    };
    if let Send::Delay(d) = reply.send {
        tokio::time::sleep(d).await;
    }
    let cut = matches!(reply.send, Send::Cut);
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let length = if cut {
        reply.body.len() + 1000
    } else {
        reply.body.len()
    };
    builder
        .header("content-length", length)
        .body(TestBody {
            data: Some(Bytes::from(reply.body)),
            fail: cut,
        })
        .unwrap()
}
