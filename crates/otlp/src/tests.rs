use prost::Message as _;

use super::proto::{ExportLogsServiceRequest, Value};
use super::*;

const JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"shop"}},
    {"key":"heroku.dyno.name","value":{"stringValue":"web.1"}}]},
  "scopeLogs":[{"scope":{"name":"rails","version":"7"},"logRecords":[
    {"timeUnixNano":"1732442400123456789","severityNumber":9,"severityText":"INFO",
     "body":{"stringValue":"hello"},"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
     "attributes":[{"key":"user.id","value":{"intValue":"42"}}]},
    {"time_unix_nano":1732442400000000000,"severity_number":"SEVERITY_NUMBER_WARN2",
     "body":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":1.5}},{"key":"b","value":{"bytesValue":"aGk="}}]}}}
  ]}]}]}"#;

#[test]
fn json_decodes_with_otlp_s_rules() {
    let request = decode_logs(JSON.as_bytes(), Encoding::Json).unwrap();
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records[0].time_unix_nano, 1_732_442_400_123_456_789);
    assert_eq!(
        records[0].trace_id,
        [0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c]
    );
    assert_eq!(records[0].span_id.len(), 8);
    assert_eq!(records[0].attributes[0].value.as_ref().unwrap().value, Some(Value::Int(42)));
    assert_eq!(records[1].severity_number, 14, "names and snake_case keys are taken too");
    let Some(Value::KvList(kv)) = &records[1].body.as_ref().unwrap().value else { panic!("a map body") };
    assert_eq!(kv.values[1].value.as_ref().unwrap().value, Some(Value::Bytes(b"hi".to_vec())));
}

#[test]
fn protobuf_and_json_of_the_same_request_make_the_same_records() {
    let from_json = decode_logs(JSON.as_bytes(), Encoding::Json).unwrap();
    let protobuf = from_json.encode_to_vec();
    let from_protobuf = decode_logs(&protobuf, Encoding::Protobuf).unwrap();
    let records = split(from_json);
    assert_eq!(records, split(from_protobuf));
    assert_eq!(records.len(), 2);
    let first = Record::read(&records[0]).unwrap();
    assert_eq!(first.scope.unwrap().name, "rails");
    assert_eq!(first.resource.unwrap().attributes.len(), 2, "each record keeps its resource");
}

#[test]
fn what_is_not_an_export_request_is_refused_with_a_reason() {
    assert!(decode_logs(b"\xff\xff\xff", Encoding::Protobuf).unwrap_err().0.contains("protobuf"));
    assert!(decode_logs(b"{", Encoding::Json).unwrap_err().0.contains("JSON"));
    assert!(decode_logs(b"[]", Encoding::Json).is_err());
    let wrong = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#;
    assert_eq!(decode_logs(wrong, Encoding::Json).unwrap_err().0, "traceId is not hex");
    let unknown = br#"{"resourceLogs":[],"somethingNew":1}"#;
    assert!(decode_logs(unknown, Encoding::Json).unwrap().resource_logs.is_empty(), "unknown keys are ignored");
}

#[test]
fn content_types_and_answers() {
    assert_eq!(Encoding::from_content_type("application/x-protobuf"), Some(Encoding::Protobuf));
    assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
    assert_eq!(Encoding::from_content_type("text/plain"), None);
    assert!(response(Signal::Logs, Encoding::Protobuf, 0, "").is_empty());
    assert_eq!(response(Signal::Logs, Encoding::Json, 0, ""), b"{}");
    let partial = response(Signal::Logs, Encoding::Protobuf, 3, "too large");
    let decoded = proto::ExportLogsServiceResponse::decode(&partial[..]).unwrap().partial_success.unwrap();
    assert_eq!((decoded.rejected_log_records, decoded.error_message.as_str()), (3, "too large"));
    let json: serde_json::Value = serde_json::from_slice(&response(Signal::Metrics, Encoding::Json, 2, "no")).unwrap();
    assert_eq!(json, serde_json::json!({"partialSuccess": {"rejectedDataPoints": "2", "errorMessage": "no"}}));
    // An export with nothing in it is a request like any other, in either encoding, and the
    // all-taken answer is the default response: no partial success.
    assert_eq!(decode_logs(b"", Encoding::Protobuf).unwrap(), ExportLogsServiceRequest::default());
    assert_eq!(decode_logs(b"{}", Encoding::Json).unwrap(), ExportLogsServiceRequest::default());
    let taken =
        proto::ExportLogsServiceResponse::decode(&response(Signal::Logs, Encoding::Protobuf, 0, "")[..]).unwrap();
    assert_eq!(taken, proto::ExportLogsServiceResponse::default());
}

