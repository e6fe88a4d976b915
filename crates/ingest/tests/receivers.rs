//! The receivers as a sender sees them: real sockets on port 0, real HTTP, TLS and syslog
//! clients, and a sink that collects what was handed on (or says it is full).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use drainpipe_ingest::{
    http, syslog, Access, BearerTokens, Credential, DrainTokens, Frame, FrameSink, HttpConfig, LiveAccess,
    MemoryBudget, Position, Protocol, Rejected, ReloadableCert, SyslogConfig,
};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

#[derive(Clone)]
struct Collect {
    tx: mpsc::Sender<Frame>,
    full: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
}

impl FrameSink for Collect {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(Rejected::ShuttingDown);
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(Rejected::Full { retry_after: Duration::from_secs(2) });
        }
        self.tx.send(frame).await.map_err(|_| Rejected::ShuttingDown)
    }

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        self.tx.send(frame).await.map_err(|_| Rejected::ShuttingDown)
    }
}

struct Server {
    addr: SocketAddr,
    frames: mpsc::Receiver<Frame>,
    full: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
}

/// Starts a receiver on port 0 with a collecting sink; it stops when the `Server` is dropped.
async fn start<F, Fut>(serve: F) -> Server
where
    F: FnOnce(TcpListener, Collect, oneshot::Receiver<()>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, frames) = mpsc::channel(64);
    let full = Arc::new(AtomicBool::new(false));
    let shutting_down = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = oneshot::channel::<()>();
    let sink = Collect { tx, full: full.clone(), shutting_down: shutting_down.clone() };
    tokio::spawn(serve(listener, sink, stopped));
    Server { addr, frames, full, shutting_down, _stop: stop }
}

async fn start_http(config: HttpConfig) -> Server {
    start(|listener, sink, stopped| {
        http::run(listener, config, sink, async move {
            let _ = stopped.await;
        })
    })
    .await
}

async fn start_syslog(config: SyslogConfig) -> Server {
    start(|listener, sink, stopped| {
        syslog::run(listener, config, sink, async move {
            let _ = stopped.await;
        })
    })
    .await
}

fn logplex_body(messages: &[&str]) -> Vec<u8> {
    messages.iter().flat_map(|m| format!("{} {m}", m.len()).into_bytes()).collect()
}

const LINE: &str = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";

fn post(server: &Server, path_and_query: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(format!("http://{}{path_and_query}", server.addr))
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

async fn next_frame(server: &mut Server) -> Frame {
    tokio::time::timeout(Duration::from_secs(5), server.frames.recv()).await.expect("a frame in time").expect("open")
}

#[tokio::test]
async fn accepted_frame_carries_the_request_and_gets_an_empty_200() {
    let mut s = start_http(HttpConfig::default()).await;
    let r = post(&s, "/logs?app=shop&env=staging&team=web%20ops")
        .header("Content-Type", "application/logplex-1")
        .header("Logplex-Msg-Count", "2")
        .header("Logplex-Frame-Id", "ABCDEF0123456789ABCDEF0123456789")
        .header("Logplex-Drain-Token", "d.1234")
        .body(logplex_body(&[LINE, "garbage that is no syslog\n"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "0");
    let f = next_frame(&mut s).await;
    assert_eq!(f.protocol, Protocol::Logplex);
    assert_eq!(f.messages.len(), 2, "the broken message travels with the good one");
    assert_eq!(f.message(0), LINE.as_bytes());
    assert_eq!(f.message(1), b"garbage that is no syslog\n");
    assert_eq!(f.app.as_deref(), Some("shop"));
    assert_eq!(f.labels, vec![("env".into(), "staging".into()), ("team".into(), "web ops".into())]);
    assert_eq!(f.drain_token.as_deref(), Some("d.1234"));
    assert_eq!(f.frame_id.as_deref(), Some("ABCDEF0123456789ABCDEF0123456789"));
}

#[tokio::test]
async fn count_mismatch_and_missing_logplex_headers_are_accepted() {
    let mut s = start_http(HttpConfig::default()).await;
    let r = post(&s, "/logs").header("Logplex-Msg-Count", "5").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f = next_frame(&mut s).await;
    assert_eq!((f.messages.len(), f.frame_id, f.drain_token, f.app), (1, None, None, None));
}

#[tokio::test]
async fn credentials_are_required_when_configured() {
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(
            &[credential("logplex:s3cret")],
            DrainTokens::default(),
            BearerTokens::default(),
        )),
        ..HttpConfig::default()
    };
    let mut s = start_http(config).await;
    let none = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Basic realm=\"drainpipe\"");
    let wrong = post(&s, "/logs").header("Authorization", basic("logplex:nope")).body(logplex_body(&[LINE]));
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    let right = post(&s, "/logs").header("Authorization", basic("logplex:s3cret")).body(logplex_body(&[LINE]));
    assert_eq!(right.send().await.unwrap().status(), 200);
    next_frame(&mut s).await;
}

