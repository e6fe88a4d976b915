//! The app's own output: one JSON object, or logfmt (two or more `key=value` pairs), goes under
//! `app.*`; anything else stays `message` only. `log.level` comes from a top-level `level` or
//! `severity` key.
//!
//! `app` is mapped `flattened`, so an app's key types can never conflict with another's. What
//! Elasticsearch would still reject is caught here: invalid JSON, duplicate keys in an object,
//! and nesting deeper than the mapping's `depth_limit` (all checked in one pass without
//! building a value). A valid object is copied into the document as written.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::keys::Distinct;
use crate::logfmt;

/// Objects nested deeper than this under `app` stay plain text; it equals the index
/// template's `depth_limit` for `app`.
pub const MAX_DEPTH: usize = 20;

/// Arrays and objects nested deeper than this under `app` (arrays count here, not in
/// [`MAX_DEPTH`]) stay plain text: a document nested 128 deep is past what common JSON readers
/// take (serde_json's limit, and so the fuzz oracle's), and no log line needs it.
pub const MAX_NESTING: usize = 100;

/// Longest string value kept under `app.*`. One Lucene term holds at most 32,766 bytes, and
/// OpenSearch's `flat_object` indexes each value whole (with its path), without
/// Elasticsearch's `ignore_above`: a longer value would cost the document there. Such a
/// message stays plain text on every server.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) enum AppFields<'a> {
    /// A validated JSON object, exactly as the app wrote it (newlines between tokens aside).
    Json(&'a [u8]),
    /// logfmt pairs, each key once (the last value wins), the first [`MAX_KEYS`] keys.
    Logfmt(Distinct<&'a str, Cow<'a, str>, MAX_KEYS>),
}

#[derive(Debug, Default)]
pub(crate) struct App<'a> {
    pub fields: Option<AppFields<'a>>,
    pub level: Option<&'static str>,
}

impl<'a> App<'a> {
    pub(crate) fn parse(msg: &'a str) -> App<'a> {
        let trimmed = msg.as_bytes().trim_ascii();
        if trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}') {
            let mut de = serde_json::Deserializer::from_slice(trimmed);
            if let Ok(top) = (Check { depth: 1, nesting: 0, top: true }).deserialize(&mut de) {
                if de.end().is_ok() {
                    return App { fields: Some(AppFields::Json(trimmed)), level: top.level.and_then(normalise_level) };
                }
            }
        }
        let mut pairs: Distinct<&'a str, Cow<'a, str>, MAX_KEYS> = Distinct::default();
        let mut level = None;
        for p in logfmt::pairs(msg) {
            if level.is_none() && matches!(p.key, "level" | "severity" | "lvl") {
                level = Some(p.value.clone());
            }
            pairs.insert(p.key, p.value);
        }
        if pairs.len() < 2 {
            return App::default();
        }
        App { fields: Some(AppFields::Logfmt(pairs)), level: level.and_then(|l| normalise_level(Level::Text(l))) }
    }
}

/// The checks [`App::parse`] makes of an object's text, made of one built in memory (an OTLP
/// record's map body and attributes, which then needs writing once, not writing and reading
/// back): no object nested deeper than [`MAX_DEPTH`], nothing deeper than [`MAX_NESTING`],
/// no string value longer than
/// [`MAX_VALUE_BYTES`] (a map has no duplicate keys). `None` when it fails; else the level its
/// first top-level `level` or `severity` scalar gives.
pub(crate) fn check_object(object: &serde_json::Map<String, serde_json::Value>) -> Option<Option<&'static str>> {
    use serde_json::Value as Json;
    fn fits(value: &Json, depth: usize, nesting: usize) -> bool {
        match value {
            Json::String(s) => s.len() <= MAX_VALUE_BYTES,
            Json::Array(items) => nesting < MAX_NESTING && items.iter().all(|v| fits(v, depth, nesting + 1)),
            Json::Object(map) => {
                depth <= MAX_DEPTH && nesting < MAX_NESTING && map.values().all(|v| fits(v, depth + 1, nesting + 1))
            }
            Json::Null | Json::Bool(_) | Json::Number(_) => true,
        }
    }
    if !object.values().all(|v| fits(v, 2, 1)) {
        return None;
    }
    let level = object.iter().filter(|(k, _)| matches!(k.as_str(), "level" | "severity")).find_map(|(_, v)| match v {
        Json::String(s) => Some(Level::Text(Cow::Borrowed(s.as_str()))),
        Json::Number(n) => n.as_u64().map(Level::Number),
        _ => None,
    });
    Some(level.and_then(normalise_level))
}

