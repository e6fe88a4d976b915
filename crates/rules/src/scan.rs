//! One pass over a document's JSON, naming each value by its dotted path (`http.request.method`;
//! a key with dots in it, as `app` may have, reads the same as nested objects). Rules read the
//! fields they match on, and find the values they redact, with it: no document is parsed into
//! values. It never panics and never loops: bytes that are not the JSON it expects end the walk.

use std::ops::Range;

/// What a value is, as far as rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string: its span is the text between the quotes, still JSON-escaped.
    String,
    /// A number, `true`, `false` or `null`: its span is the literal.
    Literal,
    /// An object: its span is the whole object, braces included (visited once it is closed).
    Object,
}

/// One container being walked: an object (whose keys extend the path) or an array (whose values
/// take the array's path), where the path stood when it opened, and where it opened.
struct Open {
    object: bool,
    path_len: usize,
    at: usize,
}

/// Calls `visit(path, kind, span)` for every value in the JSON object `doc` but arrays, whose
/// values are visited under the array's path.
pub fn walk(doc: &[u8], visit: impl FnMut(&[u8], Kind, Range<usize>)) {
    walk_some(doc, |_| true, visit);
}

/// [`walk`], into only the keys `keep` says yes to (by their full path): any other key's
/// value is skipped whole, at memchr speed, without a visit.
pub fn walk_some(doc: &[u8], keep: impl Fn(&[u8]) -> bool, mut visit: impl FnMut(&[u8], Kind, Range<usize>)) {
    let mut path: Vec<u8> = Vec::with_capacity(64);
    let mut stack: Vec<Open> = Vec::with_capacity(8);
    let mut i = skip_space(doc, 0);
    if doc.get(i) != Some(&b'{') {
        return;
    }
    stack.push(Open { object: true, path_len: 0, at: i });
    i += 1;
    while let Some(open) = stack.last() {
        let (object, path_len, at) = (open.object, open.path_len, open.at);
        i = skip_space(doc, i);
        let Some(&c) = doc.get(i) else { return };
        match c {
            b',' => {
                i += 1;
                continue;
            }
            b'}' | b']' => {
                stack.pop();
                if object && !stack.is_empty() {
                    visit(path.get(..path_len).unwrap_or_default(), Kind::Object, at..i + 1);
                }
                path.truncate(path_len);
                i += 1;
                continue;
            }
            _ => {}
        }
        if object {
            // A key, then its value.
            let Some(after_key) = key(doc, i, path_len, &mut path) else { return };
            i = after_key;
            if !keep(&path) {
                let Some(next) = value_end(doc, i) else { return };
                i = next;
                continue;
            }
        } else {
            path.truncate(path_len);
        }
        let Some(&c) = doc.get(i) else { return };
        if c == b'{' || c == b'[' {
            stack.push(Open { object: c == b'{', path_len: path.len(), at: i });
            i += 1;
            continue;
        }
        let Some((kind, span, end)) = scalar(doc, i) else { return };
        visit(&path, kind, span);
        i = end;
    }
}

/// Reads the key at `doc[i]` into `path` (after its first `path_len` bytes, a dot between);
/// where its value starts.
fn key(doc: &[u8], i: usize, path_len: usize, path: &mut Vec<u8>) -> Option<usize> {
    let end = string_end(doc, i)?;
    path.truncate(path_len);
    if !path.is_empty() {
        path.push(b'.');
    }
    path.extend_from_slice(doc.get(i + 1..end - 1).unwrap_or_default());
    let colon = skip_space(doc, end);
    (doc.get(colon) == Some(&b':')).then(|| skip_space(doc, colon + 1))
}

/// Where the value at `doc[i]` ends: a string, a literal, or a whole object or array.
fn value_end(doc: &[u8], i: usize) -> Option<usize> {
    let (open, close) = match doc.get(i)? {
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => return scalar(doc, i).map(|(_, _, end)| end),
    };
    // Only this kind of bracket counts: the other kind nests inside it, balanced. Byte by
    // byte: an object of short strings costs less so than a memchr call per string.
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (n, &b) in doc.get(i..)?.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + n + 1);
            }
        }
    }
    None
}

/// The string or literal at `doc[i]`: its kind, its span, and where it ends.
fn scalar(doc: &[u8], i: usize) -> Option<(Kind, Range<usize>, usize)> {
    if doc.get(i) == Some(&b'"') {
        let end = string_end(doc, i)?;
        return Some((Kind::String, i + 1..end - 1, end));
    }
    let end = doc
        .get(i..)?
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(doc.len(), |n| i + n);
    (end > i).then_some((Kind::Literal, i..end, end))
}

