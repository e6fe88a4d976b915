//! drainpipe-otlp reads OTLP log export requests (what Heroku Fir's telemetry drains and any
//! OpenTelemetry exporter POST to `/v1/logs`), as binary protobuf or as OTLP JSON, and splits
//! them into one [`Record`] per log record: the record with its resource and scope, encoded on
//! its own. A record is what the receiver spools and the transform turns into one document, so
//! both read it the same way, and the same request (protobuf or JSON) always makes the same
//! records, which is what keeps an exporter's retry from storing anything twice.
//!
//! The message types are written here from the OTLP `.proto` files (only the fields drainpipe
//! reads; prost skips the rest): `opentelemetry-proto`'s message feature would bring tonic and
//! the OpenTelemetry SDK along.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod json;
pub mod proto;
mod wire;

use prost::Message as _;

pub use proto::{AnyValue, InstrumentationScope, KeyValue, LogRecord, Resource};

/// Why a request body was refused (answered 400).
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// How the body of an export request is encoded (its `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names; `None` for one OTLP/HTTP does not define.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

/// Decodes a logs export request.
pub fn decode_logs(body: &[u8], encoding: Encoding) -> Result<proto::ExportLogsServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => proto::ExportLogsServiceRequest::decode(body)
            .map_err(|e| DecodeError(format!("not an OTLP logs export request (protobuf): {e}"))),
        Encoding::Json => json::logs_request(body),
    }
}

/// Every log record of `request`, each encoded on its own with its resource and scope, in
/// request order.
pub fn split(request: proto::ExportLogsServiceRequest) -> Vec<Vec<u8>> {
    records(request).map(|r| r.encode_to_vec()).collect()
}

/// Every log record of `request` with its resource and scope, in request order, not yet encoded
/// (`encoded_len` says how much each will take).
pub fn records(request: proto::ExportLogsServiceRequest) -> impl Iterator<Item = Record> {
    request.resource_logs.into_iter().flat_map(|resource_logs| {
        let resource = resource_logs.resource;
        resource_logs.scope_logs.into_iter().flat_map(move |scope_logs| {
            let (resource, scope) = (resource.clone(), scope_logs.scope);
            scope_logs.log_records.into_iter().map(move |record| Record {
                resource: resource.clone(),
                scope: scope.clone(),
                record: Some(record),
            })
        })
    })
}

/// At least what [`split`] would make of `request`, in bytes, without making it: each record
/// carries its resource and scope again.
pub fn split_len(request: &proto::ExportLogsServiceRequest) -> usize {
    let mut total = 0;
    for rl in &request.resource_logs {
        let resource = rl.resource.as_ref().map_or(0, |r| r.encoded_len().saturating_add(6));
        for sl in &rl.scope_logs {
            // A resource and scope are repeated for each of their records, so the total can pass
            // what the request itself holds by far: it saturates rather than wrap.
            let scope = sl.scope.as_ref().map_or(0, |s| s.encoded_len().saturating_add(6));
            let shared = resource.saturating_add(scope).saturating_add(6);
            for r in &sl.log_records {
                total = shared.saturating_add(r.encoded_len()).saturating_add(total);
            }
        }
    }
    total
}

/// Bytes that decoding `body` may take at most, before decoding it: the body, and per log
/// record (counted without decoding) the record's in-memory size; JSON's values take a few
/// times their text, and each record a parsed JSON object besides (`{}` is 3 bytes of an
/// export and a few hundred decoded: a bound by text alone let one export take 60 MiB).
pub fn decoded_len_bound(body: &[u8], encoding: Encoding) -> Result<usize, DecodeError> {
    match encoding {
        Encoding::Json => {
            // What the count cannot read, decoding refuses next, with its own clearer reason.
            let Ok(records) = json::count_log_records(body) else { return Ok(body.len().saturating_mul(6)) };
            let per_record = size_of::<LogRecord>() + size_of::<Record>() + JSON_OBJECT_BYTES;
            Ok(records.saturating_mul(per_record).saturating_add(body.len().saturating_mul(6)))
        }
        Encoding::Protobuf => {
            let records = wire::count_log_records(body).ok_or_else(|| {
                DecodeError("not an OTLP logs export request (protobuf): truncated or malformed".to_owned())
            })?;
            Ok(records.saturating_mul(size_of::<LogRecord>() + size_of::<Record>()).saturating_add(body.len()))
        }
    }
}

