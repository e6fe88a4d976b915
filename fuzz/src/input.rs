//! Structured inputs: syslog headers whose fields are chosen, message bodies built from the keys
//! each dataset's parser knows, and the frame's context. Anywhere between and around the
//! tokens, [`Junk`] inserts every whitespace class, invalid UTF-8, truncated multi-byte
//! sequences, delimiters and arbitrary text, so a parser that splits by one rule and slices by
//! another is found.

use arbitrary::Arbitrary;

/// Unicode `White_Space`, what Java's `Character.isWhitespace` adds (U+001C–001F, which
/// Elasticsearch's name checks use), and characters that only look like space.
pub const WHITESPACE: &[char] = &[
    '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}',
    '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200a}', '\u{2028}',
    '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}', '\u{feff}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', '\u{180e}',
    '\u{200b}', '\u{2060}',
];

fn pick<T: Copy>(table: &[T], i: impl Into<usize>) -> T {
    table[i.into() % table.len()]
}

/// One whitespace character of any class.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Ws(u8);

impl Ws {
    pub fn push(self, out: &mut Vec<u8>) {
        let mut buf = [0; 4];
        out.extend_from_slice(pick(WHITESPACE, self.0).encode_utf8(&mut buf).as_bytes());
    }
}

const INVALID_UTF8: &[&[u8]] = &[
    b"\x80",
    b"\xbf",
    b"\xff",
    b"\xfe",
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
];
/// The first bytes of a longer character, cut short.
const TRUNCATED: &[&[u8]] =
    &[b"\xc2", b"\xc3", b"\xe2", b"\xe2\x80", b"\xe3\x80", b"\xef\xbb", b"\xf0", b"\xf0\x9f", b"\xf0\x9f\x98"];
const PUNCT: &[u8] = b"=\"\\#(),:;[]{}.-`@?%&/<>*'!|~^$+_\0\x1b\x7f";

/// Something out of place.
#[derive(Arbitrary, Debug, Clone)]
pub enum Junk {
    Ws(Ws),
    Invalid(u8),
    Truncated(u8),
    Punct(u8),
    Char(char),
    Text(String),
    Bytes(Vec<u8>),
}

impl Junk {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            Junk::Ws(w) => w.push(out),
            Junk::Invalid(i) => out.extend_from_slice(pick(INVALID_UTF8, *i)),
            Junk::Truncated(i) => out.extend_from_slice(pick(TRUNCATED, *i)),
            Junk::Punct(i) => out.push(pick(PUNCT, *i)),
            Junk::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Junk::Text(s) => out.extend_from_slice(s.as_bytes()),
            Junk::Bytes(b) => out.extend_from_slice(b),
        }
    }
}

fn push_all(junk: &[Junk], out: &mut Vec<u8>) {
    for j in junk {
        j.push(out);
    }
}

/// What separates two tokens: mostly one space, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Sep {
    Space,
    Spaces(u8),
    Ws(Ws),
    WsThenSpace(Ws),
    SpaceThenWs(Ws),
    None,
    Junk(Vec<Junk>),
}

impl Sep {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            Sep::Space => out.push(b' '),
            Sep::Spaces(n) => out.extend(std::iter::repeat_n(b' ', usize::from(n % 4) + 2)),
            Sep::Ws(w) => w.push(out),
            Sep::WsThenSpace(w) => {
                w.push(out);
                out.push(b' ');
            }
            Sep::SpaceThenWs(w) => {
                out.push(b' ');
                w.push(out);
            }
            Sep::None => {}
            Sep::Junk(j) => push_all(j, out),
        }
    }
}

/// Words of log lines: levels (including ones whose case mapping changes their length), HTTP
/// words, states, dyno names.
const WORDS: &[&str] = &[
    "info",
    "INFO",
    "warn",
    "warning",
    "WARN",
    "error",
    "ERROR",
    "err",
    "debug",
    "trace",
    "fatal",
    "critical",
    "crit",
    "notice",
    "alert",
    "emerg",
    "emergency",
    "panic",
    "severe",
    "30",
    "50",
    "7",
    "-1",
    "",
    "İNFO",
    "ınfo",
    "ERRİR",
    "ſevere",
    "Ⅰ",
    "GET",
    "POST",
    "HEAD",
    "/",
    "/a?b=c",
    "/?",
    "https",
    "http",
    "web.1",
    "worker.12",
    "run.1234",
    "scheduler.4821",
    "router",
    "up",
    "down",
    "starting",
    "crashed",
    "idle",
    "unknown",
    "-",
    "d.",
    "web.",
    ".1",
    "heroku.2808254.d97d",
    "TLSv1.3",
    "true",
    "null",
    "{}",
    "[]",
    "😀",
    "ǅ",
    "ﬃ",
    "ß",
];

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Word(u8);