#[test]
fn metrics_data_points_and_spans_are_counted() {
    let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"memory","gauge":{"dataPoints":[{"asDouble":1},{"asDouble":2}]}},
        {"name":"requests","sum":{"dataPoints":[{"asInt":"3"}],"isMonotonic":true}}]}]}]}"#;
    assert_eq!(count(Signal::Metrics, metrics, Encoding::Json).unwrap(), 3);
    // The .proto names are taken as well as the camelCase ones.
    let snake = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[
        {"exponential_histogram":{"data_points":[{"count":"1"},{"count":"2"}]}}]}]}]}"#;
    assert_eq!(count(Signal::Metrics, snake, Encoding::Json).unwrap(), 2);
    let traces = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a"},{"name":"b"}]}]}]}"#;
    assert_eq!(count(Signal::Traces, traces, Encoding::Json).unwrap(), 2);
    // The same metrics as protobuf: resource_metrics 1 > scope_metrics 2 > metrics 2 > gauge 5 > data_points 1.
    let points = proto::Points { data_points: vec![proto::Empty {}, proto::Empty {}] };
    let item = proto::Item { gauge: Some(points), ..proto::Item::default() };
    let request = proto::Batches {
        resources: vec![proto::ResourceBatch { scopes: vec![proto::ScopeBatch { items: vec![item] }] }],
    };
    assert_eq!(count(Signal::Metrics, &request.encode_to_vec(), Encoding::Protobuf).unwrap(), 2);
    assert!(count(Signal::Traces, b"{", Encoding::Json).is_err());
}

#[test]
fn records_are_counted_on_the_wire_before_decoding() {
    let request = decode_logs(JSON.as_bytes(), Encoding::Json).unwrap();
    let body = request.encode_to_vec();
    assert_eq!(wire::count_log_records(&body), Some(2));
    // The bound is the body and, per record counted on the wire, a record's in-memory size.
    let per_record = size_of::<LogRecord>() + size_of::<Record>();
    assert_eq!(decoded_len_bound(&body, Encoding::Protobuf).unwrap(), body.len() + 2 * per_record);
    // Protobuf concatenation appends the repeated fields: twice the body holds four records.
    let twice = body.repeat(2);
    assert_eq!(wire::count_log_records(&twice), Some(4));
    assert_eq!(decoded_len_bound(&twice, Encoding::Protobuf).unwrap(), twice.len() + 4 * per_record);
    assert_eq!(decoded_len_bound(b"", Encoding::Protobuf).unwrap(), 0, "no records, no body");
    let json_record = per_record + JSON_OBJECT_BYTES;
    assert_eq!(decoded_len_bound(JSON.as_bytes(), Encoding::Json).unwrap(), 6 * JSON.len() + 2 * json_record);
    assert!(decoded_len_bound(&body[..body.len() - 3], Encoding::Protobuf).is_err(), "truncated");
    let split_bytes: usize = split(request.clone()).iter().map(Vec::len).sum();
    assert!(split_len(&request) >= split_bytes, "a bound on what the split takes");
}

#[test]
fn protobuf_spans_are_counted() {
    // resource_spans 1 > scope_spans 2 > spans 2, each span with a name (5) and a start time (7).
    #[derive(Clone, PartialEq, prost::Message)]
    struct Span {
        #[prost(string, tag = "5")]
        name: String,
        #[prost(fixed64, tag = "7")]
        start: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Scope {
        #[prost(message, repeated, tag = "2")]
        spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct ResourceSpans {
        #[prost(message, repeated, tag = "2")]
        scopes: Vec<Scope>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Request {
        #[prost(message, repeated, tag = "1")]
        resources: Vec<ResourceSpans>,
    }
    let span = Span { name: "GET /".to_owned(), start: 1 };
    let request =
        Request { resources: vec![ResourceSpans { scopes: vec![Scope { spans: vec![span.clone(), span] }] }] };
    assert_eq!(count(Signal::Traces, &request.encode_to_vec(), Encoding::Protobuf).unwrap(), 2);
}

#[test]
fn a_non_ascii_id_is_refused_not_a_panic() {
    let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"aéb"}]}]}]}"#;
    assert_eq!(decode_logs(body.as_bytes(), Encoding::Json).unwrap_err().0, "traceId is not hex");
    let url_safe = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"-_8"}}]}]}]}"#;
    let request = decode_logs(url_safe.as_bytes(), Encoding::Json).unwrap();
    let body = request.resource_logs[0].scope_logs[0].log_records[0].body.as_ref().unwrap();
    // `-_8` is URL-safe, unpadded base64 of 0xfb 0xff (`+/8=` in the standard alphabet).
    assert_eq!(body.value, Some(Value::Bytes(vec![0xfb, 0xff])), "URL-safe, unpadded base64");
    let standard = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"+/8="}}]}]}]}"#;
    assert_eq!(decode_logs(standard.as_bytes(), Encoding::Json).unwrap(), request);
}

