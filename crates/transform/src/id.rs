//! Deterministic document ids, so that a frame Logplex sends again (same frame id, or same body)
//! or a spooled syslog frame replayed produces the same `_id`, and `create` answers 409 instead
//! of storing a duplicate; and so that two different lines, even identical in text, never
//! share one.

use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// A 128-bit hash as 22 characters of unpadded base64url: short ids index faster.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocumentId([u8; 22]);

impl DocumentId {
    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn from_hash(h: u128) -> DocumentId {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        // A six-bit group always names one of the 64 characters.
        let char_of = |group: u128| ALPHABET.get((group & 63) as usize).copied().unwrap_or(b'A');
        let mut out = [0u8; 22];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = char_of(h >> (122 - 6 * i.min(20)));
        }
        // 128 bits = 21 six-bit groups + 2 bits; the last character carries those 2 bits.
        if let Some(last) = out.last_mut() {
            *last = char_of((h & 3) << 4);
        }
        DocumentId(out)
    }

    /// The id of message number `sequence` of a stream (a syslog connection, a replayed file),
    /// which `stream` identifies. Identical lines are distinct events.
    pub fn for_stream(stream: u64, sequence: u64) -> DocumentId {
        let mut key = [0u8; 17];
        let bytes = std::iter::once(b'n').chain(stream.to_le_bytes()).chain(sequence.to_le_bytes());
        for (slot, b) in key.iter_mut().zip(bytes) {
            *slot = b;
        }
        DocumentId::from_hash(xxh3_128(&key))
    }

    /// The id of an OTLP log record: a hash of the record as spooled (with its resource and
    /// scope) and its position in the export request, so an exporter's retry stores nothing
    /// new and two identical records in one request are both stored.
    pub fn for_otlp_record(record: &[u8], position: u32) -> DocumentId {
        let mut h = Xxh3::new();
        h.update(b"o");
        h.update(&position.to_le_bytes());
        h.update(record);
        DocumentId::from_hash(h.digest128())
    }

    /// The id of a spooled OTLP data point: its resource, scope, metric name, attributes and
    /// timestamps (not its value: one series has one value at a time). Bytes that are no data
    /// point are hashed whole.
    pub fn for_otlp_point(record: &[u8]) -> DocumentId {
        use drainpipe_otlp::proto::Data;
        use prost::Message as _;
        let mut h = Xxh3::new();
        h.update(b"m");
        let Ok(mut point) = drainpipe_otlp::PointRecord::read(record) else {
            h.update(record);
            return DocumentId::from_hash(h.digest128());
        };
        let (attributes, times) = match point.metric.as_mut().and_then(|m| m.data.take()) {
            Some(Data::Gauge(g)) => {
                g.data_points.into_iter().next().map(|p| (p.attributes, (p.time_unix_nano, p.start_time_unix_nano)))
            }
            Some(Data::Sum(s)) => {
                s.data_points.into_iter().next().map(|p| (p.attributes, (p.time_unix_nano, p.start_time_unix_nano)))
            }
            Some(Data::Histogram(x)) => {
                x.data_points.into_iter().next().map(|p| (p.attributes, (p.time_unix_nano, p.start_time_unix_nano)))
            }
            Some(Data::Summary(x)) => {
                x.data_points.into_iter().next().map(|p| (p.attributes, (p.time_unix_nano, p.start_time_unix_nano)))
            }
            Some(Data::ExponentialHistogram(_)) | None => None,
        }
        .unwrap_or_default();
        let name = point.metric.map(|m| m.name).unwrap_or_default();
        h.update(&point.resource.unwrap_or_default().encode_to_vec());
        h.update(&[0]);
        h.update(&point.scope.unwrap_or_default().encode_to_vec());
        h.update(&[0]);
        h.update(name.as_bytes());
        h.update(&[0]);
        for kv in &attributes {
            h.update(&kv.encode_to_vec());
        }
        h.update(&times.0.to_le_bytes());
        h.update(&times.1.to_le_bytes());
        DocumentId::from_hash(h.digest128())
    }

    /// The id of a spooled OTLP span: its trace and span ids (bytes that are no span are hashed
    /// whole).
    pub fn for_otlp_span(record: &[u8]) -> DocumentId {
        let mut h = Xxh3::new();
        h.update(b"t");
        match drainpipe_otlp::SpanRecord::read(record).ok().and_then(|r| r.span) {
            Some(span) => {
                h.update(&span.trace_id);
                h.update(&[0]);
                h.update(&span.span_id);
            }
            None => h.update(record),
        }
        DocumentId::from_hash(h.digest128())
    }

    /// The id drainpipe 0.1 gave a syslog line: its drain token and text. Only for frames
    /// spooled by that version, so that replaying them after an upgrade still deduplicates.
    pub fn for_line_v1(drain_token: Option<&str>, raw: &[u8]) -> DocumentId {
        let mut buf = Vec::with_capacity(raw.len() + 64);
        buf.push(b's');
        buf.extend_from_slice(drain_token.unwrap_or("").as_bytes());
        buf.push(0);
        buf.extend_from_slice(raw);
        DocumentId::from_hash(xxh3_128(&buf))
    }
}

