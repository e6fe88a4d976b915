//! The Logplex side: frames POSTed over keep-alive connections, at full speed or at a fixed
//! rate, each retried with its own frame id until it is answered 2xx (as Logplex retries a
//! 429, a 5xx or a connection error), or refused for good by another 4xx. A share of frames
//! can be sent once more after their 2xx, as Logplex does when an answer is lost on the way.
//! OTLP frames (`Frames::otlp`) go as OTLP/HTTP exports, or over gRPC (`Plan::grpc`: one HTTP/2
//! connection per sender), retried on `503`/`429` or `UNAVAILABLE`/`RESOURCE_EXHAUSTED`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::traffic::Frames;

/// How much to send.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub connections: usize,
    /// Stop starting frames after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Lines per second; `None` is as fast as answers come.
    pub rate: Option<u64>,
    /// Send every this-many-th frame again after its 2xx (same frame id and body).
    pub resend_every: Option<u64>,
    /// OTLP over gRPC: `url` is the method's (`http://host:port/…Service/Export`).
    pub grpc: bool,
}

/// What the sender saw.
#[derive(Debug, Default)]
pub struct Sent {
    /// Frames answered 2xx: (frame number, when it was first sent (scheduled, at a fixed
    /// rate), lines).
    pub frames: Vec<(u64, Instant, u64)>,
    /// Time from sending to a 2xx answer, per frame (the last attempt's).
    pub latencies: Vec<Duration>,
    /// Answers 429 or 5xx (then sent again).
    pub refused: u64,
    /// Frames sent once more after their 2xx (`Plan::resend_every`) and answered 2xx again.
    pub resent: u64,
    /// Of those, how many were answered by another server than the first time, by the
    /// `x-served-by` header a balancer adds (none: 0).
    pub resent_elsewhere: u64,
    /// The longest time from a frame's first send to its 2xx, retries included.
    pub slowest: Duration,
    /// Frames refused for good (another 4xx), or given up after many attempts.
    pub failed: u64,
    /// Connection errors (then sent again).
    pub errors: u64,
    pub started: Option<Instant>,
    /// When the last frame was answered.
    pub finished: Option<Instant>,
}

impl Sent {
    pub fn lines(&self) -> u64 {
        self.frames.iter().map(|f| f.2).sum()
    }
}

const ATTEMPTS: u32 = 50;

