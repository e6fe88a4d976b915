//! A small streaming JSON writer for documents whose shape is known in advance. It writes
//! straight into the caller's buffer: no intermediate `Value`, no allocation per field.

/// Writes the members of nested objects, tracking where commas go.
pub(crate) struct JsonWriter<'o> {
    out: &'o mut Vec<u8>,
    need_comma: bool,
}

impl<'o> JsonWriter<'o> {
    /// Opens the top-level object.
    pub(crate) fn new(out: &'o mut Vec<u8>) -> JsonWriter<'o> {
        out.push(b'{');
        JsonWriter { out, need_comma: false }
    }

    /// Closes the top-level object.
    pub(crate) fn finish(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, key: &str) {
        if self.need_comma {
            self.out.push(b',');
        }
        self.need_comma = true;
        write_str(self.out, key.as_bytes());
        self.out.push(b':');
    }

    pub(crate) fn open(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.need_comma = false;
    }

    pub(crate) fn close(&mut self) {
        self.out.push(b'}');
        self.need_comma = true;
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_str(self.out, value.as_bytes());
    }

    /// A string from bytes that may not be UTF-8: invalid sequences become U+FFFD.
    pub(crate) fn bytes(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        write_str(self.out, value);
    }

    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

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

    /// A finite float in shortest round-trip form (`0.5`, `1e300`).
    pub(crate) fn f64(&mut self, key: &str, value: f64) {
        use std::io::Write as _;
        self.key(key);
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
            write_str(self.out, v.as_bytes());
        }
        self.out.push(b']');
    }
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `ESCAPE[b]` is 0 when `b` may appear as is inside a JSON string, else the escape letter
/// (`u` for `\u00XX`).
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

/// Appends `s` as a quoted JSON string, replacing invalid UTF-8 with U+FFFD.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(s) {
        Ok(_) => escape_into(out, s),
        Err(_) => escape_into(out, String::from_utf8_lossy(s).as_bytes()),
    }
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\te\u{1}é€".as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\te\u0001é€""#);
    }

    #[test]
    fn replaces_invalid_utf8() {
        let mut out = Vec::new();
        write_str(&mut out, b"ok\xff\xfe!");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"ok\u{fffd}\u{fffd}!\"");
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