/// [`decoded_len_bound`] for any signal: a data point or span takes at most a few hundred
/// bytes decoded besides its own text.
pub fn decoded_len_bound_of(signal: Signal, body: &[u8], encoding: Encoding) -> Result<usize, DecodeError> {
    if signal == Signal::Logs {
        return decoded_len_bound(body, encoding);
    }
    let items = usize::try_from(count(signal, body, encoding)?).unwrap_or(usize::MAX);
    let per_item = size_of::<proto::Span>().max(size_of::<proto::HistogramDataPoint>()) + JSON_OBJECT_BYTES;
    let text = match encoding {
        Encoding::Json => body.len().saturating_mul(6),
        Encoding::Protobuf => body.len(),
    };
    Ok(items.saturating_mul(per_item).saturating_add(text))
}

/// What one parsed JSON object takes besides its contents (`serde_json::Value` in its array,
/// the map).
const JSON_OBJECT_BYTES: usize = 96;

/// One log record with the resource and scope it came with, as [`split`] encodes it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, optional, tag = "2")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, optional, tag = "3")]
    pub record: Option<LogRecord>,
}

impl Record {
    /// A record [`split`] wrote.
    pub fn read(bytes: &[u8]) -> Result<Record, DecodeError> {
        Record::decode(bytes).map_err(|e| DecodeError(format!("not a spooled OTLP record: {e}")))
    }
}

/// Decodes a metrics export request.
pub fn decode_metrics(body: &[u8], encoding: Encoding) -> Result<proto::ExportMetricsServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => proto::ExportMetricsServiceRequest::decode(body)
            .map_err(|e| DecodeError(format!("not an OTLP metrics export request (protobuf): {e}"))),
        Encoding::Json => json::metrics_request(body),
    }
}

/// Decodes a traces export request.
pub fn decode_traces(body: &[u8], encoding: Encoding) -> Result<proto::ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => proto::ExportTraceServiceRequest::decode(body)
            .map_err(|e| DecodeError(format!("not an OTLP traces export request (protobuf): {e}"))),
        Encoding::Json => json::traces_request(body),
    }
}

/// One data point with its metric (name, description, unit, type, temporality; the metric
/// holds this point alone), resource and scope: what the receiver spools and the transform
/// turns into one document.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PointRecord {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, optional, tag = "2")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, optional, tag = "3")]
    pub metric: Option<proto::Metric>,
}

impl PointRecord {
    /// A record [`point_records`] made, as spooled.
    pub fn read(bytes: &[u8]) -> Result<PointRecord, DecodeError> {
        PointRecord::decode(bytes).map_err(|e| DecodeError(format!("not a spooled OTLP data point: {e}")))
    }
}

/// One span with its resource and scope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanRecord {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, optional, tag = "2")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, optional, tag = "3")]
    pub span: Option<proto::Span>,
}

impl SpanRecord {
    /// A record [`span_records`] made, as spooled.
    pub fn read(bytes: &[u8]) -> Result<SpanRecord, DecodeError> {
        SpanRecord::decode(bytes).map_err(|e| DecodeError(format!("not a spooled OTLP span: {e}")))
    }
}

