//! One drain batch, posted with Logplex's headers, becomes one document per message with the
//! fields every document has.

use drainpipe_transform::{FrameKey, FrameSeed};
use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "d.0b7a3c2e-5d4f-4e6a-9b8c-7d6e5f4a3b2c";
const FRAME_ID: &str = "8F3A0C1B2D4E5F60718293A4B5C6D7E8";

/// One message of the batch and what its document must hold.
struct Expected {
    raw: &'static str,
    /// `@timestamp` as Elasticsearch parsed it.
    timestamp: &'static str,
    message: &'static str,
    procid: &'static str,
    dyno: Option<&'static str>,
    process_type: Option<&'static str>,
    source: &'static str,
}

fn batch() -> Vec<Expected> {
    let e = |raw, timestamp, message, procid, dyno, process_type, source| Expected {
        raw,
        timestamp,
        message,
        procid,
        dyno,
        process_type,
        source,
    };
    vec![
        e(
            "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - at=info method=GET path=\"/\" host=shop.example.com fwd=\"198.51.100.23\" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=https\n",
            "2025-03-14T09:26:53.589793Z",
            "at=info method=GET path=\"/\" host=shop.example.com fwd=\"198.51.100.23\" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=https",
            "router", Some("web.1"), Some("web"), "heroku",
        ),
        e(
            "<190>1 2025-03-14T10:26:54.000042+01:00 host app worker.3 - {\"level\":\"error\",\"msg\":\"boom\"}\n",
            "2025-03-14T09:26:54.000042Z",
            "{\"level\":\"error\",\"msg\":\"boom\"}",
            "worker.3", Some("worker.3"), Some("worker"), "app",
        ),
        e(
            "<190>1 2025-03-14T09:26:55.100000+00:00 host app web.2 - Traceback (most recent call last):\n  File \"app.py\", line 1\nValueError: x\n",
            "2025-03-14T09:26:55.100Z",
            "Traceback (most recent call last):\n  File \"app.py\", line 1\nValueError: x",
            "web.2", Some("web.2"), Some("web"), "app",
        ),
        e(
            // The last message of a frame may come without its newline.
            "<45>1 2025-03-14T04:26:56.5-05:00 host heroku scheduler.4821 - Process exited with status 0",
            "2025-03-14T09:26:56.500Z",
            "Process exited with status 0",
            "scheduler.4821", Some("scheduler.4821"), Some("scheduler"), "heroku",
        ),
    ]
}

#[tokio::test]
async fn a_drain_batch_becomes_searchable_documents() {
    let ns = unique_namespace("slice");
    let dp = Drainpipe::start(&ns);
    let batch = batch();
    let raws: Vec<&str> = batch.iter().map(|b| b.raw).collect();
    let body = logplex_body(&raws);
    let seed = FrameSeed::new(&FrameKey {
        frame_id: Some(FRAME_ID),
        drain_token: Some(TOKEN),
        app: Some("shop"),
        labels: &[],
        body: &body,
    });

    let headers = LogplexHeaders { frame_id: Some(FRAME_ID), drain_token: Some(TOKEN), msg_count: raws.len() };
    let answer = post_frame(&dp.url("/logs?app=shop"), body, &headers).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-length"], "0");

    let docs = wait_for_documents(&dp.es, &dp.data_stream, batch.len()).await;
    assert_eq!(docs.len(), batch.len(), "one document per message");
    for (i, (doc, want)) in docs.iter().zip(&batch).enumerate() {
        let Expected { timestamp, message, procid, dyno, process_type, source, .. } = want;
        let src = &doc["_source"];
        assert_eq!(doc["_id"], seed.id(i as u32).as_str(), "deterministic id of message {i}");
        assert_eq!(doc["fields"]["@timestamp"][0], *timestamp, "message {i}");
        assert_eq!(src["message"], *message, "message {i}");
        assert_eq!(src["heroku"]["app"], "shop");
        assert_eq!(src["heroku"]["source"], *source);
        assert_eq!(src["heroku"].get("dyno").and_then(Value::as_str), *dyno, "message {i}");
        assert_eq!(src["heroku"].get("process_type").and_then(Value::as_str), *process_type, "message {i}");
        assert_eq!(src["heroku"]["drain"], json!({"token": TOKEN, "frame_id": FRAME_ID}));
        assert_eq!(src["log"]["syslog"]["hostname"], "host");
        assert_eq!(src["log"]["syslog"]["appname"], *source);
        assert_eq!(src["log"]["syslog"]["procid"], *procid);
        assert!(src.get("tags").is_none(), "no parse failure in message {i}: {src}");
    }

    let router = &docs[0]["_source"]["log"];
    assert_eq!(router["level"], "info");
    assert_eq!(
        router["syslog"],
        json!({
            "priority": 158,
            "facility": {"code": 19, "name": "local3"},
            "severity": {"code": 6, "name": "informational"},
            "hostname": "host", "appname": "heroku", "procid": "router"
        })
    );
    let scheduler = &docs[3]["_source"]["log"]["syslog"];
    assert_eq!((scheduler["facility"]["code"].as_u64(), scheduler["severity"]["code"].as_u64()), (Some(5), Some(5)));

    // The typed mapping is in force: a term query on a keyword and a range on the date work.
    let hits = search(&dp.es, &dp.data_stream, json!({"term": {"heroku.process_type": "web"}})).await;
    assert_eq!(hits.len(), 2);
    let hits = search(
        &dp.es,
        &dp.data_stream,
        json!({"range": {"@timestamp": {"gt": "2025-03-14T09:26:54.000041Z", "lt": "2025-03-14T09:26:54.000043Z"}}}),
    )
    .await;
    assert_eq!(hits.len(), 1, "microseconds survive into date_nanos");

    assert!(dp.terminate().success(), "drainpipe exits cleanly on SIGTERM");
}

