//! Platform and Logplex lines (`Error R14 (…)`, `State changed from … to …`, `Release v42 …`,
//! L10 counts) with anything between and around their words. Never panics; the document is of
//! the template's types.
#![no_main]

use drainpipe_fuzz::input::{Ctx, End, PlatformLine};
use libfuzzer_sys::fuzz_target;

const PROCIDS: [&str; 6] = ["web.1", "api", "logplex", "scheduler.4821", "run.1234", "worker"];

fuzz_target!(|input: (u8, PlatformLine, End, Ctx)| {
    let (procid, line, end, ctx) = input;
    drainpipe_fuzz::check_line("heroku", PROCIDS[usize::from(procid) % PROCIDS.len()], |raw| line.push(raw), end, &ctx);
});
