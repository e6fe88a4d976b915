//! Tried as an attacker and as a new operator would: bodies built to cost memory, repeated lines
//! that must not be merged, labels Elasticsearch would refuse, signals, and shutdowns that must
//! finish. Each test failed on the code before the hardening issue.

use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// Nothing listens here: Elasticsearch down for the whole test.
const NO_ELASTICSEARCH: &str = "http://127.0.0.1:9";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The peak memory drainpipe may reach with default limits, whatever it is sent (see
/// docs/operations.md, "Memory"): the 64 MiB receive budget, the pipeline's chunks (4 queued
/// and one being built, ~1 MiB each), bulk batches (2 MiB being built, one waiting, 2 in
/// flight), the runtime and allocator slack.
const MEMORY_BOUND: u64 = 256 << 20;

fn base36(mut n: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// Posts the Logplex `body` `n` times at once; the status codes.
async fn burst(url: &str, body: Vec<u8>, gzipped: bool, n: usize) -> Vec<u16> {
    burst_as(url, "application/logplex-1", body, gzipped, n).await
}

/// The OTLP token of the memory test.
const OTLP_TOKEN: &str = "hardening-otlp-token";

/// Posts `body` as `content_type` `n` times at once (OTLP with [`OTLP_TOKEN`]); the status codes.
async fn burst_as(url: &str, content_type: &str, body: Vec<u8>, gzipped: bool, n: usize) -> Vec<u16> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut req = client.post(url).header("Content-Type", content_type).body(body.clone());
        if content_type != "application/logplex-1" {
            req = req.header("Authorization", format!("Bearer {OTLP_TOKEN}"));
        }
        if gzipped {
            req = req.header("Content-Encoding", "gzip");
        }
        tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// An OTLP logs export of `records` empty log records, as protobuf.
fn otlp_empty_records(records: usize) -> Vec<u8> {
    use drainpipe_otlp::proto::{ExportLogsServiceRequest, LogRecord, ResourceLogs, ScopeLogs};
    let scope = ScopeLogs { log_records: vec![LogRecord::default(); records], ..ScopeLogs::default() };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs { scope_logs: vec![scope], ..ResourceLogs::default() }],
    };
    prost::Message::encode_to_vec(&request)
}

#[tokio::test]
async fn memory_stays_bounded_whatever_the_bodies() {
    // 8,179 bytes of gzip inflating to 4 M empty messages.
    let empties = gzip(&b"0 ".repeat(4 * 1024 * 1024 - 10));
    // 8 MiB of the smallest real messages: 2.8 M of them.
    let tiny = b"1 x".repeat((8 << 20) / 3);
    // 200 messages under 2,800 labels (empty ones are no longer built at all): as many as
    // fit a request head (a longer one is answered 431, drainpipe_ingest::http::CONNECTION_BUFFER).
    let labels: Vec<String> = (0..2_800u32).map(|i| format!("{}=", base36(i))).collect();
    let labelled = format!("/logs?app=shop&{}", labels.join("&"));
    const LOGPLEX: &str = "application/logplex-1";
    // 100,000 empty OTLP JSON records in 300 KB: each costs a few hundred bytes decoded (an
    // export whose decoded size passes the whole budget is refused with 413).
    let empty_json =
        format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#, vec!["{}"; 100_000].join(","));
    let cases: [(&str, &str, &str, Vec<u8>, bool); 5] = [
        ("gzip of empty messages", "/logs?app=shop", LOGPLEX, empties, true),
        ("8 MiB of tiny messages", "/logs?app=shop", LOGPLEX, tiny, false),
        ("2,800 labels", labelled.as_str(), LOGPLEX, b"1 x".repeat(200), false),
        // OTLP: many records, each the smallest there is.
        (
            "OTLP gzip protobuf of empty records",
            "/v1/logs",
            "application/x-protobuf",
            gzip(&otlp_empty_records(50_000)),
            true,
        ),
        ("OTLP JSON of empty records", "/v1/logs", "application/json", empty_json.into_bytes(), false),
    ];
    for (name, path, content_type, body, gzipped) in cases {
        // Elasticsearch down: nothing leaves, so everything accepted is held. The worst case.
        // A drainpipe of its own per body, so the peak is this body's.
        let dp = Drainpipe::start_against(
            NO_ELASTICSEARCH,
            &unique_namespace("memory"),
            &["--shutdown-timeout", "1s", "--otlp-token", OTLP_TOKEN],
        );
        let url = dp.url(path);
        // Alone, the body is taken: a drainpipe refusing everything would pass the bound.
        let single = burst_as(&url, content_type, body.clone(), gzipped, 1).await;
        assert_eq!(single, [200], "{name}: the first request is taken");
        let many = burst_as(&url, content_type, body, gzipped, 16).await;
        for status in &many {
            assert!([200, 503].contains(status), "{name}: answered {status}");
        }
        let peak = peak_rss(dp.pid());
        eprintln!("memory: after {name}: single {single:?}, burst {many:?}, VmHWM {} MiB", peak >> 20);
        assert!(peak < MEMORY_BOUND, "{name}: VmHWM {} MiB over the {} MiB bound", peak >> 20, MEMORY_BOUND >> 20);
        let metrics = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
        if name == "gzip of empty messages" {
            assert!(metrics.contains("drainpipe_ingest_empty_messages_total "), "empty messages are counted");
            assert!(!metrics.contains("drainpipe_ingest_empty_messages_total 0\n"), "empty messages are counted");
        }
        if name == "2,800 labels" {
            assert!(metrics.contains("drainpipe_ingest_label_changes_total{change=\"dropped\"} "));
        }
    }
}

