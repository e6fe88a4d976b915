//! The oracle every transform target shares: the output is one JSON object on one line that
//! Elasticsearch would index into a `logs-heroku.*` data stream, field by field against the
//! index template's mappings (read at compile time from crates/drainpipe/templates/).
//!
//! What "would index" means here was checked against a running Elasticsearch 9: a duplicate
//! key anywhere is refused (its JSON parser is strict), an empty or whitespace-only field name
//! (Java's `Character.isWhitespace`) or an empty path segment (`.a`, `a..b`) is refused, a
//! dotted name under `labels`, `heroku.router` or `heroku.metrics` is refused (the dynamic
//! template maps the first segment as a keyword or double, which cannot hold an object), and
//! `date_nanos` holds 1970-01-01 to 2262-04-11 with at most nine fraction digits. Flattened
//! fields (`app`, `otel.resource`) take any names; only their depth is limited.
//!
//! OTLP data points and spans are checked the same way against their own templates
//! ([`Stream`]); below an object mapped `subobjects: false` (`metrics`), a dotted name is one
//! field, not a path, and only its segments are checked.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

const TEMPLATE: &str = include_str!("../../crates/drainpipe/templates/logs-heroku.json");
const METRICS_TEMPLATE: &str = include_str!("../../crates/drainpipe/templates/metrics-heroku.otel.json");
const TRACES_TEMPLATE: &str = include_str!("../../crates/drainpipe/templates/traces-heroku.otel.json");

/// The data stream a document goes to, and so the template it is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Logs,
    Metrics,
    Traces,
}

impl Stream {
    fn template(self) -> &'static str {
        match self {
            Stream::Logs => TEMPLATE,
            Stream::Metrics => METRICS_TEMPLATE,
            Stream::Traces => TRACES_TEMPLATE,
        }
    }

    /// `data_stream.type`.
    fn kind(self) -> &'static str {
        match self {
            Stream::Logs => "logs",
            Stream::Metrics => "metrics",
            Stream::Traces => "traces",
        }
    }
}

/// A mapped field's type, as the template names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Keyword,
    ConstantKeyword,
    Text,
    Long,
    Double,
    Date,
    DateNanos,
    Ip,
    Boolean,
    Flattened { depth_limit: usize },
}

#[derive(Debug)]
enum Field {
    Object(Object),
    Leaf(Type),
}

#[derive(Debug, Default)]
struct Object {
    properties: HashMap<String, Field>,
    /// The type a dynamic template gives names this object does not map (`labels.*`); `None`
    /// for `dynamic: false`, where an unmapped name is a field nobody can search.
    dynamic: Option<Type>,
    /// `subobjects: false`: a dotted name below is one field.
    flat: bool,
}

fn mapping(stream: Stream) -> &'static Object {
    static MAPPINGS: [OnceLock<Object>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    MAPPINGS[stream as usize].get_or_init(|| {
        let template: serde_json::Value = serde_json::from_str(stream.template()).expect("the template is JSON");
        let mappings = &template["template"]["mappings"];
        let mut root = object(&mappings["properties"]);
        for t in mappings["dynamic_templates"].as_array().into_iter().flatten() {
            let (_, t) = t.as_object().and_then(|o| o.iter().next()).expect("a named dynamic template");
            let path = t["path_match"].as_str().expect("dynamic templates here use path_match");
            let prefix = path.strip_suffix(".*").expect("path_match of the form <object>.*");
            let ty = leaf_type(&t["mapping"]);
            let mut o = &mut root;
            for segment in prefix.split('.') {
                o = match o.properties.get_mut(segment) {
                    Some(Field::Object(inner)) => inner,
                    _ => panic!("dynamic template {path} names no object of the template"),
                };
            }
            o.dynamic = Some(ty);
        }
        root
    })
}

fn object(properties: &serde_json::Value) -> Object {
    let mut o = Object::default();
    for (name, def) in properties.as_object().expect("properties is an object") {
        let flat = def["subobjects"] == false;
        let field = match def.get("properties") {
            Some(p) => Field::Object(Object { flat, ..object(p) }),
            None if def["type"] == "object" => Field::Object(Object { flat, ..Object::default() }),
            None => Field::Leaf(leaf_type(def)),
        };
        o.properties.insert(name.clone(), field);
    }
    o
}

fn leaf_type(def: &serde_json::Value) -> Type {
    match def["type"].as_str().expect("a mapped type") {
        "keyword" => Type::Keyword,
        "constant_keyword" => Type::ConstantKeyword,
        "text" | "match_only_text" => Type::Text,
        "long" | "integer" | "short" | "byte" => Type::Long,
        "double" | "float" | "scaled_float" | "half_float" => Type::Double,
        "date" => Type::Date,
        "date_nanos" => Type::DateNanos,
        "ip" => Type::Ip,
        "boolean" => Type::Boolean,
        "flattened" => Type::Flattened { depth_limit: def["depth_limit"].as_u64().map_or(20, |d| d as usize) },
        other => panic!("the oracle does not know the mapping type {other}: teach it"),
    }
}

