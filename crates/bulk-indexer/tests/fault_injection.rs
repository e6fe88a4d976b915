//! The bulk indexer against a fault-injecting stand-in for Elasticsearch (a test-only HTTP
//! server that answers `_bulk` from a script): item-level 429s, 409s and mapping errors inside
//! a 200, a whole-request 429 storm, a dead-letter index that refuses; and plain stand-in
//! nodes that stop and start on demand, for the client's choice of node. A real Elasticsearch
//! cannot be made to answer like this on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drainpipe_bulk_indexer::{
    Chunk, Client, ClientConfig, DeadLetterConfig, IndexerConfig, IndexerReport, RetryPolicy,
};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One `_bulk` request as the stand-in saw it: (index, id) of every item.
type Seen = Vec<(String, String)>;

/// Decides each item's status from its index, id and how often that item was seen before;
/// `None` answers the whole request with 429, 413 answers the whole request with 413 (the
/// item is too large, even alone), and 401 or 403 the whole request with that (credentials).
type Script = dyn Fn(&str, &str, usize) -> Option<u16> + Send + Sync;

struct FaultInjectingElasticsearch {
    url: String,
    requests: Arc<Mutex<Vec<Seen>>>,
}

async fn start(script: Arc<Script>) -> FaultInjectingElasticsearch {
    start_limited(script, usize::MAX).await
}

/// Like `start`, answering 413 to any request of more than `max_items` items too.
async fn start_limited(script: Arc<Script>, max_items: usize) -> FaultInjectingElasticsearch {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen_counts: Arc<Mutex<HashMap<(String, String), usize>>> = Arc::default();
    let log = requests.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (script, log, seen_counts) = (script.clone(), log.clone(), seen_counts.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (script, log, seen_counts) = (script.clone(), log.clone(), seen_counts.clone());
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
                        let mut items = Vec::new();
                        let mut statuses = Vec::new();
                        let mut whole_429 = false;
                        for pair in lines.chunks(2) {
                            let action: Value = serde_json::from_slice(pair[0]).unwrap();
                            let index = action["create"]["_index"].as_str().unwrap().to_owned();
                            let id = action["create"]["_id"].as_str().unwrap().to_owned();
                            let nth = {
                                let mut c = seen_counts.lock().unwrap();
                                let n = c.entry((index.clone(), id.clone())).or_insert(0);
                                *n += 1;
                                *n - 1
                            };
                            match script(&index, &id, nth) {
                                Some(s) => statuses.push(s),
                                None => whole_429 = true,
                            }
                            items.push((index, id));
                        }
                        if let Some(&refusal) = statuses.iter().find(|s| matches!(s, 401 | 403)) {
                            log.lock().unwrap().push(items);
                            let mut r =
                                Response::new(Full::new(Bytes::from_static(b"{\"error\":\"security_exception\"}")));
                            *r.status_mut() = hyper::StatusCode::from_u16(refusal).unwrap();
                            return Ok::<_, Infallible>(r);
                        }
                        let too_large = items.len() > max_items || statuses.contains(&413);
                        log.lock().unwrap().push(items);
                        if too_large {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"")));
                            *r.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
                            return Ok::<_, Infallible>(r);
                        }
                        if whole_429 {
                            let mut r =
                                Response::new(Full::new(Bytes::from_static(b"{\"error\":\"too many requests\"}")));
                            *r.status_mut() = hyper::StatusCode::TOO_MANY_REQUESTS;
                            return Ok::<_, Infallible>(r);
                        }
                        let answer: Vec<Value> = statuses
                            .iter()
                            .map(|&s| match s {
                                200..=299 => json!({"create": {"status": s}}),
                                409 => json!({"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"}}}),
                                429 => json!({"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}}}),
                                400 => json!({"create": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "failed to parse field [app.id] of type [long]"}}}),
                                _ => json!({"create": {"status": s, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}}),
                            })
                            .collect();
                        let errors = statuses.iter().any(|&s| s >= 300);
                        let body = json!({"errors": errors, "items": answer}).to_string();
                        Ok(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    FaultInjectingElasticsearch { url, requests }
}

