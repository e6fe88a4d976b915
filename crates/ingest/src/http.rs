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
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::{Access, FailureLimiter, LimiterKey, LiveAccess};
use crate::frame::{Frame, FrameSink, MemoryBudget, Position, Protocol, Rejected, Reservation};
use crate::listener::{accept_loop, handshake, Activity, Connection};
use crate::log_throttle::LogThrottle;
use crate::{framing, metrics, query};
use drainpipe_otlp::Signal;

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
    /// Who may send, in force: basic-auth credentials (none: the endpoint is open), drain tokens
    /// and their apps (when listed, other tokens get 403), and the bearer tokens accepted on the
    /// OTLP endpoints besides the credentials (with neither, they are open, like `POST /logs`).
    /// A reload replaces it; each request is judged by the one in force when it arrived.
    pub access: LiveAccess,
    /// With `drain_tokens`, still take requests that carry no token at all (Private Spaces
    /// drains send none); a token that is present must still be on the list.
    pub allow_tokenless: bool,
    /// Failed authentications under one key (client address and user name) within
    /// `auth_failure_window` before further failures get 429.
    pub max_auth_failures: u32,
    pub auth_failure_window: Duration,
    /// Take the client's address from the last `X-Forwarded-For` entry (set by a trusted load
    /// balancer or Heroku's router) instead of the peer's.
    pub trust_forwarded_for: bool,
    /// Memory that bodies being received (and frames queued after them) may hold at once.
    pub budget: MemoryBudget,
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
            access: LiveAccess::default(),
            allow_tokenless: false,
            max_auth_failures: 20,
            auth_failure_window: Duration::from_secs(60),
            trust_forwarded_for: false,
            budget: MemoryBudget::new(64 * 1024 * 1024),
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
            .field("access", &self.access)
            .field("allow_tokenless", &self.allow_tokenless)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("budget", &self.budget.max_bytes())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct State<S> {
    pub(crate) config: HttpConfig,
    pub(crate) limiter: FailureLimiter,
    pub(crate) sink: S,
}

static COUNT_MISMATCH_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static FRAMING_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static AUTH_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static BUDGET_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// While the receive memory budget is spent, senders are told to come back after this long.
pub(crate) const MEMORY_FULL_RETRY: Duration = Duration::from_secs(1);
/// While drainpipe shuts down, senders are told to come back after this long (to a replica
/// that takes traffic, or to this one restarted).
const SHUTTING_DOWN_RETRY: Duration = Duration::from_secs(5);
/// Bodies at least this large (or compressed) are inflated and framed off the async workers.
pub(crate) const BLOCKING_BODY: usize = 256 * 1024;
/// What a connection's HTTP/1 read buffer (and its write buffer) may hold; a request head
/// larger than this is answered 431, and bodies are read this much at a time. hyper's default,
/// about 400 KiB, times `--max-connections` was memory outside every limit; this (its
/// allocation can reach twice it) is the per-connection term of docs/operations.md's memory
/// formula. Logplex's and OTLP exporters' heads are well under 1 KiB.
pub const CONNECTION_BUFFER: usize = 16 * 1024;

/// Serves drain requests on `listener` until `shutdown` resolves, then waits for open
/// connections to finish the request they are on.
pub async fn run<S: FrameSink>(listener: TcpListener, config: HttpConfig, sink: S, shutdown: impl Future<Output = ()>) {
    let limiter = FailureLimiter::new(config.max_auth_failures.max(1), config.auth_failure_window);
    let state = Arc::new(State { config, limiter, sink });
    let limits = state.config.clone();
    serve(listener, "https", &limits, shutdown, move |req, peer| {
        let state = state.clone();
        async move { handle(req, peer, &state).await }
    })
    .await;
}

