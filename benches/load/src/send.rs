//! The Logplex side: frames POSTed over keep-alive connections, at full speed or at a fixed
//! rate, each retried with its own frame id until it is answered 2xx (as Logplex retries a
//! 429, a 5xx or a connection error), or refused for good by another 4xx. A share of frames
//! can be sent once more after their 2xx, as Logplex does when an answer is lost on the way.

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
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if plan.frames.is_some_and(|f| n >= f) || plan.duration.is_some_and(|d| started.elapsed() >= d) {
                    return;
                }
                let first_sent = match plan.rate {
                    Some(rate) => {
                        let at = started + Duration::from_secs_f64(n as f64 * per_frame / rate as f64);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
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
        let answer = client
            .post(url)
            .header("content-type", "application/logplex-1")
            .header("logplex-msg-count", frames.lines_per_frame)
            .header("logplex-frame-id", frames.frame_id(n))
            .header("logplex-drain-token", frames.drain_token())
            .header("user-agent", "Logplex/v123 (drainpipe-load)")
            .body(body.clone())
            .send()
            .await;
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
