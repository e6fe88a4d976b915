//! OTLP/HTTP exports on the drain listener: `POST /v1/logs` (Heroku Fir's telemetry drains, or
//! any OpenTelemetry exporter), protobuf or JSON, gzip allowed, answered as the OTLP/HTTP
//! specification asks so that the exporter's own retry does the right thing: 200 with an export
//! response once the records are handed on (on disk with a spool), 400 for a body that is not an
//! export request, 401, 413, 415, and 503 with `Retry-After` while the pipeline is full.
//! `/v1/metrics` and `/v1/traces` are answered 200 with a partial success refusing every data
//! point or span (and counted), so an exporter sending all signals says so in its log and does
//! not retry them forever.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use drainpipe_otlp::{Encoding, Signal};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};

use crate::auth::Access;
use crate::frame::{Frame, FrameSink, Position, Protocol, Reservation};
use crate::http::{
    content_encoding, gunzip, off_the_workers_if, read_body, refused, with_retry_after, Answer, BodyError, Refused,
    State, BLOCKING_BODY, MEMORY_FULL_RETRY,
};
use crate::metrics;

/// gRPC status codes, which OTLP/HTTP error bodies carry.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// The content types an export may have (any other is answered 415).
const UNSUPPORTED_TYPE: &str = "expected Content-Type application/x-protobuf, application/protobuf or application/json";

/// One OTLP export request: authorize it, check its types, read and decode its body, hand its
/// log records on (or refuse metrics and traces), answer.
pub(crate) async fn receive<S: FrameSink>(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: &State<S>,
    signal: Signal,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let received_at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let declared = Encoding::from_content_type(content_type);
    // Errors are answered in the request's encoding; protobuf when it named none we know.
    let encoding = declared.unwrap_or(Encoding::Protobuf);
    let access = state.config.access.current();
    let app = match authorize(&parts, peer, state, &access, encoding).await {
        Ok(app) => app.map(str::to_owned),
        Err(r) => return r,
    };
    if declared.is_none() {
        return status(encoding, StatusCode::UNSUPPORTED_MEDIA_TYPE, INVALID_ARGUMENT, UNSUPPORTED_TYPE);
    }
    let gzipped = match content_encoding(parts.headers.get(CONTENT_ENCODING)) {
        Ok(g) => g,
        Err(reason) => return status(encoding, StatusCode::UNSUPPORTED_MEDIA_TYPE, INVALID_ARGUMENT, reason),
    };
    let mut reservation = state.config.budget.reservation();
    let body = match read(body, &mut reservation, peer, state, encoding).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    let heavy = gzipped || body_len_hint(&parts.headers) >= BLOCKING_BODY;
    let export = Export { signal, encoding, app, received_at };
    let answer = match take(Body { bytes: body, gzipped, heavy }, reservation, &export, peer, state).await {
        Ok(rejected) => accepted(&export, rejected),
        Err(answer) => refusal(encoding, answer),
    };
    metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
    answer
}

/// Reads the body within `--body-read-timeout`, holding budget for it. Past the timeout: 503,
/// not 408, since OTLP exporters retry 429, 502, 503 and 504 only.
async fn read<S>(
    body: Incoming,
    reservation: &mut Reservation,
    peer: SocketAddr,
    state: &State<S>,
    encoding: Encoding,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let max = state.config.max_body_bytes;
    match tokio::time::timeout(state.config.body_read_timeout, read_body(body, max, reservation)).await {
        Err(_) => {
            let late = Answer::new(StatusCode::SERVICE_UNAVAILABLE, "request body not received in time");
            Err(refusal(encoding, Answer { retry_after: Some(MEMORY_FULL_RETRY), ..late }))
        }
        Ok(read) => read.map_err(|e| refusal(encoding, e.answer(peer))),
    }
}