/// Serves only `routes` (`/metrics`, `/healthz`, `/readyz` on an address of their own), with
/// the same connection limit, timeouts, eviction of idle connections and TLS as `run`.
pub async fn run_routes(
    listener: TcpListener,
    config: HttpConfig,
    routes: ExtraRoutes,
    shutdown: impl Future<Output = ()>,
) {
    serve(listener, "admin", &config, shutdown, move |req, _peer| {
        let answer =
            routes(req.method(), req.uri().path()).unwrap_or_else(|| reply(StatusCode::NOT_FOUND, "not found"));
        async move { answer }
    })
    .await;
}

/// The accept loop and the per-connection HTTP/1 server both endpoints share.
async fn serve<H, F>(
    listener: TcpListener,
    name: &'static str,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (tls, header_timeout) = (limits.tls.clone(), limits.header_read_timeout);
    accept_loop(listener, name, limits.max_connections, shutdown, move |stream, peer, connection| {
        let (tls, handler) = (tls.clone(), handler.clone());
        async move {
            match tls {
                None => serve_connection(stream, peer, header_timeout, handler, connection).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream, peer, header_timeout).await {
                        serve_connection(tls, peer, header_timeout, handler, connection).await;
                    }
                }
            }
        }
    })
    .await;
}

async fn serve_connection<I, H, F>(
    io: I,
    peer: SocketAddr,
    header_timeout: Duration,
    handler: H,
    mut connection: Connection,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let activity = connection.activity();
    let handler = Arc::new(handler);
    let service = service_fn(move |mut req: Request<Incoming>| {
        let (activity, handler) = (activity.clone(), handler.clone());
        // The guessing limiter's penalty is served as idle time of this connection.
        req.extensions_mut().insert(activity.clone());
        async move {
            activity.busy();
            let response = handler(req, peer).await;
            activity.idle();
            Ok::<_, Infallible>(response)
        }
    });
    // An idle keep-alive connection waits for its next request's headers under the same
    // timeout, and is the first to go when the connection limit is reached.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(CONNECTION_BUFFER)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = connection.closing() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn handle<S: FrameSink>(req: Request<Incoming>, peer: SocketAddr, state: &State<S>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/logs") => {
            let started = Instant::now();
            let answer = receive(req, peer, state).await;
            metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
            counted(answer)
        }
        (_, "/logs") => counted(reply(StatusCode::METHOD_NOT_ALLOWED, "drain requests are POST /logs")),
        (method, path @ ("/v1/logs" | "/v1/metrics" | "/v1/traces")) => {
            let signal = match path {
                "/v1/logs" => Signal::Logs,
                "/v1/metrics" => Signal::Metrics,
                _ => Signal::Traces,
            };
            let answer = if method == Method::POST {
                crate::otlp::receive(req, peer, state, signal).await
            } else {
                reply(StatusCode::METHOD_NOT_ALLOWED, "OTLP exports are POST")
            };
            metrics::OTLP_REQUESTS.with_label_values(&[signal.as_str(), answer.status().as_str()]).inc();
            answer
        }
        // Not a drain request, so not counted: scanners' 404s would dilute the share of drain
        // requests refused (the DrainpipeRefusingDrains alert).
        (method, path) => match state.config.extra_routes.as_ref().and_then(|r| r(method, path)) {
            Some(r) => r,
            None => reply(StatusCode::NOT_FOUND, "not found"),
        },
    }
}

/// Counts an answer on `/logs` in `drainpipe_ingest_requests_total` (docs/metrics.md: drain
/// requests only).
fn counted(response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    metrics::REQUESTS.with_label_values(&[response.status().as_str()]).inc();
    response
}

