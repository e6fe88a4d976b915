//! The OTLP messages drainpipe reads, with the field numbers of opentelemetry-proto's
//! `collector/logs/v1`, `logs/v1`, `common/v1` and `resource/v1` (fields not listed are
//! skipped when decoding), and `google.rpc.Status` for error answers.

/// `ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    #[prost(string, tag = "3")]
    pub severity_text: String,
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed32, tag = "8")]
    pub flags: u32,
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "12")]
    pub event_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    #[prost(message, tag = "6")]
    KvList(KeyValueList),
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The partial success of any export answer: logs count records, metrics data points, traces
/// spans; the field numbers are the same in all three.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// Any `Export*ServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

/// Metrics and traces are only counted: each level keeps only the list below it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Batches {
    /// `resource_metrics` / `resource_spans`.
    #[prost(message, repeated, tag = "1")]
    pub resources: Vec<ResourceBatch>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceBatch {
    /// `scope_metrics` / `scope_spans`.
    #[prost(message, repeated, tag = "2")]
    pub scopes: Vec<ScopeBatch>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeBatch {
    /// `metrics`.
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<Item>,
}

/// `ExportTraceServiceRequest` > `resource_spans` > `scope_spans` > `spans`, counted only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanBatches {
    #[prost(message, repeated, tag = "1")]
    pub resources: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    pub scopes: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    /// A span's own fields (name, times, attributes) are skipped.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Empty>,
}

/// A metric, whose data points are under the field of its type:
/// gauge 5, sum 7, histogram 9, exponential histogram 10, summary 11.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    #[prost(message, optional, tag = "5")]
    pub gauge: Option<Points>,
    #[prost(message, optional, tag = "7")]
    pub sum: Option<Points>,
    #[prost(message, optional, tag = "9")]
    pub histogram: Option<Points>,
    #[prost(message, optional, tag = "10")]
    pub exponential_histogram: Option<Points>,
    #[prost(message, optional, tag = "11")]
    pub summary: Option<Points>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Points {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<Empty>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}
