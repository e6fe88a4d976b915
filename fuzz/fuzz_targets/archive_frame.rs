//! An archive file's decompressed bytes (drainpipe-archive's `format::read`, what `replay`
//! reads): whatever they hold, reading answers with frames or an error, never a panic, never
//! an allocation the input does not pay for; and a frame read is written back to what reads as
//! the same frame.

#![no_main]

use drainpipe_archive::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(Some(frame)) = format::read(&mut input) {
        let mut again = Vec::new();
        format::encode(&frame, &mut again);
        let back = format::read(&mut &again[..]).expect("a frame written reads back").expect("one frame");
        assert_eq!(
            (back.protocol, &back.body, &back.messages, &back.cut, &back.app, &back.drain_token),
            (frame.protocol, &frame.body, &frame.messages, &frame.cut, &frame.app, &frame.drain_token)
        );
        assert_eq!(
            (&back.frame_id, &back.labels, back.received_at, back.position),
            (&frame.frame_id, &frame.labels, frame.received_at, frame.position)
        );
    }
});
