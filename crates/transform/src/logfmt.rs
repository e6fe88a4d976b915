//! `key=value` pairs as Heroku's router, runtime metrics and many apps print them: values are
//! bare words or double-quoted with `\"` and `\\` escapes; empty values (`connect=`) are kept
//! as empty strings; words without `=` are skipped.

use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pair<'a> {
    pub key: &'a str,
    pub value: Cow<'a, str>,
}

/// Iterates over the pairs of one line, borrowing wherever no unescaping is needed. Every slice
/// boundary falls on an ASCII delimiter, so slicing the `&str` never splits a character.
pub(crate) fn pairs(line: &str) -> Pairs<'_> {
    Pairs { line, s: line.as_bytes(), pos: 0 }
}

#[derive(Debug)]
pub(crate) struct Pairs<'a> {
    line: &'a str,
    s: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        let s = self.s;
        loop {
            while s.get(self.pos) == Some(&b' ') {
                self.pos += 1;
            }
            if self.pos >= s.len() {
                return None;
            }
            let start = self.pos;
            while self.pos < s.len() && !matches!(s[self.pos], b'=' | b' ') {
                self.pos += 1;
            }
            let key = &self.line[start..self.pos];
            if s.get(self.pos) != Some(&b'=') || key.is_empty() {
                // A bare word (or "=x"): skip to the next space.
                while self.pos < s.len() && s[self.pos] != b' ' {
                    self.pos += 1;
                }
                continue;
            }
            self.pos += 1;
            let value = if s.get(self.pos) == Some(&b'"') {
                self.quoted()
            } else {
                let vstart = self.pos;
                while self.pos < s.len() && s[self.pos] != b' ' {
                    self.pos += 1;
                }
                Cow::Borrowed(&self.line[vstart..self.pos])
            };
            return Some(Pair { key, value });
        }
    }
}

impl<'a> Pairs<'a> {
    /// Reads a quoted value starting at the opening quote. An unterminated quote runs to the end
    /// of the line.
    fn quoted(&mut self) -> Cow<'a, str> {
        let s = self.s;
        self.pos += 1;
        let start = self.pos;
        let mut has_escape = false;
        while self.pos < s.len() {
            match s[self.pos] {
                b'\\' if self.pos + 1 < s.len() => {
                    has_escape = true;
                    self.pos += 2;
                }
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        let end = self.pos.min(s.len());
        self.pos = (self.pos + 1).min(s.len());
        if !has_escape {
            return Cow::Borrowed(&self.line[start..end]);
        }
        let raw = &s[start..end];
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && i + 1 < raw.len() && matches!(raw[i + 1], b'"' | b'\\') {
                out.push(raw[i + 1]);
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &str) -> Vec<(String, String)> {
        pairs(s).map(|p| (p.key.to_owned(), p.value.into_owned())).collect()
    }

    #[test]
    fn reads_router_shapes() {
        let got = collect(r#"at=error code=H12 desc="Request timeout" path="/a b" dyno= connect= status=503"#);
        let want = [
            ("at", "error"),
            ("code", "H12"),
            ("desc", "Request timeout"),
            ("path", "/a b"),
            ("dyno", ""),
            ("connect", ""),
            ("status", "503"),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    #[test]
    fn unescapes_quotes_and_skips_bare_words() {
        let got = collect(r#"Error R14 msg="say \"hi\" \\ ok" =x tail="unterminated"#);
        let want = [("msg", r#"say "hi" \ ok"#), ("tail", "unterminated")];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }
}