#[tokio::test]
async fn repeated_failures_are_slowed_but_the_right_password_always_passes() {
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(&[credential("u:p")], DrainTokens::default(), BearerTokens::default())),
        max_auth_failures: 3,
        ..HttpConfig::default()
    };
    let mut s = start_http(config).await;
    for _ in 0..3 {
        let r = post(&s, "/logs").header("Authorization", basic("u:guess")).body("x").send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // Past the limit a wrong guess waits for its 429 ...
    let started = std::time::Instant::now();
    let r = post(&s, "/logs").header("Authorization", basic("u:guess")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(started.elapsed() >= Duration::from_millis(900), "a blocked guess is slowed down");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // ... but the right password from the same address is never refused.
    let r = post(&s, "/logs").header("Authorization", basic("u:p")).body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    next_frame(&mut s).await;
}

#[tokio::test]
async fn one_guessing_user_name_does_not_block_another_behind_the_same_address() {
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(
            &[credential("u:p"), credential("other:q")],
            DrainTokens::default(),
            BearerTokens::default(),
        )),
        max_auth_failures: 2,
        ..HttpConfig::default()
    };
    let s = start_http(config).await;
    for _ in 0..2 {
        let r = post(&s, "/logs").header("Authorization", basic("u:guess")).body("x").send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // A misconfigured drain of user `other` is counted apart: a plain 401, no 429.
    let r = post(&s, "/logs").header("Authorization", basic("other:typo")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn forwarded_for_is_honoured_only_when_trusted() {
    for trust in [false, true] {
        let config = HttpConfig {
            access: LiveAccess::new(Access::new(&[credential("u:p")], DrainTokens::default(), BearerTokens::default())),
            max_auth_failures: 2,
            trust_forwarded_for: trust,
            ..HttpConfig::default()
        };
        let s = start_http(config).await;
        let guess = |client: &str| {
            post(&s, "/logs")
                .header("Authorization", basic("u:guess"))
                .header("X-Forwarded-For", format!("198.51.100.9, {client}"))
                .body("x")
        };
        for _ in 0..2 {
            assert_eq!(guess("203.0.113.1").send().await.unwrap().status(), 401);
        }
        // Another client behind the same balancer: counted apart only when the header is trusted.
        let other = guess("203.0.113.2").send().await.unwrap().status();
        assert_eq!(other, if trust { 401 } else { 429 }, "trust_forwarded_for = {trust}");
    }
}

#[tokio::test]
async fn drain_tokens_allow_list_and_app_mapping() {
    let tokens = DrainTokens::new([("d.known".to_owned(), "shop".to_owned())]);
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(&[], tokens, BearerTokens::default())),
        max_auth_failures: 2,
        ..HttpConfig::default()
    };
    let mut s = start_http(config).await;
    let unknown = post(&s, "/logs").header("Logplex-Drain-Token", "d.other").body(logplex_body(&[LINE]));
    assert_eq!(unknown.send().await.unwrap().status(), 403);
    let known = post(&s, "/logs").header("Logplex-Drain-Token", "d.known").body(logplex_body(&[LINE]));
    assert_eq!(known.send().await.unwrap().status(), 200);
    assert_eq!(next_frame(&mut s).await.app.as_deref(), Some("shop"));
    // The token's app wins over app= in the URL: a drain cannot write into another app.
    let named = post(&s, "/logs?app=other").header("Logplex-Drain-Token", "d.known").body(logplex_body(&[LINE]));
    assert_eq!(named.send().await.unwrap().status(), 200);
    assert_eq!(next_frame(&mut s).await.app.as_deref(), Some("shop"));
    // With an allow-list, a request without any token is not on it.
    let tokenless = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(tokenless.status(), 403);
    assert!(tokenless.text().await.unwrap().contains("Logplex-Drain-Token"));
    // Refusals for the allow-list are configuration, not guesses: they never block the address.
    for _ in 0..5 {
        let r = post(&s, "/logs").header("Logplex-Drain-Token", "d.other").body(logplex_body(&[LINE]));
        assert_eq!(r.send().await.unwrap().status(), 403);
    }
    let known = post(&s, "/logs").header("Logplex-Drain-Token", "d.known").body(logplex_body(&[LINE]));
    assert_eq!(known.send().await.unwrap().status(), 200);
}

