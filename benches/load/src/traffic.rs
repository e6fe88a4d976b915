//! Drain traffic: Logplex frames of router, app or mixed lines, every line numbered.
//!
//! Each line carries its number (`seq`) as the last 12 hex digits of a uuid-shaped request id
//! whose middle is [`MARKER`], so whoever receives the documents can tell which line each one
//! is, and so count lines lost or stored twice. A frame is a template with the numbers patched
//! in, so generating traffic costs a copy, not a format, per frame.
//!
//! The same numbering serves OTLP export requests (`--otlp`): log records whose bodies are the
//! router lines' messages, or gauge data points whose `request.id` attribute is the id, each
//! request a protobuf template patched the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// What precedes the 12 hex digits of a line's number in its request id.
pub const MARKER: &[u8] = b"-4b1d-8000-";
const SEQ_DIGITS: usize = 12;

/// What an OTLP export request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Otlp {
    /// Log records: the router lines' messages.
    Logs,
    /// Gauge data points of six metrics, one per dyno.
    Metrics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Heroku router lines.
    Router,
    /// App lines: JSON, logfmt and plain text.
    App,
    /// Three router lines to two app lines.
    Mixed,
}

/// Frames of `lines_per_frame` lines; frame `n` holds lines `n * lines_per_frame ..`.
#[derive(Debug)]
pub struct Frames {
    templates: Vec<Template>,
    pub lines_per_frame: usize,
    /// Distinguishes this run's frame ids from any earlier run's.
    nonce: u64,
    /// OTLP export requests (protobuf) rather than Logplex frames.
    pub otlp: Option<Otlp>,
}

#[derive(Debug)]
struct Template {
    body: Vec<u8>,
    /// Where each line's 12 number digits start, in line order.
    seq_at: Vec<usize>,
}

/// Templates cycled through, so documents vary like real traffic.
const VARIETY: usize = 32;

impl Frames {
    pub fn new(mix: Mix, lines_per_frame: usize) -> Frames {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rng = Rng(now.as_nanos() as u64 | 1);
        let templates =
            (0..VARIETY).map(|t| template(mix, lines_per_frame, now.as_micros() as u64, t, &mut rng)).collect();
        Frames { templates, lines_per_frame, nonce: rng.next(), otlp: None }
    }

    /// OTLP export requests of `lines_per_frame` log records or data points each, numbered as
    /// [`Frames::new`]'s router lines are.
    pub fn otlp(signal: Otlp, lines_per_frame: usize) -> Frames {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rng = Rng(now.as_nanos() as u64 | 1);
        let templates =
            (0..VARIETY).map(|t| otlp_template(signal, lines_per_frame, now.as_nanos() as u64, t, &mut rng)).collect();
        Frames { templates, lines_per_frame, nonce: rng.next(), otlp: Some(signal) }
    }

    /// The Logplex body of frame `n`.
    pub fn body(&self, n: u64) -> Vec<u8> {
        let t = &self.templates[(n % self.templates.len() as u64) as usize];
        let mut body = t.body.clone();
        let first = n * self.lines_per_frame as u64;
        for (i, &at) in t.seq_at.iter().enumerate() {
            write_hex(&mut body[at..at + SEQ_DIGITS], first + i as u64);
        }
        body
    }

    /// `Logplex-Frame-Id` of frame `n`: distinct per frame and per run.
    pub fn frame_id(&self, n: u64) -> String {
        format!("{:016x}{n:016x}", self.nonce)
    }

    /// A drain token of this run.
    pub fn drain_token(&self) -> String {
        format!("d.{:08x}-0000-4000-8000-{:012x}", self.nonce >> 32, self.nonce & 0xffff_ffff_ffff)
    }

    /// Average bytes per frame.
    pub fn frame_bytes(&self) -> usize {
        self.templates.iter().map(|t| t.body.len()).sum::<usize>() / self.templates.len()
    }
}

/// The number of the line a document came from: the digits after [`MARKER`].
pub fn line_number(source: &[u8]) -> Option<u64> {
    let at = find(source, MARKER)? + MARKER.len();
    let digits = source.get(at..at + SEQ_DIGITS)?;
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 16).ok()
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(p) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + p;
        if haystack[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn write_hex(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
    }
}

