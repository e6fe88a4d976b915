//! Framing of a syslog byte stream, decided per message: RFC 6587 octet counting (`LEN SP MSG`,
//! what Heroku's syslog drains send) when a message starts with digits and a space, otherwise
//! newline-terminated (what rsyslog and syslog-ng relays send). Messages over the size limit
//! are cut, reported as such, and the rest of them skipped.

use bytes::{Buf, Bytes, BytesMut};

use crate::framing::{self, OctetCount};

/// One message taken off the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage {
    pub bytes: Bytes,
    /// The message's full length when it was cut to the limit.
    pub cut_from: Option<usize>,
}

/// Incremental decoder: feed it the connection's read buffer, take messages out.
#[derive(Debug)]
pub struct StreamDecoder {
    max_message: usize,
    skip: Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// The rest of a cut octet-counted message.
    Bytes(usize),
    /// The rest of a cut line.
    ToNewline,
}

impl StreamDecoder {
    pub fn new(max_message: usize) -> StreamDecoder {
        StreamDecoder { max_message: max_message.max(1), skip: Skip::None }
    }

    /// The next whole message in `buf`, consuming it; `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<StreamMessage> {
        match self.skip {
            Skip::None => {}
            Skip::Bytes(n) => {
                let k = n.min(buf.len());
                buf.advance(k);
                if k < n {
                    self.skip = Skip::Bytes(n - k);
                    return None;
                }
                self.skip = Skip::None;
            }
            Skip::ToNewline => {
                let Some(i) = buf.iter().position(|&b| b == b'\n') else {
                    buf.clear();
                    return None;
                };
                buf.advance(i + 1);
                self.skip = Skip::None;
            }
        }
        // Blank lines and stray whitespace between messages carry nothing.
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        buf.advance(ws);
        if buf.is_empty() {
            return None;
        }
        match octet_count(buf) {
            OctetCount::Incomplete => None,
            OctetCount::Counted { len, header } => self.octet_counted(buf, len, header),
            OctetCount::NotCounted => self.line(buf),
        }
    }

    /// What is left when the stream ends: a last line without its newline.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<StreamMessage> {
        if let Some(m) = self.decode(buf) {
            return Some(m);
        }
        if self.skip != Skip::None || buf.iter().all(u8::is_ascii_whitespace) {
            buf.clear();
            return None;
        }
        let rest = buf.split().freeze();
        let len = rest.len();
        let (bytes, cut_from) =
            if len > self.max_message { (rest.slice(..self.max_message), Some(len)) } else { (rest, None) };
        Some(StreamMessage { bytes, cut_from })
    }

    fn octet_counted(&mut self, buf: &mut BytesMut, len: usize, header: usize) -> Option<StreamMessage> {
        if len <= self.max_message {
            if buf.len() < header + len {
                return None;
            }
            buf.advance(header);
            let bytes = buf.split_to(len).freeze();
            return Some(StreamMessage { bytes, cut_from: None });
        }
        if buf.len() < header + self.max_message {
            return None;
        }
        buf.advance(header);
        let bytes = buf.split_to(self.max_message).freeze();
        self.skip = Skip::Bytes(len - self.max_message);
        Some(StreamMessage { bytes, cut_from: Some(len) })
    }

    fn line(&mut self, buf: &mut BytesMut) -> Option<StreamMessage> {
        let window = buf.len().min(self.max_message.saturating_add(1));
        match buf.iter().take(window).position(|&b| b == b'\n') {
            Some(i) => {
                let mut line = buf.split_to(i + 1);
                line.truncate(i);
                if line.last() == Some(&b'\r') {
                    line.truncate(i - 1);
                }
                Some(StreamMessage { bytes: line.freeze(), cut_from: None })
            }
            None if buf.len() > self.max_message => {
                let bytes = buf.split_to(self.max_message).freeze();
                self.skip = Skip::ToNewline;
                // The full length is unknown; at least one byte more than the limit.
                Some(StreamMessage { bytes, cut_from: Some(self.max_message + 1) })
            }
            None => None,
        }
    }
}

