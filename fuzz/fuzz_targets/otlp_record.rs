//! OTLP log records turned into documents: export requests built from resource attributes
//! drainpipe reads and any others, bodies that are router, metrics, platform or app lines, and
//! times and severities at their edges. The request is encoded as protobuf and as OTLP JSON:
//! both must decode to the same request and split into the same records (what keeps an
//! exporter's retry in the other encoding from storing anything twice), and every record becomes
//! a document of the template's types. Never panics.
#![no_main]

use drainpipe_fuzz::input::Ctx;
use drainpipe_fuzz::otlp::Request;
use drainpipe_otlp::{decode_logs, split, Encoding};
use drainpipe_transform::Transformer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Request, Ctx)| {
    let (request, ctx) = input;
    let proto = request.proto();
    if let Some(json) = request.json() {
        drainpipe_fuzz::with_input(&json, || {
            let decoded = decode_logs(&json, Encoding::Json).expect("OTLP JSON of a valid request decodes");
            assert!(decoded == proto, "OTLP JSON decodes to another request: {decoded:?}");
        });
    }
    let ctx = ctx.owned();
    let c = ctx.context();
    let mut transformer = Transformer::new();
    for record in split(proto) {
        let mut out = Vec::new();
        drainpipe_fuzz::with_input(&record, || {
            transformer.transform_otlp(&record, &c, &mut out);
            drainpipe_fuzz::assert_document(&out);
        });
    }
});
