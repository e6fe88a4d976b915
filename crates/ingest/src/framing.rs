//! Logplex framing: a body is `LEN SP MSG` repeated, where LEN is the byte length of MSG. Only
//! LEN decides where a message ends; newlines inside or at the end of MSG are part of it
//! (Logplex counts the trailing one), and a dyno line over 10,000 bytes arrives as several
//! pieces with no newline between them.

use std::ops::Range;

/// The messages found in a body, and what was wrong with the framing, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framed {
    /// Byte ranges of each non-empty MSG in the body, in order.
    pub messages: Vec<Range<usize>>,
    /// Messages of length zero (`0 `), which Logplex never sends and which carry nothing:
    /// counted, not indexed.
    pub empty: usize,
    /// Set when part of the body did not follow the framing. That part is still a message
    /// (the last one), so nothing is lost.
    pub problem: Option<FramingProblem>,
}

/// Framing that went wrong after at least one good message, or at the very end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingProblem {
    /// The last LEN ran past the end of the body: the message is cut short.
    Truncated { offset: usize, declared: usize, available: usize },
    /// Bytes at `offset` are not `LEN SP`: the rest of the body is kept as one message.
    Garbage { offset: usize },
}

impl FramingProblem {
    pub fn describe(&self) -> String {
        match *self {
            FramingProblem::Truncated { offset, declared, available } => {
                format!("message at byte {offset} declares {declared} bytes but only {available} follow")
            }
            FramingProblem::Garbage { offset } => format!("no octet count at byte {offset}"),
        }
    }
}

/// Why a body is not Logplex framing at all (answered with 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotLogplex {
    #[error("body does not start with an octet count (expected `LEN SP MSG`)")]
    NoOctetCount,
}

/// Octet counts have at most this many digits (Logplex messages are far below 100 MB); more
/// means it is not an octet count.
const MAX_LEN_DIGITS: usize = 8;

/// Splits `body` into messages by their octet counts.
///
/// Whitespace between frames is tolerated. An empty body frames to no messages. A body whose
/// first bytes are not an octet count is [`NotLogplex`]; any later problem keeps every message
/// before it and the remaining bytes as one last message.
pub fn split(body: &[u8]) -> Result<Framed, NotLogplex> {
    // Sized exactly, so a body of tiny messages never holds more index than it needs.
    let mut messages = Vec::with_capacity(message_count(body));
    let mut empty = 0;
    let mut pos = skip_whitespace(body, 0);
    while pos < body.len() {
        let Some((len, msg_start)) = counted_at(body, pos) else {
            if messages.is_empty() && empty == 0 {
                return Err(NotLogplex::NoOctetCount);
            }
            messages.push(pos..body.len());
            return Ok(Framed { messages, empty, problem: Some(FramingProblem::Garbage { offset: pos }) });
        };
        let available = body.len() - msg_start;
        if len > available {
            messages.push(msg_start..body.len());
            let problem = FramingProblem::Truncated { offset: pos, declared: len, available };
            return Ok(Framed { messages, empty, problem: Some(problem) });
        }
        if len == 0 {
            empty += 1;
        } else {
            messages.push(msg_start..msg_start + len);
        }
        pos = skip_whitespace(body, msg_start + len);
    }
    Ok(Framed { messages, empty, problem: None })
}

/// How many messages [`split`] finds in `body` (empty ones not counted), found by following
/// the octet counts without keeping anything: what a receiver reserves memory for before
/// splitting.
pub fn message_count(body: &[u8]) -> usize {
    let mut n = 0;
    let mut pos = skip_whitespace(body, 0);
    while pos < body.len() {
        let Some((len, msg_start)) = counted_at(body, pos) else { return n + 1 };
        if len > body.len() - msg_start {
            return n + 1;
        }
        n += usize::from(len > 0);
        pos = skip_whitespace(body, msg_start + len);
    }
    n
}

/// What the bytes at the start of a buffer say about an RFC 6587 octet count (`LEN SP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OctetCount {
    /// `LEN SP`: the length, and the bytes `LEN SP` takes.
    Counted { len: usize, header: usize },
    /// Only digits so far: more bytes decide.
    Incomplete,
    /// Not an octet count.
    NotCounted,
}