fn template(mix: Mix, lines: usize, now_micros: u64, t: usize, rng: &mut Rng) -> Template {
    let mut body = Vec::with_capacity(lines * 300);
    let mut seq_at = Vec::with_capacity(lines);
    for i in 0..lines {
        // Lines of a frame a few milliseconds apart, frames of a template a second apart.
        let ts = rfc3339(now_micros - 60_000_000 + (t as u64) * 1_000_000 + (i as u64) * 2_537);
        let router = match mix {
            Mix::Router => true,
            Mix::App => false,
            Mix::Mixed => i % 5 < 3,
        };
        let (line, at) = if router { router_line(&ts, rng) } else { app_line(&ts, i, rng) };
        let message = format!("{line}\n");
        let prefix = format!("{} ", message.len());
        seq_at.push(body.len() + prefix.len() + at);
        body.extend_from_slice(prefix.as_bytes());
        body.extend_from_slice(message.as_bytes());
    }
    Template { body, seq_at }
}

/// An OTLP export request of `lines` records or points, and where each one's number goes.
fn otlp_template(signal: Otlp, lines: usize, now_nanos: u64, t: usize, rng: &mut Rng) -> Template {
    use drainpipe_otlp::proto::*;
    use prost::Message as _;
    let text = |k: &str, v: String| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(Value::String(v)) }) };
    let dyno = format!("web.{}", 1 + t % 8);
    let resource = Some(Resource {
        attributes: vec![
            text("heroku.app.name", "shop".into()),
            text("heroku.dyno.name", dyno),
            text("heroku.dyno.type", "web".into()),
        ],
    });
    let time = |i: usize| now_nanos - 60_000_000_000 + t as u64 * 1_000_000_000 + i as u64 * 2_537_000;
    let body = match signal {
        Otlp::Logs => {
            let log_records = (0..lines)
                .map(|i| {
                    let (line, _) = router_line(&rfc3339(time(i) / 1000), rng);
                    let message = line.find("at=").map_or(line.as_str(), |at| &line[at..]).to_owned();
                    LogRecord {
                        time_unix_nano: time(i),
                        severity_number: 9,
                        body: Some(AnyValue { value: Some(Value::String(message)) }),
                        ..LogRecord::default()
                    }
                })
                .collect();
            let scope_logs = vec![ScopeLogs { scope: None, log_records }];
            ExportLogsServiceRequest { resource_logs: vec![ResourceLogs { resource, scope_logs }] }.encode_to_vec()
        }
        Otlp::Metrics => {
            const NAMES: [&str; 6] = [
                "process.memory.usage",
                "process.cpu.utilization",
                "system.cpu.load_average.1m",
                "process.open_file_descriptors",
                "http.server.active_requests",
                "db.client.connections.usage",
            ];
            let metrics = (0..lines)
                .map(|i| Metric {
                    name: NAMES[i % NAMES.len()].into(),
                    unit: "1".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![text("request.id", request_id(rng).0)],
                            time_unix_nano: time(i),
                            value: Some(Number::AsDouble(rng.below(1_000_000) as f64 / 100.0)),
                            ..NumberDataPoint::default()
                        }],
                    })),
                    ..Metric::default()
                })
                .collect();
            let scope_metrics = vec![ScopeMetrics { scope: None, metrics }];
            ExportMetricsServiceRequest { resource_metrics: vec![ResourceMetrics { resource, scope_metrics }] }
                .encode_to_vec()
        }
    };
    let mut seq_at = Vec::with_capacity(lines);
    let mut from = 0;
    while let Some(at) = find(&body[from..], MARKER) {
        seq_at.push(from + at + MARKER.len());
        from += at + MARKER.len();
    }
    assert_eq!(seq_at.len(), lines, "one number per record");
    Template { body, seq_at }
}

/// A request id with the number's digits zeroed, and where they start in it.
fn request_id(rng: &mut Rng) -> (String, usize) {
    let head = format!("{:08x}-{:04x}", rng.next() as u32, rng.next() as u16);
    let at = head.len() + MARKER.len();
    (format!("{head}{}{}", std::str::from_utf8(MARKER).unwrap_or_default(), "0".repeat(SEQ_DIGITS)), at)
}

fn router_line(ts: &str, rng: &mut Rng) -> (String, usize) {
    const PATHS: [&str; 6] =
        ["/", "/api/orders?ref=mail", "/products/4711", "/assets/app-3f2a.css", "/cart", "/reports/yearly"];
    let (id, id_at) = request_id(rng);
    let path = PATHS[rng.below(PATHS.len() as u64) as usize];
    let dyno = 1 + rng.below(8);
    let fwd = match rng.below(3) {
        0 => format!("198.51.100.{}", rng.below(255)),
        1 => format!("203.0.113.{},10.10.1.{}", rng.below(255), rng.below(255)),
        _ => "2001:db8::7".to_owned(),
    };
    let head = format!("<158>1 {ts} host heroku router - ");
    let (at, tail) = match rng.below(20) {
        0 => ("at=error code=H12 desc=\"Request timeout\" ", ("GET", 30_000, 503, 0)),
        1 | 2 => ("at=info ", ("POST", rng.below(400), 201, rng.below(2_000))),
        3 | 4 => ("at=info ", ("GET", rng.below(10), 304, 0)),
        _ => ("at=info ", ("GET", rng.below(300), 200, rng.below(50_000))),
    };
    let (method, service, status, bytes) = tail;
    let before_id = format!("{head}{at}method={method} path=\"{path}\" host=shop.example.com request_id=");
    let line = format!(
        "{before_id}{id} fwd=\"{fwd}\" dyno=web.{dyno} connect={}ms service={service}ms status={status} bytes={bytes} protocol=https",
        rng.below(3)
    );
    (line, before_id.len() + id_at)
}

