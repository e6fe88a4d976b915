//! A small streaming JSON writer for documents whose shape is known in advance. It writes
//! straight into the caller's buffer: no intermediate `Value`, no allocation per field.

use crate::landmarks::{Landmark, Landmarks, Place};

/// Writes the members of nested objects, tracking where commas go, and where the values of
/// landmark fields went.
pub(crate) struct JsonWriter<'o> {
    out: &'o mut Vec<u8>,
    need_comma: bool,
    /// Where the document starts in `out`: landmarks are placed from there.
    base: usize,
    landmarks: Landmarks,
}

impl<'o> JsonWriter<'o> {
    /// Opens the top-level object.
    pub(crate) fn new(out: &'o mut Vec<u8>) -> JsonWriter<'o> {
        let base = out.len();
        out.push(b'{');
        JsonWriter { out, need_comma: false, base, landmarks: Landmarks::none_yet() }
    }

    /// Closes the top-level object; where its landmark fields' values are.
    pub(crate) fn finish(self) -> Landmarks {
        self.out.push(b'}');
        self.landmarks
    }

    /// A writer of members only, without braces: a block of members written once and copied
    /// into many documents ([`JsonWriter::splice`]). Its landmarks are placed from its start.
    pub(crate) fn fragment(out: &'o mut Vec<u8>) -> JsonWriter<'o> {
        let base = out.len();
        JsonWriter { out, need_comma: false, base, landmarks: Landmarks::none_yet() }
    }

    /// The landmarks of a [`JsonWriter::fragment`], which it ends.
    pub(crate) fn end_fragment(self) -> Landmarks {
        self.landmarks
    }

    /// Members a fragment wrote (`text`, with their `landmarks`), copied in as they are.
    #[inline]
    pub(crate) fn splice(&mut self, text: &[u8], landmarks: Option<&[(usize, Place)]>) {
        if text.is_empty() {
            return;
        }
        if self.need_comma {
            self.out.push(b',');
        }
        self.need_comma = true;
        self.landmarks.add_shifted(landmarks, self.out.len() - self.base);
        self.out.extend_from_slice(text);
    }

    /// A field name drainpipe chose: copied as is (it needs no escaping). Inlined, so that a
    /// literal name is copied as a constant: this runs some forty times per document.
    #[inline(always)]
    fn key(&mut self, key: &str) {
        debug_assert!(!key.bytes().any(|b| escape_for(b) != 0), "{key:?} needs escaping");
        self.out.reserve(key.len() + 4);
        if self.need_comma {
            self.out.push(b',');
        }
        self.need_comma = true;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A field name that came from the message or the sender (labels, app keys, metric
    /// names): escaped.
    fn foreign_key(&mut self, key: &str) {
        if self.need_comma {
            self.out.push(b',');
        }
        self.need_comma = true;
        write_text(self.out, key);
        self.out.push(b':');
    }

    /// A string member whose name came from outside.
    pub(crate) fn foreign_str(&mut self, key: &str, value: &str) {
        self.foreign_key(key);
        write_text(self.out, value);
    }

    /// A member whose name came from outside and whose value the caller writes as JSON.
    pub(crate) fn foreign_raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.foreign_key(key);
        write(self.out);
    }

    #[inline]
    pub(crate) fn open(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.need_comma = false;
    }

    #[inline]
    pub(crate) fn close(&mut self) {
        self.out.push(b'}');
        self.need_comma = true;
    }

    #[inline]
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_text(self.out, value);
    }

    /// [`JsonWriter::str`], the value's place kept as `landmark`'s.
    #[inline]
    pub(crate) fn str_at(&mut self, landmark: Landmark, key: &str, value: &str) {
        self.key(key);
        let start = self.out.len() + 1;
        write_text(self.out, value);
        let end = self.out.len().saturating_sub(1);
        self.landmarks.set(landmark, true, start - self.base..end.saturating_sub(self.base));
    }

    #[inline]
    pub(crate) fn opt_str_at(&mut self, landmark: Landmark, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str_at(landmark, key, v);
        }
    }

    /// [`JsonWriter::u64`], the value's place kept as `landmark`'s.
    #[inline]
    pub(crate) fn u64_at(&mut self, landmark: Landmark, key: &str, value: u64) {
        self.key(key);
        let start = self.out.len();
        write_u64(self.out, value);
        self.landmarks.set(landmark, false, start - self.base..self.out.len() - self.base);
    }

    /// `"labels":{…}` ([`write_labels`]), its place kept.
    pub(crate) fn labels(&mut self, labels: &[(String, String)]) {
        self.key("labels");
        let start = self.out.len();
        write_labels(self.out, labels);
        self.landmarks.set_labels(start - self.base..self.out.len() - self.base);
    }

    /// `"object":{"key":"value"}`, an object of one string (`service.name`, `user.email`, …).
    pub(crate) fn object_str(&mut self, object: &str, key: &str, value: &str) {
        self.open(object);
        self.str(key, value);
        self.close();
    }

    #[inline]
    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    #[inline]
    pub(crate) fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        write_u64(self.out, value);
    }