/// Private Spaces drains carry no token: `allow_tokenless` takes those, and still refuses a
/// token that is not on the list.
#[tokio::test]
async fn tokenless_requests_pass_the_allow_list_only_when_allowed() {
    let tokens = DrainTokens::new([("d.known".to_owned(), "shop".to_owned())]);
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(&[], tokens, BearerTokens::default())),
        allow_tokenless: true,
        ..HttpConfig::default()
    };
    let mut s = start_http(config).await;
    let tokenless = post(&s, "/logs?app=private").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(tokenless.status(), 200);
    let frame = next_frame(&mut s).await;
    assert_eq!((frame.drain_token, frame.app.as_deref()), (None, Some("private")));
    let unknown = post(&s, "/logs").header("Logplex-Drain-Token", "d.other").body(logplex_body(&[LINE]));
    assert_eq!(unknown.send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn labels_follow_the_naming_rule() {
    let mut s = start_http(HttpConfig::default()).await;
    let r = post(&s, "/logs?app=shop&a.b=1&Env=prod&.x=2").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f = next_frame(&mut s).await;
    let names: Vec<&str> = f.labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["a_b", "env", "_x"]);
}

#[tokio::test]
async fn empty_messages_are_counted_not_handed_on() {
    let mut s = start_http(HttpConfig::default()).await;
    let mut body = b"0 0 ".to_vec();
    body.extend(logplex_body(&[LINE]));
    body.extend_from_slice(b"0 ");
    let r = post(&s, "/logs").header("Logplex-Msg-Count", "4").body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f = next_frame(&mut s).await;
    assert_eq!(f.messages.len(), 1);
    assert_eq!(f.message(0), LINE.as_bytes());
}