#[tokio::test]
async fn the_same_frame_twice_is_stored_once() {
    let ns = unique_namespace("retry");
    let dp = Drainpipe::start(&ns);
    let lines = sample_lines("router.log");
    let headers = LogplexHeaders { frame_id: Some(FRAME_ID), drain_token: Some(TOKEN), msg_count: lines.len() };
    for _ in 0..2 {
        let answer = post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await;
        assert_eq!(answer.status(), 200);
    }
    // A marker frame posted last: once it is searchable, both copies above have been handled.
    let marker = ["<190>1 2025-03-14T09:30:00+00:00 host app web.1 - marker\n"];
    let marker_headers = LogplexHeaders { frame_id: Some("MARKER"), drain_token: Some(TOKEN), msg_count: 1 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&marker), &marker_headers).await.status(), 200);
    let docs = wait_for_documents(&dp.es, &dp.data_stream, lines.len() + 1).await;
    assert_eq!(docs.len(), lines.len() + 1);
}

#[tokio::test]
async fn frames_without_logplex_ids_and_garbage_are_kept() {
    let ns = unique_namespace("privspace");
    let dp = Drainpipe::start(&ns);
    let messages = ["<190>1 2025-03-14T09:26:53Z host app web.1 - from a private space\n", "this is not syslog\n"];
    let headers = LogplexHeaders { frame_id: None, drain_token: None, msg_count: 2 };
    let answer = post_frame(&dp.url("/logs"), logplex_body(&messages), &headers).await;
    assert_eq!(answer.status(), 200);
    let docs = wait_for_documents(&dp.es, &dp.data_stream, 2).await;
    let garbage = docs.iter().find(|d| d["_source"]["message"] == "this is not syslog").expect("garbage indexed raw");
    assert_eq!(garbage["_source"]["tags"], json!(["_drainpipe_parse_failure"]));
    assert!(garbage["_source"]["error"]["message"].as_str().unwrap().contains("not syslog"));
    let good = docs.iter().find(|d| d["_source"]["message"] == "from a private space").expect("syslog line indexed");
    assert!(good["_source"]["heroku"].get("app").is_none());
    assert!(good["_source"]["heroku"].get("drain").is_none());
}

#[tokio::test]
async fn bad_requests_get_clear_answers() {
    let dp = Drainpipe::start(&unique_namespace("answers"));
    let client = reqwest::Client::new();
    let health = client.get(dp.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let not_logplex = client.post(dp.url("/logs")).body("hello world").send().await.unwrap();
    assert_eq!(not_logplex.status(), 400);
    assert!(not_logplex.text().await.unwrap().contains("octet count"));

    let json_body =
        client.post(dp.url("/logs")).header("Content-Type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(json_body.status(), 415);

    let get_logs = client.get(dp.url("/logs")).send().await.unwrap();
    assert_eq!(get_logs.status(), 405);
    assert_eq!(client.get(dp.url("/nope")).send().await.unwrap().status(), 404);

    let metrics = client.get(dp.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("drainpipe_ingest_requests_total{status=\"400\"} 1"), "{metrics}");
}
