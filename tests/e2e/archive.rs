//! The raw archive against the real Elasticsearch: a `kill -9` mid-hour doubles nothing in it,
//! and replaying it where nothing is stored yet gives the live documents again, ids included;
//! into the streams that have them, nothing new.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::support::*;

const TOKEN: &str = "d.5a1e3c9b-archive";
const LINES: usize = 5;

/// Frame `n` of a sender: sample lines of every kind (the same text in each frame), made
/// distinct by the frame's Logplex frame id and the `frame=` label; every fourth frame comes
/// without a frame id, as a Private Space drain sends it (its id is then its body's).
fn frame(n: usize, samples: &[String]) -> (String, Vec<u8>, Option<String>) {
    let lines: Vec<String> =
        (0..LINES).map(|i| samples[(n * LINES + i) % samples.len()].replace("\n", &format!(" n={n}\n"))).collect();
    let id = (!n.is_multiple_of(4)).then(|| format!("{n:032X}"));
    (format!("/logs?app=shop&frame={n}&env=prod"), logplex_body(&lines), id)
}

async fn post(client: &reqwest::Client, base: &str, n: usize, samples: &[String]) -> Option<u16> {
    let (path, body, id) = frame(n, samples);
    let mut request = client
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/logplex-1")
        .header("Logplex-Msg-Count", LINES.to_string())
        .header("Logplex-Drain-Token", TOKEN)
        .timeout(Duration::from_secs(5))
        .body(body);
    if let Some(id) = id {
        request = request.header("Logplex-Frame-Id", id);
    }
    request.send().await.ok().map(|r| r.status().as_u16())
}

/// Every frame in the archive under `dir`, keyed by what places it (frame id or stream
/// position, and labels): (how many times it is there, its lines).
fn archived_frames(dir: &std::path::Path) -> HashMap<String, (usize, usize)> {
    let mut frames = HashMap::new();
    for file in drainpipe_archive::files_under(dir).unwrap() {
        let mut read = drainpipe_archive::FileFrames::open(&file).unwrap();
        while let Some(f) = read.next_frame().unwrap() {
            let key = format!("{:?} {:?} {:?} {:?}", f.frame_id, f.position, f.labels, f.body.len());
            let entry = frames.entry(key).or_insert((0, f.messages.len()));
            entry.0 += 1;
        }
    }
    frames
}

/// Every document of `index`: `_id` -> `_source`.
async fn documents(es: &str, index: &str) -> BTreeMap<String, Value> {
    let hits = search(es, index, serde_json::json!({"match_all": {}})).await;
    hits.into_iter().map(|h| (h["_id"].as_str().unwrap().to_owned(), h["_source"].clone())).collect()
}

/// Senders posting frames at `base` (switched by the caller after a restart), one attempt
/// each; returns the frames answered 2xx and how many were answered so far.
fn senders(base: Arc<RwLock<String>>, answered: Arc<AtomicUsize>) -> Vec<tokio::task::JoinHandle<Vec<usize>>> {
    let samples: Arc<Vec<String>> = Arc::new(
        ["router.log", "app.log", "platform.log", "metrics.log"].iter().flat_map(|f| sample_lines(f)).collect(),
    );
    (0..4)
        .map(|sender| {
            let (base, answered, samples, client) =
                (base.clone(), answered.clone(), samples.clone(), reqwest::Client::new());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for k in 0..120 {
                    let n = sender * 1000 + k;
                    let url = base.read().unwrap().clone();
                    if post(&client, &url, n, &samples).await == Some(200) {
                        accepted.push(n);
                        answered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                accepted
            })
        })
        .collect()
}