#[test]
fn json_records_are_counted_before_decoding_so_tiny_records_cannot_outgrow_the_bound() {
    assert_eq!(json::count_log_records(JSON.as_bytes()).unwrap(), 2);
    let snake = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{},{},{}]},null]},{"scopeLogs":null}],"x":[1,{"logRecords":[{}]}]}"#;
    assert_eq!(json::count_log_records(snake.as_bytes()).unwrap(), 3, "only records where OTLP puts them");
    assert_eq!(json::count_log_records(b"{}").unwrap(), 0);
    assert!(json::count_log_records(b"{\"resourceLogs\":{}}").is_err(), "what decoding refuses");
    assert!(json::count_log_records(b"{} trailing").is_err());
    // 300,000 empty records in 900 KB: the bound covers what decoding them holds (about 200
    // bytes each, measured), not six times the text.
    let records = vec!["{}"; 300_000].join(",");
    let body = format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#);
    let bound = decoded_len_bound(body.as_bytes(), Encoding::Json).unwrap();
    assert!(bound >= 300_000 * 200, "{bound}");
    assert_eq!(
        decode_logs(body.as_bytes(), Encoding::Json).unwrap().resource_logs[0].scope_logs[0].log_records.len(),
        300_000
    );
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }) }
}

/// The same JSON with every object key in its `.proto` name (`timeUnixNano` → `time_unix_nano`):
/// attribute keys are values, so they stay as they are.
fn snake_case(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(o) => J::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let mut snake = String::new();
                    for c in k.chars() {
                        if c.is_ascii_uppercase() {
                            snake.push('_');
                        }
                        snake.push(c.to_ascii_lowercase());
                    }
                    (snake, snake_case(v))
                })
                .collect(),
        ),
        J::Array(a) => J::Array(a.into_iter().map(snake_case).collect()),
        other => other,
    }
}

fn metrics_resource() -> Resource {
    Resource { attributes: vec![kv("service.name", Value::String("shop".to_owned())), kv("pid", Value::Int(4242))] }
}

fn metrics_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "io.opentelemetry.runtime".to_owned(),
        version: "2.1.0".to_owned(),
        attributes: vec![kv("library.language", Value::String("java".to_owned()))],
    }
}

/// A metrics export with every type and every field drainpipe reads, as prost values.
fn metrics_request() -> proto::ExportMetricsServiceRequest {
    use proto::*;
    let host = vec![kv("host", Value::String("web.1".to_owned()))];
    let gauge = Metric {
        name: "process.memory.usage".to_owned(),
        description: "Resident memory".to_owned(),
        unit: "By".to_owned(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![
                NumberDataPoint {
                    attributes: host.clone(),
                    start_time_unix_nano: 1_732_442_400_000_000_000,
                    time_unix_nano: 1_732_442_410_123_456_789,
                    value: Some(Number::AsDouble(1.5e9)),
                    flags: 0,
                },
                NumberDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: 0,
                    time_unix_nano: 1_732_442_410_000_000_000,
                    value: Some(Number::AsInt(-9_007_199_254_740_993)),
                    flags: 1,
                },
            ],
        })),
    };
    let sum = Metric {
        name: "http.server.requests".to_owned(),
        description: String::new(),
        unit: "{request}".to_owned(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("http.route", Value::String("/orders".to_owned()))],
                start_time_unix_nano: 1_732_442_400_000_000_000,
                time_unix_nano: 1_732_442_410_000_000_000,
                value: Some(Number::AsInt(42)),
                flags: 0,
            }],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
    };
    let histogram = Metric {
        name: "http.server.duration".to_owned(),
        description: "Request duration".to_owned(),
        unit: "ms".to_owned(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![
                HistogramDataPoint {
                    attributes: host.clone(),
                    start_time_unix_nano: 1_732_442_400_000_000_000,
                    time_unix_nano: 1_732_442_410_000_000_000,
                    count: 6,
                    sum: Some(12.5),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![1.0, 5.0],
                    flags: 0,
                    min: Some(0.25),
                    max: Some(7.0),
                },
                HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: 1_732_442_400_000_000_000,
                    time_unix_nano: 1_732_442_420_000_000_000,
                    count: 0,
                    sum: None,
                    bucket_counts: vec![0, 0],
                    explicit_bounds: vec![10.0],
                    flags: 1,
                    min: None,
                    max: None,
                },
            ],
            aggregation_temporality: 1,
        })),
    };
    let exponential = Metric {
        name: "payload.size".to_owned(),
        description: String::new(),
        unit: "By".to_owned(),
        data: Some(Data::ExponentialHistogram(Points { data_points: vec![Empty {}; 2] })),
    };
    let summary = Metric {
        name: "gc.pause".to_owned(),
        description: "GC pauses".to_owned(),
        unit: "s".to_owned(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: host,
                start_time_unix_nano: 1_732_442_400_000_000_000,
                time_unix_nano: 1_732_442_410_000_000_000,
                count: 3,
                sum: 0.75,
                quantile_values: vec![
                    ValueAtQuantile { quantile: 0.0, value: 0.125 },
                    ValueAtQuantile { quantile: 0.5, value: f64::INFINITY },
                    ValueAtQuantile { quantile: 1.0, value: 0.5 },
                ],
                flags: 0,
            }],
        })),
    };
    let worker_sum = Metric {
        name: "jobs.done".to_owned(),
        description: String::new(),
        unit: "1".to_owned(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![],
                start_time_unix_nano: 1_732_442_400_000_000_000,
                time_unix_nano: 1_732_442_410_000_000_000,
                value: Some(Number::AsDouble(-0.5)),
                flags: 0,
            }],
            aggregation_temporality: 1,
            is_monotonic: false,
        })),
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: Some(metrics_resource()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(metrics_scope()),
                    metrics: vec![gauge, sum, histogram, exponential, summary],
                }],
            },
            ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("service.name", Value::String("worker".to_owned()))] }),
                scope_metrics: vec![ScopeMetrics { scope: None, metrics: vec![worker_sum] }],
            },
        ],
    }
}