#[tokio::test]
async fn a_spent_memory_budget_answers_503_and_frees_when_frames_leave() {
    // Room for about one 300 KiB body (and its index), not two.
    let budget = MemoryBudget::new(400 * 1024);
    let mut s = start_http(HttpConfig { budget: budget.clone(), ..HttpConfig::default() }).await;
    let big_line = format!("<190>1 2025-03-14T09:26:53Z host app web.1 - {}\n", "x".repeat(300 * 1024));
    let r = post(&s, "/logs").body(logplex_body(&[&big_line])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The first frame sits in the sink, holding its share.
    assert!(budget.used_bytes() >= 300 * 1024, "{}", budget.used_bytes());
    let r = post(&s, "/logs").body(logplex_body(&[&big_line])).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    drop(next_frame(&mut s).await);
    assert_eq!(budget.used_bytes(), 0, "a frame gives its share back when it is dropped");
    let r = post(&s, "/logs").body(logplex_body(&[&big_line])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Gzip bodies inflate within the budget too.
    drop(next_frame(&mut s).await);
    let r = post(&s, "/logs").header("Content-Encoding", "gzip").body(gzip(&logplex_body(&[&big_line])));
    assert_eq!(r.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_give_way_to_new_ones() {
    let mut s = start_http(HttpConfig { max_connections: 4, ..HttpConfig::default() }).await;
    // Four idle connections fill the limit (a request each, then kept alive).
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let body = logplex_body(&[LINE]);
        let req = format!("POST /logs HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        c.write_all(req.as_bytes()).await.unwrap();
        c.write_all(&body).await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        next_frame(&mut s).await;
        idle.push(c);
    }
    // A fifth sender is served at once (before the 10 s header timeout would free a slot).
    let started = std::time::Instant::now();
    let r = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn the_routes_listener_has_the_same_limits() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config =
        HttpConfig { max_connections: 2, header_read_timeout: Duration::from_millis(300), ..HttpConfig::default() };
    let routes: drainpipe_ingest::ExtraRoutes = Arc::new(|_, path| {
        (path == "/healthz")
            .then(|| hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok\n"))))
    });
    tokio::spawn(http::run_routes(listener, config.clone(), routes.clone(), std::future::pending()));
    // Silent connections are cut off by the header timeout ...
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut silent, &mut buf));
    assert!(read.await.is_ok(), "an idle connection is closed");
    // ... and idle ones beyond the limit give way, so the endpoint keeps answering. With a
    // header timeout far beyond the wait allowed here, only eviction can free the slots
    // (with the 300 ms one, the timeout alone let /healthz through in about a second).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = HttpConfig { max_connections: 2, header_read_timeout: Duration::from_secs(60), ..config };
    tokio::spawn(http::run_routes(listener, config, routes, std::future::pending()));
    let _held: Vec<TcpStream> = futures_join(addr, 8).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let r = client.get(format!("http://{addr}/healthz")).send().await.expect("/healthz answered within 5 s");
    assert_eq!(r.status(), 200);
}

async fn futures_join(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}

#[tokio::test]
async fn bodies_and_types_that_cannot_be_taken() {
    let s = start_http(HttpConfig { max_body_bytes: 1024, ..HttpConfig::default() }).await;
    let not_logplex = post(&s, "/logs").body("hello world").send().await.unwrap();
    assert_eq!(not_logplex.status(), 400);
    let reason = not_logplex.text().await.unwrap();
    assert_eq!(reason.lines().count(), 1, "one-line reason: {reason}");
    assert_eq!(post(&s, "/logs").body(vec![b'1'; 2048]).send().await.unwrap().status(), 413);
    let json = post(&s, "/logs").header("Content-Type", "application/json").body("{}");
    assert_eq!(json.send().await.unwrap().status(), 415);
    let br = post(&s, "/logs").header("Content-Encoding", "br").body(logplex_body(&[LINE]));
    assert_eq!(br.send().await.unwrap().status(), 415);
    let bad_gzip = post(&s, "/logs").header("Content-Encoding", "gzip").body("not gzip");
    assert_eq!(bad_gzip.send().await.unwrap().status(), 400);
    // Small on the wire, too large once decompressed.
    let bomb = post(&s, "/logs").header("Content-Encoding", "gzip").body(gzip(&[b'7'; 100_000]));
    assert_eq!(bomb.send().await.unwrap().status(), 413);
    let get = reqwest::get(format!("http://{}/logs", s.addr)).await.unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let mut s = start_http(HttpConfig::default()).await;
    let body = logplex_body(&[LINE, LINE]);
    let r = post(&s, "/logs").header("Content-Encoding", "gzip").body(gzip(&body)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f = next_frame(&mut s).await;
    assert_eq!(&f.body[..], &body[..]);
    assert_eq!(f.messages.len(), 2);
}

#[tokio::test]
async fn every_accepted_encoding_and_type() {
    let mut s = start_http(HttpConfig::default()).await;
    let body = logplex_body(&[LINE]);
    for (encoding, compressed) in [("gzip", true), ("x-gzip", true), ("GZIP", true), ("identity", false), ("", false)] {
        let payload = if compressed { gzip(&body) } else { body.clone() };
        let r = post(&s, "/logs").header("Content-Encoding", encoding).body(payload).send().await.unwrap();
        assert_eq!(r.status(), 200, "Content-Encoding: {encoding}");
        assert_eq!(&next_frame(&mut s).await.body[..], &body[..]);
    }
    for content_type in
        ["application/logplex-1", "application/logplex-1; charset=utf-8", "text/plain", "application/octet-stream"]
    {
        let r = post(&s, "/logs").header("Content-Type", content_type).body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "Content-Type: {content_type}");
        next_frame(&mut s).await;
    }
}

#[tokio::test]
async fn full_pipeline_answers_503_with_retry_after() {
    let s = start_http(HttpConfig::default()).await;
    s.full.store(true, Ordering::SeqCst);
    let r = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
}

#[tokio::test]
async fn shutting_down_answers_503_with_retry_after_5() {
    let s = start_http(HttpConfig::default()).await;
    s.shutting_down.store(true, Ordering::SeqCst);
    let r = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    assert_eq!(r.text().await.unwrap(), "shutting down, retry later\n");
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let s = start_http(HttpConfig { body_read_timeout: Duration::from_millis(300), ..HttpConfig::default() }).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /logs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n12 <14>1").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer));
    let _ = read.await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// OTLP exporters retry only 429, 502, 503 and 504: a body that stops arriving is a 503 to
/// them, with `Retry-After`, so the export is sent again rather than dropped.
#[tokio::test]
async fn an_otlp_body_that_stops_arriving_gets_503_with_retry_after() {
    let s = start_http(HttpConfig { body_read_timeout: Duration::from_millis(300), ..HttpConfig::default() }).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head =
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n";
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&[0x0a, 0x10]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut c, &mut answer));
    let _ = read.await;
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer:?}");
    assert!(answer.contains("retry-after: 1"), "{answer:?}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let s = start_http(HttpConfig { header_read_timeout: Duration::from_millis(300), ..HttpConfig::default() }).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /logs HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut c, &mut buf)).await;
    assert!(read.is_ok(), "the server closes a connection whose headers never finish");
}

/// A self-signed certificate for 127.0.0.1, written as PEM files.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, reqwest::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("drainpipe-ingest-{name}-{}", std::process::id()))
}

#[tokio::test]
async fn https_with_a_certificate_made_at_test_time_and_reloaded() {
    let dir = temp_dir("https");
    let (cert_path, key_path, ca) = certificate(&dir);
    let old_ca = certificate_of(&cert_path);
    let cert = ReloadableCert::load(&cert_path, &key_path).unwrap();
    let config = HttpConfig { tls: Some(cert.acceptor().unwrap()), ..HttpConfig::default() };
    let mut s = start_http(config).await;
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let url = format!("https://localhost:{}/logs?app=shop", s.addr.port());
    let r = client.post(&url).body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(next_frame(&mut s).await.app.as_deref(), Some("shop"));
    // Plain HTTP on the TLS port does not get through.
    assert!(post(&s, "/logs").body(logplex_body(&[LINE])).send().await.is_err());

    // A new certificate on disk is served after reload: a client trusting only the old one
    // now fails, one trusting the new one gets through.
    let (_, _, new_ca) = certificate(&dir);
    cert.reload().unwrap();
    let old_client = reqwest::Client::builder().add_root_certificate(old_ca).build().unwrap();
    assert!(old_client.post(&url).body(logplex_body(&[LINE])).send().await.is_err());
    let new_client = reqwest::Client::builder().add_root_certificate(new_ca).build().unwrap();
    assert_eq!(new_client.post(&url).body(logplex_body(&[LINE])).send().await.unwrap().status(), 200);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn syslog_over_tcp_in_both_framings() {
    let mut s = start_syslog(SyslogConfig { max_message_bytes: 128, ..SyslogConfig::default() }).await;
    let heroku = "<190>1 2025-03-14T09:26:53.589793+00:00 d.0b7a app web.1 - - octet counted\n";
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let mut stream = format!("{} {heroku}", heroku.len()).into_bytes();
    stream.extend_from_slice(b"<13>Mar 14 09:26:53 relay nginx[1]: newline framed\n");
    stream.extend_from_slice(format!("<13>1 2025-03-14T09:26:53Z h a p - - {}\n", "x".repeat(300)).as_bytes());
    stream.extend_from_slice(b"<13>Mar 14 09:26:54 relay nginx[1]: after the long one\n");
    c.write_all(&stream).await.unwrap();
    c.shutdown().await.unwrap();
    let mut messages = Vec::new();
    let mut cut = Vec::new();
    while messages.len() < 4 {
        let f = next_frame(&mut s).await;
        assert_eq!(f.protocol, Protocol::Syslog);
        for (p, full) in &f.cut {
            cut.push((messages.len() + p, *full));
        }
        for i in 0..f.messages.len() {
            messages.push(String::from_utf8_lossy(f.message(i)).into_owned());
        }
    }
    assert_eq!(messages[0], heroku);
    assert_eq!(messages[1], "<13>Mar 14 09:26:53 relay nginx[1]: newline framed");
    assert_eq!(messages[2].len(), 128);
    assert_eq!(cut, vec![(2, 129)]);
    assert_eq!(messages[3], "<13>Mar 14 09:26:54 relay nginx[1]: after the long one");
}

/// Every message a connection handed on, with its stream position (stream id, number).
async fn numbered(s: &mut Server, n: usize) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = next_frame(s).await;
        let Position::OnStream { stream, first } = f.position else {
            panic!("syslog frames carry their stream position")
        };
        for i in 0..f.messages.len() {
            out.push((stream, first + i as u64, String::from_utf8_lossy(f.message(i)).into_owned()));
        }
    }
    out
}

