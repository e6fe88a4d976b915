//! Frames as spool records, and the rule that gives each message its document id: the two
//! are kept together because the ids of a replayed record depend on what the record keeps.
//! Everything the transform needs is kept, the receive time included, so a frame replayed
//! after a crash becomes byte-for-byte the same documents (and ids) as the first time.
//!
//! Layout (little-endian): version u8 | protocol u8 | received secs u64 | nanos u32 |
//! app, drain token, frame id (each: present u8, len u32, bytes) | labels (count u32, then key
//! and value as len u32 + bytes) | messages (count u32, then for each the gap since the end of
//! the previous one and its length, as LEB128 varints) | cut (count u32, then position u32 +
//! full length u64) | stream (present u8, then stream id u64 + first message number u64;
//! version 2 on) | body (len u32 + bytes).
//!
//! The stream section holds the frame's [`Position`]: absent for `InFrame`, stream id and first
//! message number for `OnStream`, and stream 0 with the first record's number for an OTLP
//! frame's `InExport`. Version 1 records (drainpipe 0.1) have none: their syslog lines are
//! `InFrame`, which [`MessageIds`] ids as 0.1 did, so a spool written before an upgrade still
//! deduplicates.
//!
//! With varints a frame's record is at most about twice its body, even for a body of nothing
//! but empty messages; [`max_record_len`] is that bound, which sizes the spool's segments.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use drainpipe_ingest::{Frame, Position, Protocol};
use drainpipe_transform::{DocumentId, FrameKey, FrameSeed};

const VERSION: u8 = 2;

pub fn encode(frame: &Frame) -> Bytes {
    let [head, body] = encode_parts(frame);
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// [`encode`] in two parts, the record being the one followed by the other: what drainpipe
/// knows of the frame, and the body as received (shared, not copied), for the spool to write
/// one after the other ([`drainpipe_spool::Spool::append_parts`]).
pub fn encode_parts(frame: &Frame) -> [Bytes; 2] {
    let mut out = Vec::with_capacity(64 + frame.messages.len() * 8);
    out.push(VERSION);
    out.push(match frame.protocol {
        Protocol::Logplex => 0,
        Protocol::Syslog => 1,
        Protocol::Otlp => 2,
        Protocol::OtlpMetrics => 3,
        Protocol::OtlpTraces => 4,
    });
    let since = frame.received_at.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&since.as_secs().to_le_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
    for field in [&frame.app, &frame.drain_token, &frame.frame_id] {
        match field {
            Some(s) => {
                out.push(1);
                put_bytes(&mut out, s.as_bytes());
            }
            None => out.push(0),
        }
    }
    put_u32(&mut out, frame.labels.len());
    for (k, v) in &frame.labels {
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v.as_bytes());
    }
    put_u32(&mut out, frame.messages.len());
    let mut end = 0;
    for r in &frame.messages {
        put_varint(&mut out, r.start.saturating_sub(end) as u64);
        put_varint(&mut out, r.len() as u64);
        end = r.end;
    }
    put_u32(&mut out, frame.cut.len());
    for (position, full) in &frame.cut {
        put_u32(&mut out, *position);
        out.extend_from_slice(&(*full as u64).to_le_bytes());
    }
    // An export's first record is written as the first message of stream 0.
    match frame.position {
        Position::InFrame => out.push(0),
        Position::OnStream { stream, first } => put_position(&mut out, stream, first),
        Position::InExport { first_record } => put_position(&mut out, 0, first_record),
    }
    put_u32(&mut out, frame.body.len());
    [Bytes::from(out), frame.body.clone()]
}