/// At most this many top-level keys of one message go under `app` (and attributes under
/// `otel.resource`); the document keeps the first ones and says how many more there were.
pub const MAX_KEYS: usize = 1000;

/// Copies a validated JSON object into `out`, turning line breaks between tokens into spaces
/// (bulk NDJSON is one document per line; inside valid JSON strings they are always escaped).
/// Keeps its first [`MAX_KEYS`] members; how many more it had.
pub(crate) fn write_json_object(out: &mut Vec<u8>, object: &[u8]) -> usize {
    let one_line = |&b: &u8| if b == b'\n' || b == b'\r' { b' ' } else { b };
    // n members take at least 5n + 1 bytes (`{"":0,…}`): a shorter object is within the cap,
    // and copied without reading its structure (most are).
    if object.len() < 5 * (MAX_KEYS + 1) + 1 {
        out.extend(object.iter().map(one_line));
        return 0;
    }
    // Top-level members end at commas outside strings and nested values.
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut commas, mut cut) = (0usize, None);
    for (i, &b) in object.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => {
                commas += 1;
                if commas == MAX_KEYS {
                    cut = Some(i);
                }
            }
            _ => {}
        }
    }
    match cut.and_then(|i| object.get(..i)) {
        Some(kept) => {
            out.extend(kept.iter().map(one_line));
            out.push(b'}');
            commas + 1 - MAX_KEYS
        }
        None => {
            out.extend(object.iter().map(one_line));
            0
        }
    }
}

#[derive(Debug)]
enum Level<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

/// The level in `log.level`'s vocabulary (the app's own word stays in `app.level`).
fn normalise_level(level: Level<'_>) -> Option<&'static str> {
    match level {
        Level::Text(t) => crate::level::normalise(&t),
        Level::Number(n) => crate::level::from_number(n),
    }
}

/// What a checked value was, as far as the top-level `level` needs to know.
#[derive(Default)]
struct Checked<'a> {
    /// Set on the top-level object only.
    level: Option<Level<'a>>,
    scalar: Option<Level<'a>>,
}

/// Walks any JSON value, failing on duplicate keys, on objects nested deeper than
/// [`MAX_DEPTH`], and on arrays and objects nested deeper than [`MAX_NESTING`].
struct Check {
    depth: usize,
    nesting: usize,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = Checked<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Checked<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = Checked<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked<'de>, E> {
        Ok(Checked::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked<'de>, E> {
        Ok(Checked::default())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Checked<'de>, E> {
        Ok(Checked { scalar: Some(Level::Number(v)), ..Checked::default() })
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked<'de>, E> {
        Ok(Checked::default())
    }
    fn visit_unit<E>(self) -> Result<Checked<'de>, E> {
        Ok(Checked::default())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Checked<'de>, E> {
        if v.len() > MAX_VALUE_BYTES {
            return Err(E::custom("value too long to index"));
        }
        Ok(Checked { scalar: Some(Level::Text(Cow::Borrowed(v))), ..Checked::default() })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked<'de>, E> {
        if v.len() > MAX_VALUE_BYTES {
            return Err(E::custom("value too long to index"));
        }
        Ok(Checked { scalar: Some(Level::Text(Cow::Owned(v.to_owned()))), ..Checked::default() })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked<'de>, A::Error> {
        if self.nesting >= MAX_NESTING {
            return Err(de::Error::custom("nested too deep"));
        }
        while seq.next_element_seed(Check { depth: self.depth, nesting: self.nesting + 1, top: false })?.is_some() {}
        Ok(Checked::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked<'de>, A::Error> {
        if self.depth > MAX_DEPTH || self.nesting >= MAX_NESTING {
            return Err(de::Error::custom("nested too deep"));
        }
        let mut keys: Distinct<Cow<'de, str>, ()> = Distinct::default();
        let mut level = None;
        while let Some(key) = map.next_key::<CowKey<'de>>()? {
            let value = map.next_value_seed(Check { depth: self.depth + 1, nesting: self.nesting + 1, top: false })?;
            if self.top && level.is_none() && matches!(key.0.as_ref(), "level" | "severity") {
                level = value.scalar;
            }
            // Top-level keys past MAX_KEYS are not written (`write_json_object`), so a repeat
            // among them costs nothing, and they need not be told apart.
            let written = !self.top || keys.len() < MAX_KEYS;
            if written && !keys.insert(key.0, ()) {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Checked { level, scalar: None })
    }
}