#[tokio::test]
async fn identical_syslog_lines_are_numbered_apart() {
    let mut s = start_syslog(SyslogConfig::default()).await;
    let line = "<13>Mar 14 09:26:53 relay nginx[1]: the same line\n";
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // Each line is written only once the one before was handed on, so each needs a read of its
    // own; a frame is made per read, so one frame per line shows the reads were split.
    let mut first = Vec::new();
    for _ in 0..3 {
        c.write_all(line.as_bytes()).await.unwrap();
        c.flush().await.unwrap();
        let read = numbered(&mut s, 1).await;
        assert_eq!(read.len(), 1, "one line per read: {read:?}");
        first.extend(read);
    }
    assert_eq!(first.iter().map(|m| m.1).collect::<Vec<_>>(), [0, 1, 2], "numbered in order across reads");
    assert!(first.iter().all(|m| m.0 == first[0].0), "one stream id per connection");
    // Another connection sending the same line is another stream.
    let mut other = TcpStream::connect(s.addr).await.unwrap();
    other.write_all(line.as_bytes()).await.unwrap();
    let second = numbered(&mut s, 1).await;
    assert_ne!(second[0].0, first[0].0);
    drop(c);
}

#[tokio::test]
async fn idle_syslog_connections_give_way_to_new_ones() {
    let mut s = start_syslog(SyslogConfig { max_connections: 2, ..SyslogConfig::default() }).await;
    // Two connections hold both slots: each has been read (its line handed on) and is quiet since.
    let mut quiet: Vec<TcpStream> = futures_join(s.addr, 2).await;
    for c in &mut quiet {
        c.write_all(b"<13>Mar 14 09:26:52 relay nginx[1]: then quiet\n").await.unwrap();
        assert_eq!(numbered(&mut s, 1).await[0].2, "<13>Mar 14 09:26:52 relay nginx[1]: then quiet");
    }
    // Before: a third sender waited for the hour-long idle timeout of a quiet connection.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"<13>Mar 14 09:26:53 relay nginx[1]: let in\n").await.unwrap();
    let got = numbered(&mut s, 1).await;
    assert_eq!(got[0].2, "<13>Mar 14 09:26:53 relay nginx[1]: let in");
    // It was let in by closing the connection quiet the longest, the first.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut quiet[0], &mut buf));
    assert_eq!(closed.await.expect("the quiet connection is closed").unwrap_or(0), 0);
}