/// A JSON value that keeps every member of an object, so duplicate keys can be seen.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(v).map(Node::Number).ok_or_else(|| E::custom("a non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members: Vec<(String, Node)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?} (Elasticsearch refuses the document)")));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// Checks one transform output; `Err` says what Elasticsearch would refuse, or what is not one
/// JSON object on one line.
pub fn check(out: &[u8]) -> Result<(), String> {
    check_except(Stream::Logs, out, known())
}

/// [`check`], letting pass the findings of the classes in `known`.
fn check_except(stream: Stream, out: &[u8], known: &[String]) -> Result<(), String> {
    if out.contains(&b'\n') {
        return Err("the document holds a newline: bulk NDJSON would split it".into());
    }
    let node: Node = serde_json::from_slice(out).map_err(|e| format!("not one valid JSON value: {e}"))?;
    let Node::Object(members) = &node else { return Err("not a JSON object".into()) };
    let mut errors = Vec::new();
    check_object(mapping(stream), "", members, &mut errors);
    let get = |path: &[&str]| -> Option<&Node> {
        let mut n = &node;
        for p in path {
            let Node::Object(m) = n else { return None };
            n = &m.iter().find(|(k, _)| k == p)?.1;
        }
        Some(n)
    };
    if get(&["@timestamp"]).is_none() {
        errors.push("[stream] no @timestamp (a data stream refuses the document)".into());
    }
    match get(&["data_stream", "type"]) {
        Some(Node::String(t)) if t == stream.kind() => {}
        other => errors.push(format!("[stream] data_stream.type is {other:?}, not {:?}", stream.kind())),
    }
    // data_stream.dataset is a constant_keyword: it must name the stream the document goes to.
    let dataset = get(&["data_stream", "dataset"]);
    match (dataset, get(&["event", "dataset"])) {
        (Some(Node::String(a)), Some(Node::String(b))) if a == b && a.starts_with("heroku.") => {}
        (a, b) => errors.push(format!("[stream] data_stream.dataset {a:?} and event.dataset {b:?} differ")),
    }
    errors.retain(|e| !known.iter().any(|k| e.starts_with(&format!("[{k}]"))));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Classes of findings to let pass while they are being fixed, so that fuzzing can go past them:
/// `DRAINPIPE_FUZZ_KNOWN=blank-name,dotted-name` (the `[class]` each message starts with). For
/// exploring only; CI sets none.
fn known() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        std::env::var("DRAINPIPE_FUZZ_KNOWN")
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Panics (the fuzzer's crash) when a data point's or span's document would be refused by its
/// stream ([`check`] against that stream's template).
pub fn assert_signal_document(stream: Stream, out: &[u8]) {
    if let Err(e) = check_except(stream, out, known()) {
        panic!("{stream:?} document Elasticsearch would refuse: {e}\ndocument: {}", String::from_utf8_lossy(out));
    }
}

/// Panics (the fuzzer's crash) when [`check`] fails, showing the document.
pub fn assert_document(out: &[u8]) {
    if let Err(e) = check(out) {
        panic!("document Elasticsearch would refuse: {e}\ndocument: {}", String::from_utf8_lossy(out));
    }
}

/// Java's `Character.isWhitespace`, which Elasticsearch uses to refuse blank field names.
fn java_whitespace(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{1f}' | '\u{2028}' | '\u{2029}')
        || (c != '\u{a0}' && c != '\u{2007}' && c != '\u{202f}' && is_space_separator(c))
}

/// Unicode general category Zs.
fn is_space_separator(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// The path a member name stands for, as Elasticsearch splits it on dots; `Err` when it refuses
/// the name.
fn split_name(name: &str) -> Result<Vec<&str>, String> {
    if name.is_empty() {
        return Err("field name is empty".into());
    }
    if name.chars().all(java_whitespace) {
        return Err(format!("field name {name:?} is only whitespace"));
    }
    if !name.contains('.') {
        return Ok(vec![name]);
    }
    // Java's split drops trailing empty strings: `a.` is `a`.
    let mut parts: Vec<&str> = name.split('.').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.is_empty() {
        return Err(format!("field name {name:?} is only dots"));
    }
    if parts.iter().any(|p| p.chars().all(java_whitespace)) {
        return Err(format!("field name {name:?} has an empty or blank segment"));
    }
    Ok(parts)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn check_object(o: &Object, path: &str, members: &[(String, Node)], errors: &mut Vec<String>) {
    for (name, value) in members {
        let segments = match split_name(name) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("[blank-name] {}: {e}", join(path, name)));
                continue;
            }
        };
        if o.flat {
            let here = join(path, name);
            match (o.properties.get(name.as_str()), o.dynamic) {
                (Some(Field::Leaf(ty)), _) => check_leaf(*ty, &here, value, errors),
                (None, Some(ty)) => check_leaf(ty, &here, value, errors),
                (Some(Field::Object(_)), _) => errors.push(format!("[type] {here}: an object below subobjects: false")),
                (None, None) => errors.push(format!("[unmapped] {here} is not in the template")),
            }
            continue;
        }
        let (last, parents) = segments.split_last().expect("split_name returns a segment");
        let mut o = o;
        let mut here = path.to_owned();
        let mut ok = true;
        for segment in parents {
            here = join(&here, segment);
            match o.properties.get(*segment) {
                Some(Field::Object(inner)) => o = inner,
                Some(Field::Leaf(ty)) => {
                    errors.push(format!(
                        "[dotted-name] {here} is mapped {ty:?}: the dotted name {name:?} makes it an object"
                    ));
                    ok = false;
                    break;
                }
                None => {
                    match o.dynamic {
                        Some(ty) => errors.push(format!(
                            "[dotted-name] {here} would be mapped {ty:?} by the dynamic template: the dotted name {name:?} makes it an object"
                        )),
                        None => errors.push(format!("[unmapped] {here} is not in the template")),
                    }
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let here = join(&here, last);
        match (o.properties.get(*last), o.dynamic) {
            (Some(Field::Object(inner)), _) => match value {
                Node::Object(m) => check_object(inner, &here, m, errors),
                // An array of objects is several values of the object field (a span's events).
                Node::Array(items) if items.iter().all(|i| matches!(i, Node::Object(_))) => {
                    for item in items {
                        if let Node::Object(m) = item {
                            check_object(inner, &here, m, errors);
                        }
                    }
                }
                other => errors.push(format!("[type] {here} is an object in the template, the document has {other:?}")),
            },
            (Some(Field::Leaf(ty)), _) => check_leaf(*ty, &here, value, errors),
            (None, Some(ty)) => check_leaf(ty, &here, value, errors),
            (None, None) => errors.push(format!("[unmapped] {here} is not in the template")),
        }
    }
}

fn check_leaf(ty: Type, path: &str, value: &Node, errors: &mut Vec<String>) {
    if let Type::Flattened { depth_limit } = ty {
        match value {
            Node::Object(_) => {
                let depth = object_depth(value);
                if depth > depth_limit {
                    errors.push(format!("[depth] {path}: objects nested {depth} deep, past depth_limit {depth_limit}"));
                }
            }
            other => errors.push(format!("[type] {path} is flattened (an object), the document has {other:?}")),
        }
        return;
    }
    if let Node::Array(items) = value {
        for item in items {
            if matches!(item, Node::Array(_)) {
                errors.push(format!("[type] {path}: nested arrays"));
            } else {
                check_leaf(ty, path, item, errors);
            }
        }
        return;
    }
    let fine = match (ty, value) {
        (Type::Keyword | Type::ConstantKeyword | Type::Text, Node::String(_)) => true,
        (Type::Long, Node::Number(n)) => n.as_i64().is_some(),
        (Type::Double, Node::Number(n)) => n.as_f64().is_some_and(f64::is_finite),
        (Type::Boolean, Node::Bool(_)) => true,
        (Type::Ip, Node::String(s)) => s.parse::<IpAddr>().is_ok(),
        (Type::Date, Node::String(s)) => rfc3339_nanos(s).is_some(),
        (Type::Date, Node::Number(n)) => n.as_i64().is_some(),
        (Type::DateNanos, Node::String(s)) => rfc3339_nanos(s).is_some_and(in_date_nanos_range),
        (Type::DateNanos, Node::Number(n)) => n.as_i64().is_some_and(|ms| ms >= 0),
        _ => false,
    };
    if !fine {
        errors.push(format!("[type] {path} is mapped {ty:?}, the document has {value:?}"));
    }
}

/// How many objects deep a value goes (an object of scalars is 1); arrays do not count.
fn object_depth(value: &Node) -> usize {
    match value {
        Node::Object(m) => 1 + m.iter().map(|(_, v)| object_depth(v)).max().unwrap_or(0),
        Node::Array(items) => items.iter().map(object_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `date_nanos` holds 1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775807Z.
fn in_date_nanos_range((secs, nanos): (i64, u32)) -> bool {
    (0..=9_223_372_036).contains(&secs) && (secs < 9_223_372_036 || nanos <= 854_775_807)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` as (seconds, nanoseconds) since the epoch: what
/// `strict_date_optional_time` takes of the forms drainpipe writes.
pub fn rfc3339_nanos(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        for &c in &b[i + 1..i + 1 + n] {
            nanos = nanos * 10 + u32::from(c - b'0');
        }
        nanos *= 10u32.pow(9 - n as u32);
        i += 1 + n;
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset, nanos))
}

/// A document Elasticsearch 9 took, and changes to it that it refused (tried by hand against a
/// real node): the oracle must pass the one and fail every other. The transform target runs
/// this once at start, so a broken oracle fails CI rather than passing everything.
pub fn self_check() {
    let strict = |doc: &[u8]| check_except(Stream::Logs, doc, &[]);
    strict(GOOD.as_bytes()).unwrap_or_else(|e| panic!("the oracle refuses a good document: {e}"));
    for (from, to) in REFUSED {
        assert!(GOOD.contains(from), "{from}");
        let doc = GOOD.replacen(from, to, 1);
        assert!(strict(doc.as_bytes()).is_err(), "the oracle passes a document Elasticsearch refuses: {doc}");
    }
    let deep = format!(r#""a":{}1{}"#, r#"{"b":"#.repeat(20), "}".repeat(20));
    assert!(strict(GOOD.replacen(r#""a":{"b""#, &(deep + r#","z":{"b""#), 1).as_bytes()).is_err(), "depth_limit");
    assert!(strict(b"{}\n").is_err() && strict(b"[]").is_err());
}

const GOOD: &str = r#"{"@timestamp":"2025-03-14T09:31:00.123456789Z","message":"x","event":{"ingested":"2025-03-14T09:31:01.5+01:00","dataset":"heroku.router","kind":"event","duration":5},"data_stream":{"type":"logs","dataset":"heroku.router","namespace":"default"},"heroku":{"router":{"fwd":["203.0.113.7","::1"],"connect_ms":1,"tls_version":"TLSv1.3"},"metrics":{"load_avg_1m":0.5,"source":"web.1"}},"labels":{"env":"prod"},"app":{"a":{"b":[1,{"c":null}]},"":1,"x.":2},"tags":["_drainpipe_parse_failure"]}"#;

const REFUSED: &[(&str, &str)] = &[
    (r#""message":"x""#, r#""message":"x","message":"y""#),
    (r#""tls_version":"TLSv1.3""#, r#""tls.version":"TLSv1.3""#),
    (r#""tls_version":"TLSv1.3""#, r#""fwd.x":"1""#),
    (r#""tls_version":"TLSv1.3""#, r#""\u2003":"1""#),
    (r#""tls_version":"TLSv1.3""#, r#""":"1""#),
    (r#""env":"prod""#, r#""a..b":"prod""#),
    (r#""env":"prod""#, r#"".a":"prod""#),
    (r#""connect_ms":1"#, r#""connect_ms":9223372036854775808"#),
    (r#""connect_ms":1"#, r#""connect_ms":1.5"#),
    (r#""connect_ms":1"#, r#""connect_ms":"1""#),
    (r#""load_avg_1m":0.5"#, r#""load_avg_1m":"0.5""#),
    (r#""::1""#, r#""01.2.3.4""#),
    ("09:31:00.123456789Z", "09:31:00.1234567891Z"),
    ("2025-03-14T09:31:00.123456789Z", "1969-12-31T23:59:59Z"),
    ("2025-03-14T09:31:00.123456789Z", "2262-04-11T23:47:17Z"),
    ("2025-03-14T09:31:00.123456789Z", "2025-02-29T00:00:00Z"),
    (r#""dataset":"heroku.router","namespace""#, r#""dataset":"heroku.app","namespace""#),
    (r#""kind":"event""#, r#""kind":"event","extra":1"#),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_passes_what_elasticsearch_takes_and_fails_what_it_refuses() {
        self_check();
    }

    #[test]
    fn every_golden_document_of_the_transform_passes() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/transform/testdata");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".expected.jsonl") {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.is_empty()) {
                let strict = check_except(Stream::Logs, line.as_bytes(), &[]);
                assert!(strict.is_ok(), "{}: {strict:?}\n{line}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} golden documents found");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(rfc3339_nanos("1970-01-01T01:00:00.5+01:00"), Some((0, 500_000_000)));
        assert_eq!(rfc3339_nanos("2262-04-11T23:47:16.854775807Z"), Some((9_223_372_036, 854_775_807)));
        assert!(rfc3339_nanos("2025-01-01T00:00:60Z").is_none());
        assert!(rfc3339_nanos("2025-01-01 00:00:00Z").is_none());
    }
}