/// What the answer to an export of log records says besides its records.
pub(crate) struct Export {
    pub(crate) signal: Signal,
    pub(crate) encoding: Encoding,
    /// The app the credential names, if any.
    pub(crate) app: Option<String>,
    pub(crate) received_at: SystemTime,
}

/// An export's body, read whole (its bytes held in the reservation).
pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) gzipped: bool,
    /// Inflate and decode it off the async workers.
    pub(crate) heavy: bool,
}

/// Decodes an export, splits it into frames and hands them to the sink (OTLP/HTTP and gRPC
/// alike): what was left out (a partial success), or the answer that refuses the export.
pub(crate) async fn take<S: FrameSink>(
    body: Body,
    reservation: Reservation,
    export: &Export,
    peer: SocketAddr,
    state: &State<S>,
) -> Result<LeftOut, Answer> {
    let (max, budget_max) = (state.config.max_body_bytes, state.config.budget.max_bytes());
    let (signal, encoding, gzipped) = (export.signal, export.encoding, body.gzipped);
    let (decoded, reservation) = off_the_workers_if(body.heavy, reservation, move |reservation| {
        decode(body.bytes, gzipped, max, budget_max, signal, encoding, reservation)
    })
    .await;
    let Decoded { frames, rejected } = decoded.map_err(|e| e.answer(peer))?;
    hand_on(frames, reservation, export, state).await?;
    if rejected.unstored > 0 {
        metrics::OTLP_REFUSED.with_label_values(&[signal.as_str()]).inc_by(rejected.unstored);
    }
    Ok(rejected)
}

/// 200, with a partial success when anything was left out.
fn accepted(export: &Export, rejected: LeftOut) -> Response<Full<Bytes>> {
    ok(export.encoding, export_response(export, rejected))
}

/// The `Export*ServiceResponse` for an export taken, in its encoding.
pub(crate) fn export_response(export: &Export, rejected: LeftOut) -> Vec<u8> {
    let (n, why) = (rejected.total(), rejected.why(export.signal));
    drainpipe_otlp::response(export.signal, export.encoding, i64::try_from(n).unwrap_or(i64::MAX), &why)
}

/// Hands the frames on one after another, then answers 200, with a partial success naming the
/// records refused for their size. A refusal part-way is answered 503, and the exporter's retry
/// stores only what is missing (the ids are the same).
async fn hand_on<S: FrameSink>(
    frames: Vec<Part>,
    mut reservation: Reservation,
    export: &Export,
    state: &State<S>,
) -> Result<(), Answer> {
    let protocol = match export.signal {
        Signal::Logs => Protocol::Otlp,
        Signal::Metrics => Protocol::OtlpMetrics,
        Signal::Traces => Protocol::OtlpTraces,
    };
    for part in frames {
        metrics::MESSAGES.with_label_values(&[Protocol::Otlp.as_str()]).inc_by(part.messages.len() as u64);
        metrics::BYTES.with_label_values(&[Protocol::Otlp.as_str()]).inc_by(part.body.len() as u64);
        let mut frame = Frame {
            app: export.app.clone(),
            received_at: export.received_at,
            position: Position::InExport { first_record: part.first },
            ..Frame::new(protocol, part.body, part.messages)
        };
        frame.reservation = reservation.split_off(frame.memory_bytes());
        if let Err(refused) = state.sink.accept(frame).await {
            return Err(Answer::rejected(refused));
        }
    }
    Ok(())
}

fn body_len_hint(headers: &HeaderMap) -> usize {
    headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(usize::MAX)
}

/// Log records, data points or spans in frames of at most the body limit (each encoded with its
/// resource and scope), and what was refused.
struct Decoded {
    frames: Vec<Part>,
    rejected: LeftOut,
}

/// One frame's worth of records: their bytes one after another, where each is, and the
/// position of the first in the request (positions make the ids).
struct Part {
    body: Bytes,
    messages: Vec<std::ops::Range<usize>>,
    first: u64,
}

