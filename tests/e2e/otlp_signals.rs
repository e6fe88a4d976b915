//! OTLP metrics and traces (what `heroku telemetry:add` sends by default besides logs) into the
//! real Elasticsearch: the Python SDK's exporters, typed fields, and a retried export stored once.

use std::time::Duration;

use drainpipe_otlp::proto::{
    Data, ExportMetricsServiceRequest, ExportTraceServiceRequest, Gauge, InstrumentationScope, KeyValue, Metric,
    Number, NumberDataPoint, Resource, ResourceMetrics, ResourceSpanList, ScopeMetrics, ScopeSpanList, Span,
};
use prost::Message as _;
use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "otlp-signals-token";

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(drainpipe_otlp::AnyValue { value: Some(drainpipe_otlp::proto::Value::String(value.to_owned())) }),
    }
}

fn fir_resource(app: &str) -> Option<Resource> {
    Some(Resource { attributes: vec![text("heroku.app.name", app), text("heroku.dyno.name", "web.2")] })
}

async fn post(url: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body)
        .send()
        .await
        .expect("drainpipe answers")
}

/// Runs tests/otlp/python-signals over `transport` against `url`.
fn python_signals(transport: &str, url: &str, run: &str) {
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp/python-signals"))
        .args([transport, url, TOKEN, run])
        .output()
        .expect("the Python exporters run");
    assert!(
        out.status.success(),
        "the Python SDK's exporters failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The mapped type of `field` in `index`.
async fn field_type(es: &str, index: &str, field: &str) -> String {
    let caps: Value =
        reqwest::get(format!("{es}/{index}/_field_caps?fields={field}")).await.unwrap().json().await.unwrap();
    caps["fields"][field].as_object().and_then(|types| types.keys().next().cloned()).unwrap_or_default()
}

#[tokio::test]
async fn python_sdk_metrics_and_spans_become_typed_documents() {
    let ns = unique_namespace("otlpsig");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", TOKEN]);
    python_signals("http", &dp.url(""), &ns);
    python_documents_are_typed(&dp, &ns).await;
}

#[tokio::test]
async fn python_sdk_grpc_exporters_are_stored_the_same() {
    let ns = unique_namespace("otlpgrpc");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", TOKEN, "--otlp-grpc-listen", "127.0.0.1:0"]);
    python_signals("grpc", &dp.grpc.expect("the gRPC address").to_string(), &ns);
    python_documents_are_typed(&dp, &ns).await;
    let text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        "drainpipe_otlp_grpc_requests_total{code=\"ok\",signal=\"metrics\"} 3",
        "drainpipe_otlp_grpc_requests_total{code=\"ok\",signal=\"traces\"} 2",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

/// What tests/otlp/python-signals sent, as typed documents in the real Elasticsearch.
async fn python_documents_are_typed(dp: &Drainpipe, ns: &str) {
    let (metrics, traces) = (format!("metrics-heroku.otel-{ns}"), format!("traces-heroku.otel-{ns}"));

    // Three collections (two flushes and the shutdown) of four series.
    let points = wait_for_documents(&dp.es, &metrics, 12).await;
    assert_eq!(points.len(), 12, "{points:?}");
    let memory: Vec<&Value> =
        points.iter().map(|p| &p["_source"]).filter(|p| p["metric"]["name"] == "process.memory.usage").collect();
    assert_eq!(memory.len(), 3);
    let first =
        memory.iter().find(|p| p["metrics"]["process.memory.usage"] == json!(537_395_200.0)).expect("512.5 MiB");
    assert_eq!(first["metric"]["type"], "gauge");
    assert_eq!(first["unit"], "By");
    assert_eq!(first["attributes"]["memory.type"], "rss");
    assert_eq!((&first["heroku"]["app"], &first["heroku"]["dyno"]), (&json!("shop"), &json!("web.1")));
    assert_eq!(
        (&first["heroku"]["process_type"], &first["heroku"]["release"]["version"]),
        (&json!("web"), &json!("v42"))
    );
    assert_eq!(first["service"]["name"], "shop");
    assert_eq!(first["scope"], json!({"name": "shop.metrics", "version": "1.2.3"}));
    assert_eq!(first["resource"]["attributes"]["run"], ns);
    let orders = points.iter().map(|p| &p["_source"]).find(|p| p["metric"]["name"] == "shop.orders").unwrap();
    assert_eq!(orders["metric"]["temporality"], "cumulative");
    assert_eq!(orders["metric"]["monotonic"], true);
    let histogram = points.iter().map(|p| &p["_source"]).find(|p| p["metric"]["type"] == "histogram").unwrap();
    assert_eq!(histogram["metrics"]["shop.request.duration.count"], json!(3.0));
    assert_eq!(histogram["metrics"]["shop.request.duration.sum"], json!(266.0));
    assert_eq!(histogram["metrics"]["shop.request.duration.max"], json!(250.0));
    // Typed, and found by the dimensions a dashboard filters on.
    assert_eq!(field_type(&dp.es, &metrics, "metrics.process.memory.usage").await, "double");
    assert_eq!(field_type(&dp.es, &metrics, "heroku.dyno").await, "keyword");
    assert_eq!(field_type(&dp.es, &metrics, "@timestamp").await, "date_nanos");
    let filter = json!({"bool": {"filter": [{"term": {"heroku.dyno": "web.1"}}, {"term": {"metric.name": "process.memory.usage"}},
        {"range": {"metrics.process.memory.usage": {"gt": 600_000_000}}}]}});
    assert_eq!(search(&dp.es, &metrics, filter).await.len(), 2, "the two points after the change");

    let spans = wait_for_documents(&dp.es, &traces, 2).await;
    assert_eq!(spans.len(), 2, "{spans:?}");
    let by_name = |name: &str| spans.iter().map(|s| &s["_source"]).find(|s| s["name"] == name).unwrap().clone();
    let (root, child) = (by_name("GET /checkout"), by_name("charge card"));
    assert_eq!(root["kind"], "Server");
    assert_eq!(child["kind"], "Client");
    assert_eq!(child["trace_id"], root["trace_id"]);
    assert_eq!(child["parent_span_id"], root["span_id"]);
    assert_eq!(root["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(child["status"], json!({"code": "Error", "message": "declined"}));
    assert_eq!(child["events"][0]["name"], "card declined");
    assert_eq!(child["events"][0]["attributes"]["decline.code"], "51");
    assert_eq!(child["links"][0]["span_id"], root["span_id"]);
    assert!(root["duration"].as_u64().unwrap() >= child["duration"].as_u64().unwrap());
    assert_eq!(root["heroku"]["app"], "shop");
    assert_eq!(field_type(&dp.es, &traces, "duration").await, "long");
    assert_eq!(field_type(&dp.es, &traces, "trace_id").await, "keyword");
}

#[tokio::test]
async fn a_retried_metrics_or_traces_export_is_stored_once() {
    let ns = unique_namespace("otlpsigretry");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", TOKEN]);
    let point = |value: f64, at: u64| NumberDataPoint {
        attributes: vec![text("cpu", "0")],
        time_unix_nano: at,
        value: Some(Number::AsDouble(value)),
        ..NumberDataPoint::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: fir_resource("retry-shop"),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "heroku".into(), ..InstrumentationScope::default() }),
                metrics: vec![Metric {
                    name: "system.cpu.utilization".into(),
                    unit: "1".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![
                            point(0.25, 1_764_900_000_000_000_000),
                            point(0.5, 1_764_900_020_000_000_000),
                        ],
                    })),
                    ..Metric::default()
                }],
            }],
        }],
    };
    let span = |id: u8| Span {
        trace_id: vec![7; 16],
        span_id: vec![id; 8],
        name: format!("work {id}"),
        start_time_unix_nano: 1_764_900_000_000_000_000,
        end_time_unix_nano: 1_764_900_000_250_000_000,
        ..Span::default()
    };
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpanList {
            resource: fir_resource("retry-shop"),
            scope_spans: vec![ScopeSpanList { scope: None, spans: vec![span(1), span(2), span(3)] }],
        }],
    };
    // Sent, then sent again as an exporter retries after a lost answer.
    for _ in 0..2 {
        assert_eq!(post(&dp.url("/v1/metrics"), metrics.encode_to_vec()).await.status(), 200);
        assert_eq!(post(&dp.url("/v1/traces"), traces.encode_to_vec()).await.status(), 200);
    }
    let (m, t) = (format!("metrics-heroku.otel-{ns}"), format!("traces-heroku.otel-{ns}"));
    assert_eq!(wait_for_documents(&dp.es, &m, 2).await.len(), 2);
    assert_eq!(wait_for_documents(&dp.es, &t, 3).await.len(), 3);
    // Everything sent has reached Elasticsearch (4 exports, 10 items), and still 2 + 3 are stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
        let done = text.lines().filter(|l| {
            l.starts_with("drainpipe_bulk_documents_total{outcome=\"indexed\"}")
                || l.starts_with("drainpipe_bulk_documents_total{outcome=\"duplicate\"}")
        });
        let total: f64 = done.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
        if total >= 10.0 || std::time::Instant::now() > deadline {
            assert!(total >= 10.0, "only {total} of 10 documents answered:\n{text}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(search(&dp.es, &m, json!({"match_all": {}})).await.len(), 2, "each point once");
    assert_eq!(search(&dp.es, &t, json!({"match_all": {}})).await.len(), 3, "each span once");
    metrics_are_a_time_series_where_the_server_has_one(&dp.es, &m).await;
}

/// On Elasticsearch, `stream` is a time series (TSDB) data stream, whose index made every id
/// (from a point's dimensions and time: a retried point found by it, as above); on OpenSearch,
/// which has none, a plain one whose ids are drainpipe's.
async fn metrics_are_a_time_series_where_the_server_has_one(es: &str, stream: &str) {
    let settings: Value =
        reqwest::get(format!("{es}/{stream}/_settings?flat_settings=true")).await.unwrap().json().await.unwrap();
    let modes: Vec<&Value> = settings.as_object().unwrap().values().map(|i| &i["settings"]["index.mode"]).collect();
    let points = search(es, stream, json!({"match_all": {}})).await;
    // drainpipe's ids are 22 characters (128 bits); a time series index's are longer.
    let ours = points.iter().filter(|p| p["_id"].as_str().is_some_and(|id| id.len() == 22)).count();
    if is_opensearch(es).await {
        assert!(modes.iter().all(|m| m.is_null()), "{settings}");
        assert_eq!(ours, points.len());
    } else {
        assert!(modes.iter().all(|m| *m == "time_series"), "{settings}");
        assert_eq!(ours, 0, "{points:?}");
        assert_eq!(field_type(es, stream, "attributes.cpu").await, "keyword");
    }
}

/// Emits, through the Rust OpenTelemetry SDK's OTLP/HTTP exporters with `protocol`, one gauge
/// point, one counter point and one histogram point (tagged `run`), then two spans.
fn emit_with_rust_sdk(url: &str, protocol: opentelemetry_otlp::Protocol, run: &str) {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};

    let (url, run) = (url.to_owned(), run.to_owned());
    std::thread::spawn(move || {
        let headers = || [("Authorization".to_owned(), format!("Bearer {TOKEN}"))].into();
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_attributes([
                opentelemetry::KeyValue::new("heroku.app.name", "rust-shop"),
                opentelemetry::KeyValue::new("heroku.dyno.name", "worker.3"),
            ])
            .build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_endpoint(format!("{url}/v1/metrics"))
            .with_protocol(protocol)
            .with_headers(headers())
            .build()
            .expect("a metric exporter");
        let meters = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_periodic_exporter(metrics)
            .build();
        let meter = meters.meter("jobs");
        let tag = [opentelemetry::KeyValue::new("run", run.clone())];
        meter.f64_gauge("jobs.queue.depth").build().record(7.5, &tag);
        meter.u64_counter("jobs.done").build().add(3, &tag);
        meter.f64_histogram("jobs.duration").with_unit("s").build().record(0.25, &tag);
        meters.shutdown().expect("every metrics export succeeded");

        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{url}/v1/traces"))
            .with_protocol(protocol)
            .with_headers(headers())
            .build()
            .expect("a span exporter");
        let tracers = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(spans)
            .build();
        let tracer = tracers.tracer("jobs");
        tracer.in_span(format!("job {run}"), |cx| {
            let mut child = tracer.start_with_context("step", &cx);
            child.add_event("retried", vec![opentelemetry::KeyValue::new("attempt", 2)]);
            child.end();
        });
        tracers.shutdown().expect("every span export succeeded");
    })
    .join()
    .expect("the exporter thread");
}

