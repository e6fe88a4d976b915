//! OTLP logs export requests as raw bytes (protobuf and JSON): decoding never panics, and every
//! record a request splits into becomes one document of the template's types; so does a spooled
//! record damaged on disk (the body read as a record).
#![no_main]

use drainpipe_otlp::{decode_logs, split, Encoding};
use drainpipe_transform::Transformer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let ctx = drainpipe_fuzz::otlp::frame_context();
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
