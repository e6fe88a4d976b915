//! Router lines (`heroku router`): `key=value` pairs of the router's keys and others, values
//! good and bad, anything between them. Never panics; the document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::{Ctx, End, RouterLine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (RouterLine, End, Ctx)| {
    let (line, end, ctx) = input;
    drainpipe_fuzz::check_line("heroku", "router", |raw| line.push(raw), end, &ctx);
});
