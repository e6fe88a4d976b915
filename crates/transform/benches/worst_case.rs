//! Worst-case bodies against typical bodies of the same size (issue 25, "Linear time"): the
//! transform's work must be linear in its input, so a body built to be expensive may cost at
//! most 3× what an ordinary body of the same length costs, per byte.
//!
//!     cargo bench -p drainpipe-transform --bench worst_case
//!
//! Each case is one message through `Transformer::transform` into a reused buffer, as the
//! pipeline runs it. Samples of worst and typical alternate (so drift in the machine's speed
//! hits both), and the median sample is reported. A report in the bench output, not a test:
//! a timing test would fail on a busy machine rather than on slow code. One line per case:
//!
//!     <case>: worst X ns/byte, typical Y ns/byte, ratio Z (limit 3.0)
//!
//! The sizes come from the receivers' limits: a syslog message is cut at 64 KiB
//! (`--max-message-size`); an HTTPS drain's message can be as large as its body (8 MiB), so
//! the many-keys cases use about 1 MiB; labels are at most 32, with names of 64 and values of
//! 1,024 characters (crates/ingest/src/query.rs).

// The report is this bench's output.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use drainpipe_transform::{Context, StructuredData, Timestamp, Transformer};

const LIMIT: f64 = 3.0;
const MAX_MESSAGE: usize = 64 * 1024;
const LARGE: usize = 1024 * 1024;
const MAX_LABELS: usize = 32;
const MAX_LABEL_NAME: usize = 64;
const MAX_LABEL_VALUE: usize = 1024;

const APP: &str = "<190>1 2025-03-14T09:26:53.611000+00:00 host app web.1 - ";
const ROUTER: &str = "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - ";

struct Case {
    name: &'static str,
    worst: Body,
    typical: Body,
}

/// A message and the labels its frame came with.
struct Body {
    raw: Vec<u8>,
    labels: Vec<(String, String)>,
}

impl Body {
    fn line(header: &str, msg: &str) -> Body {
        Body { raw: format!("{header}{msg}\n").into_bytes(), labels: Vec::new() }
    }

