//! The whole transform of a Logplex frame: several messages (any header, any dataset's body)
//! through one `Transformer`, as the pipeline runs it, some cut to a size limit
//! (`transform_cut`), with the frame's context (app, labels, frame id, drain token). Never
//! panics; every document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::{Body, Ctx, End, Header};
use drainpipe_transform::Transformer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: drainpipe_fuzz::oracle::self_check(), |input: (Ctx, Vec<(Header, Body, End, Option<u16>)>)| {
    let (ctx, messages) = input;
    let ctx = ctx.owned();
    let c = ctx.context();
    let mut transformer = Transformer::new();
    for (header, body, end, cut) in messages {
        let mut raw = Vec::new();
        header.push(&mut raw);
        body.push(&mut raw);
        end.push(&mut raw);
        // The receiver keeps the first `limit` bytes of a longer message.
        let full = raw.len();
        let cut = cut.map(|limit| usize::from(limit)).filter(|&limit| limit < full);
        if let Some(limit) = cut {
            raw.truncate(limit);
        }
        let mut out = Vec::new();
        drainpipe_fuzz::with_input(&raw, || match cut {
            Some(_) => transformer.transform_cut(&raw, full, &c, &mut out),
            None => transformer.transform(&raw, &c, &mut out),
        });
        drainpipe_fuzz::with_input(&raw, || drainpipe_fuzz::assert_document(&out));
        // What the binary's panic guard stores instead is a document too.
        out.clear();
        transformer.transform_raw(&raw, "the transform failed", &c, &mut out);
        drainpipe_fuzz::with_input(&raw, || drainpipe_fuzz::assert_document(&out));
    }
});