#[tokio::test]
async fn rust_sdk_metric_and_span_exporters_arrive_as_protobuf_and_as_json() {
    let ns = unique_namespace("otlpsigrust");
    let dp = Drainpipe::start_with(&ns, &["--otlp-token", TOKEN]);
    let (metrics, traces) = (format!("metrics-heroku.otel-{ns}"), format!("traces-heroku.otel-{ns}"));
    for (i, (protocol, run)) in
        [(opentelemetry_otlp::Protocol::HttpBinary, "protobufrun"), (opentelemetry_otlp::Protocol::HttpJson, "jsonrun")]
            .into_iter()
            .enumerate()
    {
        emit_with_rust_sdk(&dp.url(""), protocol, run);
        let points = wait_for_documents(&dp.es, &metrics, 3 * (i + 1)).await;
        let ours: Vec<&Value> =
            points.iter().map(|p| &p["_source"]).filter(|p| p["attributes"]["run"] == run).collect();
        assert_eq!(ours.len(), 3, "{run}: {points:?}");
        let by_name = |name: &str| *ours.iter().find(|p| p["metric"]["name"] == name).unwrap();
        assert_eq!(by_name("jobs.queue.depth")["metrics"]["jobs.queue.depth"], json!(7.5), "{run}");
        assert_eq!(by_name("jobs.done")["metric"]["value"].as_f64(), Some(3.0), "{run}");
        assert_eq!(by_name("jobs.done")["metric"]["monotonic"], true);
        assert_eq!(by_name("jobs.duration")["metrics"]["jobs.duration.sum"], json!(0.25));
        assert_eq!(by_name("jobs.duration")["unit"], "s");
        assert_eq!((&ours[0]["heroku"]["app"], &ours[0]["heroku"]["dyno"]), (&json!("rust-shop"), &json!("worker.3")));

        let spans = wait_for_documents(&dp.es, &traces, 2 * (i + 1)).await;
        let root = spans.iter().map(|s| &s["_source"]).find(|s| s["name"] == format!("job {run}")).unwrap();
        let step = spans
            .iter()
            .map(|s| &s["_source"])
            .find(|s| s["name"] == "step" && s["trace_id"] == root["trace_id"])
            .expect("the child span, in the same trace");
        assert_eq!(step["parent_span_id"], root["span_id"], "{run}");
        assert_eq!(step["events"][0]["attributes"]["attempt"], "2", "attribute values are text");
        assert_eq!(root["kind"], "Internal");
    }
}
