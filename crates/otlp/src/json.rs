//! OTLP JSON (the protobuf JSON mapping with OTLP's rules): keys in lowerCamelCase (the
//! `.proto` names are accepted too), 64-bit integers as decimal strings or numbers, enums as
//! integers (the mapping's names, `SPAN_KIND_SERVER`, are accepted too), doubles as numbers or
//! `"NaN"`, `"Infinity"`, `"-Infinity"`, trace and span ids as hex, `bytesValue` as base64.
//! Unknown keys are ignored, as OTLP asks of receivers; a known key with a value of the wrong
//! type is an error.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::proto::{
    AnyValue, ArrayValue, Data, Empty, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Gauge, Histogram, HistogramDataPoint, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Metric, Number, NumberDataPoint, Points, Resource, ResourceLogs, ResourceMetrics, ResourceSpanList,
    ScopeLogs, ScopeMetrics, ScopeSpanList, Span, SpanEvent, SpanLink, SpanStatus, Sum, Summary, SummaryDataPoint,
    Value as V, ValueAtQuantile,
};
use crate::{DecodeError, Signal};

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not an OTLP logs export request (JSON): {e}")))?;
    let top = object(&v, "the request")?;
    Ok(ExportLogsServiceRequest { resource_logs: list(top, "resourceLogs", "resource_logs", resource_logs)? })
}

pub(crate) fn metrics_request(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not an OTLP metrics export request (JSON): {e}")))?;
    let top = object(&v, "the request")?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: list(top, "resourceMetrics", "resource_metrics", resource_metrics)?,
    })
}

pub(crate) fn traces_request(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not an OTLP traces export request (JSON): {e}")))?;
    let top = object(&v, "the request")?;
    Ok(ExportTraceServiceRequest { resource_spans: list(top, "resourceSpans", "resource_spans", resource_spans)? })
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| DecodeError(format!("{what} is not a JSON object")))
}

/// The value under `camel` (or the `.proto` name `snake`).
fn field<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel).or_else(|| o.get(snake)).filter(|v| !v.is_null())
}

fn list<T>(o: &Map<String, Value>, camel: &str, snake: &str, each: fn(&Value) -> Result<T>) -> Result<Vec<T>> {
    match field(o, camel, snake) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(each).collect(),
        Some(_) => Err(DecodeError(format!("{camel} is not an array"))),
    }
}