fn skip_space(doc: &[u8], mut i: usize) -> usize {
    while doc.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// Where the string starting at `doc[start]` (a quote) ends, past its closing quote.
fn string_end(doc: &[u8], start: usize) -> Option<usize> {
    if doc.get(start) != Some(&b'"') {
        return None;
    }
    let mut i = start + 1;
    // Most strings of a document are short: looked through byte by byte before memchr's setup.
    for (n, b) in doc.get(i..)?.iter().take(24).enumerate() {
        match b {
            b'"' => return Some(i + n + 1),
            b'\\' => break,
            _ => {}
        }
    }
    loop {
        let n = memchr::memchr2(b'"', b'\\', doc.get(i..)?)?;
        i += n;
        if doc.get(i) == Some(&b'\\') {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// The text of a string value's escaped span: borrowed unless it has escapes.
pub fn unescaped(escaped: &[u8]) -> std::borrow::Cow<'_, str> {
    if !escaped.contains(&b'\\') {
        return String::from_utf8_lossy(escaped);
    }
    let mut quoted = Vec::with_capacity(escaped.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(escaped);
    quoted.push(b'"');
    std::borrow::Cow::Owned(
        serde_json::from_slice::<String>(&quoted).unwrap_or_else(|_| String::from_utf8_lossy(escaped).into_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visits(doc: &str) -> Vec<(String, Kind, String)> {
        let mut seen = Vec::new();
        walk(doc.as_bytes(), |path, kind, span| {
            seen.push((String::from_utf8_lossy(path).into_owned(), kind, doc[span].to_owned()));
        });
        seen
    }

    #[test]
    fn every_value_is_named_by_its_path() {
        let doc = r#"{"@timestamp":"2024-01-01T00:00:00Z","http":{"response":{"status_code":503}},"tags":["a","b"],"app":{"user.id":"u\"1","deep":{"x":[{"y":true}]}},"n":null}"#;
        let got = visits(doc);
        let want = [
            ("@timestamp", Kind::String, "2024-01-01T00:00:00Z"),
            ("http.response.status_code", Kind::Literal, "503"),
            ("http.response", Kind::Object, r#"{"status_code":503}"#),
            ("http", Kind::Object, r#"{"response":{"status_code":503}}"#),
            ("tags", Kind::String, "a"),
            ("tags", Kind::String, "b"),
            ("app.user.id", Kind::String, r#"u\"1"#),
            ("app.deep.x.y", Kind::Literal, "true"),
            ("app.deep.x", Kind::Object, r#"{"y":true}"#),
            ("app.deep", Kind::Object, r#"{"x":[{"y":true}]}"#),
            ("app", Kind::Object, r#"{"user.id":"u\"1","deep":{"x":[{"y":true}]}}"#),
            ("n", Kind::Literal, "null"),
        ];
        let want: Vec<(String, Kind, String)> =
            want.iter().map(|(p, k, v)| ((*p).to_owned(), *k, (*v).to_owned())).collect();
        assert_eq!(got, want);
        assert_eq!(unescaped(br#"u\"1"#), "u\"1");
    }

    #[test]
    fn a_walk_into_some_keys_skips_the_others_whole() {
        let doc = r#"{"a":{"x":[{"y":"}]"}],"z":"{"},"b":{"c":1,"d":"two"},"e":[1,[2,{"f":3}]],"g":true}"#;
        let mut seen = Vec::new();
        let keep = |p: &[u8]| p == b"b" || p.starts_with(b"b.") || p == b"g";
        walk_some(doc.as_bytes(), keep, |path, kind, span| {
            seen.push((String::from_utf8_lossy(path).into_owned(), kind, doc[span].to_owned()));
        });
        let want = [
            ("b.c", Kind::Literal, "1"),
            ("b.d", Kind::String, "two"),
            ("b", Kind::Object, r#"{"c":1,"d":"two"}"#),
            ("g", Kind::Literal, "true"),
        ];
        let want: Vec<(String, Kind, String)> =
            want.iter().map(|(p, k, v)| ((*p).to_owned(), *k, (*v).to_owned())).collect();
        assert_eq!(seen, want);
        for broken in [r#"{"a":{"#, r#"{"a":[1,"#, r#"{"a":"x"#] {
            walk_some(broken.as_bytes(), |_| false, |_, _, _| panic!("nothing kept"));
        }
    }

    #[test]
    fn what_is_not_json_ends_the_walk_without_a_panic() {
        for doc in [
            "",
            "[1]",
            "{",
            r#"{"a""#,
            r#"{"a":"#,
            r#"{"a":"x"#,
            r#"{"a":1,"b"}"#,
            r#"{"a":[1,{"#,
            "{\"a\":\"\\",
            "{,,}",
        ] {
            let _ = visits(doc);
        }
        assert_eq!(visits(r#"{"a":1,"b":}"#).len(), 1);
    }
}
