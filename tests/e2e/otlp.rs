//! OTLP log exports (Heroku Fir's telemetry drains) into the real Elasticsearch: the Python
//! SDK's exporter, a retried export stored once whatever its encoding, and every answer the
//! OTLP/HTTP specification asks for.

use std::time::Duration;

use prost::Message as _;
use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "otlp-e2e-token";

/// An OTLP JSON logs export of `messages` from a Fir web dyno of `app`.
fn export(app: &str, messages: &[&str]) -> Value {
    let attribute = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "timeUnixNano": (1_732_442_400_123_400_000u64 + i as u64 * 1_000).to_string(),
                "severityNumber": 13,
                "severityText": "WARN",
                "body": {"stringValue": m},
                "attributes": [{"key": "order.id", "value": {"intValue": (4400 + i).to_string()}}],
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            attribute("service.name", app),
            attribute("heroku.dyno.name", "web.1"),
            attribute("heroku.dyno.type", "web"),
            attribute("heroku.release.version", "v7"),
        ]},
        "scopeLogs": [{"scope": {"name": "checkout"}, "logRecords": records}],
    }]})
}

/// The same export as protobuf.
fn protobuf(export: &Value) -> Vec<u8> {
    let request = drainpipe_otlp::decode_logs(export.to_string().as_bytes(), drainpipe_otlp::Encoding::Json).unwrap();
    request.encode_to_vec()
}