/// One Logplex drain request: check it, read and frame its body, hand it on, answer.
async fn receive<S: FrameSink>(req: Request<Incoming>, peer: SocketAddr, state: &State<S>) -> Response<Full<Bytes>> {
    let received_at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim);

    // One access for the whole request, whatever a reload does meanwhile.
    let access = state.config.access.current();
    if let Err(r) = authenticate(&parts, peer, state, &access).await {
        return r;
    }
    let drain_token = header("logplex-drain-token").filter(|t| !t.is_empty());
    if let Err(reason) = check_drain_token(drain_token, &access, state.config.allow_tokenless) {
        metrics::AUTH_FAILURES.with_label_values(&["drain_token"]).inc();
        return reply(StatusCode::FORBIDDEN, reason);
    }
    let gzipped = match logplex_encoding(&parts.headers) {
        Ok(g) => g,
        Err(reason) => return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason),
    };
    let (body, framed, reservation) = match read_and_frame(body, gzipped, peer, state).await {
        Ok(read) => read,
        Err(answer) => return text(answer),
    };
    note_framing(&framed, header("logplex-msg-count"), peer);
    if framed.messages.is_empty() {
        // Nothing to deliver (an empty body, or only empty messages): taken as it is.
        return reply(StatusCode::OK, "");
    }
    let query = query::parse(parts.uri.query());
    count_label_changes(query.changes);
    // A listed drain token binds its app: `?app=` names the app only for a drain whose token
    // names none (no `--drain-token`, or a tokenless Private Spaces drain), so a sender cannot
    // write into another app by naming it.
    let app = drain_token.and_then(|t| access.drain_tokens.app(t)).map(str::to_owned).or(query.app);
    metrics::MESSAGES.with_label_values(&[Protocol::Logplex.as_str()]).inc_by(framed.messages.len() as u64);
    metrics::BYTES.with_label_values(&[Protocol::Logplex.as_str()]).inc_by(body.len() as u64);
    let mut frame = Frame {
        app,
        drain_token: drain_token.map(str::to_owned),
        frame_id: header("logplex-frame-id").filter(|v| !v.is_empty()).map(str::to_owned),
        labels: query.labels,
        received_at,
        position: Position::InFrame,
        reservation,
        ..Frame::new(Protocol::Logplex, body, framed.messages)
    };
    let held = frame.memory_bytes();
    frame.reservation.shrink_to(held);
    match state.sink.accept(frame).await {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(rejected) => text(Answer::rejected(rejected)),
    }
}

/// With drain tokens listed, the reason a request's token (or its lack of one) is refused.
/// The allow-list is configuration, not a secret: a refusal here is not a guess.
fn check_drain_token(drain_token: Option<&str>, access: &Access, allow_tokenless: bool) -> Result<(), &'static str> {
    let tokens = &access.drain_tokens;
    if tokens.is_empty() {
        return Ok(());
    }
    match drain_token {
        None if allow_tokenless => Ok(()),
        None => Err("no Logplex-Drain-Token, and this endpoint accepts only listed drain tokens"),
        Some(t) if tokens.app(t).is_none() => Err("drain token not on the allow-list"),
        Some(_) => Ok(()),
    }
}

/// Whether a Logplex body is gzipped, or why its content type or encoding is refused (415).
fn logplex_encoding(headers: &HeaderMap) -> Result<bool, &'static str> {
    if let Some(reason) = unsupported_content_type(headers.get(CONTENT_TYPE)) {
        return Err(reason);
    }
    content_encoding(headers.get(CONTENT_ENCODING))
}

/// Reads the body within `--body-read-timeout` (408 past it), inflates and frames it, holding
/// budget for all of it.
async fn read_and_frame<S>(
    body: Incoming,
    gzipped: bool,
    peer: SocketAddr,
    state: &State<S>,
) -> Result<(Bytes, framing::Framed, Reservation), Answer> {
    let max = state.config.max_body_bytes;
    let mut reservation = state.config.budget.reservation();
    let body = match tokio::time::timeout(state.config.body_read_timeout, read_body(body, max, &mut reservation)).await
    {
        Err(_) => return Err(Answer::new(StatusCode::REQUEST_TIMEOUT, "request body not received in time")),
        Ok(read) => read.map_err(|e| e.answer(peer))?,
    };
    let heavy = gzipped || body.len() >= BLOCKING_BODY;
    let (prepared, reservation) =
        off_the_workers_if(heavy, reservation, move |reservation| prepare(body, gzipped, max, reservation)).await;
    let (body, framed) = prepared.map_err(|e| e.answer(peer))?;
    Ok((body, framed, reservation))
}

