//! Several Elasticsearch URLs: a node that cannot be reached is set aside at once (no bulk
//! request fails for it, nothing waits for a retry), shown on `/metrics`, and used again once
//! it answers. The node that returns is a relay to the real Elasticsearch on the port that was
//! closed, so the test can see requests reach it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// Frame `n` of `lines` app lines with its own frame id.
async fn send(dp: &Drainpipe, n: usize, lines: usize) {
    let messages: Vec<String> = (0..lines)
        .map(|i| {
            format!("<190>1 2025-03-14T09:26:53.{n:03}{i:03}+00:00 host app web.1 - failover frame {n} line {i}\n")
        })
        .collect();
    let id = format!("{n:032X}");
    let headers = LogplexHeaders { frame_id: Some(&id), drain_token: Some("d.failover"), msg_count: lines };
    let answer = post_frame(&dp.url("/logs?app=shop"), logplex_body(&messages), &headers).await;
    assert!(answer.status().is_success(), "frame {n}: {}", answer.status());
}

/// The value of one sample on `/metrics`, `None` when there is no such series.
async fn metric(dp: &Drainpipe, sample: &str) -> Option<f64> {
    let text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
}

/// Forwards every connection on `listener` to `to`, counting the `_bulk` requests it carries.
fn relay(listener: TcpListener, to: String, bulks: Arc<AtomicU64>) {
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (to, bulks) = (to.clone(), bulks.clone());
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(&to).await else { return };
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let upstream = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match in_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // A request line in this read (one that straddles two reads is missed:
                        // the test only needs to see some).
                        let seen = buf[..n].windows(11).filter(|w| *w == b"POST /_bulk").count();
                        bulks.fetch_add(seen as u64, Ordering::Relaxed);
                        if tokio::io::AsyncWriteExt::write_all(&mut out_write, &buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let downstream = tokio::io::copy(&mut out_read, &mut in_write);
                tokio::select! {
                    () = upstream => {}
                    _ = downstream => {}
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_be_reached_is_set_aside_at_once_and_used_again_when_it_answers() {
    let es = elasticsearch_url();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("http://127.0.0.1:{port}/");
    // The closed port first, so the very first request (setup's) meets it.
    let dp = Drainpipe::start_against(&format!("{down},{es}"), &unique_namespace("failover"), &[]);
    let node = |name: &str| format!("{name}{{node=\"{down}\"}}");

    for n in 0..10 {
        send(&dp, n, 5).await;
    }
    assert_eq!(wait_for_count(&es, &dp.data_stream, 50, Duration::from_secs(60)).await, 50);
    assert_eq!(metric(&dp, &node("drainpipe_elasticsearch_node_up")).await, Some(0.0), "the closed port is set aside");
    assert!(metric(&dp, &node("drainpipe_elasticsearch_node_failovers_total")).await >= Some(1.0));
    assert_eq!(
        metric(&dp, "drainpipe_bulk_requests_total{outcome=\"error\"}").await,
        Some(0.0),
        "no bulk request failed: each went to the node that answers at once"
    );
    assert_eq!(metric(&dp, "drainpipe_elasticsearch_reachable").await, Some(1.0));

    // The node returns: requests reach it again once a probe finds it.
    let bulks = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    relay(listener, es.trim_start_matches("http://").trim_end_matches('/').to_owned(), bulks.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 10;
    while bulks.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no bulk request reached the returned node within 60 s");
        send(&dp, n, 1).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric(&dp, &node("drainpipe_elasticsearch_node_up")).await, Some(1.0), "the returned node is used");
    let expected = 50 + (n as u64 - 10);
    assert_eq!(wait_for_count(&es, &dp.data_stream, expected, Duration::from_secs(60)).await, expected);
    assert_eq!(metric(&dp, "drainpipe_bulk_requests_total{outcome=\"error\"}").await, Some(0.0));
}
