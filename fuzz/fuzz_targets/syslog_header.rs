//! The syslog header parser, on headers whose every field is chosen (PRI, VERSION, timestamps
//! good and bad, `d.` tokens, `heroku`/`app`, the PROCIDs that pick a dataset) with anything
//! between them; then the whole document. Never panics; the document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::{Body, Ctx, End, Header};
use drainpipe_transform::{syslog, StructuredData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Header, Body, End, Ctx)| {
    let (header, body, end, ctx) = input;
    let mut raw = Vec::new();
    header.push(&mut raw);
    body.push(&mut raw);
    end.push(&mut raw);
    let ctx = ctx.owned();
    for sd in [StructuredData::Absent, StructuredData::Present] {
        if let Ok(h) = syslog::parse(&raw, sd, ctx.received) {
            assert!(h.msg.len() <= raw.len());
        }
    }
    drainpipe_fuzz::transform_and_check(&raw, &ctx, None);
});