impl std::fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computed once per HTTPS frame; each message's id is then the seed and its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSeed(u128);

/// What an HTTPS frame's ids derive from.
#[derive(Clone, Copy, Debug)]
pub struct FrameKey<'a> {
    /// `Logplex-Frame-Id`: with the drain token, it alone identifies a frame.
    pub frame_id: Option<&'a str>,
    pub drain_token: Option<&'a str>,
    /// Without a frame id, everything else that makes the documents differ: two apps posting
    /// the same body are two frames.
    pub app: Option<&'a str>,
    pub labels: &'a [(String, String)],
    pub body: &'a [u8],
}

impl FrameSeed {
    /// From `Logplex-Frame-Id` (scoped by the drain token) when the frame has one, otherwise
    /// from the body, app, drain token and labels, which are all the same when Logplex retries
    /// (same body, same drain URL).
    pub fn new(key: &FrameKey<'_>) -> FrameSeed {
        let mut h = Xxh3::new();
        match key.frame_id {
            Some(id) if !id.is_empty() => {
                h.update(b"f");
                h.update(key.drain_token.unwrap_or("").as_bytes());
                h.update(b"\0");
                h.update(id.as_bytes());
            }
            _ => {
                // Each part is length-prefixed, so no two different keys hash the same bytes.
                let mut part = |tag: u8, bytes: &[u8]| {
                    h.update(&[tag]);
                    h.update(&(bytes.len() as u64).to_le_bytes());
                    h.update(bytes);
                };
                part(b't', key.drain_token.unwrap_or("").as_bytes());
                part(b'a', key.app.map_or(&[0xff][..], str::as_bytes));
                for (k, v) in key.labels {
                    part(b'k', k.as_bytes());
                    part(b'v', v.as_bytes());
                }
                part(b'b', key.body);
            }
        }
        FrameSeed(h.digest128())
    }

    /// The id of the message at `position` (0-based) in the frame.
    pub fn id(&self, position: u32) -> DocumentId {
        let mut key = [0u8; 20];
        for (slot, b) in key.iter_mut().zip(self.0.to_le_bytes().into_iter().chain(position.to_le_bytes())) {
            *slot = b;
        }
        DocumentId::from_hash(xxh3_128(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(frame_id: Option<&'a str>, token: Option<&'a str>, body: &'a [u8]) -> FrameKey<'a> {
        FrameKey { frame_id, drain_token: token, app: None, labels: &[], body }
    }

    #[test]
    fn same_frame_same_ids() {
        let a = FrameSeed::new(&key(Some("8F3A"), Some("d.1"), b"body one"));
        let b = FrameSeed::new(&key(Some("8F3A"), Some("d.1"), b"body two"));
        assert_eq!(a.id(0), b.id(0));
        assert_ne!(a.id(0), a.id(1));
        assert_ne!(a.id(0), FrameSeed::new(&key(Some("8F3A"), Some("d.2"), b"body one")).id(0));
    }

    #[test]
    fn frames_without_id_hash_the_body() {
        let a = FrameSeed::new(&key(None, None, b"12 <14>1 - - -"));
        assert_eq!(a.id(3), FrameSeed::new(&key(Some(""), None, b"12 <14>1 - - -")).id(3));
        assert_ne!(a.id(3), FrameSeed::new(&key(None, None, b"12 <14>1 - - +")).id(3));
    }

    #[test]
    fn frames_without_id_differ_by_app_token_and_labels() {
        let body = b"12 <14>1 - - -";
        let base = FrameSeed::new(&key(None, None, body));
        let shop = FrameSeed::new(&FrameKey { app: Some("shop"), ..key(None, None, body) });
        let blog = FrameSeed::new(&FrameKey { app: Some("blog"), ..key(None, None, body) });
        let empty_app = FrameSeed::new(&FrameKey { app: Some(""), ..key(None, None, body) });
        let token = FrameSeed::new(&key(None, Some("d.1"), body));
        let labels = [("env".to_owned(), "prod".to_owned())];
        let labelled = FrameSeed::new(&FrameKey { labels: &labels, ..key(None, None, body) });
        let ids = [base, shop, blog, empty_app, token, labelled].map(|s| s.id(0));
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(shop, FrameSeed::new(&FrameKey { app: Some("shop"), ..key(None, None, body) }), "a retry");
    }

    #[test]
    fn stream_ids_number_every_message() {
        assert_ne!(DocumentId::for_stream(7, 0), DocumentId::for_stream(7, 1));
        assert_ne!(DocumentId::for_stream(7, 0), DocumentId::for_stream(8, 0));
        assert_eq!(DocumentId::for_stream(7, 1), DocumentId::for_stream(7, 1));
    }

    #[test]
    fn ids_are_22_base64url_characters() {
        for id in [FrameSeed(0).id(0), FrameSeed(u128::MAX).id(u32::MAX), DocumentId::for_stream(0, 0)] {
            let s = id.as_str();
            assert_eq!(s.len(), 22);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{s}");
        }
        assert_eq!(DocumentId::from_hash(0).as_str(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(DocumentId::from_hash(u128::MAX).as_str(), "_____________________w");
    }
}
