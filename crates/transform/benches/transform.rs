//! Per-line cost of the hot path: parse one message, build its document, and write it as a
//! bulk NDJSON item (`create` action line with the deterministic id, then the source line),
//! exactly as the pipeline does into a reused buffer.
//!
//!     cargo bench -p drainpipe-transform --bench transform
//!
//! Throughput is reported in lines per second (criterion's "elem/s"). `router/reference` is
//! the minimal reference of the load tool (benches/load/src/reference.rs: framing, header,
//! router fields, a 15-field JSON document) over the same router lines, so every run gives
//! drainpipe's rate as a share of it: timings swing between runs, the ratio much less.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drainpipe_transform::{Context, FrameKey, FrameSeed, StructuredData, Timestamp, Transformer};

// Its own tests are compiled away here (no test harness), leaving their import unused.
#[allow(unused_imports)]
#[path = "../../../benches/load/src/reference.rs"]
mod reference;

const ROUTER: &[&str] = &[
    "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - at=info method=GET path=\"/\" host=shop.example.com request_id=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d fwd=\"198.51.100.23\" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=https\n",
    "<158>1 2025-03-14T09:26:54.002311+00:00 host heroku router - at=info method=POST path=\"/api/orders?ref=mail\" host=shop.example.com request_id=2f6c0e52-93b1-4b8e-a0a5-6fb1d2f0c1aa fwd=\"198.51.100.23,10.10.1.4\" dyno=web.2 connect=0ms service=231ms status=201 bytes=412 protocol=https\n",
    "<158>1 2025-03-14T09:26:55.117000+00:00 host heroku router - at=error code=H12 desc=\"Request timeout\" method=GET path=\"/reports/yearly\" host=shop.example.com request_id=77b1e0c4-1f7c-4a55-9f0e-1d6f7a8b9c0d fwd=\"203.0.113.9\" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=https\n",
    "<158>1 2025-03-14T09:26:57.000001+00:00 host heroku router - at=info method=GET path=\"/assets/app-3f2a.css\" host=www.shop.example.com request_id=5a5a5a5a-6b6b-4c7c-8d8d-9e9e9e9e9e9e fwd=\"192.0.2.44\" dyno=web.3 connect=0ms service=3ms status=304 bytes=0 protocol=https tls_version=TLSv1.3\n",
];

const APP_JSON: &[&str] = &[
    "<190>1 2025-03-14T09:26:53.611000+00:00 host app web.1 - {\"level\":\"info\",\"msg\":\"order created\",\"order_id\":42,\"user\":{\"id\":7,\"plan\":\"pro\"}}\n",
    "<190>1 2025-03-14T09:26:53.612000+00:00 host app web.1 - {\"level\":30,\"time\":1741944413601,\"pid\":21,\"hostname\":\"web.1\",\"msg\":\"request completed\",\"res\":{\"statusCode\":200},\"responseTime\":12}\n",
];

const METRICS: &[&str] = &[
    "<45>1 2025-03-14T09:26:54.000000+00:00 host heroku web.1 - source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#memory_total=210.00MB sample#memory_rss=198.22MB sample#memory_cache=12.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB\n",
];

fn bench_lines(c: &mut Criterion, name: &str, lines: &[&str]) {
    let ctx = Context {
        app: Some("shop"),
        drain_token: Some("d.f0e1d2c3-b4a5-4697-8877-665544332211"),
        frame_id: Some("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
        labels: &[],
        received_at: Timestamp::from_unix(1_741_944_500, 0),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    };
    let seed = FrameSeed::new(&FrameKey {
        frame_id: ctx.frame_id,
        drain_token: ctx.drain_token,
        app: ctx.app,
        labels: ctx.labels,
        body: b"",
    });
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    let mut transformer = Transformer::new();
    let mut out = Vec::with_capacity(64 * 1024);
    group.bench_function("parse+document+ndjson", |b| {
        b.iter(|| {
            out.clear();
            for (i, line) in lines.iter().enumerate() {
                let id = seed.id(i as u32);
                out.extend_from_slice(b"{\"create\":{\"_index\":\"logs-heroku-default\",\"_id\":\"");
                out.extend_from_slice(id.as_str().as_bytes());
                out.extend_from_slice(b"\"}}\n");
                transformer.transform(black_box(line.as_bytes()), &ctx, &mut out);
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    if name == "router" {
        let body: Vec<u8> = lines.iter().flat_map(|l| format!("{} {l}", l.len()).into_bytes()).collect();
        group.bench_function("reference", |b| {
            b.iter(|| {
                out.clear();
                black_box(reference::frame(black_box(&body), &mut out))
            })
        });
    }
    group.finish();
}

/// A Fir app's OTLP records as drainpipe-otlp's `split` spools them: a JSON body with the
/// record's attributes (what goes under `app.*` is built from both), a map body, a plain line.
fn otlp_records() -> Vec<Vec<u8>> {
    use drainpipe_otlp::proto::{
        AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource,
        ResourceLogs, ScopeLogs, Value,
    };
    let text = |s: &str| Some(AnyValue { value: Some(Value::String(s.to_owned())) });
    let kv = |k: &str, v: Option<AnyValue>| KeyValue { key: k.to_owned(), value: v };
    let record = |body: Option<AnyValue>, attributes: Vec<KeyValue>| LogRecord {
        time_unix_nano: 1_741_944_413_611_000_000,
        severity_number: 9,
        severity_text: "INFO".to_owned(),
        body,
        attributes,
        trace_id: vec![0x5b; 16],
        span_id: vec![0x3c; 8],
        ..LogRecord::default()
    };
    let attributes = || {
        vec![
            kv("code.filepath", text("app/orders.rb")),
            kv("code.lineno", Some(AnyValue { value: Some(Value::Int(42)) })),
        ]
    };
    let map = Some(AnyValue {
        value: Some(Value::KvList(KeyValueList {
            values: vec![
                kv("msg", text("order created")),
                kv("order_id", Some(AnyValue { value: Some(Value::Int(42)) })),
                kv("level", text("info")),
            ],
        })),
    });
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("shop")),
                    kv("heroku.dyno.name", text("web.1")),
                    kv("heroku.release.version", text("v42")),
                    kv("telemetry.sdk.language", text("ruby")),
                    kv("telemetry.sdk.version", text("1.5.0")),
                ],
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: "shop".to_owned(), version: "1.0".to_owned(), attributes: vec![] }),
                log_records: vec![
                    record(text("{\"level\":\"info\",\"msg\":\"order created\",\"order_id\":42,\"user\":{\"id\":7,\"plan\":\"pro\"}}"), attributes()),
                    record(map, attributes()),
                    record(text("Completed 200 OK in 12ms"), vec![]),
                ],
            }],
        }],
    };
    drainpipe_otlp::split(request)
}

fn bench_otlp(c: &mut Criterion) {
    let records = otlp_records();
    let ctx = Context {
        app: Some("shop"),
        drain_token: None,
        frame_id: None,
        labels: &[],
        received_at: Timestamp::from_unix(1_741_944_500, 0),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    };
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(records.len() as u64));
    let mut transformer = Transformer::new();
    let mut out = Vec::with_capacity(64 * 1024);
    group.bench_function("record+document", |b| {
        b.iter(|| {
            out.clear();
            for record in &records {
                transformer.transform_otlp(black_box(record), &ctx, &mut out);
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_lines(c, "router", ROUTER);
    bench_lines(c, "app_json", APP_JSON);
    bench_lines(c, "runtime_metrics", METRICS);
    bench_otlp(c);
}

criterion_group!(transform, benches);
criterion_main!(transform);
