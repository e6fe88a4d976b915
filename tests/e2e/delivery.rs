//! Delivery under faults, against the real Elasticsearch: whatever was answered 2xx is indexed
//! exactly once, through an Elasticsearch outage, a `kill -9`, Logplex retries and a full spool.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::*;

const LINES_PER_FRAME: usize = 10;

fn temp_spool(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("drainpipe-spool-{}", unique_namespace(name)))
}

/// Frame `n`: ten app lines, tagged `labels.frame=n`, with its own Logplex frame id.
fn frame(n: usize, padding: usize) -> (String, Vec<u8>, String) {
    let lines: Vec<String> = (0..LINES_PER_FRAME)
        .map(|i| {
            format!(
                "<190>1 2025-03-14T09:26:53.{n:03}{i:03}+00:00 host app web.1 - frame {n} line {i} {}\n",
                "p".repeat(padding)
            )
        })
        .collect();
    (format!("/logs?app=shop&frame={n}"), logplex_body(&lines), format!("{n:032X}"))
}

/// Posts frame `n` once; `Some(status)` when drainpipe answered at all.
async fn post(client: &reqwest::Client, base: &str, n: usize, padding: usize) -> Option<u16> {
    let (path, body, id) = frame(n, padding);
    let r = client
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/logplex-1")
        .header("Logplex-Msg-Count", LINES_PER_FRAME.to_string())
        .header("Logplex-Frame-Id", id)
        .header("Logplex-Drain-Token", "d.delivery")
        .timeout(Duration::from_secs(5))
        .body(body)
        .send()
        .await;
    r.ok().map(|r| r.status().as_u16())
}

/// Every frame answered 2xx has exactly its ten documents; no other frame has any but ten.
fn assert_exactly_once(counts: &HashMap<String, u64>, accepted: &[usize]) {
    for n in accepted {
        assert_eq!(counts.get(&n.to_string()).copied(), Some(LINES_PER_FRAME as u64), "frame {n} answered 2xx");
    }
    for (frame, count) in counts {
        assert_eq!(*count, LINES_PER_FRAME as u64, "frame {frame} is whole or absent, never doubled");
    }
}

