//! OTLP log records turned into documents: export requests built from resource attributes
//! drainpipe reads and any others, bodies that are router, metrics, platform or app lines, and
//! times and severities at their edges; encoded as protobuf and as OTLP JSON, decoded and split
//! as the receiver does. Never panics; every document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::Ctx;
use drainpipe_fuzz::otlp::Request;
use drainpipe_otlp::{decode_logs, split, Encoding};
use drainpipe_transform::Transformer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Request, Ctx)| {
    let (request, ctx) = input;
    let ctx = ctx.owned();
    let c = ctx.context();
    let mut transformer = Transformer::new();
    for record in split(request.proto()) {
        let mut out = Vec::new();
        drainpipe_fuzz::with_input(&record, || {
            transformer.transform_otlp(&record, &c, &mut out);
            drainpipe_fuzz::assert_document(&out);
        });
        // The receiver reads back what it split.
        if let Ok(again) = decode_logs(&record, Encoding::Protobuf) {
            let _ = split(again);
        }
    }
});