fn app_line(ts: &str, i: usize, rng: &mut Rng) -> (String, usize) {
    let (id, id_at) = request_id(rng);
    let dyno = 1 + rng.below(8);
    let head = format!("<190>1 {ts} host app web.{dyno} - ");
    let before_id = match i % 3 {
        0 => format!(
            "{head}{{\"level\":\"info\",\"msg\":\"order placed\",\"duration_ms\":{},\"user\":{{\"id\":{}}},\"request_id\":\"",
            rng.below(500),
            rng.below(100_000)
        ),
        1 => format!("{head}at=warn msg=\"payment retried\" attempt={} request_id=", 1 + rng.below(3)),
        _ => format!("{head}Completed 200 OK in {}ms (Views: 3.1ms | ActiveRecord: 1.2ms) request_id=", rng.below(900)),
    };
    let close = if i.is_multiple_of(3) { "\"}" } else { "" };
    (format!("{before_id}{id}{close}"), before_id.len() + id_at)
}

/// `2026-11-24T10:00:00.123456+00:00` for microseconds since the epoch.
fn rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60,
        micros % 1_000_000
    )
}

/// xorshift64: varied field values, no dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of a Logplex body, by its octet counts.
    fn messages(body: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let sp = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
            out.push(&rest[sp + 1..sp + 1 + len]);
            rest = &rest[sp + 1 + len..];
        }
        out
    }

    #[test]
    fn every_line_of_every_frame_carries_its_own_number_and_the_framing_holds() {
        for mix in [Mix::Router, Mix::App, Mix::Mixed] {
            let frames = Frames::new(mix, 50);
            for n in [0, 1, 31, 32, 1_000_003] {
                let body = frames.body(n);
                let lines = messages(&body);
                assert_eq!(lines.len(), 50);
                for (i, line) in lines.iter().enumerate() {
                    assert_eq!(line_number(line), Some(n * 50 + i as u64), "{}", String::from_utf8_lossy(line));
                    assert!(line.ends_with(b"\n") && line.starts_with(b"<1"));
                }
            }
            assert_ne!(frames.frame_id(1), frames.frame_id(2));
        }
    }

    #[test]
    fn every_otlp_record_and_point_carries_its_own_number() {
        use prost::Message as _;
        for signal in [Otlp::Logs, Otlp::Metrics] {
            let frames = Frames::otlp(signal, 40);
            for n in [0, 7, 1_000_003] {
                let body = frames.body(n);
                let records: Vec<Vec<u8>> = match signal {
                    Otlp::Logs => {
                        let request = drainpipe_otlp::decode_logs(&body, drainpipe_otlp::Encoding::Protobuf).unwrap();
                        drainpipe_otlp::records(request).map(|r| r.encode_to_vec()).collect()
                    }
                    Otlp::Metrics => {
                        let request =
                            drainpipe_otlp::decode_metrics(&body, drainpipe_otlp::Encoding::Protobuf).unwrap();
                        drainpipe_otlp::point_records(request).0.iter().map(|r| r.encode_to_vec()).collect()
                    }
                };
                let numbers: Vec<Option<u64>> = records.iter().map(|r| line_number(r)).collect();
                let expected: Vec<Option<u64>> = (0..40).map(|i| Some(n * 40 + i)).collect();
                assert_eq!(numbers, expected, "{signal:?}");
            }
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(rfc3339(1_795_521_600_123_456), "2026-11-24T12:00:00.123456+00:00");
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000000+00:00");
    }

    #[test]
    fn a_source_without_the_marker_has_no_number() {
        assert_eq!(line_number(b"{\"message\":\"x\"}"), None);
        assert_eq!(line_number(b"abc-4b1d-8000-00000000001"), None);
        assert_eq!(line_number(b"abc-4b1d-8000-00000000001f\""), Some(31));
    }
}