fn config(dead_letter_file: Option<std::path::PathBuf>) -> IndexerConfig {
    IndexerConfig {
        flush_interval: Duration::from_millis(20),
        retry: RetryPolicy {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_attempts: Some(4),
            retry_refusals: true,
            hold_blocked: true,
        },
        concurrency: 2,
        dead_letter: DeadLetterConfig { index: "dead".into(), file: dead_letter_file },
        ..IndexerConfig::default()
    }
}

/// Sends one chunk with these ids and waits until its callback says every item is done.
async fn index(es: &FaultInjectingElasticsearch, config: IndexerConfig, ids: &[&str]) -> IndexerReport {
    let (tx, rx) = mpsc::channel(4);
    let indexer = tokio::spawn(drainpipe_bulk_indexer::run(Client::new(&es.url).unwrap(), config, rx));
    let done = Arc::new(AtomicUsize::new(0));
    let mut chunk = Chunk::new();
    for id in ids {
        chunk.push_with(id, Bytes::from(format!("original {id}")), |b| {
            b.extend_from_slice(br#"{"message":"x"}"#);
            "logs"
        });
    }
    let d = done.clone();
    chunk.on_done(move || {
        d.fetch_add(1, Ordering::SeqCst);
    });
    tx.send(chunk).await.unwrap();
    drop(tx);
    let report = tokio::time::timeout(Duration::from_secs(10), indexer).await.expect("indexer finishes").unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1, "the chunk's callback ran exactly once");
    report
}

