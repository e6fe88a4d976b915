//! Logplex body framing: never panics, every range lies inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(framed) = drainpipe_ingest::framing::split(body) {
        for r in &framed.messages {
            assert!(r.start <= r.end && r.end <= body.len());
        }
    }
});