#[tokio::test]
async fn a_full_sink_stops_syslog_reads_until_there_is_room() {
    let mut s = start_syslog(SyslogConfig::default()).await;
    let line = b"<14>Mar 14 09:26:53 relay app: a line that is long enough to fill buffers quickly\n";
    let total = 64 * 1024 * 1024 / line.len();
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = written.clone();
    let writer = tokio::spawn(async move {
        let block: Vec<u8> = line.iter().copied().cycle().take(line.len() * 1000).collect();
        for _ in 0..total / 1000 {
            c.write_all(&block).await.unwrap();
            progress.fetch_add(block.len(), Ordering::SeqCst);
        }
        c.shutdown().await.unwrap();
    });
    // Nobody takes frames: once the sink's queue is full and then the socket buffers, the
    // writer must be stuck rather than drainpipe buffering 64 MiB. Poll until the queue is
    // full and the writer has made no progress over ten polls in a row.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut last, mut still) = (usize::MAX, 0);
    while still < 10 {
        assert!(!writer.is_finished(), "the listener kept reading although the sink was full");
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never stopped: {} bytes",
            written.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = written.load(Ordering::SeqCst);
        let queue_full = s.frames.len() == s.frames.max_capacity();
        still = if queue_full && now == last { still + 1 } else { 0 };
        last = now;
    }
    let stuck_at = written.load(Ordering::SeqCst);
    assert!(stuck_at < line.len() * total / 2, "{stuck_at} bytes taken before the writer stopped");
    assert!(!writer.is_finished(), "the listener kept reading although the sink was full");
    let mut received = 0;
    while received < total / 1000 * 1000 {
        received += next_frame(&mut s).await.messages.len();
    }
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("writer finishes once frames are taken")
        .unwrap();
    assert_eq!(received, total / 1000 * 1000);
}

#[tokio::test]
async fn syslog_over_tls() {
    let dir = temp_dir("syslog-tls");
    let (cert_path, key_path, _) = certificate(&dir);
    let cert = ReloadableCert::load(&cert_path, &key_path).unwrap();
    let mut s = start_syslog(SyslogConfig { tls: Some(cert.acceptor().unwrap()), ..SyslogConfig::default() }).await;

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let pem = std::fs::read(&cert_path).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let msg = "<190>1 2025-03-14T09:26:53Z d.0b7a app web.1 - - over tls\n";
    tls.write_all(format!("{} {msg}", msg.len()).as_bytes()).await.unwrap();
    tls.write_all(b"<13>Mar 14 09:26:53 relay app: newline over tls\n").await.unwrap();
    tls.shutdown().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let f = next_frame(&mut s).await;
        got.extend((0..f.messages.len()).map(|i| String::from_utf8_lossy(f.message(i)).into_owned()));
    }
    assert_eq!(got, vec![msg.to_owned(), "<13>Mar 14 09:26:53 relay app: newline over tls".to_owned()]);
    std::fs::remove_dir_all(dir).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn certificate_of(path: &std::path::Path) -> reqwest::Certificate {
    reqwest::Certificate::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn credential(s: &str) -> Credential {
    s.parse().unwrap()
}

/// An OTLP logs export of `records` records with a resource of `resource_bytes` bytes.
fn otlp_export(records: usize, resource_bytes: usize, body: &str) -> Vec<u8> {
    use drainpipe_otlp::proto::{
        AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs, Value,
    };
    let text = |s: String| Some(AnyValue { value: Some(Value::String(s)) });
    let resource =
        Resource { attributes: vec![KeyValue { key: "padding".into(), value: text("r".repeat(resource_bytes)) }] };
    let log_records =
        (0..records).map(|i| LogRecord { body: text(format!("{body} {i}")), ..LogRecord::default() }).collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs { scope: None, log_records }],
        }],
    };
    prost::Message::encode_to_vec(&request)
}

fn otlp(server: &Server, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    post(server, path).header("Content-Type", "application/x-protobuf").body(body)
}

#[tokio::test]
async fn an_otlp_export_too_large_for_one_frame_once_split_goes_as_several() {
    // 40 records, each carrying a 4 KiB resource once split: 160 KiB, in frames of 64 KiB.
    let mut s = start_http(HttpConfig { max_body_bytes: 64 * 1024, ..HttpConfig::default() }).await;
    let r = otlp(&s, "/v1/logs", otlp_export(40, 4096, "record")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty(), "all taken: an empty response");
    let (mut next, mut frames) = (0, 0);
    while next < 40 {
        let f = next_frame(&mut s).await;
        assert_eq!(f.protocol, Protocol::Otlp);
        assert!(f.body.len() <= 64 * 1024);
        assert_eq!(
            f.position,
            Position::InExport { first_record: next },
            "each frame says where its records were in the export"
        );
        next += f.messages.len() as u64;
        frames += 1;
    }
    assert_eq!(next, 40);
    assert!(frames >= 3, "{frames} frames");
}