/// A key borrowed from the input when it has no escapes.
struct CowKey<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CowKey<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(msg: &str) -> Option<String> {
        match App::parse(msg).fields {
            Some(AppFields::Json(b)) => Some(String::from_utf8(b.to_vec()).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn json_objects_are_kept_as_written() {
        let msg = r#"{"level":"INFO","msg":"order created","order_id":42,"user":{"id":7}}"#;
        assert_eq!(json(msg).as_deref(), Some(msg));
        assert_eq!(App::parse(msg).level, Some("info"));
        assert_eq!(App::parse(r#"{"level":50,"msg":"x"}"#).level, Some("error"));
        assert_eq!(App::parse(r#"{"severity":"warning","a":{"level":"nested"}}"#).level, Some("warning"));
    }

    #[test]
    fn what_elasticsearch_would_reject_stays_plain_text() {
        assert_eq!(json(r#"{"a":1,"a":2}"#), None, "duplicate key");
        assert_eq!(json(r#"{"a":{"b":1,"b":2}}"#), None, "duplicate nested key");
        assert_eq!(json(r#"{"a":1} trailing"#), None);
        assert_eq!(json(r#"{"a":1}{"b":2}"#), None);
        assert_eq!(json("{not json}"), None);
        let long = format!(r#"{{"a":"{}","b":1}}"#, "x".repeat(MAX_VALUE_BYTES + 1));
        assert!(App::parse(&long).fields.is_none(), "a value past one term's limit keeps the message plain");
        let deep = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert_eq!(json(&deep), None);
        let ok = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(json(&ok).is_some());
        // Arrays do not count as depth for `flattened`.
        let arrays = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert!(json(&arrays).is_some());
        // But arrays and objects together stop short of what JSON readers take (serde_json 128).
        let arrays = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(json(&format!(r#"{{"a":{}}}"#, arrays(MAX_NESTING - 1))).is_some());
        assert_eq!(json(&format!(r#"{{"a":{}}}"#, arrays(MAX_NESTING))), None);
        let mut built = serde_json::Map::new();
        built.insert("a".into(), serde_json::from_str(&arrays(MAX_NESTING - 1)).unwrap());
        assert!(check_object(&built).is_some());
        built.insert("a".into(), serde_json::from_str(&arrays(MAX_NESTING)).unwrap());
        assert_eq!(check_object(&built), None);
    }

    #[test]
    fn logfmt_needs_two_pairs() {
        let app = App::parse(r#"level=warn msg="retrying job" job=SendReceipt attempt=3 job=Other"#);
        assert_eq!(app.level, Some("warning"));
        let Some(AppFields::Logfmt(pairs)) = app.fields else { panic!("logfmt") };
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[2], ("job", Cow::Borrowed("Other")));
        assert!(App::parse("Started GET / for 198.51.100.23 at=now").fields.is_none());
        assert!(App::parse("plain words").fields.is_none());
    }

    #[test]
    fn multi_line_json_becomes_one_line() {
        let mut out = Vec::new();
        let msg = "{\n  \"a\": 1,\r\n  \"b\": \"x\"\n}";
        assert!(matches!(App::parse(msg).fields, Some(AppFields::Json(_))));
        assert_eq!(write_json_object(&mut out, msg.as_bytes()), 0);
        assert!(!out.contains(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": "x"}));
    }
}