async fn post(url: &str, content_type: &str, body: Vec<u8>, auth: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).header("content-type", content_type).body(body);
    if let Some(a) = auth {
        request = request.header("authorization", a);
    }
    request.send().await.expect("drainpipe answers")
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// Documents of the app data stream whose message contains `run`, once there are `expected`
/// of them (or 30 s passed).
async fn documents(es: &str, ns: &str, run: &str, expected: usize) -> Vec<Value> {
    let index = format!("logs-heroku.app-{ns}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let _ = reqwest::Client::new().post(format!("{es}/{index}/_refresh")).send().await;
        let found = match reqwest::Client::new()
            .post(format!("{es}/{index}/_search"))
            .json(&json!({"size": 100, "query": {"match_phrase": {"message": run}}}))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                r.json::<Value>().await.unwrap()["hits"]["hits"].as_array().cloned().unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if found.len() >= expected || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn python_sdk_exporter_records_become_typed_documents() {
    let ns = unique_namespace("otlppy");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", &format!("{TOKEN}=fallback-app")]);
    let run = ns.clone();
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp/python-exporter"))
        .args([&dp.url(""), TOKEN, &run])
        .output()
        .expect("the Python exporter runs");
    assert!(
        out.status.success(),
        "the Python SDK's exporter failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&dp.es, &ns, &run, 3).await;
    assert_eq!(docs.len(), 3, "{docs:?}");
    let by_message = |start: &str| -> &Value {
        &docs.iter().find(|d| d["_source"]["message"].as_str().unwrap().starts_with(start)).unwrap()["_source"]
    };
    let viewed = by_message("cart viewed");
    assert_eq!(viewed["log"]["level"], "info");
    // The token names the app, and wins over the resource's heroku.app.name (kept aside).
    assert_eq!(viewed["service"]["name"], "fallback-app", "the token's app, not the resource's");
    assert_eq!(viewed["heroku"]["app"], "fallback-app");
    assert_eq!(viewed["otel"]["resource"]["heroku.app.name"], "shop", "the overruled name is kept");
    assert_eq!(viewed["heroku"]["app_id"], "6a8d8e3c-1f0b-4b2a-9c1d-0e9f8a7b6c5d");
    assert_eq!((&viewed["heroku"]["dyno"], &viewed["heroku"]["process_type"]), (&json!("web.1"), &json!("web")));
    assert_eq!(viewed["heroku"]["release"]["version"], "v42");
    assert_eq!(viewed["event"]["dataset"], "heroku.app");
    assert_eq!(viewed["app"]["cart.items"], 3, "a record attribute under app.*");
    let retried = by_message("payment retried");
    assert_eq!(retried["log"]["level"], "warning");
    assert_eq!(retried["trace"]["id"].as_str().map(str::len), Some(32), "logged inside a span: {retried}");
    assert_eq!(by_message("payment failed")["log"]["level"], "error");
    // Searchable by the typed fields, as a Cedar app's lines are.
    let hits = search(
        &dp.es,
        &format!("logs-heroku.app-{ns}"),
        json!({"bool": {"filter": [{"term": {"heroku.dyno": "web.1"}}, {"term": {"log.level": "warning"}}]}}),
    )
    .await;
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn a_retried_export_is_stored_once_whether_protobuf_or_json() {
    let ns = unique_namespace("otlpretry");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", TOKEN]);
    let url = dp.url("/v1/logs");
    let body = export("shop", &["one retry", "two retry", "two retry"]);
    for _ in 0..2 {
        let r = post(&url, "application/x-protobuf", protobuf(&body), Some(&bearer())).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        assert!(r.bytes().await.unwrap().is_empty(), "an empty ExportLogsServiceResponse: all taken");
    }
    let r = post(&url, "application/json", body.to_string().into_bytes(), Some(&bearer())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    // gzip, as the collector's exporter sends by default.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &protobuf(&body)).unwrap();
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .header("authorization", bearer())
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A marker export after the four: once it is stored, the retries before it have been
    // through the pipeline, and the count must then stay at three and the marker.
    let marker = export("shop", &["the marker after the others"]);
    let r = post(&url, "application/json", marker.to_string().into_bytes(), Some(&bearer())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(documents(&dp.es, &ns, "marker", 1).await.len(), 1);
    assert_eq!(
        wait_for_count(&dp.es, &dp.data_stream, 4, Duration::from_secs(30)).await,
        4,
        "three records and the marker"
    );
    let docs = documents(&dp.es, &ns, "retry", 3).await;
    assert_eq!(docs.len(), 3, "four exports of three records (two identical): three documents");
}

#[tokio::test]
async fn every_answer_is_the_one_otlp_http_asks_for() {
    let ns = unique_namespace("otlpanswers");
    let dp =
        Drainpipe::start_with(&ns, &["--otlp-token", TOKEN, "--basic-auth", "user:secret", "--max-body-size", "64KiB"]);
    let url = dp.url("/v1/logs");
    let body = protobuf(&export("shop", &["answers"]));
    let status = |bytes: &[u8]| -> String {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Status {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
        }
        Status::decode(bytes).map(|s| format!("{}: {}", s.code, s.message)).unwrap_or_default()
    };

    let r = post(&url, "application/x-protobuf", body.clone(), None).await;
    assert_eq!(r.status(), 401, "no token");
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(post(&url, "application/x-protobuf", body.clone(), Some("Bearer wrong")).await.status(), 401);
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "user:secret"));
    assert_eq!(post(&url, "application/x-protobuf", body.clone(), Some(&basic)).await.status(), 200, "basic auth");

    let r = post(&url, "text/plain", body.clone(), Some(&bearer())).await;
    assert_eq!(r.status(), 415);
    let r = post(&url, "application/x-protobuf", b"\xff\xff\xff\xff".to_vec(), Some(&bearer())).await;
    assert_eq!(r.status(), 400);
    assert!(status(&r.bytes().await.unwrap()).starts_with("3: not an OTLP logs export request"));
    let r = post(&url, "application/json", b"{\"resourceLogs\": 7}".to_vec(), Some(&bearer())).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "resourceLogs is not an array");
    let big = protobuf(&export("shop", &[&"x".repeat(70 * 1024)]));
    assert_eq!(post(&url, "application/x-protobuf", big, Some(&bearer())).await.status(), 413);
    let get = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);

    // Metrics are stored, but for exponential histograms: those are refused with a partial
    // success that counts them, so the exporter logs it and does not send them again.
    let metrics = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "memory", "gauge": {"dataPoints": [{"asDouble": 1.0, "timeUnixNano": "1700000000000000000"}]}},
        {"name": "latency", "exponentialHistogram": {"dataPoints": [{"count": "1"}, {"count": "2"}]}}]}]}]});
    let r = post(&dp.url("/v1/metrics"), "application/json", metrics.to_string().into_bytes(), Some(&bearer())).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedDataPoints"], "2", "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"].as_str().unwrap().contains("exponential histogram"));
    let traces = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "a", "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}]}]}]});
    let r = post(&dp.url("/v1/traces"), "application/json", traces.to_string().into_bytes(), Some(&bearer())).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}), "every span taken");

    let metrics_text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        "drainpipe_otlp_refused_total{signal=\"metrics\"} 2",
        "drainpipe_otlp_requests_total{signal=\"logs\",status=\"401\"} 2",
        "drainpipe_ingest_messages_total{protocol=\"otlp\"} 3",
    ] {
        assert!(metrics_text.contains(line), "{line} in:\n{metrics_text}");
    }
    assert_eq!(documents(&dp.es, &ns, "answers", 1).await.len(), 1, "only the one accepted export is stored");
}