pub async fn run(url: &str, frames: Arc<Frames>, plan: Plan) -> anyhow::Result<Sent> {
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(plan.connections).timeout(Duration::from_secs(30)).build()?;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    sent.lock().unwrap_or_else(|e| e.into_inner()).started = Some(started);
    let per_frame = frames.lines_per_frame as f64;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        let (client, frames, sent, next, url) =
            (client.clone(), frames.clone(), sent.clone(), next.clone(), url.to_owned());
        tasks.spawn(async move {
            let mut grpc = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if plan.frames.is_some_and(|f| n >= f) || plan.duration.is_some_and(|d| started.elapsed() >= d) {
                    return;
                }
                let first_sent = due(started, n, per_frame, plan.rate).await;
                if plan.grpc {
                    grpc_frame(&mut grpc, &url, &frames, n, first_sent, &sent).await;
                    continue;
                }
                let resend = plan.resend_every.is_some_and(|k| k > 0 && n % k == k / 2);
                send_frame(&client, &url, &frames, n, first_sent, &sent, resend).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut sent = std::mem::take(&mut *sent.lock().unwrap_or_else(|e| e.into_inner()));
    sent.frames.sort_by_key(|f| f.1);
    Ok(sent)
}

/// The same frames as one octet-counted syslog stream over TCP (RFC 6587: a Logplex body is
/// already `LEN SP MSG` …), for `plan.duration` or `plan.frames`, at `plan.rate` or as fast as
/// drainpipe reads. A frame counts as sent once written: syslog has no answers, TCP's flow
/// control is the only backpressure. The stream is closed at the end, so drainpipe reads it all.
pub async fn syslog(addr: &str, frames: Arc<Frames>, plan: Plan) -> anyhow::Result<Sent> {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut sent = Sent::default();
    let started = Instant::now();
    sent.started = Some(started);
    let (lines, per_frame) = (frames.lines_per_frame as u64, frames.lines_per_frame as f64);
    for n in 0.. {
        if plan.frames.is_some_and(|f| n >= f) || plan.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let first_sent = due(started, n, per_frame, plan.rate).await;
        stream.write_all(&frames.body(n)).await?;
        sent.frames.push((n, first_sent, lines));
        sent.finished = Some(Instant::now());
    }
    stream.shutdown().await?;
    Ok(sent)
}

/// When frame `n` is due: at a fixed `rate` (lines per second), waited for; else now.
async fn due(started: Instant, n: u64, per_frame: f64, rate: Option<u64>) -> Instant {
    match rate {
        Some(rate) => {
            let at = started + Duration::from_secs_f64(n as f64 * per_frame / rate as f64);
            tokio::time::sleep_until(at.into()).await;
            at
        }
        None => Instant::now(),
    }
}

async fn send_frame(
    client: &reqwest::Client,
    url: &str,
    frames: &Frames,
    n: u64,
    first_sent: Instant,
    sent: &Mutex<Sent>,
    resend: bool,
) {
    let body = bytes::Bytes::from(frames.body(n));
    let lines = frames.lines_per_frame as u64;
    let Some((latency, server)) = until_2xx(client, url, frames, n, &body, sent, first_sent).await else { return };
    let now = Instant::now();
    {
        let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.frames.push((n, first_sent, lines));
        sent.latencies.push(latency);
        sent.slowest = sent.slowest.max(now - first_sent);
        sent.finished = Some(now);
    }
    if !resend {
        return;
    }
    if let Some((_, again)) = until_2xx(client, url, frames, n, &body, sent, Instant::now()).await {
        let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.resent += 1;
        sent.resent_elsewhere += u64::from(server.is_some() && again != server);
    }
}

/// Sends frame `n` until it is answered 2xx (`Some` with the last attempt's latency and the
/// `x-served-by` header), refused for good, or given up after [`ATTEMPTS`]. The first
/// attempt's latency counts from `first` (at a fixed rate, when it was due: a sender running
/// late is not a fast answer).
async fn until_2xx(
    client: &reqwest::Client,
    url: &str,
    frames: &Frames,
    n: u64,
    body: &bytes::Bytes,
    sent: &Mutex<Sent>,
    first: Instant,
) -> Option<(Duration, Option<String>)> {
    let mut sent_at = first;
    for _ in 0..ATTEMPTS {
        let request = match frames.otlp {
            Some(_) => client.post(url).header("content-type", "application/x-protobuf"),
            None => client
                .post(url)
                .header("content-type", "application/logplex-1")
                .header("logplex-msg-count", frames.lines_per_frame)
                .header("logplex-frame-id", frames.frame_id(n))
                .header("logplex-drain-token", frames.drain_token())
                .header("user-agent", "Logplex/v123 (drainpipe-load)"),
        };
        let answer = request.body(body.clone()).send().await;
        let pause = {
            let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
            match answer {
                Ok(a) if a.status().is_success() => {
                    let server = a.headers().get("x-served-by").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    return Some((sent_at.elapsed(), server));
                }
                Ok(a) if a.status() == 429 || a.status().is_server_error() => {
                    sent.refused += 1;
                    let after = a.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    Duration::from_secs(after.unwrap_or(1).min(5))
                }
                Ok(_) => {
                    sent.failed += 1;
                    return None;
                }
                Err(_) => {
                    sent.errors += 1;
                    Duration::from_secs(1)
                }
            }
        };
        tokio::time::sleep(pause).await;
        sent_at = Instant::now();
    }
    sent.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
    None
}

/// One sender's HTTP/2 connection for gRPC calls.
type GrpcConnection = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// Sends frame `n` as one gRPC `Export` call until it is answered `OK`: `UNAVAILABLE` and
/// `RESOURCE_EXHAUSTED` are sent again (after a second), a broken connection is made again.
async fn grpc_frame(
    connection: &mut Option<GrpcConnection>,
    url: &str,
    frames: &Frames,
    n: u64,
    first: Instant,
    sent: &Mutex<Sent>,
) {
    let body = frames.body(n);
    let mut framed = Vec::with_capacity(body.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&body);
    let framed = bytes::Bytes::from(framed);
    let mut sent_at = first;
    for _ in 0..ATTEMPTS {
        let code = match grpc_call(connection, url, framed.clone()).await {
            Ok(code) => code,
            Err(_) => {
                *connection = None;
                sent.lock().unwrap_or_else(|e| e.into_inner()).errors += 1;
                -1
            }
        };
        let now = Instant::now();
        let done = {
            let mut s = sent.lock().unwrap_or_else(|e| e.into_inner());
            match code {
                0 => {
                    s.frames.push((n, first, frames.lines_per_frame as u64));
                    s.latencies.push(now - sent_at);
                    s.slowest = s.slowest.max(now - first);
                    s.finished = Some(now);
                    true
                }
                8 | 14 => {
                    s.refused += 1;
                    false
                }
                -1 => false,
                _ => {
                    s.failed += 1;
                    true
                }
            }
        };
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        sent_at = Instant::now();
    }
    sent.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
}

/// One call on the sender's connection (made first if there is none): its `grpc-status`.
async fn grpc_call(connection: &mut Option<GrpcConnection>, url: &str, framed: bytes::Bytes) -> anyhow::Result<i32> {
    use http_body_util::BodyExt as _;
    if connection.as_ref().is_none_or(|c| c.is_closed()) {
        let authority = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
        let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(authority).await?);
        let (sender, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        *connection = Some(sender);
    }
    let Some(sender) = connection.as_mut() else { anyhow::bail!("no connection") };
    sender.ready().await?;
    let request = hyper::Request::post(url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(framed))?;
    let response = sender.send_request(request).await?;
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = headers.get("grpc-status").or_else(|| trailers.get("grpc-status"));
    Ok(status.and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(-1))
}