    pub(crate) fn i64(&mut self, key: &str, value: i64) {
        self.key(key);
        if value < 0 {
            self.out.push(b'-');
        }
        write_u64(self.out, value.unsigned_abs());
    }

    /// A finite float in shortest round-trip form (`0.5`, `1e300`), under a foreign name.
    pub(crate) fn foreign_f64(&mut self, key: &str, value: f64) {
        use std::io::Write as _;
        self.foreign_key(key);
        let _ = write!(self.out, "{value:?}");
    }

    /// A value the caller writes as JSON itself (a validated object, a number).
    pub(crate) fn raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(key);
        write(self.out);
    }

    /// A value written by the caller (a timestamp, say) inside quotes; it must need no escaping.
    pub(crate) fn quoted_with(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(key);
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
    }

    /// An array of strings.
    pub(crate) fn str_array<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>) {
        self.key(key);
        self.out.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_text(self.out, v);
        }
        self.out.push(b']');
    }
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    // u64::MAX has 20 digits.
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    let mut v = value;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        start -= 1;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(start..).unwrap_or_default());
}

/// `ESCAPE[b]` is 0 when `b` may appear as is inside a JSON string, else the escape letter
/// (`u` for `\u00XX`).
// Evaluated by the compiler: an index out of range fails the build, never a message.
#[allow(clippy::indexing_slicing)]
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether Elasticsearch refuses `name` as a field name: empty, or only whitespace as Java's
/// `Character.isWhitespace` sees it (U+001C–001F besides what `char::is_whitespace` finds; the
/// few spaces Java does not count, such as U+00A0, are refused here too). Such a key from a
/// message is left out of the document.
pub(crate) fn is_blank_name(name: &str) -> bool {
    name.chars().all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Appends already-valid UTF-8 as a quoted JSON string.
/// A document's `labels` object, `{"key":"value",…}` (names and values escaped): what the
/// writer writes, and what a rule that adds labels writes in its place (drainpipe-rules).
pub fn write_labels(out: &mut Vec<u8>, labels: &[(String, String)]) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_text(out, k);
        out.push(b':');
        write_text(out, v);
    }
    out.push(b'}');
}

/// `s` as a JSON string, quotes included.
pub fn write_text(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_into(out, s.as_bytes());
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    let mut i = next_to_escape(s, 0);
    while let Some(&b) = s.get(i) {
        let esc = escape_for(b);
        if esc != 0 {
            out.extend_from_slice(s.get(start..i).unwrap_or_default());
            if esc == b'u' {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex_digit(b >> 4), hex_digit(b & 0xf)]);
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            start = i + 1;
        }
        i = next_to_escape(s, i + 1);
    }
    out.extend_from_slice(s.get(start..).unwrap_or_default());
}

