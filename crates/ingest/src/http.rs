//! The Logplex HTTPS drain endpoint: `POST /logs`, answered as soon as the frame is handed on.
//!
//! A server in the mini-redis shape: [`run`] takes a bound listener, holds a connection limit,
//! runs a task per connection (TLS when configured) and, when `shutdown` resolves, stops
//! accepting and lets open connections finish their current request.
//!
//! Checks run in this order, so that nothing is revealed before authentication: guessing
//! limit (429), credentials (401), drain token (403), content type and encoding (415), body
//! size and time (413, 408), framing (400), then the hand-off (503 when full).

use std::convert::Infallible;
use std::future::Future;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::{BasicAuth, Credential, DrainTokens, FailureLimiter};
use crate::frame::{Frame, FrameSink, Protocol, Rejected};
use crate::listener::{accept_loop, handshake};
use crate::log_throttle::LogThrottle;
use crate::{framing, metrics, query};

/// Answers the routes the receiver does not own (`/healthz`, `/metrics`): `None` means 404.
pub type ExtraRoutes = Arc<dyn Fn(&Method, &str) -> Option<Response<Full<Bytes>>> + Send + Sync>;

/// Limits, credentials and hooks of the HTTP receiver.
#[derive(Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, compressed or not; larger ones get 413.
    pub max_body_bytes: usize,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time allowed for a request's headers (and a TLS handshake) to arrive (slowloris).
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body to arrive.
    pub body_read_timeout: Duration,
    /// Accepted basic-auth credentials; none means the endpoint is open.
    pub credentials: Vec<Credential>,
    /// Known drain tokens and their apps; when not empty, other tokens get 403.
    pub drain_tokens: Arc<DrainTokens>,
    /// Failed authentications from one address within `auth_failure_window` before it gets 429.
    pub max_auth_failures: u32,
    pub auth_failure_window: Duration,
    /// Serve HTTPS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    pub extra_routes: Option<ExtraRoutes>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_body_bytes: 8 * 1024 * 1024,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            credentials: Vec::new(),
            drain_tokens: Arc::default(),
            max_auth_failures: 20,
            auth_failure_window: Duration::from_secs(60),
            tls: None,
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
            .field("credentials", &self.credentials.len())
            .field("drain_tokens", &self.drain_tokens.len())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

struct State<S> {
    config: HttpConfig,
    auth: BasicAuth,
    limiter: FailureLimiter,
    sink: S,
}

static COUNT_MISMATCH_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static FRAMING_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static AUTH_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// Serves drain requests on `listener` until `shutdown` resolves, then waits for open
/// connections to finish the request they are on.
pub async fn run<S: FrameSink>(listener: TcpListener, config: HttpConfig, sink: S, shutdown: impl Future<Output = ()>) {
    let max_connections = config.max_connections;
    let auth = BasicAuth::new(&config.credentials);
    let limiter = FailureLimiter::new(config.max_auth_failures.max(1), config.auth_failure_window);
    let state = Arc::new(State { config, auth, limiter, sink });
    accept_loop(listener, Protocol::Https, max_connections, shutdown, |stream, peer, stop| {
        let state = state.clone();
        async move {
            match state.config.tls.clone() {
                None => serve_connection(stream, peer, state, stop).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream, peer, state.config.header_read_timeout).await {
                        serve_connection(tls, peer, state, stop).await;
                    }
                }
            }
        }
    })
    .await;
}

