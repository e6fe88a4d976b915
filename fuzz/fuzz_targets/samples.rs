//! Metrics lines: log-runtime-metrics (`heroku web.1`), Heroku Postgres and Redis, built from
//! `sample#`/`count#`/`measure#` keys with numbers and units good and bad. Never panics; the
//! document is of the template's types.
#![no_main]

use drainpipe_fuzz::input::{Ctx, End, MetricsLine};
use libfuzzer_sys::fuzz_target;

const SOURCES: [(&str, &str); 4] =
    [("heroku", "web.1"), ("app", "heroku-postgres"), ("app", "heroku-redis"), ("heroku", "heroku-postgres")];

fuzz_target!(|input: (u8, MetricsLine, End, Ctx)| {
    let (source, line, end, ctx) = input;
    let (app, procid) = SOURCES[usize::from(source) % SOURCES.len()];
    drainpipe_fuzz::check_line(app, procid, |raw| line.push(raw), end, &ctx);
});