/// Syslog lines over TCP, their app found by drain token (the archive's `_unknown` folder).
async fn send_syslog(dp: &Drainpipe, count: usize) {
    let mut stream = Vec::new();
    for i in 0..count {
        let line = format!("<190>1 2026-12-06T10:00:00.{i:06}+00:00 {TOKEN} app worker.1 - - syslog line {i}\n");
        stream.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
    }
    let mut tcp = tokio::net::TcpStream::connect(dp.syslog.unwrap()).await.unwrap();
    tcp.write_all(&stream).await.unwrap();
    tcp.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_archive_survives_kill_9_and_replays_into_the_same_documents_and_ids() {
    let ns = unique_namespace("archive");
    let base_dir = std::env::temp_dir().join(format!("drainpipe-{ns}"));
    let (spool, archive) = (base_dir.join("spool"), base_dir.join("archive"));
    let token = format!("{TOKEN}=shop");
    let args = [
        "--spool-dir",
        spool.to_str().unwrap(),
        "--archive-dir",
        archive.to_str().unwrap(),
        "--drain-token",
        &token,
        "--syslog-listen",
        "127.0.0.1:0",
        "--bulk-flush-interval",
        "200ms",
    ];
    let dp = Drainpipe::start_with(&ns, &args);
    send_syslog(&dp, 300).await;
    wait_for_count(&dp.es, &dp.data_stream, 300, Duration::from_secs(30)).await;
    let base = Arc::new(RwLock::new(format!("http://{}", dp.addr)));
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks = senders(base.clone(), answered.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "150 frames were not answered within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Mid-hour, mid-batch: the archive's open files and its state are as the kill left them.
    let dp = dp.kill9_and_restart();
    *base.write().unwrap() = format!("http://{}", dp.addr);
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }
    send_syslog(&dp, 200).await;
    dp.wait_for_log("archive open", Duration::from_secs(10));

    // Elasticsearch has every line answered 2xx (and, by id, each once); the archive has every
    // frame that reached the spool exactly once, the same lines as Elasticsearch.
    let es = dp.es.clone();
    let expected = (accepted.len() * LINES + 500) as u64;
    let count = wait_for_count(&es, &dp.data_stream, expected, Duration::from_secs(90)).await;
    assert!(count >= expected, "{count} indexed < {expected} answered 2xx");
    let started = Instant::now();
    let mut frames = archived_frames(&archive);
    while frames.values().map(|(_, lines)| *lines as u64).sum::<u64>() < count {
        assert!(started.elapsed() < Duration::from_secs(30), "the archive did not catch up with Elasticsearch");
        tokio::time::sleep(Duration::from_millis(200)).await;
        frames = archived_frames(&archive);
    }
    let doubled: Vec<_> = frames.iter().filter(|(_, (times, _))| *times > 1).map(|(k, _)| k).collect();
    assert!(
        doubled.is_empty(),
        "{} frames twice in the archive after kill -9, such as {:?}",
        doubled.len(),
        doubled.first()
    );
    assert_eq!(
        frames.values().map(|(_, lines)| *lines as u64).sum::<u64>(),
        count,
        "the archive's lines are Elasticsearch's"
    );
    for n in &accepted {
        assert!(
            frames.keys().any(|k| k.contains(&format!("\"frame\", \"{n}\""))),
            "frame {n} answered 2xx is archived"
        );
    }
    let metrics = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("drainpipe_archive_lines_total") && metrics.contains("drainpipe_archive_lag_seconds 0"),
        "{metrics}"
    );
    let live = documents(&es, &dp.data_stream).await;
    assert_eq!(live.len() as u64, count);
    assert_eq!(dp.terminate().code(), Some(0));

    // Into an empty cluster: a namespace of its own (the test Elasticsearch cannot delete data
    // streams), so the same documents but for `data_stream.namespace`, ids included.
    let fresh = unique_namespace("archive_fresh");
    let into = |ns: &str| {
        let args = [
            "replay",
            "--elasticsearch-url",
            &es,
            "--namespace",
            ns,
            "--drain-token",
            &token,
            archive.to_str().unwrap(),
        ];
        String::from_utf8(run_drainpipe(&args).stdout).unwrap()
    };
    let first = into(&fresh);
    assert!(first.contains(&format!("{count} indexed, 0 already there")), "{first}");
    wait_for_count(&es, &streams_of(&fresh), count, Duration::from_secs(30)).await;
    let replayed = documents(&es, &streams_of(&fresh)).await;
    assert_eq!(replayed.len(), live.len());
    for (id, source) in &live {
        let mut again = replayed.get(id).unwrap_or_else(|| panic!("document {id} is not in the replay")).clone();
        assert_eq!(again["data_stream"]["namespace"], fresh.as_str());
        again["data_stream"]["namespace"] = Value::from(ns.as_str());
        assert_eq!(&again, source, "document {id} as it was live");
    }
    // Into the cluster that has them: nothing new.
    let second = into(&ns);
    assert!(second.contains(&format!("0 indexed, {count} already there")), "{second}");
    let _ = std::fs::remove_dir_all(base_dir);
}