impl Word {
    pub fn as_str(self) -> &'static str {
        pick(WORDS, self.0)
    }
}

/// An IP address as a router's `fwd=` may carry it, good or bad.
#[derive(Arbitrary, Debug, Clone)]
pub enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
    V6Short(u16),
    V4Mapped([u8; 4]),
    LeadingZero([u8; 4]),
    Zone(u16, String),
    Unknown,
    Text(String),
}

impl Ip {
    fn push(&self, out: &mut Vec<u8>) {
        let s = match self {
            Ip::V4(a) => std::net::Ipv4Addr::from(*a).to_string(),
            Ip::V6(a) => std::net::Ipv6Addr::from(*a).to_string(),
            Ip::V6Short(x) => format!("2001:db8::{x:x}"),
            Ip::V4Mapped(a) => format!("::ffff:{}", std::net::Ipv4Addr::from(*a)),
            Ip::LeadingZero(a) => format!("0{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Ip::Zone(x, z) => format!("fe80::{x:x}%{z}"),
            Ip::Unknown => "unknown".to_owned(),
            Ip::Text(t) => t.clone(),
        };
        out.extend_from_slice(s.as_bytes());
    }
}

/// A number as text, in the shapes parsers trip on.
#[derive(Arbitrary, Debug, Clone)]
pub enum Num {
    Small(u8),
    U64(u64),
    I64(i64),
    F64(f64),
    Fixed(u32, u8),
    Exp(i16, i16),
    Shape(u8),
}

const NUM_SHAPES: &[&str] = &[
    "",
    "-",
    "+1",
    ".5",
    "5.",
    "1e",
    "1e400",
    "-1e400",
    "1e308",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-0",
    "007",
    "0",
    "1_000",
    "0x10",
    "1,5",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "4.9e-324",
    "1.7976931348623157e308",
    "٣",
    "１",
];

impl Num {
    fn push(&self, out: &mut Vec<u8>) {
        let s = match self {
            Num::Small(n) => n.to_string(),
            Num::U64(n) => n.to_string(),
            Num::I64(n) => n.to_string(),
            Num::F64(f) => f.to_string(),
            Num::Fixed(n, d) => format!("{}.{:0width$}", n / 100, n % 100, width = usize::from(d % 4)),
            Num::Exp(m, e) => format!("{m}e{e}"),
            Num::Shape(i) => pick(NUM_SHAPES, *i).to_owned(),
        };
        out.extend_from_slice(s.as_bytes());
    }
}

/// A `key=` value.
#[derive(Arbitrary, Debug, Clone)]
pub enum Value {
    Empty,
    Word(Word),
    Num(Num),
    Ms(Num),
    Ip(Ip),
    Fwd(Vec<Ip>, Sep),
    Code(Code),
    Quoted(Box<Value>),
    /// `"…"` with `\"` and `\\` escapes inside.
    Escaped(String),
    Unterminated(Box<Value>),
    Then(Box<Value>, Vec<Junk>),
    Junk(Vec<Junk>),
}

impl Value {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            Value::Empty => {}
            Value::Word(w) => out.extend_from_slice(w.as_str().as_bytes()),
            Value::Num(n) => n.push(out),
            Value::Ms(n) => {
                n.push(out);
                out.extend_from_slice(b"ms");
            }
            Value::Ip(ip) => ip.push(out),
            Value::Fwd(ips, sep) => {
                out.push(b'"');
                for (i, ip) in ips.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                        sep.push(out);
                    }
                    ip.push(out);
                }
                out.push(b'"');
            }
            Value::Code(c) => c.push(out),
            Value::Quoted(v) => {
                out.push(b'"');
                v.push(out);
                out.push(b'"');
            }
            Value::Escaped(s) => {
                out.push(b'"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push(b'\\');
                    }
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                out.push(b'"');
            }
            Value::Unterminated(v) => {
                out.push(b'"');
                v.push(out);
            }
            Value::Then(v, junk) => {
                v.push(out);
                push_all(junk, out);
            }
            Value::Junk(j) => push_all(j, out),
        }
    }
}

/// An error code: Heroku's (`H12`, `R14`, `L10`) or one shaped like them.
#[derive(Arbitrary, Debug, Clone)]
pub enum Code {
    Known(u8),
    Shape(u8, u8, u8),
    Text(String),
}

