//! One frame in an archive file: a header line of JSON, then the body exactly as received,
//! then a newline.
//!
//! ```text
//! {"drainpipe_archive":1,"protocol":"logplex","received_ns":…,"app":"shop","drain_token":"d.…","frame_id":"…","labels":[["env","prod"]],"messages":[gap,len,…],"bytes":N}
//! <N bytes of body: for Logplex, `LEN SP MSG` …>
//! ```
//!
//! The header holds everything a message's document id and document are made from
//! (docs/fields.md, "Document ids"): protocol, frame id, drain token, app, labels, receive time
//! to the nanosecond, each message's place in the body (as the gap since the previous one's end
//! and its length), cut messages, and the stream or export position. Labels are pairs, in the
//! order the drain URL gave them. `zstdcat` shows the lines as they came; `replay` reads the
//! frame back exactly.

use std::io::{self, BufRead, Read as _};
use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use drainpipe_ingest::{Frame, Position, Protocol};
use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Serialize, Serializer};

/// The version in each header; a reader refuses another.
const VERSION: u8 = 1;

/// A header line longer than this is damage, not a frame (a frame's index is a few numbers per
/// message; a body's messages are bounded by the receivers' request size).
const MAX_HEADER: u64 = 64 << 20;

#[derive(Serialize)]
struct HeaderOut<'a> {
    drainpipe_archive: u8,
    protocol: &'static str,
    received_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    labels: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<[u64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_record: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cut: &'a [(usize, usize)],
    messages: Gaps<'a>,
    bytes: usize,
}

#[derive(Deserialize)]
struct HeaderIn {
    drainpipe_archive: u8,
    protocol: String,
    received_ns: u64,
    app: Option<String>,
    drain_token: Option<String>,
    frame_id: Option<String>,
    #[serde(default)]
    labels: Vec<(String, String)>,
    stream: Option<[u64; 2]>,
    first_record: Option<u64>,
    #[serde(default)]
    cut: Vec<(usize, usize)>,
    messages: Vec<u64>,
    bytes: usize,
}

/// The messages' ranges as a flat list of (gap since the previous end, length).
struct Gaps<'a>(&'a [Range<usize>]);

impl Serialize for Gaps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len() * 2))?;
        let mut end = 0;
        for r in self.0 {
            seq.serialize_element(&r.start.saturating_sub(end))?;
            seq.serialize_element(&r.len())?;
            end = r.end;
        }
        seq.end()
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Logplex => "logplex",
        Protocol::Syslog => "syslog",
        Protocol::Otlp => "otlp_logs",
        Protocol::OtlpMetrics => "otlp_metrics",
        Protocol::OtlpTraces => "otlp_traces",
    }
}

fn protocol_named(name: &str) -> Option<Protocol> {
    [Protocol::Logplex, Protocol::Syslog, Protocol::Otlp, Protocol::OtlpMetrics, Protocol::OtlpTraces]
        .into_iter()
        .find(|p| protocol_name(*p) == name)
}

/// Appends `frame` to `out` as the archive keeps it.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let since = frame.received_at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (stream, first_record) = match frame.position {
        Position::InFrame => (None, None),
        Position::OnStream { stream, first } => (Some([stream, first]), None),
        Position::InExport { first_record } => (None, Some(first_record)),
    };
    let header = HeaderOut {
        drainpipe_archive: VERSION,
        protocol: protocol_name(frame.protocol),
        received_ns: u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
        app: frame.app.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        frame_id: frame.frame_id.as_deref(),
        labels: &frame.labels,
        stream,
        first_record,
        cut: &frame.cut,
        messages: Gaps(&frame.messages),
        bytes: frame.body.len(),
    };
    // Writing JSON into a Vec fails only if a Serialize impl does, and these cannot.
    if serde_json::to_writer(&mut *out, &header).is_ok() {
        out.push(b'\n');
        out.extend_from_slice(&frame.body);
        out.push(b'\n');
    }
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads the next frame from decompressed archive bytes; `Ok(None)` at a clean end.
pub fn read(input: &mut impl BufRead) -> io::Result<Option<Frame>> {
    let mut line = Vec::new();
    io::Read::take(&mut *input, MAX_HEADER).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(invalid("the archive ends inside a frame's header"));
    }
    let header: HeaderIn =
        serde_json::from_slice(&line).map_err(|e| invalid(format!("not an archived frame's header: {e}")))?;
    if header.drainpipe_archive != VERSION {
        return Err(invalid(format!(
            "archive format version {} (this drainpipe reads {VERSION})",
            header.drainpipe_archive
        )));
    }
    // Read as far as the input goes, not allocated from the header's word: a damaged length
    // costs only the bytes that are there.
    let want = u64::try_from(header.bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut body = Vec::new();
    io::Read::take(&mut *input, want).read_to_end(&mut body)?;
    if (body.len() as u64) < want {
        return Err(invalid("the archive ends inside a frame's body"));
    }
    if body.pop() != Some(b'\n') {
        return Err(invalid("a frame's body is not followed by a newline"));
    }
    frame_of(header, Bytes::from(body)).map(Some)
}

fn frame_of(h: HeaderIn, body: Bytes) -> io::Result<Frame> {
    let protocol = protocol_named(&h.protocol).ok_or_else(|| invalid(format!("unknown protocol {:?}", h.protocol)))?;
    let mut messages = Vec::with_capacity(h.messages.len() / 2);
    let mut end = 0usize;
    for pair in h.messages.chunks(2) {
        let [gap, len] = pair else { return Err(invalid("a message without a length")) };
        let start = usize::try_from(*gap).ok().and_then(|g| end.checked_add(g));
        end = start
            .zip(usize::try_from(*len).ok())
            .and_then(|(s, l)| s.checked_add(l))
            .ok_or_else(|| invalid("a message past the body"))?;
        messages.push(start.unwrap_or(end)..end);
    }
    if end > body.len() || h.cut.iter().any(|(i, _)| *i >= messages.len()) {
        return Err(invalid("a message past the body"));
    }
    let position = match (protocol, h.stream, h.first_record) {
        (_, Some([stream, first]), _) => Position::OnStream { stream, first },
        (_, None, Some(first_record)) => Position::InExport { first_record },
        _ => Position::InFrame,
    };
    Ok(Frame {
        cut: h.cut,
        app: h.app,
        drain_token: h.drain_token,
        frame_id: h.frame_id,
        labels: h.labels,
        received_at: UNIX_EPOCH + Duration::from_nanos(h.received_ns),
        position,
        ..Frame::new(protocol, body, messages)
    })
}
