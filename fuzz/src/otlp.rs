//! Structured OTLP log records: resource attributes drawn from the names drainpipe reads
//! (`heroku.app.name`, `service.name`, `heroku.dyno.name`, …) and any others, bodies that are
//! router, metrics, platform or app lines, and times and severities at their edges.

use arbitrary::Arbitrary;
use drainpipe_otlp::proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value,
};

use crate::input::{Body, Junk, Word};

/// The frame an OTLP export arrives in, as the targets that take raw export bodies see it: no
/// app, token or labels (the export's resource names the app), received at one fixed time.
pub fn frame_context() -> drainpipe_transform::Context<'static> {
    drainpipe_transform::Context {
        app: None,
        drain_token: None,
        frame_id: None,
        labels: &[],
        received_at: drainpipe_transform::Timestamp::from_unix(1_732_442_400, 0),
        structured_data: drainpipe_transform::StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    }
}

const ATTRIBUTE_KEYS: &[&str] = &[
    "heroku.app.name",
    "service.name",
    "heroku.app.id",
    "heroku.dyno.name",
    "service.instance.id",
    "heroku.dyno.type",
    "heroku.workload.id",
    "heroku.release.version",
    "heroku.source",
    "host.name",
    "",
    ".",
    "a..b",
    "a.",
    ".a",
    "a",
    "a.b",
    " ",
    "\u{2003}",
    "level",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum AttrKey {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Attr {
    pub key: AttrKey,
    pub value: Option<Any>,
}

/// An `AnyValue`.
#[derive(Arbitrary, Debug, Clone)]
pub enum Any {
    Empty,
    Word(Word),
    Str(String),
    Text(Vec<Junk>),
    Body(Body),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Any>),
    Kv(Vec<Attr>),
}

fn lossy(junk: &[Junk]) -> String {
    let mut out = Vec::new();
    for j in junk {
        j.push(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Any {
    fn value(&self) -> AnyValue {
        let value = match self {
            Any::Empty => None,
            Any::Word(w) => Some(Value::String(w.as_str().to_owned())),
            Any::Str(s) => Some(Value::String(s.clone())),
            Any::Text(j) => Some(Value::String(lossy(j))),
            Any::Body(b) => {
                let mut out = Vec::new();
                b.push(&mut out);
                Some(Value::String(String::from_utf8_lossy(&out).into_owned()))
            }
            Any::Bool(b) => Some(Value::Bool(*b)),
            Any::Int(n) => Some(Value::Int(*n)),
            Any::Double(f) => Some(Value::Double(*f)),
            Any::Bytes(b) => Some(Value::Bytes(b.clone())),
            Any::Array(items) => Some(Value::Array(ArrayValue { values: items.iter().map(Any::value).collect() })),
            Any::Kv(attrs) => Some(Value::KvList(KeyValueList { values: attrs.iter().map(Attr::key_value).collect() })),
        };
        AnyValue { value }
    }
}

impl Attr {
    fn key_value(&self) -> KeyValue {
        let key = match &self.key {
            AttrKey::Known(i) => ATTRIBUTE_KEYS[usize::from(*i) % ATTRIBUTE_KEYS.len()].to_owned(),
            AttrKey::Any(s) => s.clone(),
        };
        KeyValue { key, value: self.value.as_ref().map(Any::value) }
    }
}

/// A time in nanoseconds since the epoch.
#[derive(Arbitrary, Debug, Clone)]
pub enum Nanos {
    Zero,
    Recent(u64),
    Edge(u8),
    Any(u64),
}

impl Nanos {
    fn get(&self) -> u64 {
        match self {
            Nanos::Zero => 0,
            Nanos::Recent(n) => 1_741_944_660_000_000_000 + n % 100_000_000_000_000_000,
            Nanos::Edge(i) => {
                [1, 999_999_999, 1_000_000_000, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX][usize::from(*i) % 6]
            }
            Nanos::Any(n) => *n,
        }
    }
}

/// One export request of resources, scopes and records.
#[derive(Arbitrary, Debug, Clone)]
pub struct Request {
    pub resources: Vec<(Option<Vec<Attr>>, Vec<Scope>)>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Scope {
    pub scope: Option<(String, String)>,
    pub records: Vec<Record>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Record {
    pub time: Nanos,
    pub observed: Nanos,
    pub severity_number: i32,
    pub severity_text: Option<Word>,
    pub body: Option<Any>,
    pub attributes: Vec<Attr>,
    pub from_heroku: bool,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub flags: u32,
    pub event_name: String,
}

impl Request {
    pub fn proto(&self) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: self
                .resources
                .iter()
                .map(|(attrs, scopes)| ResourceLogs {
                    resource: attrs.as_ref().map(|a| Resource { attributes: a.iter().map(Attr::key_value).collect() }),
                    scope_logs: scopes.iter().map(Scope::proto).collect(),
                })
                .collect(),
        }
    }
}

impl Scope {
    fn proto(&self) -> ScopeLogs {
        ScopeLogs {
            scope: self.scope.as_ref().map(|(name, version)| InstrumentationScope {
                name: name.clone(),
                version: version.clone(),
                attributes: Vec::new(),
            }),
            log_records: self.records.iter().map(Record::proto).collect(),
        }
    }
}

impl Record {
    fn proto(&self) -> LogRecord {
        let mut attributes: Vec<KeyValue> = self.attributes.iter().map(Attr::key_value).collect();
        if self.from_heroku {
            attributes.push(KeyValue {
                key: "heroku.source".into(),
                value: Some(AnyValue { value: Some(Value::String("heroku".into())) }),
            });
        }
        LogRecord {
            time_unix_nano: self.time.get(),
            observed_time_unix_nano: self.observed.get(),
            severity_number: self.severity_number,
            severity_text: self.severity_text.map(|w| w.as_str().to_owned()).unwrap_or_default(),
            body: self.body.as_ref().map(Any::value),
            attributes,
            flags: self.flags,
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            event_name: self.event_name.clone(),
        }
    }
}

/// OTLP JSON of the same request, as an exporter writes it (lowerCamelCase keys, 64-bit integers
/// as decimal strings, ids as hex, bytes as base64); `None` when it holds a double JSON cannot
/// carry (NaN, infinities) or that serde_json would not read back exactly, or when it nests
/// deeper than JSON readers go (serde_json, which drainpipe's OTLP JSON reader uses, stops at
/// 128 levels and the request is refused with 400: its protobuf form is still checked).
impl Request {
    pub fn json(&self) -> Option<Vec<u8>> {
        let resources: Option<Vec<serde_json::Value>> = self
            .resources
            .iter()
            .map(|(attrs, scopes)| {
                let mut o = serde_json::Map::new();
                if let Some(attrs) = attrs {
                    o.insert("resource".into(), serde_json::json!({ "attributes": attrs_json(attrs)? }));
                }
                let scopes: Option<Vec<_>> = scopes.iter().map(Scope::json).collect();
                o.insert("scopeLogs".into(), scopes?.into());
                Some(serde_json::Value::Object(o))
            })
            .collect();
        let request = serde_json::json!({ "resourceLogs": resources? });
        (depth(&request) < JSON_MAX_DEPTH).then(|| serde_json::to_vec(&request).ok()).flatten()
    }
}

/// serde_json's recursion limit: arrays and objects nested this deep are not read.
const JSON_MAX_DEPTH: usize = 128;

/// How many arrays and objects are nested at the deepest point of `v`.
fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl Scope {
    fn json(&self) -> Option<serde_json::Value> {
        let mut o = serde_json::Map::new();
        if let Some((name, version)) = &self.scope {
            o.insert("scope".into(), serde_json::json!({ "name": name, "version": version }));
        }
        let records: Option<Vec<_>> = self.records.iter().map(|r| record_json(&r.proto())).collect();
        o.insert("logRecords".into(), records?.into());
        Some(serde_json::Value::Object(o))
    }
}

fn record_json(r: &LogRecord) -> Option<serde_json::Value> {
    let mut o = serde_json::json!({
        "timeUnixNano": r.time_unix_nano.to_string(),
        "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
        "severityNumber": r.severity_number,
        "severityText": r.severity_text,
        "attributes": r.attributes.iter().map(key_value_json).collect::<Option<Vec<_>>>()?,
        "flags": r.flags,
        "traceId": hex(&r.trace_id),
        "spanId": hex(&r.span_id),
        "eventName": r.event_name,
    });
    if let Some(body) = &r.body {
        o["body"] = any_json(body)?;
    }
    Some(o)
}

fn attrs_json(attrs: &[Attr]) -> Option<Vec<serde_json::Value>> {
    attrs.iter().map(|a| key_value_json(&a.key_value())).collect()
}

fn key_value_json(kv: &KeyValue) -> Option<serde_json::Value> {
    let mut o = serde_json::json!({ "key": kv.key });
    if let Some(v) = &kv.value {
        o["value"] = any_json(v)?;
    }
    Some(o)
}

fn any_json(v: &AnyValue) -> Option<serde_json::Value> {
    Some(match &v.value {
        None => serde_json::json!({}),
        Some(Value::String(s)) => serde_json::json!({ "stringValue": s }),
        Some(Value::Bool(b)) => serde_json::json!({ "boolValue": b }),
        Some(Value::Int(n)) => serde_json::json!({ "intValue": n.to_string() }),
        // serde_json (without its `float_roundtrip` feature) reads some doubles one ulp off, so
        // such a request decodes to another record from JSON than from protobuf: a known
        // finding (see the fuzz report), left out of the comparison until it is decided.
        Some(Value::Double(f)) => {
            let n = serde_json::Number::from_f64(*f)?;
            let back: f64 = serde_json::from_str(&n.to_string()).ok()?;
            if back.to_bits() != f.to_bits() && !(back == 0.0 && *f == 0.0) {
                return None;
            }
            serde_json::json!({ "doubleValue": n })
        }
        Some(Value::Bytes(b)) => serde_json::json!({ "bytesValue": base64(b) }),
        Some(Value::Array(a)) => {
            serde_json::json!({ "arrayValue": { "values": a.values.iter().map(any_json).collect::<Option<Vec<_>>>()? } })
        }
        Some(Value::KvList(l)) => serde_json::json!({
            "kvlistValue": { "values": l.values.iter().map(key_value_json).collect::<Option<Vec<_>>>()? }
        }),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base64(b: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &c)| n | (u32::from(c) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