fn ids_of(seen: &Seen, index: &str) -> Vec<String> {
    let mut v: Vec<String> = seen.iter().filter(|(i, _)| i == index).map(|(_, id)| id.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn each_item_gets_what_its_answer_calls_for() {
    let es = start(Arc::new(|index: &str, id: &str, nth| {
        Some(match (index, id, nth) {
            ("dead", _, _) => 201,
            (_, "busy", 0) | (_, "busy", 1) => 429,
            (_, "down", 0) => 503,
            (_, "dup", _) => 409,
            (_, "bad", _) => 400,
            _ => 201,
        })
    }))
    .await;
    let retries_before = drainpipe_bulk_indexer::metrics::DOCUMENT_RETRIES.get();
    let report = index(&es, config(None), &["ok", "dup", "busy", "bad", "down"]).await;
    let expected = IndexerReport { indexed: 3, duplicates: 1, dead_lettered: 1, retried: 3 };
    assert_eq!(report, expected, "the run says what became of each document");
    // Retries have their own counter: the outcomes count each document once.
    assert!(drainpipe_bulk_indexer::metrics::DOCUMENT_RETRIES.get() >= retries_before + 3);
    let outcomes = drainpipe_bulk_indexer::metrics::DOCUMENTS.with_label_values(&["retried"]).get();
    assert_eq!(outcomes, 0, "retried is not an outcome");
    let requests = es.requests.lock().unwrap().clone();
    let logs: Vec<Vec<String>> = requests.iter().map(|r| ids_of(r, "logs")).filter(|v| !v.is_empty()).collect();
    assert_eq!(logs[0], ["bad", "busy", "down", "dup", "ok"], "first request: everything");
    assert_eq!(logs[1], ["busy", "down"], "second: only the 429 and the 503, alone");
    assert_eq!(logs[2], ["busy"], "third: the item still answered 429");
    assert_eq!(logs.len(), 3, "nothing else is sent again: not the 409, not the mapping error");
    let dead: Vec<String> = requests.iter().flat_map(|r| ids_of(r, "dead")).collect();
    assert_eq!(dead, ["bad"], "only the mapping error is dead-lettered");
}

#[tokio::test]
async fn an_item_refused_forever_is_dead_lettered_not_retried_forever() {
    let es = start(Arc::new(|index: &str, _: &str, _| Some(if index == "dead" { 201 } else { 429 }))).await;
    index(&es, config(None), &["stuck"]).await;
    let requests = es.requests.lock().unwrap().clone();
    let attempts = requests.iter().filter(|r| !ids_of(r, "logs").is_empty()).count();
    assert_eq!(attempts, 4, "max_item_attempts");
    assert_eq!(requests.iter().flat_map(|r| ids_of(r, "dead")).collect::<Vec<_>>(), ["stuck"]);
}

#[tokio::test]
async fn whole_request_429s_are_retried_until_they_pass() {
    let es = start(Arc::new(|_: &str, _: &str, nth| if nth < 5 { None } else { Some(201) })).await;
    index(&es, config(None), &["a", "b", "c"]).await;
    let requests = es.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 6, "five 429 answers, then success");
    assert!(requests.iter().all(|r| ids_of(r, "logs") == ["a", "b", "c"]), "the same items each time");
}

#[tokio::test]
async fn when_the_dead_letter_index_refuses_too_the_file_keeps_them() {
    let es = start(Arc::new(|_: &str, _: &str, _| Some(400))).await;
    let file = std::env::temp_dir().join(format!("drainpipe-dead-letters-{}.ndjson", std::process::id()));
    let _ = std::fs::remove_file(&file);
    index(&es, config(Some(file.clone())), &["bad1", "bad2"]).await;
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"], "original bad1");
    assert_eq!(lines[0]["error"]["type"], "document_parsing_exception");
    assert_eq!(lines[0]["deadletter"]["document"], r#"{"message":"x"}"#);
    assert_eq!(lines[0]["deadletter"]["index"], "logs");
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_413_splits_the_request_and_a_document_too_large_alone_is_dead_lettered() {
    let es = start_limited(
        Arc::new(|index: &str, id: &str, _| Some(if index != "dead" && id == "huge" { 413 } else { 201 })),
        2,
    )
    .await;
    index(&es, config(None), &["a", "b", "c", "d", "huge", "e"]).await;
    let requests = es.requests.lock().unwrap().clone();
    // Every other item was sent in a request small enough, without the huge one.
    let mut stored: Vec<String> = requests
        .iter()
        .filter(|r| r.len() <= 2 && !ids_of(r, "logs").contains(&"huge".to_owned()))
        .flat_map(|r| ids_of(r, "logs"))
        .collect();
    stored.sort();
    assert_eq!(stored, ["a", "b", "c", "d", "e"]);
    assert_eq!(ids_of(&requests[0], "logs").len(), 6, "first the whole batch");
    assert!(requests.iter().any(|r| ids_of(r, "logs") == ["huge"]), "the huge one alone");
    let dead: Vec<String> = requests.iter().flat_map(|r| ids_of(r, "dead")).collect();
    assert_eq!(dead, ["huge"], "dead-lettered once alone it is still too large");
}

#[tokio::test]
async fn a_partly_filled_batch_goes_soon_while_a_sender_is_idle_not_after_the_flush_interval() {
    let es = start(Arc::new(|_: &str, _: &str, _| Some(201))).await;
    let config = IndexerConfig { flush_interval: Duration::from_secs(60), ..config(None) };
    let (tx, rx) = mpsc::channel(4);
    let indexer = tokio::spawn(drainpipe_bulk_indexer::run(Client::new(&es.url).unwrap(), config, rx));
    let mut chunk = Chunk::new();
    chunk.push_with("a", Bytes::from_static(b"original a"), |b| {
        b.extend_from_slice(br#"{"message":"x"}"#);
        "logs"
    });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    chunk.on_done(move || {
        let _ = done_tx.send(());
    });
    // The channel stays open: only the idle sender can make this batch go before a minute.
    tx.send(chunk).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), done_rx).await.expect("stored within seconds").unwrap();
    drop(tx);
    indexer.await.unwrap();
}

/// Elasticsearch refusing the credentials (as after a password rotation) is retried until it
/// takes them, loses and dead-letters nothing, and is visible while it lasts: the client's
/// refusal (for /readyz) and the counter.
#[tokio::test]
async fn refused_credentials_are_retried_reported_and_cleared_when_accepted() {
    let accept = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let open = accept.clone();
    let es =
        start(Arc::new(move |_: &str, _: &str, _| Some(if open.load(Ordering::SeqCst) { 201 } else { 401 }))).await;
    let refused = |status| drainpipe_bulk_indexer::metrics::CREDENTIALS_REFUSED.with_label_values(&[status]).get();
    let before = refused("401");
    let client = Client::new(&es.url).unwrap();
    let (tx, rx) = mpsc::channel(4);
    let indexer = tokio::spawn(drainpipe_bulk_indexer::run(client.clone(), config(None), rx));
    let mut chunk = Chunk::new();
    for id in ["a", "b"] {
        chunk.push_with(id, Bytes::from(format!("original {id}")), |b| {
            b.extend_from_slice(br#"{"message":"x"}"#);
            "logs"
        });
    }
    tx.send(chunk).await.unwrap();
    drop(tx);
    // More refusals than the retry policy's attempts: a refusal is never given up on. The
    // stand-in records a request before the client has read its answer and counted it, so the
    // wait is for both (waiting for the requests alone raced the counter).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while es.requests.lock().unwrap().len() < 6 || refused("401") < before + 6 {
        assert!(tokio::time::Instant::now() < deadline, "6 refusals, counted, within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.refusal().map(|r| r.status), Some(401));
    accept.store(true, Ordering::SeqCst);
    let report = tokio::time::timeout(Duration::from_secs(10), indexer).await.expect("indexer finishes").unwrap();
    assert_eq!((report.indexed, report.dead_lettered), (2, 0));
    assert_eq!(client.refusal(), None, "a 200 clears it");
}

/// A stand-in that answers every request `200 {}` on a connection of its own (no keep-alive,
/// so stopping it refuses the next request at once), counting them. Aborting the returned
/// task stops it.
fn plain_node(listener: TcpListener, hits: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let hits = hits.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}")))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A port nothing listens on (for now).
fn closed_port() -> (u16, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    (port, format!("http://127.0.0.1:{port}"))
}

/// With one node of three refusing connections, every request is answered, and the other two
/// share the requests evenly (round robin over the nodes in use, not over all of them).
#[tokio::test]
async fn a_node_set_aside_leaves_its_share_evenly_to_the_others() {
    let (a_hits, c_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, a_url) = listener().await;
    let (c, c_url) = listener().await;
    let _a = plain_node(a, a_hits.clone());
    let _c = plain_node(c, c_hits.clone());
    let (_, b_url) = closed_port();
    let config = ClientConfig { urls: vec![a_url, b_url, c_url], ..ClientConfig::default() };
    let client = Client::with_config(&config).unwrap();
    for _ in 0..60 {
        client.health().await.expect("a node that answers takes every request");
    }
    let (a, c) = (a_hits.load(Ordering::SeqCst), c_hits.load(Ordering::SeqCst));
    assert_eq!(a + c, 60);
    assert!(a.abs_diff(c) <= 2, "uneven: {a} and {c}");
}

/// When the nodes in use refuse connections, the nodes set aside are tried before the request
/// fails: here the node set aside has just come back and its probe is not due yet.
#[tokio::test]
async fn nodes_set_aside_are_tried_when_the_others_fail() {
    let a_hits = Arc::new(AtomicUsize::new(0));
    let (a, a_url) = listener().await;
    let a_server = plain_node(a, a_hits.clone());
    let (b_port, b_url) = closed_port();
    let config = ClientConfig { urls: vec![a_url, b_url], ..ClientConfig::default() };
    let client = Client::with_config(&config).unwrap();
    // The second request meets the closed port first and sets it aside.
    for _ in 0..2 {
        client.health().await.unwrap();
    }
    assert_eq!(a_hits.load(Ordering::SeqCst), 2);
    // Now the node set aside answers, and the one in use refuses.
    let b_hits = Arc::new(AtomicUsize::new(0));
    let _b = plain_node(TcpListener::bind(("127.0.0.1", b_port)).await.unwrap(), b_hits.clone());
    a_server.abort();
    let _ = a_server.await;
    client.health().await.expect("the node set aside takes the request");
    assert_eq!(b_hits.load(Ordering::SeqCst), 1);
}
