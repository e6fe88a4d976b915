//! The app's own output: JSON objects (keys such as `level`, deep nesting, long values,
//! duplicate and odd keys), logfmt and text. Never panics; the document is of the template's
//! types.
#![no_main]

use drainpipe_fuzz::input::{AppLine, Ctx, End};
use libfuzzer_sys::fuzz_target;

const SOURCES: [(&str, &str); 4] = [("app", "web.1"), ("app", "worker.12"), ("app", "run.1234"), ("relay", "-")];

fuzz_target!(|input: (u8, AppLine, End, Ctx)| {
    let (source, line, end, ctx) = input;
    let (app, procid) = SOURCES[usize::from(source) % SOURCES.len()];
    drainpipe_fuzz::check_line(app, procid, |raw| line.push(raw), end, &ctx);
});