/// Counts (and logs, throttled) what the framing noticed: empty messages, framing that broke
/// part-way, and a `Logplex-Msg-Count` that disagrees with it.
fn note_framing(framed: &framing::Framed, msg_count: Option<&str>, peer: SocketAddr) {
    metrics::EMPTY_MESSAGES.inc_by(framed.empty as u64);
    if let Some(problem) = &framed.problem {
        metrics::FRAMING_PROBLEMS.inc();
        if let Some(held) = FRAMING_LOG.allow() {
            tracing::warn!(%peer, problem = %problem.describe(), suppressed = held, "framing broke part-way; the rest is kept as one message");
        }
    }
    if let Some(declared) = msg_count.and_then(|v| v.parse::<usize>().ok()) {
        if declared != framed.messages.len() + framed.empty {
            metrics::COUNT_MISMATCHES.inc();
            if let Some(held) = COUNT_MISMATCH_LOG.allow() {
                tracing::warn!(%peer, declared, framed = framed.messages.len(), suppressed = held, "Logplex-Msg-Count disagrees with the framing; keeping every framed message");
            }
        }
    }
}

/// Runs `work` on the blocking pool when `heavy` (inflating, framing or decoding megabytes
/// takes milliseconds: not on the async workers), else here; either way with the reservation.
pub(crate) async fn off_the_workers_if<T: Send + 'static>(
    heavy: bool,
    mut reservation: Reservation,
    work: impl FnOnce(&mut Reservation) -> Result<T, BodyError> + Send + 'static,
) -> (Result<T, BodyError>, Reservation) {
    if !heavy {
        return (work(&mut reservation), reservation);
    }
    let task = tokio::task::spawn_blocking(move || {
        let result = work(&mut reservation);
        (result, reservation)
    });
    task.await
        .unwrap_or_else(|_| (Err(BodyError::Invalid("request body could not be decoded")), Reservation::default()))
}

/// Basic auth, with the guessing limiter. Right credentials always pass; wrong ones are
/// counted under their key and, past the limit, answered 429 after a penalty.
async fn authenticate<S>(
    parts: &Parts,
    peer: SocketAddr,
    state: &State<S>,
    access: &Access,
) -> Result<(), Response<Full<Bytes>>> {
    let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if access.basic.allows(authorization) {
        return Ok(());
    }
    let r = match refused(parts, peer, state, "drain request").await {
        Refused::Limited(wait) => {
            with_retry_after(reply(StatusCode::TOO_MANY_REQUESTS, "too many failed authentications"), wait)
        }
        Refused::Wrong => {
            let mut r = reply(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"drainpipe\""));
            r
        }
    };
    Err(r)
}

/// How a sender with missing or wrong credentials is answered.
pub(crate) enum Refused {
    /// 429 after this long: too many failures under its key.
    Limited(Duration),
    /// 401.
    Wrong,
}

/// The guessing limiter's bookkeeping for a failed authentication (`what` names the request in
/// the log): past the limit, after a penalty, `Limited`; else counted and `Wrong`.
///
/// The penalty is served as idle time of the connection: at the connection limit a penalised
/// connection gives way like an idle one (and is answered its 429 at once), so a flood of
/// wrong guesses holds no slot that a right sender or `/healthz` needs. A guesser keeps one
/// answer per second per connection it holds, and pays a new connection for each faster one.
pub(crate) async fn refused<S>(parts: &Parts, peer: SocketAddr, state: &State<S>, what: &str) -> Refused {
    let headers = &parts.headers;
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let client = client_ip(headers, peer, state.config.trust_forwarded_for);
    let key = LimiterKey::new(client, authorization);
    let now = Instant::now();
    if let Some(wait) = state.limiter.blocked(key, now) {
        metrics::AUTH_FAILURES.with_label_values(&["rate_limited"]).inc();
        match parts.extensions.get::<Activity>() {
            Some(activity) => activity.idle_for(state.limiter.penalty()).await,
            None => tokio::time::sleep(state.limiter.penalty()).await,
        }
        return Refused::Limited(wait);
    }
    state.limiter.record_failure(key, now);
    metrics::AUTH_FAILURES.with_label_values(&["credentials"]).inc();
    if let Some(held) = AUTH_LOG.allow() {
        tracing::warn!(%peer, %client, suppressed = held, "{what} with missing or wrong credentials");
    }
    Refused::Wrong
}