/// Reads an octet count at the start of `buf`. Used by HTTPS bodies and syslog streams alike.
pub(crate) fn octet_count(buf: &[u8]) -> OctetCount {
    let digits = buf.iter().take(MAX_LEN_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_LEN_DIGITS {
        return OctetCount::NotCounted;
    }
    match buf.get(digits) {
        None => OctetCount::Incomplete,
        Some(b' ') => {
            // At most MAX_LEN_DIGITS digits: the count stays below 10^8, far from overflowing.
            let len = buf.iter().take(digits).fold(0usize, |n, &b| n * 10 + usize::from(b - b'0'));
            OctetCount::Counted { len, header: digits + 1 }
        }
        Some(_) => OctetCount::NotCounted,
    }
}

/// Reads `LEN SP` at `pos` of a whole body: the length and where MSG starts.
fn counted_at(body: &[u8], pos: usize) -> Option<(usize, usize)> {
    match octet_count(body.get(pos..)?) {
        OctetCount::Counted { len, header } => Some((len, pos + header)),
        OctetCount::Incomplete | OctetCount::NotCounted => None,
    }
}

fn skip_whitespace(body: &[u8], pos: usize) -> usize {
    let rest = body.get(pos..).unwrap_or_default();
    pos + rest.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(msgs: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for m in msgs {
            body.extend_from_slice(format!("{} ", m.len()).as_bytes());
            body.extend_from_slice(m);
        }
        body
    }

    fn texts<'a>(body: &'a [u8], f: &Framed) -> Vec<&'a [u8]> {
        f.messages.iter().map(|r| &body[r.clone()]).collect()
    }

    #[test]
    fn counts_include_the_trailing_newline() {
        let msgs: [&[u8]; 2] = [b"<14>1 - host app web.1 - one\n", b"<14>1 - host app web.1 - two\n"];
        let body = frame(&msgs);
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), msgs);
        assert_eq!(f.problem, None);
    }

    #[test]
    fn last_message_without_newline() {
        let msgs: [&[u8]; 2] = [b"first\n", b"<172>1 - host heroku logplex - Error L10 (output buffer overflow)"];
        let body = frame(&msgs);
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), msgs);
        assert_eq!(f.problem, None);
    }

    #[test]
    fn inner_newlines_stay_inside_the_message() {
        let msgs: [&[u8]; 2] = [b"Traceback:\n  line 1\n  line 2\n", b"3 4 5\n"];
        let body = frame(&msgs);
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), msgs);
    }

    #[test]
    fn long_piece_without_newline_then_its_continuation() {
        let piece = vec![b'x'; 10_000];
        let rest = b"yyy\n".to_vec();
        let body = frame(&[&piece, &rest]);
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), [&piece[..], &rest[..]]);
        assert_eq!(f.messages[0].len(), 10_000);
    }

    #[test]
    fn count_past_the_end_keeps_what_is_there() {
        let mut body = frame(&[b"good\n"]);
        body.extend_from_slice(b"100 short\n");
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), [&b"good\n"[..], &b"short\n"[..]]);
        assert_eq!(f.problem, Some(FramingProblem::Truncated { offset: 7, declared: 100, available: 6 }));
    }

    #[test]
    fn garbage_after_good_messages_is_kept_as_one_message() {
        let mut body = frame(&[b"good\n"]);
        body.extend_from_slice(b"not a frame\n");
        let f = split(&body).unwrap();
        assert_eq!(texts(&body, &f), [&b"good\n"[..], &b"not a frame\n"[..]]);
        assert_eq!(f.problem, Some(FramingProblem::Garbage { offset: 7 }));
    }

    #[test]
    fn not_logplex_at_all() {
        assert_eq!(split(b"{\"json\": true}"), Err(NotLogplex::NoOctetCount));
        assert_eq!(split(b"123456789 x"), Err(NotLogplex::NoOctetCount));
        assert_eq!(split(b"12"), Err(NotLogplex::NoOctetCount));
    }

    #[test]
    fn empty_and_whitespace_bodies_have_no_messages() {
        assert_eq!(split(b"").unwrap().messages, Vec::<Range<usize>>::new());
        assert_eq!(split(b"\n \r\n").unwrap().messages, Vec::<Range<usize>>::new());
    }

    #[test]
    fn zero_length_messages_are_counted_not_kept() {
        let f = split(b"0 5 hello0 ").unwrap();
        assert_eq!((texts(b"0 5 hello0 ", &f), f.empty), (vec![&b"hello"[..]], 2));
        // Only empty messages, then garbage: framed, not "not Logplex".
        let f = split(b"0 0 junk").unwrap();
        assert_eq!((texts(b"0 0 junk", &f), f.empty), (vec![&b"junk"[..]], 2));
        assert_eq!(f.problem, Some(FramingProblem::Garbage { offset: 4 }));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(f) = split(&body) {
                prop_assert_eq!(message_count(&body), f.messages.len());
                for r in &f.messages {
                    prop_assert!(r.start <= r.end && r.end <= body.len());
                }
            }
        }

        #[test]
        fn frames_round_trip(messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..16)) {
            let mut body = Vec::new();
            for m in &messages {
                body.extend_from_slice(format!("{} ", m.len()).as_bytes());
                body.extend_from_slice(m);
            }
            let f = split(&body).unwrap();
            let got: Vec<&[u8]> = f.messages.iter().map(|r| &body[r.clone()]).collect();
            let want: Vec<&[u8]> = messages.iter().map(Vec::as_slice).filter(|m| !m.is_empty()).collect();
            prop_assert_eq!(got.len() + f.empty, messages.len());
            prop_assert_eq!(message_count(&body), got.len());
            prop_assert_eq!(got, want);
            prop_assert_eq!(f.problem, None);
        }
    }
}