#[tokio::test]
async fn identical_syslog_lines_are_distinct_events() {
    let dp = Drainpipe::start_with(&unique_namespace("same3164"), &["--syslog-listen", "127.0.0.1:0"]);
    let mut c = std::net::TcpStream::connect(dp.syslog.unwrap()).unwrap();
    let line = b"<13>Mar 14 09:26:53 relay nginx[1]: GET /health 200\n";
    for _ in 0..3 {
        c.write_all(line).unwrap();
    }
    drop(c);
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, 3, Duration::from_secs(30)).await, 3);
}

#[tokio::test]
async fn frames_without_a_frame_id_from_two_apps_are_both_stored_and_a_retry_is_not() {
    let dp = Drainpipe::start(&unique_namespace("noframeid"));
    let lines = sample_lines("router.log");
    let body = logplex_body(&lines);
    // Private Spaces: no Logplex-Frame-Id, no drain token.
    let headers = LogplexHeaders { frame_id: None, drain_token: None, msg_count: lines.len() };
    for app in ["shop", "blog", "shop"] {
        let r = post_frame(&dp.url(&format!("/logs?app={app}")), body.clone(), &headers).await;
        assert_eq!(r.status(), 200);
    }
    let n = lines.len() as u64;
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, 2 * n, Duration::from_secs(30)).await, 2 * n);
    // The marker: one more distinct frame, so the retry had its chance to land.
    let marker = LogplexHeaders { frame_id: None, drain_token: None, msg_count: 1 };
    post_frame(&dp.url("/logs?app=marker"), logplex_body(&lines[..1]), &marker).await;
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, 2 * n + 1, Duration::from_secs(30)).await, 2 * n + 1);
    for app in ["shop", "blog"] {
        let docs = search(&dp.es, &dp.data_stream, json!({"term": {"heroku.app": app}})).await;
        assert_eq!(docs.len() as u64, n, "{app}: every line once");
    }
}

