//! Router lines (`heroku router`): `key=value` pairs of the router's keys and others, values
//! good and bad, anything between them. Never panics; the document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::{fixed_header, Ctx, End, RouterLine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (RouterLine, End, Ctx)| {
    let (line, end, ctx) = input;
    let mut raw = Vec::new();
    fixed_header("heroku", "router", &mut raw);
    line.push(&mut raw);
    end.push(&mut raw);
    drainpipe_fuzz::transform_and_check(&raw, &ctx.owned(), None);
});
