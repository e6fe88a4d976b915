//! `key=value` pairs as Heroku's router, runtime metrics and many apps print them: values are
//! bare words or double-quoted with `\"` and `\\` escapes; empty values (`connect=`) are kept
//! as empty strings; words without `=` are skipped. A quote that is never closed is not
//! swallowing the rest of the line: the value ends at the next space as if unquoted, the pairs
//! after it are still read, and the pair says so ([`Pair::unterminated`]).

use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pair<'a> {
    pub key: &'a str,
    pub value: Cow<'a, str>,
    /// The value opened a quote that the line never closes.
    pub unterminated: bool,
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
            let mut unterminated = false;
            let value = match s.get(self.pos) {
                Some(b'"') => match self.quoted() {
                    Some(v) => v,
                    None => {
                        // Read as a bare word without its quote.
                        unterminated = true;
                        self.pos += 1;
                        self.bare()
                    }
                },
                _ => self.bare(),
            };
            return Some(Pair { key, value, unterminated });
        }
    }
}

impl<'a> Pairs<'a> {
    /// A value up to the next space.
    fn bare(&mut self) -> Cow<'a, str> {
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != b' ' {
            self.pos += 1;
        }
        Cow::Borrowed(&self.line[start..self.pos])
    }

    /// Reads a quoted value starting at the opening quote; `None` (and the position unchanged)
    /// when the quote is never closed.
    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let s = self.s;
        let open = self.pos;
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
        if self.pos >= s.len() {
            self.pos = open;
            return None;
        }
        let end = self.pos;
        self.pos += 1;
        if !has_escape {
            return Some(Cow::Borrowed(&self.line[start..end]));
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
        Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
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

    #[test]
    fn an_unterminated_quote_does_not_swallow_the_pairs_after_it() {
        let all: Vec<Pair<'_>> = pairs(r#"path="/a b host=x.example.com status=200"#).collect();
        let got: Vec<(&str, &str, bool)> = all.iter().map(|p| (p.key, &*p.value, p.unterminated)).collect();
        assert_eq!(got, [("path", "/a", true), ("host", "x.example.com", false), ("status", "200", false)]);
        assert!(pairs(r#"a="\"" b=1"#).all(|p| !p.unterminated), "an escaped quote inside a closed one");
    }
}