#[tokio::test]
async fn replay_keeps_identical_lines_and_stores_nothing_new_the_second_time() {
    let es = elasticsearch_url();
    let ns = unique_namespace("replaysame");
    let file = std::env::temp_dir().join(format!("{ns}.log"));
    let line = "2025-03-14T09:26:53.589793+00:00 app[web.1]: retrying job 42\n";
    std::fs::write(&file, format!("{line}{line}")).unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drainpipe"))
            .args(["replay", "--elasticsearch-url", &es, "--namespace", &ns, file.to_str().unwrap()])
            .env("DRAINPIPE_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run().contains("2 indexed"));
    assert!(run().contains("0 indexed, 2 already there"));
    let index = streams_of(&ns);
    assert_eq!(wait_for_count(&es, &index, 2, Duration::from_secs(30)).await, 2);
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn no_label_makes_elasticsearch_refuse_a_document() {
    let dp = Drainpipe::start(&unique_namespace("labels"));
    let line = ["<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - labelled\n"];
    let headers = LogplexHeaders { frame_id: None, drain_token: None, msg_count: 1 };
    let mut sent = 0;
    // Names Elasticsearch refuses as field names, or that clash with each other.
    for query in ["a.b=1", "labels.a.b=1", ".x=1", "a..b=1", "pc=1&pc.child=2", "pc.child=3"] {
        let r = post_frame(&dp.url(&format!("/logs?app=shop&{query}")), logplex_body(&line), &headers).await;
        assert_eq!(r.status(), 200);
        sent += 1;
    }
    // 1,100 distinct names, 32 per drain URL: past the 1,000-field limit of an index.
    for batch in 0..35 {
        let names: Vec<String> = (0..32).map(|i| format!("name{}=v", batch * 32 + i)).collect();
        let url = dp.url(&format!("/logs?app=shop&{}", names.join("&")));
        assert_eq!(post_frame(&url, logplex_body(&line), &headers).await.status(), 200);
        sent += 1;
    }
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, sent, Duration::from_secs(60)).await, sent);
    let dead = format!("logs-heroku.deadletter-{}", dp.namespace);
    let client = reqwest::Client::new();
    let _ = client.post(format!("{}/{dead}/_refresh", dp.es)).send().await;
    let r = client.get(format!("{}/{dead}/_count", dp.es)).send().await.unwrap();
    let dead_count =
        if r.status() == 404 { 0 } else { r.json::<serde_json::Value>().await.unwrap()["count"].as_u64().unwrap() };
    assert_eq!(dead_count, 0, "no document was refused");
    let docs = search(&dp.es, &dp.data_stream, json!({"term": {"labels.a_b": "1"}})).await;
    assert_eq!(docs.len(), 1);
}

#[tokio::test]
async fn sighup_never_stops_serve() {
    let mut dp = Drainpipe::start(&unique_namespace("hup"));
    dp.signal("-HUP");
    // Nothing changed: the configuration is read again and applied as it was.
    dp.wait_for_log("SIGHUP: configuration reloaded", Duration::from_secs(10));
    assert_eq!(dp.wait_exit(Duration::from_millis(500)), None, "still running after SIGHUP");
    assert_eq!(reqwest::get(dp.url("/healthz")).await.unwrap().status(), 200);
}

