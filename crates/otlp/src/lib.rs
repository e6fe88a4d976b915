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

mod json;
pub mod proto;

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
    let mut records = Vec::new();
    for resource_logs in request.resource_logs {
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                let one = Record {
                    resource: resource_logs.resource.clone(),
                    scope: scope_logs.scope.clone(),
                    record: Some(record),
                };
                records.push(one.encode_to_vec());
            }
        }
    }
    records
}

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

/// The answer to a logs export: empty when every record was taken, else how many were refused
/// and why (the exporter logs it and does not retry them).
pub fn logs_response(encoding: Encoding, rejected: i64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty())
        .then(|| proto::ExportLogsPartialSuccess { rejected_log_records: rejected, error_message: message.to_owned() });
    match encoding {
        Encoding::Protobuf => proto::ExportLogsServiceResponse { partial_success: partial }.encode_to_vec(),
        Encoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => serde_json::json!({"partialSuccess": {"rejectedLogRecords": p.rejected_log_records.to_string(), "errorMessage": p.error_message}})
                .to_string()
                .into_bytes(),
        },
    }
}

/// An error answer's body: a `google.rpc.Status` with `message`, as OTLP/HTTP asks.
pub fn status(encoding: Encoding, code: i32, message: &str) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => proto::Status { code, message: message.to_owned() }.encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message}).to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests;
