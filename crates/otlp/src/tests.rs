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
