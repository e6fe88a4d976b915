//! The Logplex HTTPS drain endpoint: `POST /logs`, answered as soon as the frame is handed on.
//!
//! A server in the mini-redis shape: [`run`] takes a bound listener, holds a connection limit,
//! runs a task per connection and, when `shutdown` resolves, stops accepting and lets open
//! connections finish their current request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::frame::{Frame, FrameSink, Protocol, Rejected};
use crate::{framing, metrics, query};

/// Answers the routes the receiver does not own (`/healthz`, `/metrics`): `None` means 404.
pub type ExtraRoutes = Arc<dyn Fn(&Method, &str) -> Option<Response<Full<Bytes>>> + Send + Sync>;

/// Limits and hooks of the HTTP receiver.
#[derive(Clone)]
pub struct HttpConfig {
    /// Largest request body accepted (after decompression); larger ones get 413.
    pub max_body_bytes: usize,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive (slowloris).
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body to arrive.
    pub body_read_timeout: Duration,
    pub extra_routes: Option<ExtraRoutes>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_body_bytes: 8 * 1024 * 1024,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            extra_routes: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .finish_non_exhaustive()
    }
}

struct State<S> {
    config: HttpConfig,
    sink: S,
}

/// Serves drain requests on `listener` until `shutdown` resolves, then waits for open
/// connections to finish the request they are on.
pub async fn run<S: FrameSink>(listener: TcpListener, config: HttpConfig, sink: S, shutdown: impl Future<Output = ()>) {
    let limit = config.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let state = Arc::new(State { config, sink });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            metrics::OPEN_CONNECTIONS.inc();
            let header_timeout = state.config.header_read_timeout;
            let service = service_fn(move |req| handle(req, peer, state.clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            metrics::OPEN_CONNECTIONS.dec();
            drop(permit);
        });
    }

    let _ = stop_tx.send(true);
    // Every connection task holds a permit; having them all back means all have finished.
    let _ = permits.acquire_many(limit as u32).await;
}

async fn handle<S: FrameSink>(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: Arc<State<S>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::POST, "/logs") => receive(req, peer, &state).await,
        (_, "/logs") => reply(StatusCode::METHOD_NOT_ALLOWED, "drain requests are POST /logs"),
        (method, path) => match state.config.extra_routes.as_ref().and_then(|r| r(method, path)) {
            Some(r) => return Ok(r),
            None => reply(StatusCode::NOT_FOUND, "not found"),
        },
    };
    metrics::REQUESTS.with_label_values(&[response.status().as_str()]).inc();
    Ok(response)
}

/// One Logplex drain request: frame it, hand it on, answer.
async fn receive<S: FrameSink>(req: Request<Incoming>, peer: SocketAddr, state: &State<S>) -> Response<Full<Bytes>> {
    let received_at = SystemTime::now();
    let (parts, body) = req.into_parts();
    if let Some(reason) = unsupported_content_type(parts.headers.get(CONTENT_TYPE)) {
        return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason);
    }
    let limited = Limited::new(body, state.config.max_body_bytes);
    let body = match tokio::time::timeout(state.config.body_read_timeout, limited.collect()).await {
        Err(_) => return reply(StatusCode::REQUEST_TIMEOUT, "request body not received in time"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "request body exceeds the configured limit");
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "reading request body failed");
            return reply(StatusCode::BAD_REQUEST, "request body could not be read");
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };

    let framed = match framing::split(&body) {
        Ok(f) => f,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(problem) = framed.problem {
        metrics::FRAMING_PROBLEMS.inc();
        tracing::debug!(%peer, problem = %problem.describe(), "framing broke part-way; the rest is kept as one message");
    }
    let header =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(declared) = header("logplex-msg-count").and_then(|v| v.parse::<usize>().ok()) {
        if declared != framed.messages.len() {
            metrics::COUNT_MISMATCHES.inc();
            tracing::debug!(%peer, declared, framed = framed.messages.len(), "Logplex-Msg-Count disagrees with the framing");
        }
    }
    let (app, labels) = query::parse(parts.uri.query());
    metrics::MESSAGES.with_label_values(&[Protocol::Https.as_str()]).inc_by(framed.messages.len() as u64);
    metrics::BYTES.with_label_values(&[Protocol::Https.as_str()]).inc_by(body.len() as u64);
    let frame = Frame {
        protocol: Protocol::Https,
        messages: framed.messages,
        app,
        drain_token: header("logplex-drain-token").map(str::to_owned),
        frame_id: header("logplex-frame-id").map(str::to_owned),
        labels,
        received_at,
        body,
    };
    match state.sink.accept(frame).await {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(Rejected::Full { retry_after }) => {
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "pipeline full, retry later");
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            r
        }
        Err(Rejected::ShuttingDown) => {
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down, retry later");
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// Logplex sends `application/logplex-1`; `text/plain` and no type are what hand-rolled
/// senders use. Structured types mean the sender is not a Logplex drain.
fn unsupported_content_type(value: Option<&HeaderValue>) -> Option<&'static str> {
    let value = value?;
    let essence = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/logplex-1" | "text/plain" | "application/octet-stream" => None,
        _ => Some("expected a Logplex body (Content-Type: application/logplex-1)"),
    }
}

/// An answer with a one-line plain-text reason, or an empty body (`Content-Length: 0`).
fn reply(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = if reason.is_empty() { Bytes::new() } else { Bytes::from(format!("{reason}\n")) };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if !reason.is_empty() {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    r
}
