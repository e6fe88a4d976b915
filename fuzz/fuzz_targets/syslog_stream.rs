//! Syslog stream framing fed in pieces: never panics, never returns more than the limit.
#![no_main]

use bytes::BytesMut;
use drainpipe_ingest::stream_framing::StreamDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else { return };
    let chunk = usize::from(knobs & 0x0f) + 1;
    let max = usize::from(knobs >> 4) * 16 + 1;
    let mut decoder = StreamDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(m) = decoder.decode(&mut buf) {
            assert!(m.bytes.len() <= max);
        }
    }
    while let Some(m) = decoder.finish(&mut buf) {
        assert!(m.bytes.len() <= max);
    }
});
