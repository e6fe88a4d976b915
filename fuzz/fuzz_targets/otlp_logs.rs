//! OTLP logs export requests as raw bytes (protobuf and JSON): decoding never panics, and every
//! record a request splits into becomes one document of the template's types; so does a spooled
//! record damaged on disk (the body read as a record).
#![no_main]

use drainpipe_otlp::{decode_logs, split, Encoding};
use drainpipe_transform::{Context, StructuredData, Timestamp, Transformer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let ctx = Context {
        app: None,
        drain_token: None,
        frame_id: None,
        labels: &[],
        received_at: Timestamp::from_unix(1_732_442_400, 0),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    };
    let mut transformer = Transformer::new();
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let _ = drainpipe_otlp::decoded_len_bound(body, encoding);
        let Ok(request) = decode_logs(body, encoding) else { continue };
        for record in split(request) {
            let mut out = Vec::new();
            transformer.transform_otlp(&record, &ctx, &mut out);
            drainpipe_fuzz::assert_document(&out);
        }
    }
    let mut out = Vec::new();
    transformer.transform_otlp(body, &ctx, &mut out);
    drainpipe_fuzz::assert_document(&out);
});
