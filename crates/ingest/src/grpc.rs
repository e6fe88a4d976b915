//! OTLP over gRPC (`heroku telemetry:add --transport grpc`, and any OpenTelemetry exporter's
//! default): the `Export` call of `LogsService`, `MetricsService` and `TraceService`, served on
//! a listener of its own (`--otlp-grpc-listen`) with the HTTP receiver's accept loop, connection
//! limit, TLS, credentials and memory budget, and the same path from body to sink as OTLP/HTTP
//! (`otlp::take`). tonic does the gRPC protocol (framing, compression, status trailers); the
//! body is held in the memory budget as it arrives (`Budgeted`), and messages stay bytes
//! (`RawCodec`) until drainpipe-otlp decodes them, as on HTTP.
//!
//! Answers are those OTLP asks exporters to retry or not: `UNAVAILABLE` with a `RetryInfo`
//! while the pipeline is full (the HTTP receiver's 503 and `Retry-After`), `RESOURCE_EXHAUSTED`
//! with a `RetryInfo` after too many failed logins, `UNAUTHENTICATED`, `INVALID_ARGUMENT` for a
//! body that is not an export, `UNIMPLEMENTED` for any other method.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BufMut, Bytes};
use drainpipe_otlp::{Encoding, Signal};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, UnaryService};
use tonic::{Code, Status};

use crate::auth::FailureLimiter;
use crate::frame::{FrameSink, Reservation};
use crate::http::{Answer, Refused, State, BLOCKING_BODY, MEMORY_FULL_RETRY};
use crate::listener::{accept_loop, handshake, Connection};
use crate::otlp::{self, Body, Export};
use crate::{metrics, HttpConfig};

/// The methods served, by path.
const METHODS: [(&str, Signal); 3] = [
    ("/opentelemetry.proto.collector.logs.v1.LogsService/Export", Signal::Logs),
    ("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", Signal::Metrics),
    ("/opentelemetry.proto.collector.trace.v1.TraceService/Export", Signal::Traces),
];

/// Serves OTLP/gRPC on `listener` until `shutdown`, handing every export to `sink`.
pub async fn run<S: FrameSink + 'static>(
    listener: TcpListener,
    config: HttpConfig,
    sink: S,
    shutdown: impl Future<Output = ()>,
) {
    let limiter = FailureLimiter::new(config.max_auth_failures.max(1), config.auth_failure_window);
    let (tls, header_timeout, max_connections) =
        (config.tls.clone(), config.header_read_timeout, config.max_connections);
    let state = Arc::new(State { config, limiter, sink });
    accept_loop(listener, "otlp-grpc", max_connections, shutdown, move |stream, peer, connection| {
        let (tls, state) = (tls.clone(), state.clone());
        async move {
            match tls {
                None => serve_connection(stream, peer, state, connection).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream, peer, header_timeout).await {
                        serve_connection(tls, peer, state, connection).await;
                    }
                }
            }
        }
    })
    .await;
}

async fn serve_connection<I, S>(io: I, peer: SocketAddr, state: Arc<State<S>>, mut connection: Connection)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: FrameSink + 'static,
{
    let activity = connection.activity();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let (activity, state) = (activity.clone(), state.clone());
        // The guessing limiter's penalty is served as idle time of this connection.
        req.extensions_mut().insert(activity.clone());
        async move {
            activity.busy();
            let response = call(req, peer, state).await;
            activity.idle();
            Ok::<_, Infallible>(response)
        }
    });
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)))
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
        tracing::debug!(%peer, error = %e, "gRPC connection ended with an error");
    }
}

/// One call: the method, the credentials, then the export through `otlp::take`.
async fn call<S: FrameSink + 'static>(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: Arc<State<S>>,
) -> Response<tonic::body::Body> {
    let started = Instant::now();
    let received_at = SystemTime::now();
    let Some(signal) = METHODS.iter().find(|(path, _)| *path == req.uri().path()).map(|(_, s)| *s) else {
        return Status::unimplemented(format!("drainpipe serves the OTLP Export calls, not {}", req.uri().path()))
            .into_http();
    };
    let (parts, body) = req.into_parts();
    let access = state.config.access.current();
    let app = match otlp::credentials(&parts, peer, &state, &access).await {
        Ok(app) => app.map(str::to_owned),
        Err(refused) => {
            let status = match refused {
                Refused::Limited(wait) => retry_later(Code::ResourceExhausted, "too many failed authentications", wait),
                Refused::Wrong => Status::unauthenticated("missing or wrong credentials"),
            };
            count(signal, status.code());
            return status.into_http();
        }
    };
    let max = state.config.max_body_bytes;
    let mut grpc =
        Grpc::new(RawCodec).accept_compressed(CompressionEncoding::Gzip).apply_max_message_size_config(Some(max), None);
    let held = Arc::new(Mutex::new(state.config.budget.reservation()));
    let full = Arc::new(AtomicBool::new(false));
    let body = Budgeted { inner: body, held: held.clone(), full: full.clone() };
    let export = Export { signal, encoding: Encoding::Protobuf, app, received_at };
    let export = ExportCall { state, export: Arc::new(export), peer, held };
    let mut response = grpc.unary(export, Request::from_parts(parts, body)).await;
    if full.load(Ordering::Acquire) {
        response = retry_later(Code::Unavailable, "receive buffer full, retry later", MEMORY_FULL_RETRY).into_http();
    }
    count(signal, code_of(&response));
    metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
    response
}