/// Inflates and decodes the body, and splits its records into frames, holding budget for each
/// step before it allocates: what decoding may take (counted before decoding), then the frames.
fn decode(
    body: Bytes,
    gzipped: bool,
    max: usize,
    budget_max: usize,
    signal: Signal,
    encoding: Encoding,
    reservation: &mut Reservation,
) -> Result<Decoded, BodyError> {
    let body = if gzipped {
        let inflated = gunzip(&body, max, reservation)?;
        // The reservation no longer counts the compressed body: it must go now.
        drop(body);
        inflated
    } else {
        body
    };
    let decoded = drainpipe_otlp::decoded_len_bound_of(signal, &body, encoding).map_err(BodyError::Otlp)?;
    hold(reservation, decoded.saturating_add(body.len()), budget_max)?;
    // Each record carries its resource and scope again: what the split takes is held before
    // it is made.
    let (frames, rejected) = match signal {
        Signal::Logs => {
            let request = drainpipe_otlp::decode_logs(&body, encoding).map_err(BodyError::Otlp)?;
            drop(body);
            let count: usize =
                request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
            let split =
                drainpipe_otlp::split_len(&request).saturating_add(count.saturating_mul(Frame::BYTES_PER_MESSAGE));
            hold(reservation, decoded.saturating_add(split), budget_max)?;
            let (frames, oversized) = into_parts(drainpipe_otlp::records(request), max);
            (frames, LeftOut { oversized, unstored: 0 })
        }
        Signal::Metrics => {
            let request = drainpipe_otlp::decode_metrics(&body, encoding).map_err(BodyError::Otlp)?;
            drop(body);
            let (records, unstored) = drainpipe_otlp::point_records(request);
            let (frames, oversized) = into_parts(records.into_iter(), max);
            (frames, LeftOut { oversized, unstored })
        }
        Signal::Traces => {
            let request = drainpipe_otlp::decode_traces(&body, encoding).map_err(BodyError::Otlp)?;
            drop(body);
            let (frames, oversized) = into_parts(drainpipe_otlp::span_records(request), max);
            (frames, LeftOut { oversized, unstored: 0 })
        }
    };
    let held: usize = frames.iter().map(|p| p.body.len() + p.messages.len() * Frame::BYTES_PER_MESSAGE).sum();
    reservation.shrink_to(held);
    Ok(Decoded { frames, rejected })
}

/// Items of an export not stored: larger than `--max-body-size` alone, or of a kind drainpipe
/// does not store (exponential histograms).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LeftOut {
    oversized: u64,
    unstored: u64,
}

impl LeftOut {
    fn total(self) -> u64 {
        self.oversized.saturating_add(self.unstored)
    }

    /// The partial success's message.
    fn why(self, signal: Signal) -> String {
        let items = match signal {
            Signal::Logs => "log record(s)",
            Signal::Metrics => "data point(s)",
            Signal::Traces => "span(s)",
        };
        let mut why = Vec::new();
        if self.oversized > 0 {
            why.push(format!("{} {items} larger than --max-body-size refused", self.oversized));
        }
        if self.unstored > 0 {
            why.push(format!(
                "{} exponential histogram data point(s) refused: drainpipe stores gauges, sums, histograms and summaries",
                self.unstored
            ));
        }
        why.join("; ")
    }
}

fn hold(reservation: &mut Reservation, bytes: usize, budget_max: usize) -> Result<(), BodyError> {
    if bytes > budget_max {
        return Err(BodyError::TooLarge(
            "the export takes more memory than --queue-max-bytes allows once decoded and split; send smaller batches",
        ));
    }
    if bytes > reservation.bytes() && !reservation.try_grow(bytes - reservation.bytes()) {
        return Err(BodyError::MemoryFull);
    }
    Ok(())
}