/// A client that trusts only `ca_pem` and connects to `url`'s host as `localhost`.
async fn https_status(ca_pem: &str, url: &str) -> Result<u16, String> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    client.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_the_old_one_when_the_new_file_is_bad() {
    let dir = std::env::temp_dir().join(unique_namespace("hup-tls"));
    let first = dir.join("first");
    let (cert, key) = self_signed_certificate(&first);
    let first_pem = std::fs::read_to_string(&cert).unwrap();
    let mut dp = Drainpipe::start_with(&unique_namespace("huptls"), &["--tls-cert", &cert, "--tls-key", &key]);
    let url = format!("https://localhost:{}/healthz", dp.addr.port());
    assert_eq!(https_status(&first_pem, &url).await, Ok(200));

    // A new certificate in place of the old files, then SIGHUP.
    let (new_cert, new_key) = self_signed_certificate(&dir.join("second"));
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let second_pem = std::fs::read_to_string(&cert).unwrap();
    dp.signal("-HUP");
    let reloaded = dp.wait_for_log("SIGHUP: configuration reloaded", Duration::from_secs(10));
    assert!(reloaded.contains("certificate=true"), "{reloaded}");
    assert_eq!(https_status(&second_pem, &url).await, Ok(200), "the new certificate is served");
    assert!(https_status(&first_pem, &url).await.is_err(), "the old one is not");

    // A broken file: the reload is refused whole, and the certificate in use stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    dp.signal("-HUP");
    dp.wait_for_log("configuration not reloaded", Duration::from_secs(10));
    assert_eq!(https_status(&second_pem, &url).await, Ok(200));
    assert_eq!(dp.wait_exit(Duration::from_millis(200)), None);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sigterm_flushes_frames_still_queued_in_memory() {
    // Documents wait in the indexer for its 10 s flush interval when SIGTERM arrives.
    let mut dp = Drainpipe::start_with(&unique_namespace("termflush"), &["--bulk-flush-interval", "10s"]);
    let lines = sample_lines("app.log");
    for k in 0..20 {
        let id = format!("{k:032X}");
        let headers = LogplexHeaders { frame_id: Some(&id), drain_token: Some("d.term"), msg_count: lines.len() };
        assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    }
    let started = Instant::now();
    dp.signal("-TERM");
    let status = dp.wait_exit(Duration::from_secs(8)).expect("exits well before the flush interval");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    let n = 20 * lines.len() as u64;
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, n, Duration::from_secs(30)).await, n);
}

#[tokio::test]
async fn sigterm_without_a_spool_says_how_many_frames_it_could_not_deliver() {
    let mut dp =
        Drainpipe::start_against(NO_ELASTICSEARCH, &unique_namespace("termlost"), &["--shutdown-timeout", "2s"]);
    let lines = sample_lines("router.log");
    for k in 0..7 {
        let id = format!("{k:032X}");
        let headers = LogplexHeaders { frame_id: Some(&id), drain_token: Some("d.lost"), msg_count: lines.len() };
        assert_eq!(post_frame(&dp.url("/logs"), logplex_body(&lines), &headers).await.status(), 200);
    }
    let metrics = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("drainpipe_memory_backlog_frames 7\n"), "{metrics}");
    dp.signal("-TERM");
    let status = dp.wait_exit(Duration::from_secs(10)).expect("exits within the shutdown timeout");
    assert!(!status.success(), "losing accepted frames is a failure exit");
    let said = dp.wait_for_log("held in memory are lost", Duration::from_secs(2));
    assert!(said.contains("7 accepted frame(s) (35 messages)"), "{said}");
}

