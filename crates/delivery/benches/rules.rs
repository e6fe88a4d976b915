//! What rules add to a line's cost: one frame of router lines, shaped like the load tool's
//! (`benches/load/src/traffic.rs`), transformed into its chunk with no rules and with the load
//! tool's ten typical ones (`benches/load/rules-typical.toml`: none drops a line of this
//! traffic, one in eight is labelled and written again, every one is looked into by five
//! redactions).
//!
//!     cargo bench -p drainpipe-delivery --bench rules
//!     RULES_FILE=my-rules.toml cargo bench -p drainpipe-delivery --bench rules   # other rules
//!
//! Each run prints both rates and the ratio of their times: what issue 29 bounds (at most
//! 1.2, the extra CPU per line at most 20 %). Timings swing between runs; the ratio much less.

// Prints the ratio, which criterion has no report for.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drainpipe_delivery::{Chunker, DataStreams, Documents, LiveRules};
use drainpipe_ingest::{Frame, LiveAccess, Protocol};
use drainpipe_rules::Rules;
use tokio::sync::mpsc;

const RULES: &str = include_str!("../../../benches/load/rules-typical.toml");
const LINES: usize = 200;

/// `LINES` router lines as the load tool writes them: its paths, dynos, addresses and its mix
/// of statuses (none a 4xx, which a rule samples).
fn router_lines() -> Vec<String> {
    const PATHS: [&str; 6] =
        ["/", "/api/orders?ref=mail", "/products/4711", "/assets/app-3f2a.css", "/cart", "/reports/yearly"];
    (0..LINES)
        .map(|i| {
            let (method, status, service) = match i % 20 {
                0 => ("GET", 503, 30_000),
                1 | 2 => ("POST", 201, 40 + i % 300),
                3 | 4 => ("GET", 304, i % 10),
                _ => ("GET", 200, i % 300),
            };
            let fwd = match i % 3 {
                0 => format!("198.51.100.{}", i % 255),
                1 => format!("203.0.113.{},10.10.1.{}", i % 255, (i * 7) % 255),
                _ => "2001:db8::7".to_owned(),
            };
            format!(
                "<158>1 2026-11-24T10:00:{:02}.{:06}+00:00 host heroku router - at=info method={method} path=\"{}\" \
                 host=shop.example.com request_id=4f1c2a9e-{i:04x}-4000-8000-00000000{i:04x} fwd=\"{fwd}\" dyno=web.{} \
                 connect={}ms service={service}ms status={status} bytes={} protocol=https",
                i % 60,
                i * 4_999 % 1_000_000,
                PATHS[i % PATHS.len()],
                1 + (i * 5) % 8,
                i % 3,
                (i * 977) % 50_000,
            )
        })
        .collect()
}

/// The lines as one Logplex frame, from the app `shop`.
fn frame(lines: &[String]) -> Frame {
    let mut body = Vec::new();
    let mut messages = Vec::new();
    for line in lines {
        let start = body.len();
        body.extend_from_slice(line.as_bytes());
        messages.push(start..body.len());
    }
    let mut frame = Frame::new(Protocol::Logplex, Bytes::from(body), messages);
    frame.app = Some("shop".to_owned());
    frame
}

/// The typical rules, or those of the file `RULES_FILE` names (to see what one rule costs).
/// `serve` tells its rules the template's typed and configured fields; none of the typical
/// rules reads either.
fn typical_rules() -> Rules {
    let text = match std::env::var("RULES_FILE") {
        Ok(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => RULES.to_owned(),
    };
    Rules::parse(&text, &|_| true).expect("the rules read")
}

/// Transforms `frame` into chunks `n` times; the time it took.
fn transform(documents: &mut Documents, frame: &Frame, n: u64, runtime: &tokio::runtime::Runtime) -> Duration {
    runtime.block_on(async {
        let (tx, mut rx) = mpsc::channel(64);
        let started = Instant::now();
        for _ in 0..n {
            let mut chunks = Chunker::new(tx.clone(), 1_000, 8 << 20);
            documents.transform_frame(frame, &mut chunks, || {}).await.expect("chunks taken");
            chunks.flush().await.expect("chunks taken");
            drop(chunks);
            while let Ok(chunk) = rx.try_recv() {
                black_box(chunk.len());
            }
        }
        started.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let frame = frame(&router_lines());
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(LINES as u64));
    let mut plain = Documents::new(DataStreams::new("default"), LiveAccess::default(), LiveRules::default());
    let mut ruled =
        Documents::new(DataStreams::new("default"), LiveAccess::default(), LiveRules::fixed(typical_rules()));
    group.bench_function("none", |b| b.iter_custom(|n| transform(&mut plain, &frame, n, &runtime)));
    group.bench_function("typical", |b| b.iter_custom(|n| transform(&mut ruled, &frame, n, &runtime)));
    group.finish();

    // The ratio, from alternating rounds of the same length (what criterion's two reports,
    // minutes apart, cannot give as well).
    let rounds = 15;
    let (mut none, mut typical) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(transform(&mut plain, &frame, 200, &runtime).as_secs_f64());
        typical.push(transform(&mut ruled, &frame, 200, &runtime).as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per_line = |t: f64| t / (200 * LINES) as f64 * 1e9;
    let (none, typical) = (median(&mut none), median(&mut typical));
    println!(
        "rules/ratio: {:.0} ns per line with none, {:.0} ns with the typical ten: {:.2}x (median of {rounds} alternating rounds)",
        per_line(none),
        per_line(typical),
        typical / none
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