const CODES: &[&str] =
    &["H10", "H12", "H13", "H18", "H27", "H99", "R10", "R12", "R14", "R15", "R99", "L10", "L11", "L13"];

impl Code {
    fn push(&self, out: &mut Vec<u8>) {
        match self {
            Code::Known(i) => out.extend_from_slice(pick(CODES, *i).as_bytes()),
            Code::Shape(l, a, b) => {
                out.push(pick(b"HRLhrlX", *l));
                out.push(b'0' + a % 10);
                out.push(b'0' + b % 10);
            }
            Code::Text(t) => out.extend_from_slice(t.as_bytes()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Router lines.

const ROUTER_KEYS: &[&str] = &[
    "at",
    "method",
    "path",
    "host",
    "request_id",
    "fwd",
    "dyno",
    "connect",
    "service",
    "status",
    "bytes",
    "protocol",
    "code",
    "desc",
    "tls_version",
    "connect_ms",
    "service_ms",
    "fwd_text",
    "fwd.x",
    "tls.version",
    "a.",
    ".a",
    "a..b",
    ".",
    "sock",
    "AT",
    "at ",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Key {
    Known(u8),
    Any(String),
    Junk(Vec<Junk>),
}

impl Key {
    fn push(&self, table: &[&str], out: &mut Vec<u8>) {
        match self {
            Key::Known(i) => out.extend_from_slice(pick(table, *i).as_bytes()),
            Key::Any(s) => out.extend_from_slice(s.as_bytes()),
            Key::Junk(j) => push_all(j, out),
        }
    }
}

/// `key=value` pairs (or junk), each followed by its separator.
#[derive(Arbitrary, Debug, Clone)]
pub enum Piece {
    Pair(Key, Value, Sep),
    Junk(Junk),
    Word(Word, Sep),
}

fn push_pieces(pieces: &[Piece], keys: &[&str], out: &mut Vec<u8>) {
    for p in pieces {
        match p {
            Piece::Pair(k, v, sep) => {
                k.push(keys, out);
                out.push(b'=');
                v.push(out);
                sep.push(out);
            }
            Piece::Junk(j) => j.push(out),
            Piece::Word(w, sep) => {
                out.extend_from_slice(w.as_str().as_bytes());
                sep.push(out);
            }
        }
    }
}

/// A router line: `at=info method=GET path=/ host=… fwd="…" dyno=web.1 connect=0ms …`.
#[derive(Arbitrary, Debug, Clone)]
pub struct RouterLine {
    pub pieces: Vec<Piece>,
}

impl RouterLine {
    pub fn push(&self, out: &mut Vec<u8>) {
        push_pieces(&self.pieces, ROUTER_KEYS, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics lines (runtime metrics, Postgres, Redis).

const METRIC_KEYS: &[&str] = &[
    "source",
    "addon",
    "dyno",
    "sample#memory_total",
    "sample#memory_rss",
    "sample#load_avg_1m",
    "sample#memory_pgpgin",
    "sample#db_size",
    "sample#active-connections",
    "count#evicted.keys",
    "measure#x",
    "sample#source",
    "sample#",
    "count#",
    "measure#",
    "sample#a.b",
    "sample#a-",
    "sample#\t",
    "sample#\u{2003}",
    "sample#.",
    "sample#é",
    "sample#x",
    "sample#x",
];
const UNITS: &[&str] =
    &["", "bytes", "pages", "kB", "KB", "MB", "GB", "ms", "s", "%", "KiB", "b", "MBs", "%%", "\u{85}", "é"];

#[derive(Arbitrary, Debug, Clone)]
pub enum MetricPiece {
    Sample(Key, Num, u8, Sep),
    Piece(Piece),
}

/// A metrics line; with `runtime` it starts `source=`, as log-runtime-metrics lines do.
#[derive(Arbitrary, Debug, Clone)]
pub struct MetricsLine {
    pub runtime: bool,
    pub source: Value,
    pub pieces: Vec<MetricPiece>,
}

impl MetricsLine {
    pub fn push(&self, out: &mut Vec<u8>) {
        if self.runtime {
            out.extend_from_slice(b"source=");
            self.source.push(out);
            out.push(b' ');
        }
        for p in &self.pieces {
            match p {
                MetricPiece::Sample(k, n, unit, sep) => {
                    k.push(METRIC_KEYS, out);
                    out.push(b'=');
                    n.push(out);
                    out.extend_from_slice(pick(UNITS, *unit).as_bytes());
                    sep.push(out);
                }
                MetricPiece::Piece(p) => push_pieces(std::slice::from_ref(p), METRIC_KEYS, out),
            }
        }
        if self.runtime && !self.pieces.iter().any(|p| matches!(p, MetricPiece::Sample(..))) {
            out.extend_from_slice(b"sample#load_avg_1m=0.5");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Platform and Logplex lines.

/// What a platform (`heroku web.1`, `heroku api`) or Logplex line says.
#[derive(Arbitrary, Debug, Clone)]
pub enum PlatformLine {
    /// `Error R14 (Memory quota exceeded)`, `Error L10 (output buffer overflow): 7 messages dropped since …`.
    Error {
        lead: Sep,
        more: Vec<Ws>,
        code: Code,
        gap: Sep,
        desc: Option<(Vec<Junk>, bool)>,
        tail: Tail,
    },
    Exited {
        lead: Sep,
        status: Num,
        tail: Vec<Junk>,
    },
    State {
        lead: Sep,
        from: Word,
        to_sep: (Sep, Sep),
        to: Word,
        tail: Vec<Junk>,
    },
    Starting {
        command: Vec<Junk>,
        closed: bool,
        tail: Vec<Junk>,
    },
    Release {
        lead: Sep,
        version: Version,
        by: Option<Email>,
    },
    Scaled {
        by: Email,
    },
    Free(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Tail {
    None,
    /// `: 7 messages dropped since …`
    Dropped(Sep, Num, Sep, Vec<Junk>),
    /// `… dropped 7 messages`
    DroppedBefore(Sep, Num),
    Junk(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Version {
    V(u32),
    Bare(Num),
    Junk(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Email {
    Plain(u8),
    Junk(Vec<Junk>, bool),
}

impl PlatformLine {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            PlatformLine::Error { lead, more, code, gap, desc, tail } => {
                out.extend_from_slice(b"Error");
                lead.push(out);
                for w in more {
                    w.push(out);
                }
                code.push(out);
                gap.push(out);
                if let Some((desc, closed)) = desc {
                    out.push(b'(');
                    push_all(desc, out);
                    if *closed {
                        out.push(b')');
                    }
                }
                match tail {
                    Tail::None => {}
                    Tail::Dropped(a, n, b, rest) => {
                        out.push(b':');
                        a.push(out);
                        n.push(out);
                        b.push(out);
                        out.extend_from_slice(b"messages dropped since 2025-03-14T09:30:59+00:00.");
                        push_all(rest, out);
                    }
                    Tail::DroppedBefore(a, n) => {
                        out.extend_from_slice(b" dropped");
                        a.push(out);
                        n.push(out);
                        out.extend_from_slice(b" messages");
                    }
                    Tail::Junk(j) => push_all(j, out),
                }
            }
            PlatformLine::Exited { lead, status, tail } => {
                out.extend_from_slice(b"Process exited with status");
                lead.push(out);
                status.push(out);
                push_all(tail, out);
            }
            PlatformLine::State { lead, from, to_sep, to, tail } => {
                out.extend_from_slice(b"State changed from");
                lead.push(out);
                out.extend_from_slice(from.as_str().as_bytes());
                to_sep.0.push(out);
                out.extend_from_slice(b"to");
                to_sep.1.push(out);
                out.extend_from_slice(to.as_str().as_bytes());
                push_all(tail, out);
            }
            PlatformLine::Starting { command, closed, tail } => {
                out.extend_from_slice(b"Starting process with command `");
                push_all(command, out);
                if *closed {
                    out.push(b'`');
                }
                push_all(tail, out);
            }
            PlatformLine::Release { lead, version, by } => {
                out.extend_from_slice(b"Release");
                lead.push(out);
                match version {
                    Version::V(n) => out.extend_from_slice(format!("v{n}").as_bytes()),
                    Version::Bare(n) => {
                        out.push(b'v');
                        n.push(out);
                    }
                    Version::Junk(j) => push_all(j, out),
                }
                out.extend_from_slice(b" created");
                if let Some(by) = by {
                    by.push(out);
                }
            }
            PlatformLine::Scaled { by } => {
                out.extend_from_slice(b"Scaled to web@2:Standard-1X worker@1:Standard-1X");
                by.push(out);
            }
            PlatformLine::Free(j) => push_all(j, out),
        }
    }
}

impl Email {
    fn push(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b" by ");
        match self {
            Email::Plain(i) => {
                out.extend_from_slice(pick(&["ops@example.com", "a@b", "@", "x@y.z.", "é@ü.de"], *i).as_bytes())
            }
            Email::Junk(j, at) => {
                push_all(j, out);
                if *at {
                    out.push(b'@');
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The app's own output: JSON objects, logfmt, text.

const APP_KEYS: &[&str] = &[
    "level",
    "severity",
    "lvl",
    "msg",
    "message",
    "a",
    "b",
    "a.b",
    "",
    ".",
    "..",
    "a.",
    ".a",
    " ",
    "\t",
    "\u{2003}",
    "level ",
    "LEVEL",
    "@timestamp",
    "time",
    "err",
];

/// A JSON value, with room for what is not quite JSON.
#[derive(Arbitrary, Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Num(Num),
    Str(JsonStr),
    Array(Vec<Json>),
    Object(Vec<(JsonKey, Json)>),
    /// `{"a":{"a":…}}` this many levels deep around the value (around MAX_DEPTH = 20).
    Deep(u8, Box<Json>),
    /// A string of this many copies of a character (around MAX_VALUE_BYTES = 16 KiB).
    Long(u16, char),
    /// Bytes where a value should be.
    Junk(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum JsonKey {
    Known(u8),
    Any(String),
    /// Raw bytes between the quotes, unescaped.
    Raw(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum JsonStr {
    Word(Word),
    Any(String),
    Raw(Vec<Junk>),
}

/// JSON's own whitespace, or any other, between tokens.
#[derive(Arbitrary, Debug, Clone)]
pub enum JsonGap {
    None,
    Json(u8),
    Other(Ws),
}

fn push_json_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(serde_json::to_string(s).unwrap_or_default().as_bytes());
}

impl Json {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Json::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::Uint(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
            Json::Num(n) => n.push(out),
            Json::Str(s) => match s {
                JsonStr::Word(w) => push_json_string(w.as_str(), out),
                JsonStr::Any(s) => push_json_string(s, out),
                JsonStr::Raw(j) => {
                    out.push(b'"');
                    push_all(j, out);
                    out.push(b'"');
                }
            },
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.push(out);
                }
                out.push(b']');
            }
            Json::Object(members) => {
                out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match k {
                        JsonKey::Known(i) => push_json_string(pick(APP_KEYS, *i), out),
                        JsonKey::Any(s) => push_json_string(s, out),
                        JsonKey::Raw(j) => {
                            out.push(b'"');
                            push_all(j, out);
                            out.push(b'"');
                        }
                    }
                    out.push(b':');
                    v.push(out);
                }
                out.push(b'}');
            }
            Json::Deep(n, inner) => {
                let n = usize::from(n % 24);
                for _ in 0..n {
                    out.extend_from_slice(b"{\"a\":");
                }
                inner.push(out);
                out.extend(std::iter::repeat_n(b'}', n));
            }
            Json::Long(n, c) => {
                let s: String = std::iter::repeat_n(*c, usize::from(*n % 20_000)).collect();
                push_json_string(&s, out);
            }
            Json::Junk(j) => push_all(j, out),
        }
    }
}

/// What an app writes.
#[derive(Arbitrary, Debug, Clone)]
pub enum AppLine {
    /// A JSON object, with gaps before and after (`members` become its top-level keys).
    Json {
        before: JsonGap,
        members: Vec<(JsonKey, Json)>,
        after: JsonGap,
        trailing: Vec<Junk>,
    },
    Logfmt(Vec<Piece>),
    Text(Vec<Junk>),
}

impl JsonGap {
    fn push(&self, out: &mut Vec<u8>) {
        match self {
            JsonGap::None => {}
            JsonGap::Json(i) => out.push(pick(b" \t\n\r", *i)),
            JsonGap::Other(w) => w.push(out),
        }
    }
}

impl AppLine {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            AppLine::Json { before, members, after, trailing } => {
                before.push(out);
                Json::Object(members.clone()).push(out);
                after.push(out);
                push_all(trailing, out);
            }
            AppLine::Logfmt(pieces) => push_pieces(pieces, APP_KEYS, out),
            AppLine::Text(j) => push_all(j, out),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The syslog header.

/// `<PRI>`.
#[derive(Arbitrary, Debug, Clone)]
pub enum Pri {
    Valid(u8),
    Any(u16),
    LeadingZero(u8),
    Empty,
    Unclosed(u8),
    Missing,
    Junk(Vec<Junk>),
}

/// VERSION.
#[derive(Arbitrary, Debug, Clone)]
pub enum Version5424 {
    One,
    Digits(u16),
    Missing,
    Junk(Vec<Junk>),
}

/// TIMESTAMP, from a few shapes including bad ones.
#[derive(Arbitrary, Debug, Clone)]
pub enum Ts {
    Rfc3339 {
        year: Year,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        frac: Frac,
        offset: Offset,
        t: u8,
    },
    Nil,
    /// `Mmm dd hh:mm:ss` (and no VERSION before it: the RFC 3164 form).
    Rfc3164 {
        month: u8,
        day: u8,
        zero_pad: bool,
        hour: u8,
        minute: u8,
        second: u8,
    },
    /// A valid timestamp cut after this many bytes.
    Cut(u8),
    Junk(Vec<Junk>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Year {
    Recent(u8),
    Edge(u8),
    Any(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Frac {
    None,
    Digits(u8, u64),
    Dot,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Offset {
    Z,
    LowerZ,
    Plus(u8, u8),
    Minus(u8, u8),
    NoColon,
    Missing,
    Junk(Vec<Junk>),
}

impl Ts {
    fn push(&self, out: &mut Vec<u8>) {
        match self {
            Ts::Rfc3339 { year, month, day, hour, minute, second, frac, offset, t } => {
                let year = match year {
                    Year::Recent(y) => 2020 + u16::from(y % 8),
                    Year::Edge(i) => pick(&[0u16, 1, 1969, 1970, 2000, 2100, 2262, 2263, 9999], *i),
                    Year::Any(y) => y % 10_000,
                };
                let s = format!(
                    "{year:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
                    month % 14,
                    day % 33,
                    pick(&['T', 't', ' ', 'x'], *t),
                    hour % 25,
                    minute % 61,
                    second % 62
                );
                out.extend_from_slice(s.as_bytes());
                match frac {
                    Frac::None => {}
                    Frac::Digits(n, v) => {
                        let n = usize::from(n % 13) + 1;
                        let digits = format!("{v:020}");
                        out.push(b'.');
                        out.extend_from_slice(&digits.as_bytes()[20 - n.min(20)..]);
                    }
                    Frac::Dot => out.push(b'.'),
                }
                match offset {
                    Offset::Z => out.push(b'Z'),
                    Offset::LowerZ => out.push(b'z'),
                    Offset::Plus(h, m) => out.extend_from_slice(format!("+{:02}:{:02}", h % 25, m % 61).as_bytes()),
                    Offset::Minus(h, m) => out.extend_from_slice(format!("-{:02}:{:02}", h % 25, m % 61).as_bytes()),
                    Offset::NoColon => out.extend_from_slice(b"+0000"),
                    Offset::Missing => {}
                    Offset::Junk(j) => push_all(j, out),
                }
            }
            Ts::Nil => out.push(b'-'),
            Ts::Rfc3164 { month, day, zero_pad, hour, minute, second } => {
                const MONTHS: [&str; 13] =
                    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"];
                let day = day % 33;
                let day = if *zero_pad { format!("{day:02}") } else { format!("{day:>2}") };
                let s =
                    format!("{} {day} {:02}:{:02}:{:02}", pick(&MONTHS, *month), hour % 25, minute % 61, second % 62);
                out.extend_from_slice(s.as_bytes());
            }
            Ts::Cut(n) => out.extend_from_slice(&b"2025-03-14T09:31:00.123456+00:00"[..usize::from(n % 32)]),
            Ts::Junk(j) => push_all(j, out),
        }
    }
}

/// HOSTNAME: on syslog drains the drain token (`d.<uuid>`).
#[derive(Arbitrary, Debug, Clone)]
pub enum Host {
    Token([u8; 16]),
    Known(u8),
    Nil,
    Any(Vec<Junk>),
}

impl Host {
    pub fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Host::Token(b) => out.extend_from_slice(token_text(b).as_bytes()),
            Host::Known(i) => out.extend_from_slice(
                pick(&["host", "d.", "d", "D.x", "localhost", "d.good", "d.stranger"], *i).as_bytes(),
            ),
            Host::Nil => out.push(b'-'),
            Host::Any(j) => push_all(j, &mut out),
        }
        out
    }
}

fn token_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("d.{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// APP-NAME: `heroku`, `app` or anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum AppName {
    Heroku,
    App,
    Nil,
    Any(Vec<Junk>),
}

/// PROCID.
#[derive(Arbitrary, Debug, Clone)]
pub enum ProcId {
    Router,
    Web1,
    Postgres,
    Redis,
    Logplex,
    Api,
    Scheduler,
    Dyno(Word, u16),
    Nil,
    Any(Vec<Junk>),
}

impl ProcId {
    fn push(&self, out: &mut Vec<u8>) {
        match self {
            ProcId::Router => out.extend_from_slice(b"router"),
            ProcId::Web1 => out.extend_from_slice(b"web.1"),
            ProcId::Postgres => out.extend_from_slice(b"heroku-postgres"),
            ProcId::Redis => out.extend_from_slice(b"heroku-redis"),
            ProcId::Logplex => out.extend_from_slice(b"logplex"),
            ProcId::Api => out.extend_from_slice(b"api"),
            ProcId::Scheduler => out.extend_from_slice(b"scheduler.4821"),
            ProcId::Dyno(w, n) => out.extend_from_slice(format!("{}.{n}", w.as_str()).as_bytes()),
            ProcId::Nil => out.push(b'-'),
            ProcId::Any(j) => push_all(j, out),
        }
    }
}

/// STRUCTURED-DATA (syslog drains only).
#[derive(Arbitrary, Debug, Clone)]
pub enum Sd {
    Absent,
    Nil,
    Elements(Vec<(String, Vec<(String, String)>)>),
    Unclosed(String),
    Junk(Vec<Junk>),
}

/// A syslog header whose every field is chosen, each followed by its separator.
#[derive(Arbitrary, Debug, Clone)]
pub struct Header {
    pub pri: Pri,
    pub version: Version5424,
    pub sep1: Sep,
    pub timestamp: Ts,
    pub sep2: Sep,
    pub host: Host,
    pub sep3: Sep,
    pub app: AppName,
    pub sep4: Sep,
    pub procid: ProcId,
    pub sep5: Sep,
    pub msgid: Option<Vec<Junk>>,
    pub sd: Sd,
    pub sep6: Sep,
}

impl Header {
    pub fn push(&self, out: &mut Vec<u8>) {
        match &self.pri {
            Pri::Valid(p) => out.extend_from_slice(format!("<{}>", p % 192).as_bytes()),
            Pri::Any(p) => out.extend_from_slice(format!("<{p}>").as_bytes()),
            Pri::LeadingZero(p) => out.extend_from_slice(format!("<0{}>", p % 192).as_bytes()),
            Pri::Empty => out.extend_from_slice(b"<>"),
            Pri::Unclosed(p) => out.extend_from_slice(format!("<{p}").as_bytes()),
            Pri::Missing => {}
            Pri::Junk(j) => push_all(j, out),
        }
        // RFC 3164 has no VERSION.
        if !matches!(self.timestamp, Ts::Rfc3164 { .. }) {
            match &self.version {
                Version5424::One => out.push(b'1'),
                Version5424::Digits(d) => out.extend_from_slice(d.to_string().as_bytes()),
                Version5424::Missing => {}
                Version5424::Junk(j) => push_all(j, out),
            }
            self.sep1.push(out);
        }
        self.timestamp.push(out);
        self.sep2.push(out);
        out.extend_from_slice(&self.host.text());
        self.sep3.push(out);
        match &self.app {
            AppName::Heroku => out.extend_from_slice(b"heroku"),
            AppName::App => out.extend_from_slice(b"app"),
            AppName::Nil => out.push(b'-'),
            AppName::Any(j) => push_all(j, out),
        }
        self.sep4.push(out);
        self.procid.push(out);
        self.sep5.push(out);
        match &self.msgid {
            None => out.push(b'-'),
            Some(j) => push_all(j, out),
        }
        match &self.sd {
            Sd::Absent => {}
            Sd::Nil => out.extend_from_slice(b" -"),
            Sd::Elements(elements) => {
                out.push(b' ');
                for (id, params) in elements {
                    out.push(b'[');
                    out.extend_from_slice(id.as_bytes());
                    for (k, v) in params {
                        out.push(b' ');
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(b"=\"");
                        for c in v.chars() {
                            if matches!(c, '"' | '\\' | ']') {
                                out.push(b'\\');
                            }
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        out.push(b'"');
                    }
                    out.push(b']');
                }
            }
            Sd::Unclosed(s) => {
                out.extend_from_slice(b" [");
                out.extend_from_slice(s.as_bytes());
            }
            Sd::Junk(j) => {
                out.push(b' ');
                push_all(j, out);
            }
        }
        self.sep6.push(out);
    }
}

/// A header that reaches the dataset `procid` and `app` name, with a valid timestamp.
pub fn fixed_header(app: &str, procid: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<158>1 2025-03-14T09:31:00.123456+00:00 host ");
    out.extend_from_slice(app.as_bytes());
    out.push(b' ');
    out.extend_from_slice(procid.as_bytes());
    out.extend_from_slice(b" - ");
}

/// Any message body, of any dataset.
#[derive(Arbitrary, Debug, Clone)]
pub enum Body {
    Router(RouterLine),
    Metrics(MetricsLine),
    Platform(PlatformLine),
    App(AppLine),
    Bytes(Vec<u8>),
}

impl Body {
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            Body::Router(l) => l.push(out),
            Body::Metrics(l) => l.push(out),
            Body::Platform(l) => l.push(out),
            Body::App(l) => l.push(out),
            Body::Bytes(b) => out.extend_from_slice(b),
        }
    }
}

/// How a message ends.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum End {
    None,
    Newline,
    CrLf,
    Two,
}

impl End {
    pub fn push(self, out: &mut Vec<u8>) {
        match self {
            End::None => {}
            End::Newline => out.push(b'\n'),
            End::CrLf => out.extend_from_slice(b"\r\n"),
            End::Two => out.extend_from_slice(b"\n\n"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The context a frame arrives with.

/// The receiver's view of the frame: what [`drainpipe_transform::Context`] borrows.
#[derive(Arbitrary, Debug, Clone)]
pub struct Ctx {
    pub app: Option<String>,
    pub token: Option<Host>,
    pub frame_id: Option<String>,
    /// Label names as the receiver rewrites them (`a-z 0-9 _`, at most 64); values at most
    /// 1,024 characters; at most 32.
    pub labels: Vec<(String, String)>,
    /// Seconds after 2000-01-01 (up to 2100) and nanoseconds.
    pub received: (u32, u32),
    pub syslog: bool,
    /// Whether the drain-token list knows tokens (as `token_app`).
    pub token_app: Option<String>,
    pub namespace: u8,
}

/// Owned data a [`drainpipe_transform::Context`] can borrow.
#[derive(Debug)]
pub struct OwnedCtx {
    pub app: Option<String>,
    pub token: Option<String>,
    pub frame_id: Option<String>,
    pub labels: Vec<(String, String)>,
    pub received: drainpipe_transform::Timestamp,
    pub sd: drainpipe_transform::StructuredData,
    pub tokens: Option<std::collections::HashMap<String, String>>,
    pub namespace: &'static str,
}

impl Ctx {
    pub fn owned(&self) -> OwnedCtx {
        let mut labels: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.labels {
            let name: String = k
                .chars()
                .take(64)
                .map(|c| {
                    let c = c.to_ascii_lowercase();
                    if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let value: String = v.chars().take(1024).collect();
            if name.is_empty() || name == "app" {
                continue;
            }
            if let Some(slot) = labels.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = value;
            } else if labels.len() < 32 {
                labels.push((name, value));
            }
        }
        let token = self.token.as_ref().map(|t| String::from_utf8_lossy(&t.text()).into_owned());
        let tokens = self.token_app.as_ref().map(|app| {
            let mut m = std::collections::HashMap::new();
            m.insert(token_text(&[7; 16]), app.clone());
            m.insert("d.good".to_owned(), app.clone());
            if let Some(t) = &token {
                m.insert(t.clone(), app.clone());
            }
            m
        });
        OwnedCtx {
            app: self.app.clone().filter(|a| !a.is_empty()),
            token,
            frame_id: self.frame_id.clone(),
            labels,
            received: drainpipe_transform::Timestamp::from_unix(
                946_684_800 + i64::from(self.received.0 % 3_155_760_000),
                self.received.1 % 1_000_000_000,
            ),
            sd: if self.syslog {
                drainpipe_transform::StructuredData::Present
            } else {
                drainpipe_transform::StructuredData::Absent
            },
            tokens,
            namespace: pick(&["default", "production", "staging_2"], self.namespace),
        }
    }
}

impl OwnedCtx {
    pub fn context(&self) -> drainpipe_transform::Context<'_> {
        drainpipe_transform::Context {
            app: self.app.as_deref(),
            drain_token: self.token.as_deref(),
            frame_id: self.frame_id.as_deref(),
            labels: &self.labels,
            received_at: self.received,
            structured_data: self.sd,
            app_for_token: self.tokens.as_ref().map(|t| t as &dyn drainpipe_transform::AppForToken),
            namespace: self.namespace,
        }
    }
}