/// [`metrics_request`] as the OpenTelemetry Collector writes it in OTLP JSON.
fn metrics_json() -> serde_json::Value {
    let host = serde_json::json!([{"key": "host", "value": {"stringValue": "web.1"}}]);
    serde_json::json!({"resourceMetrics": [
        {
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "shop"}},
                {"key": "pid", "value": {"intValue": "4242"}}
            ]},
            "scopeMetrics": [{
                "scope": {
                    "name": "io.opentelemetry.runtime",
                    "version": "2.1.0",
                    "attributes": [{"key": "library.language", "value": {"stringValue": "java"}}]
                },
                "metrics": [
                    {
                        "name": "process.memory.usage",
                        "description": "Resident memory",
                        "unit": "By",
                        "gauge": {"dataPoints": [
                            {
                                "attributes": host,
                                "startTimeUnixNano": "1732442400000000000",
                                "timeUnixNano": "1732442410123456789",
                                "asDouble": 1.5e9
                            },
                            {"timeUnixNano": "1732442410000000000", "asInt": "-9007199254740993", "flags": 1}
                        ]}
                    },
                    {
                        "name": "http.server.requests",
                        "unit": "{request}",
                        "sum": {
                            "dataPoints": [{
                                "attributes": [{"key": "http.route", "value": {"stringValue": "/orders"}}],
                                "startTimeUnixNano": "1732442400000000000",
                                "timeUnixNano": "1732442410000000000",
                                "asInt": "42",
                                "exemplars": [{"asDouble": 1, "timeUnixNano": "1732442405000000000"}]
                            }],
                            "aggregationTemporality": 2,
                            "isMonotonic": true
                        }
                    },
                    {
                        "name": "http.server.duration",
                        "description": "Request duration",
                        "unit": "ms",
                        "histogram": {
                            "dataPoints": [
                                {
                                    "attributes": host,
                                    "startTimeUnixNano": "1732442400000000000",
                                    "timeUnixNano": "1732442410000000000",
                                    "count": "6",
                                    "sum": 12.5,
                                    "bucketCounts": ["1", "2", "3"],
                                    "explicitBounds": [1, 5],
                                    "min": 0.25,
                                    "max": 7
                                },
                                {
                                    "startTimeUnixNano": "1732442400000000000",
                                    "timeUnixNano": "1732442420000000000",
                                    "count": "0",
                                    "bucketCounts": [0, "0"],
                                    "explicitBounds": [10.0],
                                    "flags": 1
                                }
                            ],
                            "aggregationTemporality": 1
                        }
                    },
                    {
                        "name": "payload.size",
                        "unit": "By",
                        "exponentialHistogram": {
                            "dataPoints": [
                                {
                                    "timeUnixNano": "1732442410000000000",
                                    "count": "3",
                                    "sum": 1200,
                                    "scale": 2,
                                    "zeroCount": "0",
                                    "positive": {"offset": 40, "bucketCounts": ["1", "2"]},
                                    "negative": {}
                                },
                                {"timeUnixNano": "1732442420000000000", "count": "0"}
                            ],
                            "aggregationTemporality": 2
                        }
                    },
                    {
                        "name": "gc.pause",
                        "description": "GC pauses",
                        "unit": "s",
                        "summary": {"dataPoints": [{
                            "attributes": host,
                            "startTimeUnixNano": "1732442400000000000",
                            "timeUnixNano": "1732442410000000000",
                            "count": "3",
                            "sum": 0.75,
                            "quantileValues": [
                                {"value": 0.125},
                                {"quantile": 0.5, "value": "Infinity"},
                                {"quantile": 1, "value": 0.5}
                            ]
                        }]}
                    }
                ]
            }],
            "schemaUrl": "https://opentelemetry.io/schemas/1.24.0"
        },
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]},
            "scopeMetrics": [{"metrics": [{
                "name": "jobs.done",
                "unit": "1",
                "sum": {
                    "dataPoints": [{
                        "startTimeUnixNano": "1732442400000000000",
                        "timeUnixNano": "1732442410000000000",
                        "asDouble": -0.5
                    }],
                    "aggregationTemporality": 1
                }
            }]}]
        }
    ]})
}