/// The client's address: the peer, or with a trusted proxy in front, the last address in
/// `X-Forwarded-For` (the one the proxy itself saw; earlier entries are the sender's to write).
fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> IpAddr {
    if !trust_forwarded_for {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(peer.ip())
}

fn count_label_changes(changes: query::LabelChanges) {
    for (change, n) in [("renamed", changes.renamed), ("value_cut", changes.values_cut), ("dropped", changes.dropped)] {
        if n > 0 {
            metrics::LABEL_CHANGES.with_label_values(&[change]).inc_by(u64::from(n));
        }
    }
}

/// Why a body was not taken.
pub(crate) enum BodyError {
    /// Past `--max-body-size`, before or after inflating (413).
    TooLarge(&'static str),
    /// The receive memory budget is spent (503, retried).
    MemoryFull,
    /// Unreadable or not Logplex (400).
    Invalid(&'static str),
    NotLogplex(framing::NotLogplex),
    /// Not an OTLP export request (400).
    Otlp(drainpipe_otlp::DecodeError),
}

/// A refusal before its body: both endpoints answer alike, and each writes the reason as its
/// protocol expects (a plain-text line here, a `google.rpc.Status` for OTLP).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// One line for the sender's operator.
    pub(crate) reason: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    pub(crate) fn new(status: StatusCode, reason: &str) -> Answer {
        Answer { status, reason: reason.to_owned(), retry_after: None }
    }

    /// The 503 for a frame the sink refused, on both endpoints. The reason tells the sender's
    /// operator which refusal it is: load (it passes), storage failing (drainpipe's log says
    /// why; the sink's reason may name its files and is not sent), or a restart.
    pub(crate) fn rejected(rejected: Rejected) -> Answer {
        let (reason, retry_after) = match rejected {
            Rejected::Full { retry_after } => ("pipeline full, retry later", retry_after),
            Rejected::Unavailable { retry_after, .. } => ("storage unavailable, retry later", retry_after),
            Rejected::ShuttingDown => ("shutting down, retry later", SHUTTING_DOWN_RETRY),
        };
        Answer { retry_after: Some(retry_after), ..Answer::new(StatusCode::SERVICE_UNAVAILABLE, reason) }
    }
}

/// `POST /logs`'s way of writing an [`Answer`]: the reason as one line of plain text.
fn text(answer: Answer) -> Response<Full<Bytes>> {
    let r = reply(answer.status, &answer.reason);
    match answer.retry_after {
        Some(wait) => with_retry_after(r, wait),
        None => r,
    }
}

impl BodyError {
    /// What a sender gets for this, on both endpoints. A spent memory budget is logged.
    pub(crate) fn answer(self, peer: SocketAddr) -> Answer {
        match self {
            BodyError::TooLarge(reason) => Answer::new(StatusCode::PAYLOAD_TOO_LARGE, reason),
            BodyError::MemoryFull => {
                if let Some(held) = BUDGET_LOG.allow() {
                    tracing::warn!(%peer, suppressed = held, "receive memory budget spent (--queue-max-bytes); answering 503");
                }
                Answer {
                    retry_after: Some(MEMORY_FULL_RETRY),
                    ..Answer::new(StatusCode::SERVICE_UNAVAILABLE, "receive buffer full, retry later")
                }
            }
            BodyError::Invalid(reason) => Answer::new(StatusCode::BAD_REQUEST, reason),
            BodyError::NotLogplex(e) => Answer::new(StatusCode::BAD_REQUEST, &e.to_string()),
            BodyError::Otlp(e) => Answer { status: StatusCode::BAD_REQUEST, reason: e.0, retry_after: None },
        }
    }
}

/// Reads the body, holding budget for every byte before it is kept. When the budget is spent
/// the rest is still read, and dropped, so that the sender gets its 503 on a clean connection
/// (Logplex retries a 503; a reset mid-body looks like a network failure).
pub(crate) async fn read_body(
    mut body: Incoming,
    max: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    const TOO_LARGE: BodyError = BodyError::TooLarge("request body exceeds the configured limit");
    let hint = body.size_hint();
    if hint.lower() > max as u64 {
        return Err(TOO_LARGE);
    }
    let exact = hint.exact().map(|n| n as usize);
    let mut full = exact.is_some_and(|n| !reservation.try_grow(n));
    let mut joined = BytesMut::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Invalid("request body could not be read"))?;
        let Ok(data) = frame.into_data() else { continue };
        len += data.len();
        if len > max {
            return Err(TOO_LARGE);
        }
        if full {
            continue;
        }
        if joined.is_empty() && exact == Some(data.len()) {
            // The whole body in one piece: kept as it is, no copy.
            return Ok(data);
        }
        if len > reservation.bytes() && !reservation.try_grow(len - reservation.bytes()) {
            full = true;
            joined = BytesMut::new();
            reservation.shrink_to(0);
            continue;
        }
        if joined.is_empty() {
            joined.reserve(exact.unwrap_or(0).max(data.len()));
        }
        joined.extend_from_slice(&data);
    }
    if full {
        reservation.shrink_to(0);
        return Err(BodyError::MemoryFull);
    }
    Ok(joined.freeze())
}

