//! OTLP metrics and traces export requests as raw bytes (protobuf and JSON): decoding never
//! panics, and every data point and span a request splits into has an id and becomes one
//! document its stream's template takes; so does a spooled record damaged on disk (the body
//! read as a data point and as a span).
#![no_main]

use drainpipe_fuzz::Stream;
use drainpipe_otlp::{decode_metrics, decode_traces, point_records, span_records, Encoding, Signal};
use drainpipe_transform::{DocumentId, Transformer};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|body: &[u8]| {
    let ctx = drainpipe_fuzz::otlp::frame_context();
    let mut transformer = Transformer::new();
    let mut metric = |raw: &[u8]| {
        let _ = DocumentId::for_otlp_point(raw);
        let mut out = Vec::new();
        transformer.transform_otlp_metric(raw, &ctx, &mut out);
        drainpipe_fuzz::assert_signal_document(Stream::Metrics, &out);
    };
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let _ = drainpipe_otlp::decoded_len_bound_of(Signal::Metrics, body, encoding);
        if let Ok(request) = decode_metrics(body, encoding) {
            point_records(request).0.iter().for_each(|r| metric(&r.encode_to_vec()));
        }
    }
    metric(body);
    let mut span = |raw: &[u8]| {
        let _ = DocumentId::for_otlp_span(raw);
        let mut out = Vec::new();
        transformer.transform_otlp_span(raw, &ctx, &mut out);
        drainpipe_fuzz::assert_signal_document(Stream::Traces, &out);
    };
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let _ = drainpipe_otlp::decoded_len_bound_of(Signal::Traces, body, encoding);
        if let Ok(request) = decode_traces(body, encoding) {
            span_records(request).for_each(|r| span(&r.encode_to_vec()));
        }
    }
    span(body);
});