#[test]
fn json_metrics_decode_to_the_same_request_as_their_prost_values() {
    let body = metrics_json().to_string();
    assert_eq!(decode_metrics(body.as_bytes(), Encoding::Json).unwrap(), metrics_request());
    let snake = snake_case(metrics_json()).to_string();
    assert!(snake.contains("\"resource_metrics\"") && snake.contains("\"start_time_unix_nano\""));
    assert_eq!(decode_metrics(snake.as_bytes(), Encoding::Json).unwrap(), metrics_request(), ".proto names");
    // The same request as protobuf decodes to the same values.
    let protobuf = metrics_request().encode_to_vec();
    assert_eq!(decode_metrics(&protobuf, Encoding::Protobuf).unwrap(), metrics_request());
}

#[test]
fn json_metrics_take_enum_names_and_special_doubles() {
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"a","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","dataPoints":[
            {"asDouble":"NaN"},{"asDouble":"-Infinity"},{"asInt":7},{"asDouble":"2.5"}]}},
        {"name":"b","histogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","dataPoints":[
            {"count":2,"sum":"Infinity","explicitBounds":["-Infinity",0],"bucketCounts":["18446744073709551615",1]}]}},
        {"name":"c","sum":{"aggregationTemporality":"2","dataPoints":[]}},
        {"name":"d"}]}]}]}"#;
    let request = decode_metrics(body, Encoding::Json).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(proto::Data::Sum(sum)) = &metrics[0].data else { panic!("a sum") };
    assert_eq!(sum.aggregation_temporality, 1);
    let values: Vec<_> = sum.data_points.iter().map(|p| p.value.unwrap()).collect();
    assert!(matches!(values[0], proto::Number::AsDouble(n) if n.is_nan()));
    assert_eq!(
        values[1..],
        [proto::Number::AsDouble(f64::NEG_INFINITY), proto::Number::AsInt(7), proto::Number::AsDouble(2.5)]
    );
    let Some(proto::Data::Histogram(histogram)) = &metrics[1].data else { panic!("a histogram") };
    assert_eq!(histogram.aggregation_temporality, 2);
    let point = &histogram.data_points[0];
    assert_eq!((point.count, point.sum), (2, Some(f64::INFINITY)));
    assert_eq!(point.explicit_bounds, [f64::NEG_INFINITY, 0.0]);
    assert_eq!(point.bucket_counts, [u64::MAX, 1]);
    let Some(proto::Data::Sum(sum)) = &metrics[2].data else { panic!("a sum") };
    assert_eq!(sum.aggregation_temporality, 2, "an enum as a decimal string");
    assert_eq!(metrics[3].data, None, "a metric without data is kept, without points");
}