/// Inflates (when `gzipped`) and frames the body, holding budget for the inflated bytes and
/// the message index before they are allocated.
fn prepare(
    body: Bytes,
    gzipped: bool,
    max: usize,
    reservation: &mut Reservation,
) -> Result<(Bytes, framing::Framed), BodyError> {
    let body = if gzipped { gunzip(&body, max, reservation)? } else { body };
    let index = framing::message_count(&body) * Frame::BYTES_PER_MESSAGE;
    if !reservation.try_grow(index) {
        return Err(BodyError::MemoryFull);
    }
    let framed = framing::split(&body).map_err(BodyError::NotLogplex)?;
    Ok((body, framed))
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
pub(crate) fn content_encoding(value: Option<&HeaderValue>) -> Result<bool, &'static str> {
    let Some(value) = value else { return Ok(false) };
    match value.to_str().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err("unsupported Content-Encoding (gzip and identity are accepted)"),
    }
}

/// Decompresses a gzip body (several members allowed), refusing to grow past `max` bytes or
/// past what the memory budget grants.
pub(crate) fn gunzip(compressed: &[u8], max: usize, reservation: &mut Reservation) -> Result<Bytes, BodyError> {
    // A gzip member ends with its inflated size (mod 2^32), but that is the sender's word: a
    // 20-byte body can claim 4 GiB. So the output (and its reservation) grows with what is
    // really inflated, from a small first step by half again each time; the trailer only
    // shortens a step, so that an honest single member ends at exactly its size.
    const FIRST_STEP: usize = 4 * 1024;
    let hint = compressed.last_chunk::<4>().map_or(0, |size| u32::from_le_bytes(*size) as usize);
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed).take(limit);
    let mut out: Vec<u8> = Vec::new();
    let mut held = 0;
    loop {
        if out.len() == out.capacity() {
            let step = (held / 2).max(FIRST_STEP);
            let want = hint.checked_sub(out.len()).map_or(step, |left| step.min(left.saturating_add(1)));
            let grow = want.clamp(1, max.saturating_add(1).saturating_sub(out.len()).max(1));
            if !reservation.try_grow(grow) {
                return Err(BodyError::MemoryFull);
            }
            held += grow;
            out.reserve_exact(held.saturating_sub(out.len()));
        }
        let start = out.len();
        out.resize(out.capacity(), 0);
        // `start` is the length before the resize: never past the end.
        match decoder.read(out.get_mut(start..).unwrap_or_default()) {
            Ok(0) => {
                out.truncate(start);
                break;
            }
            Ok(n) => out.truncate(start + n),
            Err(_) => return Err(BodyError::Invalid("body is not valid gzip")),
        }
        if out.len() > max {
            return Err(BodyError::TooLarge("decompressed body exceeds the configured limit"));
        }
    }
    // The compressed body is no longer needed once this returns.
    reservation.shrink_to(held);
    Ok(Bytes::from(out))
}

