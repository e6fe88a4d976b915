//! The syslog header parser and the whole document: never panics, always valid JSON.
#![no_main]

use drainpipe_transform::{syslog, Context, StructuredData, Timestamp, Transformer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let received = Timestamp::from_unix(1_741_944_500, 0);
    for sd in [StructuredData::Absent, StructuredData::Present] {
        let _ = syslog::parse(raw, sd, received);
        let ctx = Context {
            app: Some("app"),
            drain_token: None,
            frame_id: None,
            labels: &[],
            received_at: received,
            structured_data: sd,
            app_for_token: None,
            namespace: "default",
        };
        let mut out = Vec::new();
        Transformer::new().transform(raw, &ctx, &mut out);
        serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
    }
});