async fn serve_connection<I, S>(io: I, peer: SocketAddr, state: Arc<State<S>>, mut stop_rx: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: FrameSink,
{
    let header_timeout = state.config.header_read_timeout;
    let service = service_fn(move |req| handle(req, peer, state.clone()));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service);
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

/// One Logplex drain request: check it, frame it, hand it on, answer.
async fn receive<S: FrameSink>(req: Request<Incoming>, peer: SocketAddr, state: &State<S>) -> Response<Full<Bytes>> {
    let received_at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim);

    let now = Instant::now();
    if let Some(wait) = state.limiter.blocked(peer.ip(), now) {
        metrics::AUTH_FAILURES.with_label_values(&["rate_limited"]).inc();
        return with_retry_after(reply(StatusCode::TOO_MANY_REQUESTS, "too many failed authentications"), wait);
    }
    if !state.auth.allows(parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes)) {
        state.limiter.record_failure(peer.ip(), now);
        metrics::AUTH_FAILURES.with_label_values(&["credentials"]).inc();
        if let Some(held) = AUTH_LOG.allow() {
            tracing::warn!(%peer, suppressed = held, "drain request with missing or wrong credentials");
        }
        let mut r = reply(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"drainpipe\""));
        return r;
    }
    let drain_token = header("logplex-drain-token").filter(|t| !t.is_empty());
    let tokens = &state.config.drain_tokens;
    if let Some(token) = drain_token {
        if !tokens.is_empty() && tokens.app(token).is_none() {
            state.limiter.record_failure(peer.ip(), now);
            metrics::AUTH_FAILURES.with_label_values(&["drain_token"]).inc();
            return reply(StatusCode::FORBIDDEN, "drain token not on the allow-list");
        }
    }
    if let Some(reason) = unsupported_content_type(parts.headers.get(CONTENT_TYPE)) {
        return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason);
    }
    let gzipped = match content_encoding(parts.headers.get(CONTENT_ENCODING)) {
        Ok(g) => g,
        Err(reason) => return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason),
    };

    let max = state.config.max_body_bytes;
    let body = match tokio::time::timeout(state.config.body_read_timeout, Limited::new(body, max).collect()).await {
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
    let body = if gzipped {
        match gunzip(&body, max) {
            Ok(b) => b,
            Err(GunzipError::TooLarge) => {
                return reply(StatusCode::PAYLOAD_TOO_LARGE, "decompressed body exceeds the configured limit");
            }
            Err(GunzipError::Invalid) => return reply(StatusCode::BAD_REQUEST, "body is not valid gzip"),
        }
    } else {
        body
    };

    let framed = match framing::split(&body) {
        Ok(f) => f,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(problem) = framed.problem {
        metrics::FRAMING_PROBLEMS.inc();
        if let Some(held) = FRAMING_LOG.allow() {
            tracing::warn!(%peer, problem = %problem.describe(), suppressed = held, "framing broke part-way; the rest is kept as one message");
        }
    }
    if let Some(declared) = header("logplex-msg-count").and_then(|v| v.parse::<usize>().ok()) {
        if declared != framed.messages.len() {
            metrics::COUNT_MISMATCHES.inc();
            if let Some(held) = COUNT_MISMATCH_LOG.allow() {
                tracing::warn!(%peer, declared, framed = framed.messages.len(), suppressed = held, "Logplex-Msg-Count disagrees with the framing; keeping every framed message");
            }
        }
    }
    let (app, labels) = query::parse(parts.uri.query());
    let app = app.or_else(|| drain_token.and_then(|t| tokens.app(t)).map(str::to_owned));
    metrics::MESSAGES.with_label_values(&[Protocol::Https.as_str()]).inc_by(framed.messages.len() as u64);
    metrics::BYTES.with_label_values(&[Protocol::Https.as_str()]).inc_by(body.len() as u64);
    let frame = Frame {
        protocol: Protocol::Https,
        messages: framed.messages,
        cut: Vec::new(),
        app,
        drain_token: drain_token.map(str::to_owned),
        frame_id: header("logplex-frame-id").filter(|v| !v.is_empty()).map(str::to_owned),
        labels,
        received_at,
        body,
    };
    match state.sink.accept(frame).await {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(Rejected::Full { retry_after }) => {
            with_retry_after(reply(StatusCode::SERVICE_UNAVAILABLE, "pipeline full, retry later"), retry_after)
        }
        Err(Rejected::ShuttingDown) => with_retry_after(
            reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down, retry later"),
            Duration::from_secs(5),
        ),
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

/// `Ok(true)` for gzip, `Ok(false)` for none or identity.
fn content_encoding(value: Option<&HeaderValue>) -> Result<bool, &'static str> {
    let Some(value) = value else { return Ok(false) };
    match value.to_str().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err("unsupported Content-Encoding (gzip and identity are accepted)"),
    }
}

enum GunzipError {
    TooLarge,
    Invalid,
}

/// Decompresses a gzip body (several members allowed), refusing to grow past `max` bytes.
fn gunzip(compressed: &[u8], max: usize) -> Result<Bytes, GunzipError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(max));
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    match decoder.take(max as u64 + 1).read_to_end(&mut out) {
        Ok(n) if n > max => Err(GunzipError::TooLarge),
        Ok(_) => Ok(Bytes::from(out)),
        Err(_) => Err(GunzipError::Invalid),
    }
}

fn with_retry_after(mut r: Response<Full<Bytes>>, wait: Duration) -> Response<Full<Bytes>> {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
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