/// Why a record is not a frame (a record from another version, or damage the checksum missed).
#[derive(Debug, thiserror::Error)]
#[error("spool record is not a frame: {0}")]
pub struct DecodeError(&'static str);

pub fn decode(record: &Bytes) -> Result<Frame, DecodeError> {
    let mut r = Reader { data: record, pos: 0 };
    let version = r.u8()?;
    if !(1..=VERSION).contains(&version) {
        return Err(DecodeError("unknown version"));
    }
    let protocol = match r.u8()? {
        0 => Protocol::Logplex,
        1 => Protocol::Syslog,
        2 => Protocol::Otlp,
        3 => Protocol::OtlpMetrics,
        4 => Protocol::OtlpTraces,
        _ => return Err(DecodeError("unknown protocol")),
    };
    let secs = r.u64()?;
    let nanos = r.u32()?;
    let received_at = UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999));
    let mut optional = || -> Result<Option<String>, DecodeError> {
        Ok(match r.u8()? {
            0 => None,
            _ => Some(r.string()?),
        })
    };
    let (app, drain_token, frame_id) = (optional()?, optional()?, optional()?);
    let mut labels = Vec::new();
    for _ in 0..r.u32()? {
        labels.push((r.string()?, r.string()?));
    }
    let messages = read_messages(&mut r)?;
    let mut cut = Vec::new();
    for _ in 0..r.u32()? {
        cut.push((r.u32()? as usize, r.u64()? as usize));
    }
    let stream = match version {
        1 => None,
        _ => match r.u8()? {
            0 => None,
            _ => Some((r.u64()?, r.u64()?)),
        },
    };
    let position = match (protocol, stream) {
        (Protocol::Otlp | Protocol::OtlpMetrics | Protocol::OtlpTraces, p) => {
            Position::InExport { first_record: p.map_or(0, |(_, first)| first) }
        }
        (_, Some((stream, first))) => Position::OnStream { stream, first },
        (_, None) => Position::InFrame,
    };
    let body_len = r.u32()? as usize;
    let body = r.take(body_len)?;
    if messages.iter().any(|m| m.end > body.len()) {
        return Err(DecodeError("message outside the body"));
    }
    Ok(Frame { cut, app, drain_token, frame_id, labels, received_at, position, ..Frame::new(protocol, body, messages) })
}

/// The message index: each message as the gap since the previous one's end and its length.
/// The document ids of a frame's messages:
/// - Logplex (`InFrame`): by its frame (`Logplex-Frame-Id` scoped by the drain token, else the
///   body with app, token and labels) and the message's place in it;
/// - a syslog connection or a replayed file (`OnStream`): by the stream and the message's number
///   on it;
/// - OTLP (`InExport`): by the record's bytes and its place in the export request;
/// - a syslog frame spooled by drainpipe 0.1 (`InFrame`): as 0.1 did, by its text.
#[derive(Debug)]
pub struct MessageIds<'f> {
    frame: &'f Frame,
    /// Logplex frames only: the hash of what identifies the frame (the body, for the first).
    seed: Option<FrameSeed>,
}

