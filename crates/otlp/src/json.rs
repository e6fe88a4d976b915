//! OTLP JSON (the protobuf JSON mapping with OTLP's rules): keys in lowerCamelCase (the
//! `.proto` names are accepted too), 64-bit integers as decimal strings or numbers, enums as
//! integers, trace and span ids as hex, `bytesValue` as base64. Unknown keys are ignored, as
//! OTLP asks of receivers; a known key with a value of the wrong type is an error.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value as V,
};
use crate::{DecodeError, Signal};

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not an OTLP logs export request (JSON): {e}")))?;
    let top = object(&v, "the request")?;
    Ok(ExportLogsServiceRequest { resource_logs: list(top, "resourceLogs", "resource_logs", resource_logs)? })
}

/// An OTLP JSON metrics export request. (Written next: refused until then.)
pub(crate) fn metrics_request(_body: &[u8]) -> Result<crate::proto::ExportMetricsServiceRequest> {
    Err(DecodeError("OTLP JSON metrics are not read yet".to_owned()))
}

/// An OTLP JSON traces export request. (Written next: refused until then.)
pub(crate) fn traces_request(_body: &[u8]) -> Result<crate::proto::ExportTraceServiceRequest> {
    Err(DecodeError("OTLP JSON traces are not read yet".to_owned()))
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
    let bad = || DecodeError(format!("{camel} is not an integer"));
    match field(o, camel, snake) {
        None => Ok(0),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(Value::Number(n)) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

fn unsigned(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<u64> {
    u64::try_from(integer(o, camel, snake)?).map_err(|_| DecodeError(format!("{camel} is out of range")))
}

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