/// While the spool is full, exports are answered 503 with `Retry-After` (the exporter retries
/// 503 after that long); everything answered 200 before is stored once Elasticsearch is back.
#[tokio::test]
async fn a_full_pipeline_answers_503_with_retry_after_and_loses_nothing() {
    let es = FaultElasticsearch::start().await;
    es.pause();
    let spool = std::env::temp_dir().join(format!("drainpipe-spool-{}", unique_namespace("otlpfull")));
    let ns = unique_namespace("otlpfull");
    let dp = Drainpipe::start_against(
        &es.url,
        &ns,
        &["--spool-dir", spool.to_str().unwrap(), "--spool-max-bytes", "4MiB", "--max-body-size", "256KiB"],
    );
    let url = dp.url("/v1/logs");
    let padding = "p".repeat(9_000);
    let (mut accepted, mut n) = (0u64, 0);
    let full = loop {
        let messages: Vec<String> = (0..10).map(|i| format!("full {n} {i} {padding}")).collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let r = post(&url, "application/x-protobuf", protobuf(&export("shop", &refs)), None).await;
        if r.status() != 200 {
            break r;
        }
        accepted += 10;
        n += 1;
        assert!(n < 1000, "the spool never filled");
    };
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"), "{:?}", full.headers());
    assert!(accepted > 50);
    // Metrics and traces as large as the refused logs get the same retryable refusal.
    let padded = json!([{"key": "padding", "value": {"stringValue": padding}}]);
    let point = |i: u64| json!({"asDouble": 1.0, "timeUnixNano": (1_764_900_000_000_000_000 + i).to_string(), "attributes": padded});
    let span = |i: u64| json!({"name": "a", "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": format!("{i:016x}"), "attributes": padded});
    let points = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "memory", "gauge": {"dataPoints":
        (0..10).map(point).collect::<Vec<_>>()}}]}]}]});
    let spans = json!({"resourceSpans": [{"scopeSpans": [{"spans": (1..11).map(span).collect::<Vec<_>>()}]}]});
    for (path, body) in [("/v1/metrics", points.clone()), ("/v1/traces", spans.clone())] {
        let r = post(&dp.url(path), "application/json", body.to_string().into_bytes(), None).await;
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.headers().contains_key("retry-after"), "{path}: {:?}", r.headers());
    }
    es.resume();
    let count = wait_for_count(&es.url, &dp.data_stream, accepted, Duration::from_secs(120)).await;
    assert_eq!(count, accepted, "every record answered 200 is stored, once");
    // The exporter's retry, once there is room, is stored.
    for (path, body) in [("/v1/metrics", points), ("/v1/traces", spans)] {
        let r = post(&dp.url(path), "application/json", body.to_string().into_bytes(), None).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let signals = format!("metrics-heroku.otel-{ns},traces-heroku.otel-{ns}");
    assert_eq!(wait_for_count(&es.url, &signals, 20, Duration::from_secs(60)).await, 20);
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}

/// Emits three records through the Rust OpenTelemetry SDK's OTLP/HTTP exporter (on a thread of
/// its own: it uses reqwest's blocking client) with `protocol`.
fn emit_with_rust_sdk(url: &str, protocol: opentelemetry_otlp::Protocol, run: &str) {
    use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};

    let (url, run) = (url.to_owned(), run.to_owned());
    std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_endpoint(format!("{url}/v1/logs"))
            .with_protocol(protocol)
            .with_headers([("Authorization".to_owned(), bearer())].into())
            .build()
            .expect("an exporter");
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_attributes([
                opentelemetry::KeyValue::new("service.name", "shop"),
                opentelemetry::KeyValue::new("heroku.dyno.name", "worker.2"),
                opentelemetry::KeyValue::new("heroku.workload.id", "worker"),
            ])
            .build();
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(exporter)
            .build();
        let logger = provider.logger("jobs");
        for (i, (severity, text)) in
            [(Severity::Info, "INFO"), (Severity::Warn, "WARN"), (Severity::Error, "ERROR")].into_iter().enumerate()
        {
            let mut record = logger.create_log_record();
            record.set_timestamp(std::time::SystemTime::now());
            record.set_severity_number(severity);
            record.set_severity_text(text);
            record.set_body(AnyValue::from(format!("job {i} of {run}")));
            record.add_attribute("job.id", i as i64);
            logger.emit(record);
        }
        provider.shutdown().expect("every export succeeded");
    })
    .join()
    .expect("the exporter thread");
}

#[tokio::test]
async fn rust_sdk_exporter_records_arrive_as_protobuf_and_as_json() {
    let ns = unique_namespace("otlprust");
    // The token names the app: it wins over the SDK's service.name (docs/fields.md).
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", &format!("{TOKEN}=fir-shop")]);
    for (protocol, run) in
        [(opentelemetry_otlp::Protocol::HttpBinary, "protobufrun"), (opentelemetry_otlp::Protocol::HttpJson, "jsonrun")]
    {
        emit_with_rust_sdk(&dp.url(""), protocol, run);
        let docs = documents(&dp.es, &ns, run, 3).await;
        assert_eq!(docs.len(), 3, "{run}: {docs:?}");
        let levels: Vec<&str> = docs.iter().map(|d| d["_source"]["log"]["level"].as_str().unwrap()).collect();
        assert_eq!(levels.len(), 3);
        for level in ["info", "warning", "error"] {
            assert!(levels.contains(&level), "{run}: {levels:?}");
        }
        let d = &docs[0]["_source"];
        assert_eq!((&d["heroku"]["app"], &d["heroku"]["dyno"]), (&json!("fir-shop"), &json!("worker.2")), "{run}: {d}");
        assert_eq!(d["otel"]["resource"]["service.name"], "shop", "kept");
        assert_eq!(d["heroku"]["process_type"], "worker", "the older heroku.workload.id spelling");
        assert!(d["app"]["job.id"].is_number(), "{run}: {d}");
        assert_eq!(d["otel"]["scope"]["name"], "jobs");
    }
}
