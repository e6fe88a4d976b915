//! The receivers' limits under hostile load, over real sockets: a flood of wrong guesses holds
//! no slot a right sender needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use drainpipe_ingest::{http, Credential, ExtraRoutes, HttpConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::Drop;

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

fn healthz() -> ExtraRoutes {
    Arc::new(|_, path| {
        (path == "/healthz")
            .then(|| hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok\n"))))
    })
}

const LINE: &str = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";

/// One connection that pipelines `requests` wrong guesses and reads what comes back.
async fn guesser(addr: SocketAddr, requests: usize) {
    let Ok(mut c) = TcpStream::connect(addr).await else { return };
    let one = format!(
        "POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 1\r\n\r\nx",
        basic("logplex:wrong")
    );
    if c.write_all(one.repeat(requests).as_bytes()).await.is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// `--basic-auth`, `--max-connections 64`, and 70 connections pipelining wrong credentials:
/// once their key is blocked every one of them waits out a penalty. A right sender and
/// `/healthz` are still answered within half a second (they used to wait for a slot for good).
#[tokio::test]
async fn a_flood_of_wrong_guesses_holds_no_slot_a_right_sender_needs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = HttpConfig {
        access: drainpipe_ingest::LiveAccess::new(drainpipe_ingest::Access::new(
            &["logplex:s3cret".parse::<Credential>().unwrap()],
            Default::default(),
            Default::default(),
        )),
        max_connections: 64,
        extra_routes: Some(healthz()),
        ..HttpConfig::default()
    };
    tokio::spawn(http::run(listener, config, Drop, std::future::pending()));
    let flood: Vec<_> = (0..70).map(|_| tokio::spawn(guesser(addr, 30))).collect();
    // The key is blocked after 20 failures (the default); from then on every guess waits out
    // a penalty. Poll until as many penalties have begun as there are slots.
    let penalised = drainpipe_ingest::metrics::AUTH_FAILURES.with_label_values(&["rate_limited"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while penalised.get() < 64 {
        assert!(Instant::now() < deadline, "the flood was never penalised: {}", penalised.get());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let client = reqwest::Client::new();
    let started = Instant::now();
    let right = client
        .post(format!("http://{addr}/logs"))
        .header("Authorization", basic("logplex:s3cret"))
        .body(format!("{} {LINE}", LINE.len()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let took = started.elapsed();
    assert_eq!(right.map(|r| r.status().as_u16()).ok(), Some(200), "after {took:?}");
    assert!(took < Duration::from_millis(500), "a right sender waited {took:?}");

    let started = Instant::now();
    let health = client.get(format!("http://{addr}/healthz")).timeout(Duration::from_secs(5)).send().await;
    let took = started.elapsed();
    assert_eq!(health.map(|r| r.status().as_u16()).ok(), Some(200), "after {took:?}");
    assert!(took < Duration::from_millis(500), "/healthz waited {took:?}");
    for f in flood {
        f.abort();
    }
}

/// The routes listener (`--metrics-listen`) at its limit: silent connections (inside the
/// header timeout) give way, so `/healthz` is answered at once, not after the timeout.
#[tokio::test]
async fn the_routes_listener_gives_silent_connections_up_for_healthz() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config =
        HttpConfig { max_connections: 64, header_read_timeout: Duration::from_secs(30), ..HttpConfig::default() };
    tokio::spawn(http::run_routes(listener, config, healthz(), std::future::pending()));
    let mut held = Vec::new();
    for _ in 0..70 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = Instant::now();
    let health =
        reqwest::Client::new().get(format!("http://{addr}/healthz")).timeout(Duration::from_secs(5)).send().await;
    let took = started.elapsed();
    assert_eq!(health.map(|r| r.status().as_u16()).ok(), Some(200), "after {took:?}");
    assert!(took < Duration::from_millis(500), "/healthz waited {took:?}");
}

/// A connection's read buffer is bounded (`http::CONNECTION_BUFFER`, not hyper's ~400 KiB): a
/// request head larger than it is answered 431 instead of being buffered.
#[tokio::test]
async fn a_request_head_past_the_connection_buffer_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::run(listener, HttpConfig::default(), Drop, std::future::pending()));
    let answer = |pad: usize| async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /logs HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nContent-Length: 0\r\n\r\n", "p".repeat(pad));
        // The server may answer and close before it has read all of a head it refuses.
        let _ = c.write_all(head.as_bytes()).await;
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.unwrap().unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(answer(1024).await.starts_with("HTTP/1.1 200"));
    let refused = answer(3 * http::CONNECTION_BUFFER).await;
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused:?}");
}