fn string(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<String> {
    match field(o, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(DecodeError(format!("{camel} is not a string"))),
    }
}

/// A 64-bit integer: a decimal string (as OTLP writes them) or a number.
fn integer(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<i128> {
    field(o, camel, snake).map_or(Ok(0), |v| integer_value(v, camel))
}

/// An integer given as a decimal string or a number (`what` names it in the error).
fn integer_value(v: &Value, what: &str) -> Result<i128> {
    let bad = || DecodeError(format!("{what} is not an integer"));
    match v {
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn unsigned(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<u64> {
    u64::try_from(integer(o, camel, snake)?).map_err(|_| DecodeError(format!("{camel} is out of range")))
}

/// A 32-bit unsigned integer (flags, dropped counts): a number, or a decimal string.
fn unsigned32(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<u32> {
    u32::try_from(integer(o, camel, snake)?).map_err(|_| DecodeError(format!("{camel} is out of range")))
}

fn boolean(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<bool> {
    match field(o, camel, snake) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(DecodeError(format!("{camel} is not a boolean"))),
    }
}

/// A double: a JSON number, or (the protobuf JSON mapping) `"NaN"`, `"Infinity"`, `"-Infinity"`
/// or a number written as a string.
fn double(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<f64> {
    field(o, camel, snake).map_or(Ok(0.0), |v| double_value(v, camel))
}

/// [`double`] of a field that may be absent (`sum`, `min`, `max` of a histogram point).
fn optional_double(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<Option<f64>> {
    field(o, camel, snake).map(|v| double_value(v, camel)).transpose()
}

fn double_value(v: &Value, what: &str) -> Result<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            // Rust also reads `inf` and `nan`, which the mapping does not write: finite only.
            s => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        },
        _ => None,
    };
    n.ok_or_else(|| DecodeError(format!("{what} is not a number")))
}

/// An enum: an integer as OTLP JSON writes it, or one of the protobuf JSON mapping's `names`.
fn enumeration(o: &Map<String, Value>, camel: &str, snake: &str, names: &[(&str, i32)]) -> Result<i32> {
    if let Some(Value::String(s)) = field(o, camel, snake) {
        if let Some((_, n)) = names.iter().find(|(name, _)| name == s) {
            return Ok(*n);
        }
        if s.trim().parse::<i128>().is_err() {
            return Err(DecodeError(format!("{camel} is neither an integer nor a known name: {s}")));
        }
    }
    i32::try_from(integer(o, camel, snake)?).map_err(|_| DecodeError(format!("{camel} is out of range")))
}

const AGGREGATION_TEMPORALITIES: &[(&str, i32)] = &[
    ("AGGREGATION_TEMPORALITY_UNSPECIFIED", 0),
    ("AGGREGATION_TEMPORALITY_DELTA", 1),
    ("AGGREGATION_TEMPORALITY_CUMULATIVE", 2),
];

const SPAN_KINDS: &[(&str, i32)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
];

const STATUS_CODES: &[(&str, i32)] = &[("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)];

/// Trace and span ids: hex, as OTLP JSON writes them (not base64).
fn hex_id(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<u8>> {
    let s = string(o, camel, snake)?;
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DecodeError(format!("{camel} is not hex")));
    }
    let bad = || DecodeError(format!("{camel} is not hex"));
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()).ok_or_else(bad))
        .collect()
}

fn resource_logs(v: &Value) -> Result<ResourceLogs> {
    let o = object(v, "a resourceLogs entry")?;
    Ok(ResourceLogs {
        resource: field(o, "resource", "resource").map(resource).transpose()?,
        scope_logs: list(o, "scopeLogs", "scope_logs", scope_logs)?,
    })
}

fn resource(v: &Value) -> Result<Resource> {
    let o = object(v, "resource")?;
    Ok(Resource { attributes: list(o, "attributes", "attributes", key_value)? })
}

fn scope_logs(v: &Value) -> Result<ScopeLogs> {
    let o = object(v, "a scopeLogs entry")?;
    Ok(ScopeLogs {
        scope: field(o, "scope", "scope").map(scope).transpose()?,
        log_records: list(o, "logRecords", "log_records", log_record)?,
    })
}

fn scope(v: &Value) -> Result<InstrumentationScope> {
    let o = object(v, "scope")?;
    Ok(InstrumentationScope {
        name: string(o, "name", "name")?,
        version: string(o, "version", "version")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
    })
}

fn log_record(v: &Value) -> Result<LogRecord> {
    let o = object(v, "a log record")?;
    let severity = match field(o, "severityNumber", "severity_number") {
        // Enums are integers in OTLP JSON; the protobuf JSON mapping's names are taken too.
        Some(Value::String(name)) if name.starts_with("SEVERITY_NUMBER_") => severity_by_name(name),
        _ => i32::try_from(integer(o, "severityNumber", "severity_number")?)
            .map_err(|_| DecodeError("severityNumber is out of range".to_owned()))?,
    };
    Ok(LogRecord {
        time_unix_nano: unsigned(o, "timeUnixNano", "time_unix_nano")?,
        observed_time_unix_nano: unsigned(o, "observedTimeUnixNano", "observed_time_unix_nano")?,
        severity_number: severity,
        severity_text: string(o, "severityText", "severity_text")?,
        body: field(o, "body", "body").map(any_value).transpose()?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        flags: u32::try_from(integer(o, "flags", "flags")?)
            .map_err(|_| DecodeError("flags is out of range".to_owned()))?,
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        event_name: string(o, "eventName", "event_name")?,
    })
}

fn resource_metrics(v: &Value) -> Result<ResourceMetrics> {
    let o = object(v, "a resourceMetrics entry")?;
    Ok(ResourceMetrics {
        resource: field(o, "resource", "resource").map(resource).transpose()?,
        scope_metrics: list(o, "scopeMetrics", "scope_metrics", scope_metrics)?,
    })
}

fn scope_metrics(v: &Value) -> Result<ScopeMetrics> {
    let o = object(v, "a scopeMetrics entry")?;
    Ok(ScopeMetrics {
        scope: field(o, "scope", "scope").map(scope).transpose()?,
        metrics: list(o, "metrics", "metrics", metric)?,
    })
}

fn metric(v: &Value) -> Result<Metric> {
    let o = object(v, "a metric")?;
    // A oneof: the first of the types present is the metric's (a metric has only one).
    let data = if let Some(g) = field(o, "gauge", "gauge") {
        let g = object(g, "gauge")?;
        Some(Data::Gauge(Gauge { data_points: list(g, "dataPoints", "data_points", number_data_point)? }))
    } else if let Some(s) = field(o, "sum", "sum") {
        let s = object(s, "sum")?;
        Some(Data::Sum(Sum {
            data_points: list(s, "dataPoints", "data_points", number_data_point)?,
            aggregation_temporality: enumeration(
                s,
                "aggregationTemporality",
                "aggregation_temporality",
                AGGREGATION_TEMPORALITIES,
            )?,
            is_monotonic: boolean(s, "isMonotonic", "is_monotonic")?,
        }))
    } else if let Some(h) = field(o, "histogram", "histogram") {
        let h = object(h, "histogram")?;
        Some(Data::Histogram(Histogram {
            data_points: list(h, "dataPoints", "data_points", histogram_data_point)?,
            aggregation_temporality: enumeration(
                h,
                "aggregationTemporality",
                "aggregation_temporality",
                AGGREGATION_TEMPORALITIES,
            )?,
        }))
    } else if let Some(e) = field(o, "exponentialHistogram", "exponential_histogram") {
        // Refused downstream: only how many points it has is kept.
        let e = object(e, "exponentialHistogram")?;
        let point = |v: &Value| object(v, "a data point").map(|_| Empty {});
        Some(Data::ExponentialHistogram(Points { data_points: list(e, "dataPoints", "data_points", point)? }))
    } else if let Some(s) = field(o, "summary", "summary") {
        let s = object(s, "summary")?;
        Some(Data::Summary(Summary { data_points: list(s, "dataPoints", "data_points", summary_data_point)? }))
    } else {
        None
    };
    Ok(Metric {
        name: string(o, "name", "name")?,
        description: string(o, "description", "description")?,
        unit: string(o, "unit", "unit")?,
        data,
    })
}

fn number_data_point(v: &Value) -> Result<NumberDataPoint> {
    let o = object(v, "a data point")?;
    let value = if field(o, "asDouble", "as_double").is_some() {
        Some(Number::AsDouble(double(o, "asDouble", "as_double")?))
    } else if field(o, "asInt", "as_int").is_some() {
        let n = integer(o, "asInt", "as_int")?;
        Some(Number::AsInt(i64::try_from(n).map_err(|_| DecodeError("asInt is out of range".to_owned()))?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: unsigned(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: unsigned(o, "timeUnixNano", "time_unix_nano")?,
        value,
        flags: unsigned32(o, "flags", "flags")?,
    })
}

fn histogram_data_point(v: &Value) -> Result<HistogramDataPoint> {
    let o = object(v, "a data point")?;
    Ok(HistogramDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: unsigned(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: unsigned(o, "timeUnixNano", "time_unix_nano")?,
        count: unsigned(o, "count", "count")?,
        sum: optional_double(o, "sum", "sum")?,
        bucket_counts: list(o, "bucketCounts", "bucket_counts", bucket_count)?,
        explicit_bounds: list(o, "explicitBounds", "explicit_bounds", explicit_bound)?,
        flags: unsigned32(o, "flags", "flags")?,
        min: optional_double(o, "min", "min")?,
        max: optional_double(o, "max", "max")?,
    })
}

/// One of `bucketCounts`: a fixed64, so a decimal string or a number.
fn bucket_count(v: &Value) -> Result<u64> {
    u64::try_from(integer_value(v, "a bucketCounts entry")?)
        .map_err(|_| DecodeError("a bucketCounts entry is out of range".to_owned()))
}

fn explicit_bound(v: &Value) -> Result<f64> {
    double_value(v, "an explicitBounds entry")
}

fn summary_data_point(v: &Value) -> Result<SummaryDataPoint> {
    let o = object(v, "a data point")?;
    Ok(SummaryDataPoint {
        attributes: list(o, "attributes", "attributes", key_value)?,
        start_time_unix_nano: unsigned(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: unsigned(o, "timeUnixNano", "time_unix_nano")?,
        count: unsigned(o, "count", "count")?,
        sum: double(o, "sum", "sum")?,
        quantile_values: list(o, "quantileValues", "quantile_values", value_at_quantile)?,
        flags: unsigned32(o, "flags", "flags")?,
    })
}

fn value_at_quantile(v: &Value) -> Result<ValueAtQuantile> {
    let o = object(v, "a quantileValues entry")?;
    Ok(ValueAtQuantile { quantile: double(o, "quantile", "quantile")?, value: double(o, "value", "value")? })
}

fn resource_spans(v: &Value) -> Result<ResourceSpanList> {
    let o = object(v, "a resourceSpans entry")?;
    Ok(ResourceSpanList {
        resource: field(o, "resource", "resource").map(resource).transpose()?,
        scope_spans: list(o, "scopeSpans", "scope_spans", scope_spans)?,
    })
}

fn scope_spans(v: &Value) -> Result<ScopeSpanList> {
    let o = object(v, "a scopeSpans entry")?;
    Ok(ScopeSpanList {
        scope: field(o, "scope", "scope").map(scope).transpose()?,
        spans: list(o, "spans", "spans", span)?,
    })
}

fn span(v: &Value) -> Result<Span> {
    let o = object(v, "a span")?;
    Ok(Span {
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        trace_state: string(o, "traceState", "trace_state")?,
        parent_span_id: hex_id(o, "parentSpanId", "parent_span_id")?,
        flags: unsigned32(o, "flags", "flags")?,
        name: string(o, "name", "name")?,
        kind: enumeration(o, "kind", "kind", SPAN_KINDS)?,
        start_time_unix_nano: unsigned(o, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: unsigned(o, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: unsigned32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        events: list(o, "events", "events", span_event)?,
        dropped_events_count: unsigned32(o, "droppedEventsCount", "dropped_events_count")?,
        links: list(o, "links", "links", span_link)?,
        dropped_links_count: unsigned32(o, "droppedLinksCount", "dropped_links_count")?,
        status: field(o, "status", "status").map(span_status).transpose()?,
    })
}

fn span_event(v: &Value) -> Result<SpanEvent> {
    let o = object(v, "a span event")?;
    Ok(SpanEvent {
        time_unix_nano: unsigned(o, "timeUnixNano", "time_unix_nano")?,
        name: string(o, "name", "name")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: unsigned32(o, "droppedAttributesCount", "dropped_attributes_count")?,
    })
}

fn span_link(v: &Value) -> Result<SpanLink> {
    let o = object(v, "a span link")?;
    Ok(SpanLink {
        trace_id: hex_id(o, "traceId", "trace_id")?,
        span_id: hex_id(o, "spanId", "span_id")?,
        trace_state: string(o, "traceState", "trace_state")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: unsigned32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        flags: unsigned32(o, "flags", "flags")?,
    })
}

fn span_status(v: &Value) -> Result<SpanStatus> {
    let o = object(v, "status")?;
    Ok(SpanStatus { message: string(o, "message", "message")?, code: enumeration(o, "code", "code", STATUS_CODES)? })
}

/// `SEVERITY_NUMBER_WARN2` → 14.
fn severity_by_name(name: &str) -> i32 {
    let rest = name.trim_start_matches("SEVERITY_NUMBER_");
    let (level, n) = match rest.find(|c: char| c.is_ascii_digit()).and_then(|i| rest.split_at_checked(i)) {
        Some((level, digits)) => (level, digits.parse::<i32>().unwrap_or(1)),
        None => (rest, 1),
    };
    let base = match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        "FATAL" => 21,
        _ => return 0,
    };
    base + (n.clamp(1, 4) - 1)
}

fn key_value(v: &Value) -> Result<KeyValue> {
    let o = object(v, "an attribute")?;
    Ok(KeyValue { key: string(o, "key", "key")?, value: field(o, "value", "value").map(any_value).transpose()? })
}

fn any_value(v: &Value) -> Result<AnyValue> {
    let o = object(v, "a value")?;
    let value = if let Some(s) = field(o, "stringValue", "string_value") {
        Some(V::String(s.as_str().ok_or_else(|| DecodeError("stringValue is not a string".to_owned()))?.to_owned()))
    } else if let Some(b) = field(o, "boolValue", "bool_value") {
        Some(V::Bool(b.as_bool().ok_or_else(|| DecodeError("boolValue is not a boolean".to_owned()))?))
    } else if field(o, "intValue", "int_value").is_some() {
        let n = integer(o, "intValue", "int_value")?;
        Some(V::Int(i64::try_from(n).map_err(|_| DecodeError("intValue is out of range".to_owned()))?))
    } else if let Some(d) = field(o, "doubleValue", "double_value") {
        let n = match d {
            Value::String(s) => s.parse().ok(),
            other => other.as_f64(),
        };
        Some(V::Double(n.ok_or_else(|| DecodeError("doubleValue is not a number".to_owned()))?))
    } else if let Some(a) = field(o, "arrayValue", "array_value") {
        Some(V::Array(ArrayValue { values: list(object(a, "arrayValue")?, "values", "values", any_value)? }))
    } else if let Some(kv) = field(o, "kvlistValue", "kvlist_value") {
        Some(V::KvList(KeyValueList { values: list(object(kv, "kvlistValue")?, "values", "values", key_value)? }))
    } else if let Some(b) = field(o, "bytesValue", "bytes_value") {
        let text = b.as_str().ok_or_else(|| DecodeError("bytesValue is not a string".to_owned()))?;
        // The protobuf JSON mapping takes either alphabet, padded or not.
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| DecodeError("bytesValue is not base64".to_owned()))?;
        Some(V::Bytes(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

/// Data points (metrics) or spans (traces) in a JSON export request.
pub(crate) fn count(signal: Signal, body: &[u8]) -> Result<u64> {
    let what = signal.as_str();
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not an OTLP {what} export request (JSON): {e}")))?;
    let (resources, scopes, items) = match signal {
        Signal::Traces => (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans")),
        _ => (("resourceMetrics", "resource_metrics"), ("scopeMetrics", "scope_metrics"), ("metrics", "metrics")),
    };
    let array = |o: &Value, (camel, snake): (&str, &str)| -> Result<Vec<Value>> {
        let o = object(o, "an entry")?;
        match field(o, camel, snake) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(DecodeError(format!("{camel} is not an array"))),
        }
    };
    let mut n = 0;
    for r in array(&v, resources)? {
        for s in array(&r, scopes)? {
            for item in array(&s, items)? {
                n += match signal {
                    Signal::Traces => 1,
                    _ => {
                        let kinds = [
                            ("gauge", "gauge"),
                            ("sum", "sum"),
                            ("histogram", "histogram"),
                            ("exponentialHistogram", "exponential_histogram"),
                            ("summary", "summary"),
                        ];
                        let mut points = 0;
                        for (camel, snake) in kinds {
                            if let Some(k) = field(object(&item, "a metric")?, camel, snake) {
                                points += array(k, ("dataPoints", "data_points"))?.len() as u64;
                            }
                        }
                        points
                    }
                };
            }
        }
    }
    Ok(n)
}

/// Log records in an OTLP JSON export (`resourceLogs` > `scopeLogs` > `logRecords`, or the
/// `.proto` names), counted in one pass that allocates nothing per value, so that what decoding
/// will allocate is known (and refused when too much) before it is allocated, as on the
/// protobuf wire. A key given twice is counted twice: the count is an upper bound.
pub(crate) fn count_log_records(body: &[u8]) -> Result<usize> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let n = de::DeserializeSeed::deserialize(Records::In(Level::Request), &mut de)
        .and_then(|n| de.end().map(|()| n))
        .map_err(|e| DecodeError(format!("not an OTLP logs export request (JSON): {e}")))?;
    Ok(n)
}

mod de {
    pub(super) use serde::de::*;
}

/// The object whose records are counted.
#[derive(Clone, Copy)]
enum Level {
    Request,
    ResourceLogs,
    ScopeLogs,
}

/// What a value holds records under: an object of a level, an array of such objects, or an
/// array of log records (each one counted, its contents skipped).
#[derive(Clone, Copy)]
enum Records {
    In(Level),
    ArrayOf(Level),
    Each,
}

impl<'de> de::DeserializeSeed<'de> for Records {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Records {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Records::In(_) => "an object",
            Records::ArrayOf(_) | Records::Each => "an array",
        })
    }

    /// `null` where a list or object may be: none (as decoding reads it).
    fn visit_unit<E: de::Error>(self) -> std::result::Result<usize, E> {
        Ok(0)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<usize, A::Error> {
        let Records::In(level) = self else {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        };
        let mut n = 0usize;
        while let Some(key) = map.next_key::<Key>()? {
            let inner = match (level, key) {
                (Level::Request, Key::ResourceLogs) => Some(Records::ArrayOf(Level::ResourceLogs)),
                (Level::ResourceLogs, Key::ScopeLogs) => Some(Records::ArrayOf(Level::ScopeLogs)),
                (Level::ScopeLogs, Key::LogRecords) => Some(Records::Each),
                _ => None,
            };
            match inner {
                Some(inner) => n = n.saturating_add(map.next_value_seed(inner)?),
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(n)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<usize, A::Error> {
        let mut n = 0usize;
        match self {
            Records::In(_) => return Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
            Records::ArrayOf(level) => {
                while let Some(m) = seq.next_element_seed(Records::In(level))? {
                    n = n.saturating_add(m);
                }
            }
            Records::Each => {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    n = n.saturating_add(1);
                }
            }
        }
        Ok(n)
    }
}

/// The keys that lead to records, told apart without allocating.
#[derive(Clone, Copy)]
enum Key {
    ResourceLogs,
    ScopeLogs,
    LogRecords,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Key, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> std::result::Result<Key, E> {
                Ok(match k {
                    "resourceLogs" | "resource_logs" => Key::ResourceLogs,
                    "scopeLogs" | "scope_logs" => Key::ScopeLogs,
                    "logRecords" | "log_records" => Key::LogRecords,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}