#[tokio::test]
async fn an_elasticsearch_outage_loses_and_doubles_nothing() {
    let es = FaultElasticsearch::start().await;
    let spool = temp_spool("outage");
    let ns = unique_namespace("outage");
    let dp = Drainpipe::start_against(
        &es.url,
        &ns,
        &["--spool-dir", spool.to_str().unwrap(), "--bulk-flush-interval", "200ms"],
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", dp.addr);
    let (mut accepted, mut unanswered) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut paused = false;
    let mut resumed = false;
    let mut n = 0;
    // Steady load for the whole test: Elasticsearch goes away after 5 s, for 30 s.
    while started.elapsed() < Duration::from_secs(45) || !resumed {
        if !paused && started.elapsed() > Duration::from_secs(5) {
            es.pause();
            paused = true;
        }
        if paused && !resumed && started.elapsed() > Duration::from_secs(35) {
            es.resume();
            resumed = true;
        }
        match post(&client, &base, n, 0).await {
            Some(200) => accepted.push(n),
            Some(other) => panic!("frame {n} answered {other}: with a spool, an outage costs no 2xx"),
            // A request that took longer than Logplex's 5 s on a loaded machine: Logplex would
            // send it again. Such a frame may or may not be stored, but never in part or twice.
            None => unanswered.push(n),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(unanswered.len() * 50 <= n, "frames not answered within 5 s: {unanswered:?} of {n}");
    let expected = (accepted.len() * LINES_PER_FRAME) as u64;
    let count = wait_for_count(&es.url, &dp.data_stream, expected, Duration::from_secs(120)).await;
    assert_eq!(count, expected, "every line answered 2xx is indexed");
    assert_exactly_once(&counts_by_label(&es.url, &dp.data_stream, "frame").await, &accepted);
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn kill_9_during_load_loses_and_doubles_nothing() {
    let spool = temp_spool("kill9");
    let ns = unique_namespace("kill9");
    let dp = Drainpipe::start_with(&ns, &["--spool-dir", spool.to_str().unwrap(), "--bulk-flush-interval", "200ms"]);
    let client = reqwest::Client::new();
    // Where senders post: switched to the restarted process, as a load balancer would.
    let base = std::sync::Arc::new(std::sync::RwLock::new(format!("http://{}", dp.addr)));
    // Eight senders at once, so that frames are mid-append and mid-index when the kill lands.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for sender in 0..8 {
        let (client, base, answered) = (client.clone(), base.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for k in 0..400 {
                let n = sender * 1000 + k;
                // Like Logplex: a frame without an answer is sent again (3 attempts in all).
                for _ in 0..3 {
                    let url = base.read().unwrap().clone();
                    match post(&client, &url, n, 200).await {
                        Some(200) => {
                            accepted.push(n);
                            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            break;
                        }
                        Some(_) => break,
                        None => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
            accepted
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 600 {
        assert!(Instant::now() < deadline, "600 frames were not answered within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_kill = answered.load(std::sync::atomic::Ordering::SeqCst);
    let dp = dp.kill9_and_restart();
    *base.write().unwrap() = format!("http://{}", dp.addr);
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }
    // The restarted process replayed the spool, and took traffic of its own.
    let opened = dp.wait_for_log("spool open", Duration::from_secs(10));
    let replayed: u64 = opened
        .split("replaying=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no replay count in {opened:?}"));
    assert!(replayed > 0, "the restarted process replayed unacknowledged frames: {opened}");
    assert!(accepted.len() > before_kill, "the restarted process answered frames too ({} of 3200)", accepted.len());
    assert!(accepted.len() >= 600, "({} of 3200 accepted)", accepted.len());
    let expected = (accepted.len() * LINES_PER_FRAME) as u64;
    let count = wait_for_count(&dp.es, &dp.data_stream, expected, Duration::from_secs(90)).await;
    assert!(count >= expected, "{count} indexed < {expected} answered 2xx");
    assert_exactly_once(&counts_by_label(&dp.es, &dp.data_stream, "frame").await, &accepted);
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn a_frame_sent_three_times_is_stored_once() {
    let spool = temp_spool("retry3");
    let dp = Drainpipe::start_with(&unique_namespace("retry3"), &["--spool-dir", spool.to_str().unwrap()]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", dp.addr);
    for _ in 0..3 {
        assert_eq!(post(&client, &base, 7, 0).await, Some(200));
    }
    assert_eq!(post(&client, &base, 8, 0).await, Some(200), "a marker frame, sent last");
    let count = wait_for_count(&dp.es, &dp.data_stream, 2 * LINES_PER_FRAME as u64, Duration::from_secs(30)).await;
    assert_eq!(count, 2 * LINES_PER_FRAME as u64);
    assert_exactly_once(&counts_by_label(&dp.es, &dp.data_stream, "frame").await, &[7, 8]);
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn a_full_spool_answers_503_loses_nothing_and_recovers() {
    let es = FaultElasticsearch::start().await;
    es.pause();
    let spool = temp_spool("full");
    let dp = Drainpipe::start_against(
        &es.url,
        &unique_namespace("full"),
        &["--spool-dir", spool.to_str().unwrap(), "--spool-max-bytes", "4MiB", "--max-body-size", "256KiB"],
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", dp.addr);
    let mut accepted = Vec::new();
    let mut n = 0;
    let full_answer = loop {
        match post(&client, &base, n, 9_000).await {
            Some(200) => accepted.push(n),
            other => break other,
        }
        n += 1;
        assert!(n < 1000, "the spool never filled");
    };
    assert_eq!(full_answer, Some(503), "a full spool answers 503 (Logplex retries)");
    let (path, body, id) = frame(n, 9_000);
    let again = client.post(format!("{base}{path}")).header("Logplex-Frame-Id", id).body(body).send().await.unwrap();
    assert_eq!(again.status(), 503);
    assert_eq!(again.headers()["retry-after"], "5", "Logplex is told to come back in 5 s");
    assert!(accepted.len() > 10);
    es.resume();
    let expected = (accepted.len() * LINES_PER_FRAME) as u64;
    let count = wait_for_count(&es.url, &dp.data_stream, expected, Duration::from_secs(120)).await;
    assert_eq!(count, expected, "everything accepted before the spool filled is indexed");
    // Delivered records free the spool: new frames are accepted again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if post(&client, &base, 5000, 9_000).await == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the spool never drained");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    accepted.push(5000);
    let expected = (accepted.len() * LINES_PER_FRAME) as u64;
    assert_eq!(wait_for_count(&es.url, &dp.data_stream, expected, Duration::from_secs(60)).await, expected);
    assert_exactly_once(&counts_by_label(&es.url, &dp.data_stream, "frame").await, &accepted);
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn documents_the_real_elasticsearch_refuses_land_in_the_dead_letter_stream() {
    let ns = unique_namespace("deadletter");
    let es = elasticsearch_url();
    let client = reqwest::Client::new();
    // A template of higher priority for this test's data stream only, mapping `message` as a
    // number: Elasticsearch itself refuses every document (a real mapping conflict).
    let conflict = serde_json::json!({
        "index_patterns": [format!("logs-heroku.app-{ns}")],
        "data_stream": {},
        "priority": 500,
        "template": {"mappings": {"properties": {"@timestamp": {"type": "date_nanos"}, "message": {"type": "long"}}}}
    });
    let put = client.put(format!("{es}/_index_template/conflict-{ns}")).json(&conflict).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());

    let dp = Drainpipe::start(&ns);
    let lines: Vec<String> =
        (0..3).map(|i| format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - refused {i}\n")).collect();
    let headers = LogplexHeaders { frame_id: Some("DEAD0001"), drain_token: Some("d.dead"), msg_count: 3 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);

    let dead_stream = format!("logs-heroku.deadletter-{ns}");
    let letters = wait_for_documents(&es, &dead_stream, 3).await;
    assert_eq!(letters.len(), 3);
    for letter in &letters {
        let l = &letter["_source"];
        assert!(lines.contains(&l["message"].as_str().unwrap().to_owned()), "the original line: {l}");
        // Elasticsearch's name for it, then OpenSearch's.
        let kind = l["error"]["type"].as_str().unwrap();
        assert!(["document_parsing_exception", "mapper_parsing_exception"].contains(&kind), "{kind}");
        assert_eq!(l["deadletter"]["index"], format!("logs-heroku.app-{ns}"));
        let rejected: serde_json::Value = serde_json::from_str(l["deadletter"]["document"].as_str().unwrap()).unwrap();
        assert_eq!(rejected["heroku"]["app"], "shop", "the rejected document itself");
    }
    assert_eq!(wait_for_count(&es, &dp.data_stream, 0, Duration::from_secs(1)).await, 0);
    let _ = client.delete(format!("{es}/_index_template/conflict-{ns}")).send().await;
}

/// On a disk that goes with the process (a Heroku dyno), SIGTERM must send what the spool
/// holds, not only what is in flight. Frames pile up unread while Elasticsearch is away; the
/// stop comes, Elasticsearch returns during the shutdown, and with `--spool-ephemeral` every
/// frame answered 2xx is indexed before the exit.
#[tokio::test]
async fn sigterm_with_an_ephemeral_spool_sends_everything_it_holds() {
    let es = FaultElasticsearch::start().await;
    let spool = temp_spool("ephemeral");
    let ns = unique_namespace("ephemeral");
    let mut dp = Drainpipe::start_against(
        &es.url,
        &ns,
        &[
            "--spool-dir",
            spool.to_str().unwrap(),
            "--spool-ephemeral",
            "--bulk-max-docs",
            "50",
            "--shutdown-timeout",
            "90s",
        ],
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", dp.addr);
    assert_eq!(post(&client, &base, 0, 0).await, Some(200));
    assert_eq!(wait_for_count(&es.url, &dp.data_stream, 10, Duration::from_secs(30)).await, 10);
    es.pause();
    // Far more than the pipeline reads ahead (chunks of 50 documents, a few waiting).
    let frames: Vec<usize> = (0..=200).collect();
    for &n in &frames[1..] {
        assert_eq!(post(&client, &base, n, 0).await, Some(200), "frame {n}: the spool takes it");
    }
    dp.signal("-TERM");
    es.resume();
    let status = dp.wait_exit(Duration::from_secs(100)).expect("exits within the shutdown timeout");
    assert!(status.success(), "{status:?}");
    let expected = (frames.len() * LINES_PER_FRAME) as u64;
    assert_eq!(wait_for_count(&es.url, &dp.data_stream, expected, Duration::from_secs(30)).await, expected);
    assert_exactly_once(&counts_by_label(&es.url, &dp.data_stream, "frame").await, &frames);
    let _ = std::fs::remove_dir_all(spool);
}

/// A write block on the stream's index (as an operator sets it, or as the disk's flood stage
/// does) is the cluster's state, not the documents' fault: what arrives meanwhile is held and
/// retried, the log says why nothing is indexed, none is dead-lettered, and all of it is
/// stored once the block is lifted. (Before: every such line went to the dead letters within
/// seconds.)
#[tokio::test]
async fn a_write_block_holds_documents_until_it_is_lifted_and_dead_letters_none() {
    let es = elasticsearch_url();
    let ns = unique_namespace("blocked");
    let dp = Drainpipe::start(&ns);
    let (stream, dead) = (format!("logs-heroku.app-{ns}"), format!("logs-heroku.deadletter-{ns}"));
    let client = reqwest::Client::new();
    let base = format!("http://{}", dp.addr);
    assert_eq!(post(&client, &base, 0, 0).await, Some(200));
    assert_eq!(wait_for_count(&es, &stream, 10, Duration::from_secs(30)).await, 10);
    let block = |on: bool| {
        let url = format!("{es}/{stream}/_settings");
        let request = client.put(url).json(&serde_json::json!({"index.blocks.write": on}));
        async move {
            let r = request.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    block(true).await;
    for n in 1..=2 {
        assert_eq!(post(&client, &base, n, 0).await, Some(200), "frame {n}: accepted while blocked");
    }
    let said = dp.wait_for_log("Elasticsearch blocks writes", Duration::from_secs(30));
    assert!(said.contains("index write"), "the log names the block: {said}");
    // Held, not dead-lettered, through tries after the first: 20 documents tried again twice.
    let metrics = dp.url("/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    while retries(&metrics).await < 40.0 {
        assert!(Instant::now() < deadline, "the blocked documents are tried again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(wait_for_count(&es, &dead, 0, Duration::from_secs(2)).await, 0, "nothing dead-lettered");
    assert_eq!(wait_for_count(&es, &stream, 10, Duration::from_secs(2)).await, 10);
    block(false).await;
    assert_eq!(wait_for_count(&es, &stream, 30, Duration::from_secs(60)).await, 30);
    assert_eq!(wait_for_count(&es, &dead, 0, Duration::from_secs(2)).await, 0, "nothing dead-lettered");
    assert_exactly_once(&counts_by_label(&es, &stream, "frame").await, &[0, 1, 2]);
}

/// `drainpipe_bulk_document_retries_total` as drainpipe's `/metrics` at `url` says.
async fn retries(url: &str) -> f64 {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("drainpipe_bulk_document_retries_total "));
    line.and_then(|l| l.split(' ').nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}