/// Where in `s`, from `i` on, the next byte that may need escaping is (`s.len()` when none
/// does). Most text needs none: it is checked eight bytes at a time, and a tail of fewer than
/// eight as the last eight bytes (overlapping what was checked), so that a value is a few
/// word checks. The place may be a false one; never is one passed over.
#[inline]
fn next_to_escape(s: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = s.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let mask = escape_mask(u64::from_le_bytes(*chunk));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i >= s.len() {
        return s.len();
    }
    match s.len().checked_sub(8).and_then(|last| Some((last, s.get(last..)?.first_chunk::<8>()?))) {
        Some((last, chunk)) => {
            // Bytes before `i` were dealt with; those from `i` on are the last `s.len() - i`.
            let mask = escape_mask(u64::from_le_bytes(*chunk)) & (u64::MAX << (8 * (i - last)));
            if mask == 0 {
                s.len()
            } else {
                last + (mask.trailing_zeros() / 8) as usize
            }
        }
        // A text shorter than a word: byte by byte.
        None => {
            let rest = s.get(i..).unwrap_or_default();
            i + rest.iter().position(|&b| escape_for(b) != 0).unwrap_or(rest.len())
        }
    }
}

/// `ESCAPE` for one byte (a `u8` indexes all 256 entries).
#[inline(always)]
fn escape_for(b: u8) -> u8 {
    ESCAPE.get(usize::from(b)).copied().unwrap_or(b'u')
}

/// The lower-case hex digit of a nibble (`n < 16`).
fn hex_digit(n: u8) -> u8 {
    b"0123456789abcdef".get(usize::from(n & 0xf)).copied().unwrap_or(b'0')
}

/// The high bit of each of the eight bytes that may be a control character, `"` or `\\`: never
/// one missed; a false one only ever above a true one.
#[inline(always)]
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    below_space | has_zero(word ^ (ONES * u64::from(b'"'))) | has_zero(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires() {
        let mut out = Vec::new();
        write_text(&mut out, "a\"b\\c\nd\te\u{1}é€");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\te\u0001é€""#);
    }

    #[test]
    fn escapes_at_every_position_of_a_word() {
        for special in ['"', '\\', '\n', '\u{1f}', '\u{0}'] {
            for (len, pos) in (1..=20).flat_map(|len| (0..len).map(move |pos| (len, pos))) {
                let mut text: String = "abcdefghijklmnopqrst"[..len].into();
                text.replace_range(pos..=pos, &special.to_string());
                let mut out = Vec::new();
                write_text(&mut out, &text);
                let back: String = serde_json::from_slice(&out).unwrap();
                assert_eq!(back, text);
            }
        }
        let mut out = Vec::new();
        write_text(&mut out, "ünïcödé text without specials, long enough for words");
        assert_eq!(out, "\"ünïcödé text without specials, long enough for words\"".as_bytes());
    }

    #[test]
    fn escapes_random_text_as_serde_json_reads_it() {
        // Bytes next to the specials (`#` is `"` + 1, `]` is `\\` + 1) are where a word check
        // can flag falsely.
        let alphabet = ['a', '"', '#', '\\', ']', '\n', '\u{1}', ' ', '!', 'é', '\u{7f}', '€'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let text: String =
                (0..len).map(|n| alphabet[((seed >> (n % 60)) as usize + n * 7) % alphabet.len()]).collect();
            let mut out = Vec::new();
            write_text(&mut out, &text);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), text);
            assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn nests_objects() {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out);
        w.str("a", "x");
        w.open("b");
        w.u64("c", 0);
        w.u64("d", u64::MAX);
        w.close();
        w.str_array("e", ["1", "2"]);
        w.finish();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": "x", "b": {"c": 0, "d": u64::MAX}, "e": ["1", "2"]}));
    }
}