/// An octet count at the start of a stream's buffer; a leading `0` (no message is empty)
/// means the line is newline-framed.
fn octet_count(buf: &[u8]) -> OctetCount {
    if buf.first() == Some(&b'0') {
        return OctetCount::NotCounted;
    }
    framing::octet_count(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut StreamDecoder, input: &[u8], chunk: usize) -> Vec<StreamMessage> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(m) = decoder.decode(&mut buf) {
                out.push(m);
            }
        }
        while let Some(m) = decoder.finish(&mut buf) {
            out.push(m);
        }
        out
    }

    fn texts(ms: &[StreamMessage]) -> Vec<String> {
        ms.iter().map(|m| String::from_utf8_lossy(&m.bytes).into_owned()).collect()
    }

    #[test]
    fn octet_counted_and_newline_framed_mixed_in_any_chunking() {
        let heroku = b"<190>1 2025-03-14T09:26:53Z d.abc app web.1 - - hello\n";
        let mut input = format!("{} ", heroku.len()).into_bytes();
        input.extend_from_slice(heroku);
        input.extend_from_slice(b"<14>Mar 14 09:26:53 relay app[1]: from rsyslog\r\n");
        input.extend_from_slice(b"\n11 no newline");
        input.extend_from_slice(b"<14>last line without newline");
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let got = all(&mut StreamDecoder::new(1024), &input, chunk);
            assert_eq!(
                texts(&got),
                [
                    String::from_utf8_lossy(heroku).into_owned(),
                    "<14>Mar 14 09:26:53 relay app[1]: from rsyslog".to_owned(),
                    "no newline<".to_owned(),
                    "14>last line without newline".to_owned(),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn long_octet_counted_message_is_cut_and_the_rest_skipped() {
        let mut input = b"20 0123456789abcdefghij".to_vec();
        input.extend_from_slice(b"3 xyz");
        let got = all(&mut StreamDecoder::new(8), &input, 5);
        assert_eq!(texts(&got), ["01234567", "xyz"]);
        assert_eq!(got[0].cut_from, Some(20));
        assert_eq!(got[1].cut_from, None);
    }

    #[test]
    fn long_line_is_cut_and_the_rest_skipped() {
        let got = all(&mut StreamDecoder::new(8), b"<14>0123456789abcdef\n<14>ok\n", 3);
        assert_eq!(texts(&got), ["<14>0123", "<14>ok"]);
        assert_eq!(got[0].cut_from, Some(9));
    }

    #[test]
    fn digits_then_not_a_space_is_a_line() {
        let got = all(&mut StreamDecoder::new(64), b"2025-03-14 plain line\n012 zero-led\n", 4);
        assert_eq!(texts(&got), ["2025-03-14 plain line", "012 zero-led"]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_any_bytes_in_any_chunking(
            input in proptest::collection::vec(any::<u8>(), 0..1024),
            chunk in 1usize..64,
            max in 1usize..128,
        ) {
            let mut decoder = StreamDecoder::new(max);
            let mut buf = BytesMut::new();
            for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(m) = decoder.decode(&mut buf) {
                    prop_assert!(m.bytes.len() <= max);
                }
            }
            while let Some(m) = decoder.finish(&mut buf) {
                prop_assert!(m.bytes.len() <= max);
            }
        }

        #[test]
        fn octet_counted_syslog_round_trips(
            bodies in proptest::collection::vec("[ -~]{0,80}", 1..12),
            chunk in 1usize..97,
        ) {
            let messages: Vec<String> = bodies.iter().map(|b| format!("<14>1 - host app web.1 - - {b}")).collect();
            let mut input = Vec::new();
            for m in &messages {
                input.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
            }
            let mut decoder = StreamDecoder::new(4096);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(m) = decoder.decode(&mut buf) {
                    got.push(String::from_utf8(m.bytes.to_vec()).unwrap());
                }
            }
            while let Some(m) = decoder.finish(&mut buf) {
                got.push(String::from_utf8(m.bytes.to_vec()).unwrap());
            }
            prop_assert_eq!(got, messages);
        }
    }
}