#[test]
fn json_metrics_with_a_wrongly_typed_known_key_are_refused() {
    let refused = |metric: &str| {
        let body = format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#);
        decode_metrics(body.as_bytes(), Encoding::Json).unwrap_err().0
    };
    assert_eq!(refused(r#"{"name":1}"#), "name is not a string");
    assert_eq!(refused(r#"{"gauge":[]}"#), "gauge is not a JSON object");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":{}}}"#), "dataPoints is not an array");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":[{"asDouble":"fast"}]}}"#), "asDouble is not a number");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":[{"asDouble":"inf"}]}}"#), "asDouble is not a number");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":[{"asInt":1.5}]}}"#), "asInt is not an integer");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":[{"asInt":"9223372036854775808"}]}}"#), "asInt is out of range");
    assert_eq!(refused(r#"{"gauge":{"dataPoints":[{"timeUnixNano":"-1"}]}}"#), "timeUnixNano is out of range");
    assert_eq!(refused(r#"{"sum":{"isMonotonic":"yes"}}"#), "isMonotonic is not a boolean");
    assert_eq!(
        refused(r#"{"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_SOMETIMES"}}"#),
        "aggregationTemporality is neither an integer nor a known name: AGGREGATION_TEMPORALITY_SOMETIMES"
    );
    assert_eq!(refused(r#"{"histogram":{"dataPoints":[{"bucketCounts":"1"}]}}"#), "bucketCounts is not an array");
    assert_eq!(
        refused(r#"{"histogram":{"dataPoints":[{"bucketCounts":[true]}]}}"#),
        "a bucketCounts entry is not an integer"
    );
    assert_eq!(
        refused(r#"{"histogram":{"dataPoints":[{"explicitBounds":[{}]}]}}"#),
        "an explicitBounds entry is not a number"
    );
    assert_eq!(refused(r#"{"histogram":{"dataPoints":[{"min":"low"}]}}"#), "min is not a number");
    assert_eq!(refused(r#"{"exponentialHistogram":{"dataPoints":[1]}}"#), "a data point is not a JSON object");
    assert_eq!(
        refused(r#"{"summary":{"dataPoints":[{"quantileValues":[{"quantile":[]}]}]}}"#),
        "quantile is not a number"
    );
    assert_eq!(refused(r#"{"summary":{"dataPoints":[{"flags":-1}]}}"#), "flags is out of range");
    assert!(decode_metrics(b"{", Encoding::Json).unwrap_err().0.contains("metrics export request (JSON)"));
    assert_eq!(
        decode_metrics(br#"{"resourceMetrics":{}}"#, Encoding::Json).unwrap_err().0,
        "resourceMetrics is not an array"
    );
    let unknown = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"a","metadata":[],"future":1}]}]}]}"#;
    assert_eq!(
        decode_metrics(unknown, Encoding::Json).unwrap().resource_metrics[0].scope_metrics[0].metrics[0].name,
        "a"
    );
}

#[test]
fn json_metrics_make_one_record_per_data_point_and_count_alike() {
    let body = metrics_json().to_string();
    let request = decode_metrics(body.as_bytes(), Encoding::Json).unwrap();
    let (records, refused) = point_records(request);
    assert_eq!(refused, 2, "the exponential histogram's points");
    let names: Vec<_> = records.iter().map(|r| r.metric.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(
        names,
        [
            "process.memory.usage",
            "process.memory.usage",
            "http.server.requests",
            "http.server.duration",
            "http.server.duration",
            "gc.pause",
            "jobs.done"
        ]
    );
    for r in &records[..6] {
        assert_eq!(r.resource, Some(metrics_resource()));
        assert_eq!(r.scope, Some(metrics_scope()));
    }
    assert_eq!(records[6].resource.as_ref().unwrap().attributes[0].key, "service.name");
    assert_eq!(records[6].scope, None);
    for r in &records {
        let points = match r.metric.as_ref().unwrap().data.as_ref().unwrap() {
            proto::Data::Gauge(g) => g.data_points.len(),
            proto::Data::Sum(s) => s.data_points.len(),
            proto::Data::Histogram(h) => h.data_points.len(),
            proto::Data::Summary(s) => s.data_points.len(),
            proto::Data::ExponentialHistogram(_) => panic!("exponential histograms are not stored"),
        };
        assert_eq!(points, 1, "each record holds its point alone");
        assert_eq!(&PointRecord::read(&r.encode_to_vec()).unwrap(), r);
    }
    // The point keeps its metric's type and temporality.
    let Some(proto::Data::Histogram(h)) = &records[4].metric.as_ref().unwrap().data else { panic!("a histogram") };
    assert_eq!((h.aggregation_temporality, h.data_points[0].time_unix_nano), (1, 1_732_442_420_000_000_000));
    let counted = records.len() as u64 + refused;
    assert_eq!(count(Signal::Metrics, body.as_bytes(), Encoding::Json).unwrap(), counted);
    let snake = snake_case(metrics_json()).to_string();
    assert_eq!(count(Signal::Metrics, snake.as_bytes(), Encoding::Json).unwrap(), counted);
    assert_eq!(count(Signal::Metrics, &metrics_request().encode_to_vec(), Encoding::Protobuf).unwrap(), counted);
}

const TRACE_ID: [u8; 16] =
    [0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c];
const SERVER_SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];

fn traces_resource() -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", Value::String("shop".to_owned())),
            kv("heroku.dyno.name", Value::String("web.1".to_owned())),
        ],
    }
}

fn traces_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "opentelemetry-instrumentation-rack".to_owned(),
        version: "0.24.0".to_owned(),
        attributes: vec![],
    }
}

/// A traces export with every field drainpipe reads, as prost values.
fn traces_request() -> proto::ExportTraceServiceRequest {
    use proto::*;
    let server = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SERVER_SPAN_ID.to_vec(),
        trace_state: "rojo=00f067aa0ba902b7".to_owned(),
        parent_span_id: vec![],
        flags: 257,
        name: "GET /orders".to_owned(),
        kind: 2,
        start_time_unix_nano: 1_732_442_400_123_456_789,
        end_time_unix_nano: 1_732_442_400_223_456_789,
        attributes: vec![
            kv("http.method", Value::String("GET".to_owned())),
            kv("http.status_code", Value::Int(500)),
            kv("http.retried", Value::Bool(false)),
        ],
        dropped_attributes_count: 1,
        events: vec![
            SpanEvent {
                time_unix_nano: 1_732_442_400_200_000_000,
                name: "exception".to_owned(),
                attributes: vec![kv("exception.type", Value::String("RuntimeError".to_owned()))],
                dropped_attributes_count: 2,
            },
            SpanEvent { time_unix_nano: 1_732_442_400_210_000_000, name: "retry".to_owned(), ..SpanEvent::default() },
        ],
        dropped_events_count: 3,
        links: vec![SpanLink {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
            trace_state: "congo=t61rcWkgMzE".to_owned(),
            attributes: vec![kv("link.kind", Value::String("follows".to_owned()))],
            dropped_attributes_count: 4,
            flags: 256,
        }],
        dropped_links_count: 5,
        status: Some(SpanStatus { message: "boom".to_owned(), code: 2 }),
    };
    let client = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80],
        parent_span_id: SERVER_SPAN_ID.to_vec(),
        flags: 1,
        name: "SELECT orders".to_owned(),
        kind: 3,
        start_time_unix_nano: 1_732_442_400_130_000_000,
        end_time_unix_nano: 1_732_442_400_180_000_000,
        attributes: vec![kv("db.system", Value::String("postgresql".to_owned()))],
        status: Some(SpanStatus::default()),
        ..Span::default()
    };
    let job = Span {
        trace_id: vec![0x01; 16],
        span_id: vec![0x02; 8],
        name: "process".to_owned(),
        kind: 5,
        start_time_unix_nano: 1_732_442_401_000_000_000,
        end_time_unix_nano: 1_732_442_402_000_000_000,
        status: Some(SpanStatus { message: String::new(), code: 1 }),
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpanList {
                resource: Some(traces_resource()),
                scope_spans: vec![ScopeSpanList { scope: Some(traces_scope()), spans: vec![server, client] }],
            },
            ResourceSpanList {
                resource: None,
                scope_spans: vec![ScopeSpanList {
                    scope: Some(InstrumentationScope { name: "sidekiq".to_owned(), ..Default::default() }),
                    spans: vec![job],
                }],
            },
        ],
    }
}

/// [`traces_request`] as the OpenTelemetry Collector writes it in OTLP JSON.
fn traces_json() -> serde_json::Value {
    serde_json::json!({"resourceSpans": [
        {
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "shop"}},
                {"key": "heroku.dyno.name", "value": {"stringValue": "web.1"}}
            ]},
            "scopeSpans": [{
                "scope": {"name": "opentelemetry-instrumentation-rack", "version": "0.24.0"},
                "spans": [
                    {
                        "traceId": "5b8efff798038103d269b633813fc60c",
                        "spanId": "eee19b7ec3c1b174",
                        "traceState": "rojo=00f067aa0ba902b7",
                        "parentSpanId": "",
                        "flags": 257,
                        "name": "GET /orders",
                        "kind": 2,
                        "startTimeUnixNano": "1732442400123456789",
                        "endTimeUnixNano": "1732442400223456789",
                        "attributes": [
                            {"key": "http.method", "value": {"stringValue": "GET"}},
                            {"key": "http.status_code", "value": {"intValue": "500"}},
                            {"key": "http.retried", "value": {"boolValue": false}}
                        ],
                        "droppedAttributesCount": 1,
                        "events": [
                            {
                                "timeUnixNano": "1732442400200000000",
                                "name": "exception",
                                "attributes": [{"key": "exception.type", "value": {"stringValue": "RuntimeError"}}],
                                "droppedAttributesCount": 2
                            },
                            {"timeUnixNano": "1732442400210000000", "name": "retry"}
                        ],
                        "droppedEventsCount": 3,
                        "links": [{
                            "traceId": "abababababababababababababababab",
                            "spanId": "0102030405060708",
                            "traceState": "congo=t61rcWkgMzE",
                            "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}],
                            "droppedAttributesCount": 4,
                            "flags": 256
                        }],
                        "droppedLinksCount": 5,
                        "status": {"message": "boom", "code": 2}
                    },
                    {
                        "traceId": "5b8efff798038103d269b633813fc60c",
                        "spanId": "1020304050607080",
                        "parentSpanId": "eee19b7ec3c1b174",
                        "flags": 1,
                        "name": "SELECT orders",
                        "kind": 3,
                        "startTimeUnixNano": "1732442400130000000",
                        "endTimeUnixNano": "1732442400180000000",
                        "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}}],
                        "status": {}
                    }
                ]
            }],
            "schemaUrl": "https://opentelemetry.io/schemas/1.24.0"
        },
        {
            "scopeSpans": [{
                "scope": {"name": "sidekiq"},
                "spans": [{
                    "traceId": "01010101010101010101010101010101",
                    "spanId": "0202020202020202",
                    "name": "process",
                    "kind": 5,
                    "startTimeUnixNano": "1732442401000000000",
                    "endTimeUnixNano": "1732442402000000000",
                    "status": {"code": 1}
                }]
            }]
        }
    ]})
}

#[test]
fn json_traces_decode_to_the_same_request_as_their_prost_values() {
    let body = traces_json().to_string();
    assert_eq!(decode_traces(body.as_bytes(), Encoding::Json).unwrap(), traces_request());
    let snake = snake_case(traces_json()).to_string();
    assert!(snake.contains("\"resource_spans\"") && snake.contains("\"parent_span_id\""));
    assert_eq!(decode_traces(snake.as_bytes(), Encoding::Json).unwrap(), traces_request(), ".proto names");
    let protobuf = traces_request().encode_to_vec();
    assert_eq!(decode_traces(&protobuf, Encoding::Protobuf).unwrap(), traces_request());
}

#[test]
fn json_traces_take_enum_names() {
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR","message":"boom"}},
        {"kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_OK"}},
        {"kind":"SPAN_KIND_UNSPECIFIED","status":{"code":"STATUS_CODE_UNSET"}},
        {"kind":"3","status":{"code":"2"}}]}]}]}"#;
    let request = decode_traces(body, Encoding::Json).unwrap();
    let got: Vec<_> = request.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| (s.kind, s.status.as_ref().unwrap().code))
        .collect();
    assert_eq!(got, [(2, 2), (5, 1), (0, 0), (3, 2)]);
}

