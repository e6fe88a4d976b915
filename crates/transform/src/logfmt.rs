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
        loop {
            self.advance_while(|b| b == b' ');
            if self.pos >= self.s.len() {
                return None;
            }
            let start = self.pos;
            self.advance_while(|b| b != b'=' && b != b' ');
            let key = self.text(start, self.pos);
            if self.s.get(self.pos) != Some(&b'=') || key.is_empty() {
                // A bare word (or "=x"): skip to the next space.
                self.advance_while(|b| b != b' ');
                continue;
            }
            self.pos += 1;
            let mut unterminated = false;
            let value = match self.s.get(self.pos) {
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
    /// Moves past the bytes that match `keep`.
    #[inline]
    fn advance_while(&mut self, keep: impl Fn(u8) -> bool) {
        let rest = self.s.get(self.pos..).unwrap_or_default();
        self.pos += rest.iter().take_while(|&&b| keep(b)).count();
    }

    /// The line between two positions this iterator found: each is at an ASCII delimiter or
    /// the end, so always on a character boundary (`""` would mean a bug, never a panic).
    #[inline]
    fn text(&self, start: usize, end: usize) -> &'a str {
        self.line.get(start..end).unwrap_or_default()
    }

    /// A value up to the next space.
    fn bare(&mut self) -> Cow<'a, str> {
        let start = self.pos;
        self.advance_while(|b| b != b' ');
        Cow::Borrowed(self.text(start, self.pos))
    }

    /// Reads a quoted value starting at the opening quote; `None` (and the position unchanged)
    /// when the quote is never closed.
    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let open = self.pos;
        let start = open + 1;
        let body = self.s.get(start..).unwrap_or_default();
        let mut has_escape = false;
        let mut i = 0;
        let close = loop {
            match body.get(i) {
                None => return None,
                Some(b'\\') if i + 1 < body.len() => {
                    has_escape = true;
                    i += 2;
                }
                Some(b'"') => break i,
                Some(_) => i += 1,
            }
        };
        self.pos = start + close + 1;
        if !has_escape {
            return Some(Cow::Borrowed(self.text(start, start + close)));
        }
        // `\"` and `\\` lose their backslash; any other backslash stays. Runs between them are
        // copied whole; every cut is next to an ASCII backslash, so on a character boundary.
        let raw = body.get(..close).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let (mut run, mut i) = (0, 0);
        while let Some(&b) = raw.get(i) {
            if b == b'\\' && matches!(raw.get(i + 1), Some(b'"' | b'\\')) {
                out.push_str(self.text(start + run, start + i));
                run = i + 1; // the escaped character starts the next run
                i += 2;
            } else {
                i += 1;
            }
        }
        out.push_str(self.text(start + run, start + close));
        Some(Cow::Owned(out))
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