/// A container stopped before Elasticsearch ever answered (a wrong URL, a cluster not up yet),
/// holding nothing: it exits at once and cleanly, with a spool and without one. It used to wait
/// out the whole shutdown timeout for the index templates, then fail with "0 frames lost".
#[tokio::test]
async fn sigterm_before_elasticsearch_ever_answered_exits_at_once_when_nothing_is_held() {
    let spool = std::env::temp_dir().join(unique_namespace("termnever"));
    for extra in [&[][..], &["--spool-dir", spool.to_str().unwrap()]] {
        let args = [&["--shutdown-timeout", "20s"][..], extra].concat();
        let mut dp = Drainpipe::start_against(NO_ELASTICSEARCH, &unique_namespace("termnever"), &args);
        dp.wait_for_log("cannot install the index template yet", Duration::from_secs(10));
        let started = Instant::now();
        dp.signal("-TERM");
        let status = dp.wait_exit(Duration::from_secs(10)).expect("exits well before the shutdown timeout");
        assert!(status.success(), "{extra:?}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{extra:?}: took {:?}", started.elapsed());
    }
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn sigterm_finishes_within_the_timeout_with_a_full_spool_and_a_blocked_syslog_sender() {
    let spool = std::env::temp_dir().join(unique_namespace("termfull"));
    let mut dp = Drainpipe::start_against(
        NO_ELASTICSEARCH,
        &unique_namespace("termfull"),
        &[
            "--spool-dir",
            spool.to_str().unwrap(),
            "--spool-max-bytes",
            "4MiB",
            "--max-body-size",
            "256KiB",
            "--max-message-size",
            "16KiB",
            "--syslog-listen",
            "127.0.0.1:0",
            "--shutdown-timeout",
            "3s",
        ],
    );
    let addr = dp.syslog.unwrap();
    // A sender that writes until TCP pushes back (the spool is full, so drainpipe stops reading).
    let writer = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let line = format!("<13>Mar 14 09:26:53 relay app[1]: {}\n", "y".repeat(1000));
        let mut written = 0usize;
        while c.write_all(line.as_bytes()).is_ok() {
            written += line.len();
        }
        written
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = client.get(dp.url("/readyz")).send().await.unwrap().text().await.unwrap();
        if body.contains("spool") && body.contains("full") {
            break;
        }
        assert!(Instant::now() < deadline, "the spool never filled: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    dp.signal("-TERM");
    let exited = dp.wait_exit(Duration::from_secs(10));
    assert!(exited.is_some(), "still running 10 s after SIGTERM with --shutdown-timeout 3s");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    let _ = writer.join();
    let _ = std::fs::remove_dir_all(spool);
}

#[tokio::test]
async fn the_real_retry_after_values() {
    // The memory queue full (Elasticsearch down): 1 s.
    let dp = Drainpipe::start_against(NO_ELASTICSEARCH, &unique_namespace("retryafter"), &[]);
    let client = reqwest::Client::new();
    let line = ["<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - queued\n"];
    let mut answer = None;
    for k in 0..3000 {
        let r = client
            .post(dp.url("/logs"))
            .header("Logplex-Frame-Id", format!("{k:032X}"))
            .body(logplex_body(&line))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            answer = Some(r);
            break;
        }
    }
    let r = answer.expect("the queue fills");
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().await.unwrap().contains("pipeline full"));
}

#[tokio::test]
async fn healthz_stays_fast_while_gzip_bodies_inflate() {
    let dp = Drainpipe::start(&unique_namespace("inflate"));
    // 8 MiB of empty gzip members: about a second of inflating each, four at once.
    let member = gzip(b"");
    let body = member.repeat((8 << 20) / member.len() - 1);
    let url = dp.url("/logs");
    let inflating = tokio::spawn(async move { burst(&url, body, true, 4).await });
    let client = reqwest::Client::new();
    let (mut slowest, mut probes) = (Duration::ZERO, 0);
    while !inflating.is_finished() {
        let started = Instant::now();
        assert_eq!(client.get(dp.url("/healthz")).send().await.unwrap().status(), 200);
        slowest = slowest.max(started.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses = inflating.await.unwrap();
    assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{statuses:?}");
    assert!(statuses.contains(&200), "no body was inflated: {statuses:?}");
    eprintln!("healthz: slowest of {probes} answers {slowest:?} while {statuses:?} inflated");
    // A burst over before the probes began proves nothing: several must have run during it.
    assert!(probes >= 5, "only {probes} /healthz probes ran while the bodies inflated");
    // Inflating on the async workers, this took 1.8 s.
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?}");
}

/// `--manage-templates false` (drainpipe may only write): serve never tries to install the
/// index templates.
#[tokio::test]
async fn with_manage_templates_false_serve_leaves_the_templates_alone() {
    let dp =
        Drainpipe::start_against(NO_ELASTICSEARCH, &unique_namespace("notemplates"), &["--manage-templates", "false"]);
    dp.wait_for_log("left to whoever manages them", Duration::from_secs(10));
    // The indexer sends bulk requests only once past the templates: when one has failed (no
    // Elasticsearch here), the templates would have been tried.
    let lines = ["<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - one line\n"];
    let headers = LogplexHeaders { frame_id: Some("NOTEMPLATES1"), drain_token: None, msg_count: 1 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    dp.wait_for_log("bulk request failed; retrying", Duration::from_secs(30));
    assert_eq!(dp.logged("cannot install the index template"), None, "it tried the templates");
}