#[tokio::test]
async fn an_otlp_export_that_would_decode_past_the_memory_budget_is_refused_before_decoding() {
    // 5,000 empty records are 10 KB on the wire and megabytes once decoded.
    let budget = MemoryBudget::new(400 * 1024);
    let s = start_http(HttpConfig { budget: budget.clone(), ..HttpConfig::default() }).await;
    let r = otlp(&s, "/v1/logs", otlp_export(5000, 0, "")).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(budget.used_bytes(), 0, "nothing held after the answer");
    let r = otlp(&s, "/v1/logs", otlp_export(10, 0, "fine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn protobuf_traces_become_one_frame_of_a_span_each() {
    // resource_spans 1 > scope_spans 2 > spans 2 { name 5, start_time_unix_nano 7 }.
    let span: Vec<u8> = [&[0x2a, 5][..], b"GET /", &[0x39], &[1, 0, 0, 0, 0, 0, 0, 0]].concat();
    let scope: Vec<u8> = [vec![0x12, span.len() as u8], span.clone(), vec![0x12, span.len() as u8], span].concat();
    let resource: Vec<u8> = [vec![0x12, scope.len() as u8], scope].concat();
    let request: Vec<u8> = [vec![0x0a, resource.len() as u8], resource].concat();
    let mut s = start_http(HttpConfig::default()).await;
    let r = otlp(&s, "/v1/traces", request).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty(), "everything taken: no partial success");
    let f = next_frame(&mut s).await;
    assert_eq!(f.protocol, Protocol::OtlpTraces);
    assert_eq!(f.messages.len(), 2);
    let span = drainpipe_otlp::SpanRecord::read(f.message(1)).unwrap().span.unwrap();
    assert_eq!((span.name.as_str(), span.start_time_unix_nano), ("GET /", 1));
}

#[tokio::test]
async fn otlp_takes_both_protobuf_types_and_names_them_in_its_415() {
    let mut s = start_http(HttpConfig::default()).await;
    for content_type in ["application/x-protobuf", "application/protobuf"] {
        let r = post(&s, "/v1/logs").header("Content-Type", content_type).body(otlp_export(1, 0, "typed")).send();
        assert_eq!(r.await.unwrap().status(), 200, "{content_type}");
        next_frame(&mut s).await;
    }
    let r = post(&s, "/v1/logs").header("Content-Type", "text/plain").body(otlp_export(1, 0, "")).send().await.unwrap();
    assert_eq!(r.status(), 415);
    // A google.rpc.Status in protobuf: its message is in there as it is.
    let answer = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    assert!(answer.contains("application/x-protobuf, application/protobuf or application/json"), "{answer:?}");
}

/// The same refusal of the sink is answered with the same status, `Retry-After` and reason on
/// both endpoints.
#[tokio::test]
async fn a_full_pipeline_is_the_same_503_on_both_endpoints() {
    let s = start_http(HttpConfig::default()).await;
    s.full.store(true, Ordering::SeqCst);
    let r = post(&s, "/logs").body(logplex_body(&[LINE])).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(r.text().await.unwrap(), "pipeline full, retry later\n");
    let r = post(&s, "/v1/logs").header("Content-Type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 200, "no records: nothing to hand on");
    let r = otlp(&s, "/v1/logs", otlp_export(1, 0, "full")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let answer = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    assert!(answer.contains("pipeline full, retry later"), "{answer:?}");
}

async fn start_grpc(config: HttpConfig) -> Server {
    start(|listener, sink, stopped| {
        drainpipe_ingest::grpc::run(listener, config, sink, async move {
            let _ = stopped.await;
        })
    })
    .await
}

/// What a gRPC call got back: the message (without its 5-byte prefix), and the `grpc-status`
/// and `grpc-status-details-bin` from the trailers, or from the headers of a trailers-only answer.
struct GrpcAnswer {
    message: Vec<u8>,
    code: i32,
    details: Option<Vec<u8>>,
}

/// Calls `path` on the gRPC receiver over h2c, as an exporter does.
async fn grpc_call(server: &Server, path: &str, message: &[u8], token: Option<&str>) -> GrpcAnswer {
    use http_body_util::BodyExt as _;
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(server.addr).await.unwrap());
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    let mut request = hyper::Request::post(format!("http://{}{path}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request.body(http_body_util::Full::new(bytes::Bytes::from(framed))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200, "gRPC answers in its trailers");
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes();
    let from = if headers.contains_key("grpc-status") { &headers } else { &trailers };
    let code = from.get("grpc-status").map_or(-1, |v| v.to_str().unwrap().parse().unwrap());
    let details = from
        .get("grpc-status-details-bin")
        .map(|v| base64::engine::general_purpose::STANDARD_NO_PAD.decode(v.as_bytes()).unwrap());
    GrpcAnswer { message: body.get(5..).map(<[u8]>::to_vec).unwrap_or_default(), code, details }
}

const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A metrics export: a gauge of two points and an exponential histogram of `exponential`.
fn metrics_export(exponential: usize) -> Vec<u8> {
    use drainpipe_otlp::proto::{
        Data, Empty, ExportMetricsServiceRequest, Gauge, Metric, Number, NumberDataPoint, Points, ResourceMetrics,
        ScopeMetrics,
    };
    use prost::Message as _;
    let point = |v: f64| NumberDataPoint { value: Some(Number::AsDouble(v)), ..NumberDataPoint::default() };
    let gauge = Metric {
        name: "memory".into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![point(1.0), point(2.0)] })),
        ..Metric::default()
    };
    let exponential = Metric {
        name: "latency".into(),
        data: Some(Data::ExponentialHistogram(Points { data_points: vec![Empty {}; exponential] })),
        ..Metric::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics { scope: None, metrics: vec![gauge, exponential] }],
        }],
    }
    .encode_to_vec()
}