#[test]
fn json_traces_with_a_wrongly_typed_known_key_are_refused() {
    let refused = |span: &str| {
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
        decode_traces(body.as_bytes(), Encoding::Json).unwrap_err().0
    };
    assert_eq!(refused(r#"{"traceId":"xyz"}"#), "traceId is not hex");
    assert_eq!(refused(r#"{"spanId":12}"#), "spanId is not a string");
    assert_eq!(refused(r#"{"parentSpanId":"abc"}"#), "parentSpanId is not hex");
    assert_eq!(refused(r#"{"name":["GET"]}"#), "name is not a string");
    assert_eq!(refused(r#"{"kind":true}"#), "kind is not an integer");
    assert_eq!(
        refused(r#"{"kind":"SPAN_KIND_SOMETIMES"}"#),
        "kind is neither an integer nor a known name: SPAN_KIND_SOMETIMES"
    );
    assert_eq!(refused(r#"{"kind":4294967296}"#), "kind is out of range");
    assert_eq!(refused(r#"{"startTimeUnixNano":"soon"}"#), "startTimeUnixNano is not an integer");
    assert_eq!(refused(r#"{"droppedLinksCount":-1}"#), "droppedLinksCount is out of range");
    assert_eq!(refused(r#"{"flags":4294967296}"#), "flags is out of range");
    assert_eq!(refused(r#"{"attributes":{}}"#), "attributes is not an array");
    assert_eq!(refused(r#"{"events":{}}"#), "events is not an array");
    assert_eq!(refused(r#"{"events":[{"name":false}]}"#), "name is not a string");
    assert_eq!(refused(r#"{"links":[{"spanId":"zz"}]}"#), "spanId is not hex");
    assert_eq!(refused(r#"{"links":["a"]}"#), "a span link is not a JSON object");
    assert_eq!(refused(r#"{"status":"error"}"#), "status is not a JSON object");
    assert_eq!(
        refused(r#"{"status":{"code":"STATUS_CODE_MAYBE"}}"#),
        "code is neither an integer nor a known name: STATUS_CODE_MAYBE"
    );
    assert_eq!(refused("7"), "a span is not a JSON object");
    assert!(decode_traces(b"[]", Encoding::Json).unwrap_err().0.contains("not a JSON object"));
    assert!(decode_traces(b"{", Encoding::Json).unwrap_err().0.contains("traces export request (JSON)"));
    let unknown = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","somethingNew":{}}]}]}]}"#;
    assert_eq!(decode_traces(unknown, Encoding::Json).unwrap().resource_spans[0].scope_spans[0].spans[0].name, "a");
}

#[test]
fn json_traces_make_one_record_per_span_and_count_alike() {
    let body = traces_json().to_string();
    let request = decode_traces(body.as_bytes(), Encoding::Json).unwrap();
    let records: Vec<_> = span_records(request).collect();
    let names: Vec<_> = records.iter().map(|r| r.span.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(names, ["GET /orders", "SELECT orders", "process"]);
    for r in &records[..2] {
        assert_eq!(r.resource, Some(traces_resource()));
        assert_eq!(r.scope, Some(traces_scope()));
    }
    assert_eq!(records[2].resource, None);
    assert_eq!(records[2].scope.as_ref().unwrap().name, "sidekiq");
    let expected = traces_request();
    assert_eq!(records[0].span.as_ref(), Some(&expected.resource_spans[0].scope_spans[0].spans[0]));
    for r in &records {
        assert_eq!(&SpanRecord::read(&r.encode_to_vec()).unwrap(), r);
    }
    assert_eq!(count(Signal::Traces, body.as_bytes(), Encoding::Json).unwrap(), records.len() as u64);
    let snake = snake_case(traces_json()).to_string();
    assert_eq!(count(Signal::Traces, snake.as_bytes(), Encoding::Json).unwrap(), records.len() as u64);
    assert_eq!(count(Signal::Traces, &expected.encode_to_vec(), Encoding::Protobuf).unwrap(), records.len() as u64);
}