impl<'f> MessageIds<'f> {
    pub fn of(frame: &'f Frame) -> MessageIds<'f> {
        let seed = (frame.protocol == Protocol::Logplex && frame.position == Position::InFrame).then(|| {
            FrameSeed::new(&FrameKey {
                frame_id: frame.frame_id.as_deref(),
                drain_token: frame.drain_token.as_deref(),
                app: frame.app.as_deref(),
                labels: &frame.labels,
                body: &frame.body,
            })
        });
        MessageIds { frame, seed }
    }

    /// The `_id` of message `i` of the frame, whose bytes are `raw`.
    pub fn id(&self, i: usize, raw: &[u8]) -> DocumentId {
        let at = |first: u64| first.saturating_add(i as u64);
        let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        match (self.frame.protocol, self.frame.position, &self.seed) {
            (Protocol::Otlp, Position::InExport { first_record }, _) => {
                DocumentId::for_otlp_record(raw, narrow(at(first_record)))
            }
            (Protocol::Otlp, _, _) => DocumentId::for_otlp_record(raw, narrow(at(0))),
            (Protocol::OtlpMetrics, _, _) => DocumentId::for_otlp_point(raw),
            (Protocol::OtlpTraces, _, _) => DocumentId::for_otlp_span(raw),
            (_, Position::OnStream { stream, first }, _) => DocumentId::for_stream(stream, at(first)),
            (_, _, Some(seed)) => seed.id(narrow(i as u64)),
            (_, _, None) => DocumentId::for_line_v1(self.frame.drain_token.as_deref(), raw),
        }
    }
}

fn read_messages(r: &mut Reader<'_>) -> Result<Vec<std::ops::Range<usize>>, DecodeError> {
    let mut messages = Vec::new();
    let mut end = 0usize;
    for _ in 0..r.u32()? {
        let start = end.checked_add(r.varint()? as usize).ok_or(DecodeError("message offset overflows"))?;
        end = start.checked_add(r.varint()? as usize).ok_or(DecodeError("message length overflows"))?;
        messages.push(start..end);
    }
    Ok(messages)
}

/// The largest record a frame with a body of `body_len` bytes can need (two bytes of message
/// index per body byte at worst, plus headers and a few KiB of names and labels).
pub fn max_record_len(body_len: usize) -> usize {
    body_len * 3 + 64 * 1024
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_position(out: &mut Vec<u8>, stream: u64, first: u64) {
    out.push(1);
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(DecodeError("truncated"))?;
        let b = self.data.slice(self.pos..end);
        self.pos = end;
        Ok(b)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError("varint too long"))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| DecodeError("text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frame = Frame {
            protocol: Protocol::Syslog,
            body: Bytes::from_static(b"hello world"),
            messages: vec![0..5, 6..11],
            cut: vec![(1, 70_000)],
            app: Some("shop".into()),
            drain_token: None,
            frame_id: Some("F1".into()),
            labels: vec![("env".into(), "prod".into())],
            received_at: UNIX_EPOCH + Duration::new(1_741_944_413, 589_793_123),
            position: Position::OnStream { stream: u64::MAX - 3, first: 1 << 40 },
            reservation: Default::default(),
        };
        let back = decode(&encode(&frame)).unwrap();
        assert_eq!(back.protocol, frame.protocol);
        assert_eq!(back.body, frame.body);
        assert_eq!(back.messages, frame.messages);
        assert_eq!(back.cut, frame.cut);
        assert_eq!((back.app, back.drain_token, back.frame_id), (frame.app, frame.drain_token, frame.frame_id));
        assert_eq!(back.labels, frame.labels);
        assert_eq!(back.received_at, frame.received_at, "to the nanosecond");
        assert_eq!(back.position, frame.position);
    }

    #[test]
    fn version_1_records_still_decode() {
        // A record drainpipe 0.1 wrote: syslog, no names, one message "hi", no stream position.
        let mut v1 = vec![1u8, 1];
        v1.extend_from_slice(&1_741_944_413u64.to_le_bytes());
        v1.extend_from_slice(&0u32.to_le_bytes());
        v1.extend_from_slice(&[0, 0, 0]);
        v1.extend_from_slice(&0u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&[0, 2]);
        v1.extend_from_slice(&0u32.to_le_bytes());
        v1.extend_from_slice(&2u32.to_le_bytes());
        v1.extend_from_slice(b"hi");
        let frame = decode(&Bytes::from(v1)).unwrap();
        assert_eq!((frame.protocol, frame.messages.len(), frame.position), (Protocol::Syslog, 1, Position::InFrame));
        assert_eq!(frame.message(0), b"hi");
    }

    fn https_frame(body: Bytes, messages: Vec<std::ops::Range<usize>>) -> Frame {
        Frame::new(Protocol::Logplex, body, messages)
    }

    #[test]
    fn a_body_of_empty_messages_stays_within_the_bound() {
        let body = Bytes::from("0 ".repeat(100_000));
        let frame = https_frame(body.clone(), (0..100_000).map(|i| 2 * i + 2..2 * i + 2).collect());
        let record = encode(&frame);
        assert!(record.len() <= max_record_len(body.len()), "{} > {}", record.len(), max_record_len(body.len()));
        assert_eq!(decode(&record).unwrap().messages, frame.messages);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let frame = https_frame(Bytes::from_static(b"xy"), vec![0..1, 1..2]);
        let good = encode(&frame);
        for n in 0..good.len() {
            assert!(decode(&good.slice(..n)).is_err(), "prefix of {n} bytes");
        }
        let mut bad = good.to_vec();
        bad[0] = 9;
        assert!(decode(&Bytes::from(bad)).is_err());
    }
}