/// Encodes each record with its resource and scope, in order, into frames of at most `max`
/// bytes. A record over `max` alone is more than a spool record is sized for: refused (a
/// partial success) and counted.
fn into_parts<M: prost::Message>(records: impl Iterator<Item = M>, max: usize) -> (Vec<Part>, u64) {
    let (mut frames, mut rejected) = (Vec::new(), 0);
    let mut part = Part { body: Bytes::new(), messages: Vec::new(), first: 0 };
    let mut joined = Vec::new();
    for (position, record) in records.enumerate() {
        let bytes = prost::Message::encode_to_vec(&record);
        if bytes.len() > max {
            rejected += 1;
            continue;
        }
        if !joined.is_empty() && joined.len() + bytes.len() > max {
            part.body = Bytes::from(std::mem::take(&mut joined));
            frames.push(std::mem::replace(
                &mut part,
                Part { body: Bytes::new(), messages: Vec::new(), first: position as u64 },
            ));
        }
        if part.messages.is_empty() {
            part.first = position as u64;
        }
        let start = joined.len();
        joined.extend_from_slice(&bytes);
        part.messages.push(start..joined.len());
    }
    if !part.messages.is_empty() {
        part.body = Bytes::from(joined);
        frames.push(part);
    }
    (frames, rejected)
}

/// A bearer token from `--otlp-token`, or basic auth; open when neither is configured. Failures
/// count toward the same guessing limiter as `POST /logs`. The app a token maps to, if any.
async fn authorize<'s, S>(
    parts: &Parts,
    peer: SocketAddr,
    state: &State<S>,
    access: &'s Access,
    encoding: Encoding,
) -> Result<Option<&'s str>, Response<Full<Bytes>>> {
    let tokens = &access.otlp_tokens;
    let r = match credentials(parts, peer, state, access).await {
        Ok(app) => return Ok(app),
        Err(Refused::Limited(wait)) => with_retry_after(
            status(encoding, StatusCode::TOO_MANY_REQUESTS, RESOURCE_EXHAUSTED, "too many failed authentications"),
            wait,
        ),
        Err(Refused::Wrong) => {
            let mut r = status(encoding, StatusCode::UNAUTHORIZED, UNAUTHENTICATED, "missing or wrong credentials");
            let challenge = if tokens.is_empty() { "Basic realm=\"drainpipe\"" } else { "Bearer realm=\"drainpipe\"" };
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            r
        }
    };
    Err(r)
}

/// [`authorize`]'s check, for either transport: the app the credential names, or why not.
pub(crate) async fn credentials<'s, S>(
    parts: &Parts,
    peer: SocketAddr,
    state: &State<S>,
    access: &'s Access,
) -> Result<Option<&'s str>, Refused> {
    let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let tokens = &access.otlp_tokens;
    if let Some(app) = tokens.find(authorization) {
        return Ok(app);
    }
    let basic = &access.basic;
    let open = tokens.is_empty() && basic.is_open();
    if open || (!basic.is_open() && basic.allows(authorization)) {
        return Ok(None);
    }
    Err(refused(parts, peer, state, "OTLP export").await)
}

/// The OTLP way of writing an [`Answer`]: a `google.rpc.Status` in the request's encoding.
fn refusal(encoding: Encoding, answer: Answer) -> Response<Full<Bytes>> {
    let grpc = if answer.status == StatusCode::SERVICE_UNAVAILABLE { UNAVAILABLE } else { INVALID_ARGUMENT };
    let r = status(encoding, answer.status, grpc, &answer.reason);
    match answer.retry_after {
        Some(wait) => with_retry_after(r, wait),
        None => r,
    }
}

fn content_type(encoding: Encoding) -> HeaderValue {
    HeaderValue::from_static(match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    })
}

fn ok(encoding: Encoding, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(CONTENT_TYPE, content_type(encoding));
    r
}

/// An error answer with a `google.rpc.Status` body.
fn status(encoding: Encoding, code: StatusCode, grpc: i32, message: &str) -> Response<Full<Bytes>> {
    let mut r = ok(encoding, drainpipe_otlp::status(encoding, grpc, message));
    *r.status_mut() = code;
    r
}