#[tokio::test]
async fn a_grpc_export_becomes_a_frame_and_is_answered_ok() {
    use prost::Message as _;
    let mut s = start_grpc(HttpConfig::default()).await;
    let answer = grpc_call(&s, METRICS_EXPORT, &metrics_export(0), None).await;
    assert_eq!(answer.code, 0);
    assert!(answer.message.is_empty(), "everything taken: an empty ExportMetricsServiceResponse");
    let f = next_frame(&mut s).await;
    assert_eq!((f.protocol, f.messages.len()), (Protocol::OtlpMetrics, 2));

    // Exponential histograms are counted in a partial success.
    let answer = grpc_call(&s, METRICS_EXPORT, &metrics_export(3), None).await;
    assert_eq!(answer.code, 0);
    let partial = drainpipe_otlp::proto::ExportResponse::decode(answer.message.as_slice()).unwrap();
    let partial = partial.partial_success.unwrap();
    assert_eq!(partial.rejected, 3);
    assert!(partial.error_message.contains("exponential histogram"), "{}", partial.error_message);
    assert_eq!(next_frame(&mut s).await.messages.len(), 2);

    let answer =
        grpc_call(&s, "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", b"", None);
    assert_eq!(answer.await.code, 12, "UNIMPLEMENTED");
    let answer = grpc_call(&s, METRICS_EXPORT, b"\xff\xff\xff", None).await;
    assert_eq!(answer.code, 3, "INVALID_ARGUMENT for a body that is no export");
}

#[tokio::test]
async fn grpc_refusals_carry_the_codes_exporters_retry() {
    use prost::Message as _;
    let config = HttpConfig {
        access: LiveAccess::new(Access::new(
            &[],
            DrainTokens::default(),
            BearerTokens::new([(drainpipe_ingest::Secret::new("right"), None)]),
        )),
        ..HttpConfig::default()
    };
    let s = start_grpc(config).await;
    assert_eq!(grpc_call(&s, METRICS_EXPORT, &metrics_export(0), None).await.code, 16, "UNAUTHENTICATED");
    assert_eq!(grpc_call(&s, METRICS_EXPORT, &metrics_export(0), Some("wrong")).await.code, 16);

    // A full pipeline: UNAVAILABLE, with a RetryInfo saying when (the 503's Retry-After).
    s.full.store(true, Ordering::SeqCst);
    let answer = grpc_call(&s, METRICS_EXPORT, &metrics_export(0), Some("right")).await;
    assert_eq!(answer.code, 14, "UNAVAILABLE");
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Any {
        #[prost(string, tag = "1")]
        type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<Delay>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Delay {
        #[prost(int64, tag = "1")]
        seconds: i64,
    }
    let retry_after = |answer: GrpcAnswer| {
        let status = RpcStatus::decode(answer.details.expect("status details").as_slice()).unwrap();
        assert_eq!(status.code, 14);
        let any = &status.details[0];
        assert_eq!(any.type_url, "type.googleapis.com/google.rpc.RetryInfo");
        RetryInfo::decode(any.value.as_slice()).unwrap().retry_delay.unwrap().seconds
    };
    assert_eq!(retry_after(answer), 2, "the 503's Retry-After");

    // A body larger than the memory left is refused as it arrives, as on HTTP: UNAVAILABLE,
    // come back in a second.
    let config = HttpConfig { budget: MemoryBudget::new(64 * 1024), ..HttpConfig::default() };
    let s = start_grpc(config).await;
    let padding = "p".repeat(200 * 1024);
    let big = metrics_export(0).into_iter().chain(padding.bytes()).collect::<Vec<u8>>();
    let answer = grpc_call(&s, METRICS_EXPORT, &big, None).await;
    assert_eq!(answer.code, 14, "UNAVAILABLE");
    assert_eq!(retry_after(answer), 1);
}