/// The `Export` call of one signal, from one sender.
struct ExportCall<S> {
    state: Arc<State<S>>,
    export: Arc<Export>,
    peer: SocketAddr,
    /// What the body took of the memory budget as it arrived ([`Budgeted`]).
    held: Arc<Mutex<Reservation>>,
}

/// The request body, held in the memory budget as it arrives, as the HTTP receivers read theirs:
/// past the budget it fails (the call is then answered `UNAVAILABLE`), so tonic never buffers
/// more than the budget allows.
struct Budgeted {
    inner: Incoming,
    held: Arc<Mutex<Reservation>>,
    full: Arc<AtomicBool>,
}

impl hyper::body::Body for Budgeted {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let grown = self.held.lock().unwrap_or_else(|e| e.into_inner()).try_grow(data.len());
            if !grown {
                self.full.store(true, Ordering::Release);
                return Poll::Ready(Some(Err("the receive memory budget (--queue-max-bytes) is spent".into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S: FrameSink + 'static> UnaryService<Bytes> for ExportCall<S> {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (state, export, peer) = (self.state.clone(), self.export.clone(), self.peer);
        // The body's bytes, held since they arrived (a gzipped body's inflated copy is held by
        // `take`, as on HTTP).
        let reservation = std::mem::replace(
            &mut *self.held.lock().unwrap_or_else(|e| e.into_inner()),
            state.config.budget.reservation(),
        );
        Box::pin(async move {
            let bytes = request.into_inner();
            let heavy = bytes.len() >= BLOCKING_BODY;
            let body = Body { bytes, gzipped: false, heavy };
            match otlp::take(body, reservation, &export, peer, &state).await {
                Ok(left_out) => Ok(tonic::Response::new(Bytes::from(otlp::export_response(&export, left_out)))),
                Err(answer) => Err(status_of(answer)),
            }
        })
    }
}

/// The gRPC status of what OTLP/HTTP answers with `answer`.
fn status_of(answer: Answer) -> Status {
    match (answer.status, answer.retry_after) {
        (StatusCode::SERVICE_UNAVAILABLE, wait) => {
            retry_later(Code::Unavailable, &answer.reason, wait.unwrap_or(MEMORY_FULL_RETRY))
        }
        (StatusCode::TOO_MANY_REQUESTS, Some(wait)) => retry_later(Code::ResourceExhausted, &answer.reason, wait),
        _ => Status::invalid_argument(answer.reason),
    }
}

/// A status with a `google.rpc.RetryInfo` saying when to come back, as OTLP exporters read it.
fn retry_later(code: Code, message: &str, wait: Duration) -> Status {
    use prost::Message as _;
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(wait.subsec_nanos()).unwrap_or(0),
        }),
    };
    let details = RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: vec![Any { type_url: RETRY_INFO_TYPE.to_owned(), value: retry.encode_to_vec() }],
    };
    Status::with_details(code, message, Bytes::from(details.encode_to_vec()))
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`, as the `grpc-status-details-bin` trailer carries it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The code a response carries: in its headers when the call failed before a body (tonic
/// writes a trailers-only answer), else `OK` (a failure after the body would be in trailers,
/// which `unary` never sends for an answered call).
fn code_of(response: &Response<tonic::body::Body>) -> Code {
    Status::from_header_map(response.headers()).map_or(Code::Ok, |s| s.code())
}

fn count(signal: Signal, code: Code) {
    metrics::OTLP_GRPC_REQUESTS.with_label_values(&[signal.as_str(), code_name(code)]).inc();
}

/// The names of the codes drainpipe answers, as the metric's label.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::InvalidArgument => "invalid_argument",
        Code::Unauthenticated => "unauthenticated",
        Code::ResourceExhausted => "resource_exhausted",
        Code::Unavailable => "unavailable",
        Code::Unimplemented => "unimplemented",
        _ => "other",
    }
}

/// Messages as they come: drainpipe-otlp decodes them (after the body is in the budget).
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