    /// What the transform reads: the message and the labels.
    fn len(&self) -> usize {
        self.raw.len() + self.labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// Repeats `unit(i)` for i = 0, 1, … while the text stays within `len` bytes.
fn repeat_within(len: usize, sep: &str, unit: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(len);
    for i in 0.. {
        let next = unit(i);
        if out.len() + sep.len() + next.len() > len {
            break;
        }
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&next);
    }
    out
}

/// `text` padded with `fill` (or cut, at a character boundary) to exactly `len` bytes.
fn sized(mut text: String, len: usize, fill: char) -> String {
    while text.len() < len {
        text.push(fill);
    }
    while text.len() > len {
        text.pop();
    }
    text
}

/// An ordinary app JSON line scaled up: a batch of small records, exactly `len` bytes.
fn typical_json(len: usize) -> String {
    let records =
        repeat_within(len - 80, ",", |i| format!(r#"{{"id":{i},"user":"user-{i}","status":"ok","ms":{}}}"#, i % 97));
    let head = format!(r#"{{"level":"info","msg":"batch done","records":[{records}],"pad":""#);
    format!("{}\"}}", sized(head, len - 2, 'x'))
}

/// An ordinary app's logfmt line scaled up: its few keys again and again, exactly `len` bytes.
fn typical_logfmt(len: usize) -> String {
    let pairs = |i: usize| {
        format!("at=info method=GET path=/orders/{i} status=200 duration=12ms user=u{} msg=\"order shown\"", i % 50)
    };
    sized(repeat_within(len, " ", pairs), len, ' ')
}

/// Ordinary log text: the lines of a Rails request and a stack trace, exactly `len` bytes.
fn typical_text(len: usize) -> String {
    const LINES: [&str; 4] = [
        "Started GET \"/orders/42\" for 198.51.100.23 at 2025-03-14 09:26:53 +0000",
        "Processing by OrdersController#show as HTML   Parameters: {\"id\"=>\"42\"}",
        "ActiveRecord::RecordNotFound (Couldn't find Order with 'id'=42):",
        "  app/controllers/orders_controller.rb:12:in `show' Completed 404 Not Found in 12ms",
    ];
    sized(repeat_within(len, " ", |i| LINES[i % LINES.len()].to_owned()), len, ' ')
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // Many top-level keys: each checked for duplicates, the first 1,000 kept.
    let worst = format!("{{{}}}", repeat_within(LARGE - 2, ",", |i| format!(r#""k{i:06}":{i}"#)));
    let typical = typical_json(worst.len());
    cases.push(Case {
        name: "app JSON, 1 MiB of keys",
        worst: Body::line(APP, &worst),
        typical: Body::line(APP, &typical),
    });

    // Nesting to the mapping's depth limit (20), sibling after sibling.
    let chain = |i: usize| format!(r#""k{i}":{}1{}"#, r#"{"a":"#.repeat(19), "}".repeat(19));
    let worst = format!("{{{}}}", repeat_within(LARGE - 2, ",", chain));
    let typical = typical_json(worst.len());
    cases.push(Case {
        name: "app JSON, nested 20 deep",
        worst: Body::line(APP, &worst),
        typical: Body::line(APP, &typical),
    });

    // 100k logfmt pairs, every key new.
    let worst = (0..100_000).map(|i| format!("k{i:06}=v")).collect::<Vec<_>>().join(" ");
    let typical = typical_logfmt(worst.len());
    cases.push(Case { name: "logfmt, 100k pairs", worst: Body::line(APP, &worst), typical: Body::line(APP, &typical) });

    // A router line with 10k fields it does not know.
    let known = "at=info method=GET host=shop.example.com request_id=0a1b2c3d fwd=\"198.51.100.23\" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=https";
    let worst = format!("{known} {}", (0..10_000).map(|i| format!("x{i:05}=v")).collect::<Vec<_>>().join(" "));
    // An ordinary router line's pairs, as many as fill the same length.
    let typical = sized(
        repeat_within(worst.len(), " ", |i| format!("{known} path=\"/orders/{i}?ref=mail\" tls_version=TLSv1.3")),
        worst.len(),
        ' ',
    );
    cases.push(Case {
        name: "router, 10k fields",
        worst: Body::line(ROUTER, &worst),
        typical: Body::line(ROUTER, &typical),
    });

    // The most labels a drain URL can give, each as long as allowed, on an ordinary line.
    let labels: Vec<(String, String)> = (0..MAX_LABELS)
        .map(|i| {
            (sized(format!("label_{i}_"), MAX_LABEL_NAME, 'n'), sized(format!("value {i} "), MAX_LABEL_VALUE, 'v'))
        })
        .collect();
    let line = "Processing job 42 for user 7";
    let worst = Body { raw: format!("{APP}{line}\n").into_bytes(), labels };
    let typical = Body::line(APP, &typical_text(worst.len() - APP.len() - 1));
    cases.push(Case { name: "labels, 32 of the longest", worst, typical });

    // The longest syslog message, filled with what costs most per byte, against an ordinary
    // message of its kind (text, logfmt or JSON) as long.
    let max_line = |name: &'static str, msg: Vec<u8>, typical: String| {
        let mut raw = APP.as_bytes().to_vec();
        raw.extend_from_slice(&msg[..MAX_MESSAGE.min(msg.len())]);
        raw.push(b'\n');
        Case { name, worst: Body { raw, labels: Vec::new() }, typical: Body::line(APP, &typical) }
    };
    let text = || typical_text(MAX_MESSAGE);
    let control = (0..MAX_MESSAGE).map(|i| [1u8, 2, 0x1b, 0x7f][i % 4]).collect();
    cases.push(max_line("64 KiB line, control bytes", control, text()));
    cases.push(max_line("64 KiB line, quotes and backslashes", b"\"\\".repeat(MAX_MESSAGE / 2), text()));
    cases.push(max_line("64 KiB line, invalid UTF-8", vec![0xff; MAX_MESSAGE], text()));
    let quotes = b"a=\"\\\" ".repeat(MAX_MESSAGE / 6 + 1);
    cases.push(max_line("64 KiB line, logfmt quotes never closed", quotes, typical_logfmt(MAX_MESSAGE)));
    let keys = repeat_within(MAX_MESSAGE, " ", |i| format!("{i:x}=1")).into_bytes();
    cases.push(max_line("64 KiB line, logfmt keys", keys, typical_logfmt(MAX_MESSAGE)));
    let keys = format!("{{{}}}", repeat_within(MAX_MESSAGE - 2, ",", |i| format!(r#""{i:x}":1"#)));
    cases.push(max_line("64 KiB line, JSON keys", keys.into_bytes(), typical_json(MAX_MESSAGE)));
    cases
}

/// Nanoseconds per byte of `body`, one sample: as many runs as take about `per_sample`.
fn sample(t: &mut Transformer, body: &Body, runs: u32, out: &mut Vec<u8>) -> f64 {
    let ctx = Context {
        app: Some("shop"),
        drain_token: Some("d.f0e1d2c3-b4a5-4697-8877-665544332211"),
        frame_id: Some("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
        labels: &body.labels,
        received_at: Timestamp::from_unix(1_741_944_500, 0),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    };
    let start = Instant::now();
    for _ in 0..runs {
        out.clear();
        t.transform(black_box(&body.raw), &ctx, out);
        black_box(out.len());
    }
    start.elapsed().as_nanos() as f64 / f64::from(runs) / body.len() as f64
}

/// Runs per sample so that one sample takes about `target`.
fn runs_for(t: &mut Transformer, body: &Body, out: &mut Vec<u8>, target: Duration) -> u32 {
    let once = sample(t, body, 1, out) * body.len() as f64;
    ((target.as_nanos() as f64 / once.max(1.0)) as u32).clamp(1, 100_000)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    const SAMPLES: usize = 15;
    let target = Duration::from_millis(40);
    let mut t = Transformer::new();
    let mut out = Vec::with_capacity(8 * LARGE);
    println!("worst-case bodies against typical bodies of the same size, per byte ({SAMPLES} samples each, median)");
    let mut over = 0;
    for case in cases() {
        let (w, ty) = (&case.worst, &case.typical);
        let size_gap = w.len().abs_diff(ty.len()) as f64 / w.len() as f64;
        assert!(size_gap < 0.01, "{}: worst {} and typical {} bytes", case.name, w.len(), ty.len());
        let (wr, tr) = (runs_for(&mut t, w, &mut out, target), runs_for(&mut t, ty, &mut out, target));
        let (mut worst, mut typical) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            worst.push(sample(&mut t, w, wr, &mut out));
            typical.push(sample(&mut t, ty, tr, &mut out));
        }
        let (worst, typical) = (median(worst), median(typical));
        let ratio = worst / typical;
        over += usize::from(ratio > LIMIT);
        println!(
            "{}: worst {worst:.2} ns/byte, typical {typical:.2} ns/byte, ratio {ratio:.2} (limit {LIMIT:.1}){} [{} bytes]",
            case.name,
            if ratio > LIMIT { " OVER" } else { "" },
            w.len(),
        );
    }
    println!("{over} case(s) over the limit");
}