/// Every data point of `request` as its own record, in request order, and how many points of
/// exponential histograms were left out (drainpipe does not store them: the partial success
/// counts them).
pub fn point_records(request: proto::ExportMetricsServiceRequest) -> (Vec<PointRecord>, u64) {
    use proto::Data;
    let (mut records, mut refused) = (Vec::new(), 0u64);
    for rm in request.resource_metrics {
        for sm in rm.scope_metrics {
            for metric in sm.metrics {
                let one = |data: Data| PointRecord {
                    resource: rm.resource.clone(),
                    scope: sm.scope.clone(),
                    metric: Some(proto::Metric {
                        name: metric.name.clone(),
                        description: metric.description.clone(),
                        unit: metric.unit.clone(),
                        data: Some(data),
                    }),
                };
                match metric.data.clone() {
                    None => {}
                    Some(Data::Gauge(g)) => records.extend(
                        g.data_points.into_iter().map(|p| one(Data::Gauge(proto::Gauge { data_points: vec![p] }))),
                    ),
                    Some(Data::Sum(mut s)) => {
                        let points = std::mem::take(&mut s.data_points);
                        records.extend(
                            points
                                .into_iter()
                                .map(|p| one(Data::Sum(proto::Sum { data_points: vec![p], ..s.clone() }))),
                        );
                    }
                    Some(Data::Histogram(h)) => records.extend(h.data_points.into_iter().map(|p| {
                        one(Data::Histogram(proto::Histogram {
                            data_points: vec![p],
                            aggregation_temporality: h.aggregation_temporality,
                        }))
                    })),
                    Some(Data::Summary(s)) => records.extend(
                        s.data_points.into_iter().map(|p| one(Data::Summary(proto::Summary { data_points: vec![p] }))),
                    ),
                    Some(Data::ExponentialHistogram(e)) => {
                        refused = refused.saturating_add(e.data_points.len() as u64);
                    }
                }
            }
        }
    }
    (records, refused)
}

/// Every span of `request` as its own record, in request order.
pub fn span_records(request: proto::ExportTraceServiceRequest) -> impl Iterator<Item = SpanRecord> {
    request.resource_spans.into_iter().flat_map(|rs| {
        let resource = rs.resource;
        rs.scope_spans.into_iter().flat_map(move |ss| {
            let (resource, scope) = (resource.clone(), ss.scope);
            ss.spans.into_iter().map(move |span| SpanRecord {
                resource: resource.clone(),
                scope: scope.clone(),
                span: Some(span),
            })
        })
    })
}

/// What an export carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    /// What one item of this signal is called in a partial success.
    fn item_key(self) -> &'static str {
        match self {
            Signal::Logs => "rejectedLogRecords",
            Signal::Metrics => "rejectedDataPoints",
            Signal::Traces => "rejectedSpans",
        }
    }
}

/// How many data points (metrics) or spans (traces) an export request holds.
pub fn count(signal: Signal, body: &[u8], encoding: Encoding) -> Result<u64, DecodeError> {
    let what = signal.as_str();
    match encoding {
        Encoding::Protobuf => {
            let malformed =
                |e: prost::DecodeError| DecodeError(format!("not an OTLP {what} export request (protobuf): {e}"));
            if signal == Signal::Traces {
                let batches = proto::SpanBatches::decode(body).map_err(malformed)?;
                return Ok(batches.resources.iter().flat_map(|r| &r.scopes).map(|s| s.spans.len() as u64).sum());
            }
            let batches = proto::Batches::decode(body).map_err(malformed)?;
            let items = batches.resources.iter().flat_map(|r| &r.scopes).flat_map(|s| &s.items);
            Ok(items
                .map(|i| {
                    [&i.gauge, &i.sum, &i.histogram, &i.exponential_histogram, &i.summary]
                        .into_iter()
                        .flatten()
                        .map(|p| p.data_points.len() as u64)
                        .sum::<u64>()
                })
                .sum())
        }
        Encoding::Json => json::count(signal, body),
    }
}

/// The answer to an export: empty when everything was taken, else how many items were refused
/// and why (the exporter logs it and does not send them again).
pub fn response(signal: Signal, encoding: Encoding, rejected: i64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty())
        .then(|| proto::PartialSuccess { rejected, error_message: message.to_owned() });
    match encoding {
        Encoding::Protobuf => proto::ExportResponse { partial_success: partial }.encode_to_vec(),
        Encoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => serde_json::json!({"partialSuccess": {signal.item_key(): p.rejected.to_string(), "errorMessage": p.error_message}})
                .to_string()
                .into_bytes(),
        },
    }
}

/// An error answer's body: a `google.rpc.Status` with `message`, as OTLP/HTTP asks (`code` is
/// gRPC's: 3 invalid argument, 8 resource exhausted, 14 unavailable, 16 unauthenticated).
pub fn status(encoding: Encoding, code: i32, message: &str) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => proto::Status { code, message: message.to_owned() }.encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message}).to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests;