pub(crate) fn with_retry_after(mut r: Response<Full<Bytes>>, wait: Duration) -> Response<Full<Bytes>> {
    let secs = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0));
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

/// An answer with a one-line plain-text reason, or an empty body (`Content-Length: 0`).
pub(crate) fn reply(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = if reason.is_empty() { Bytes::new() } else { Bytes::from(format!("{reason}\n")) };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if !reason.is_empty() {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Rewrites the ISIZE trailer (the last four bytes) to claim `size`.
    fn claiming(mut body: Vec<u8>, size: u32) -> Vec<u8> {
        let at = body.len() - 4;
        body[at..].copy_from_slice(&size.to_le_bytes());
        body
    }

    /// Both endpoints answer a refused hand-off from this one mapping; a storage fault is not
    /// called "full" (the OTLP endpoint said so before), and its reason is not sent.
    #[test]
    fn each_refusal_of_the_sink_has_its_own_503() {
        let wait = Duration::from_secs(2);
        let cases = [
            (Rejected::Full { retry_after: wait }, "pipeline full, retry later", wait),
            (
                Rejected::Unavailable { reason: "/var/spool/x: disk full".into(), retry_after: wait },
                "storage unavailable, retry later",
                wait,
            ),
            (Rejected::ShuttingDown, "shutting down, retry later", Duration::from_secs(5)),
        ];
        for (rejected, reason, retry_after) in cases {
            let answer = Answer::rejected(rejected);
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(answer.reason, reason);
            assert_eq!(answer.retry_after, Some(retry_after));
        }
    }

    #[test]
    fn a_tiny_gzip_body_claiming_a_huge_size_reserves_only_what_it_inflates() {
        let max = 8 * 1024 * 1024;
        let body = claiming(gzip(b""), (max - 1) as u32);
        assert_eq!(body.len(), 20);
        // A budget far below the claim: the claim alone must not spend it.
        let budget = MemoryBudget::new(64 * 1024);
        let mut reservation = budget.reservation();
        let result = gunzip(&body, max, &mut reservation);
        assert!(matches!(result, Err(BodyError::Invalid(_))), "the lie is found at the trailer, not feared up front");
        assert!(reservation.bytes() <= 4 * 1024, "reserved {} for nothing inflated", reservation.bytes());
    }

    #[test]
    fn gzip_reservations_follow_the_inflated_bytes() {
        let max = 8 * 1024 * 1024;
        let budget = MemoryBudget::new(max);
        // An honest member: held to its size (each step rounded up to the budget's 1 KiB unit).
        for len in [5usize, 4096, 300 * 1024] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut reservation = budget.reservation();
            let out = gunzip(&gzip(&data), max, &mut reservation).ok().unwrap();
            assert_eq!(out, data);
            assert!(reservation.bytes() <= len + 16 * 1024, "{len}: {}", reservation.bytes());
        }
        // A trailer claiming less than the truth: still inflated whole, the reservation grown as
        // it went.
        let data = vec![b'x'; 300 * 1024];
        let mut reservation = budget.reservation();
        let out = gunzip(&claiming(gzip(&data), 10), max, &mut reservation);
        assert!(matches!(out, Err(BodyError::Invalid(_))));
        assert!(reservation.bytes() >= 300 * 1024);
    }
}
