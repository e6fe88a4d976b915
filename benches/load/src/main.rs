//! `drainpipe-load`: the end-to-end load tool. It starts drainpipe (pinned to one CPU), sends
//! it real Logplex requests from the other CPU, and reports events per second, drainpipe's
//! CPU seconds per million events, its peak memory, answer latency and the lag until lines
//! are stored, each beside the minimal reference measured in the same run. Behind drainpipe
//! is either the built-in null Elasticsearch (which also counts every line lost or stored
//! twice) or a real one, where the same documents are also bulk-loaded directly, for the
//! ratio of drainpipe's rate to Elasticsearch's own. See docs/performance.md.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;

use drainpipe_load::measure::{self, cpu_seconds, memory, quantile};
use drainpipe_load::process::{self, Drainpipe, Launch};
use drainpipe_load::send::{self, Plan, Sent};
use drainpipe_load::sink::{self, Sink};
use drainpipe_load::traffic::{Frames, Mix, Otlp};
use drainpipe_load::{elasticsearch, reference};

/// End-to-end load on drainpipe: Logplex traffic in, a null or real Elasticsearch behind.
#[derive(Debug, Parser)]
#[command(name = "drainpipe-load", version)]
struct Args {
    /// The drainpipe binary to start [default: target/release/drainpipe of this workspace]
    #[arg(long, value_name = "PATH")]
    drainpipe: Option<PathBuf>,
    /// Give drainpipe a spool (`--spool-dir` in a temporary folder), the production setting
    #[arg(long)]
    spool: bool,
    /// One more argument for `drainpipe serve` (repeat it: `--serve-arg=--spool-fsync
    /// --serve-arg=200ms`)
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Lines to send
    #[arg(long, value_enum, default_value = "router")]
    mix: Mix,
    /// Lines per Logplex frame (356 router lines are about 100 KB)
    #[arg(long, value_name = "N", default_value_t = 356)]
    lines_per_frame: usize,
    /// Requests in flight at once (keep-alive connections)
    #[arg(long, value_name = "N", default_value_t = 16)]
    connections: usize,
    /// How long to send, in seconds (null Elasticsearch)
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    seconds: u64,
    /// Lines per second to send [default: as fast as drainpipe answers]
    #[arg(long, value_name = "LINES")]
    rate: Option<u64>,
    /// The CPU drainpipe is pinned to (taskset); this tool runs on the others. `none`: no pinning
    #[arg(long, value_name = "CPU", default_value = "1")]
    cpu: String,
    /// Use this real Elasticsearch instead of the null one, and compare with bulk-loading the
    /// same documents into it directly
    #[arg(long, value_name = "URL")]
    elasticsearch: Option<String>,
    /// Lines sent in the real-Elasticsearch run
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    lines: u64,
    /// Seconds the reference runs for
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    reference_seconds: u64,
    /// Send OTLP exports (protobuf) instead of Logplex frames: log records (the router lines'
    /// messages) or gauge data points, `--lines-per-frame` in each
    #[arg(long, value_enum, value_name = "SIGNAL")]
    otlp: Option<Otlp>,
    /// With --otlp: over gRPC (drainpipe's --otlp-grpc-listen) instead of OTLP/HTTP
    #[arg(long, requires = "otlp")]
    grpc: bool,
    /// Send the same lines as one octet-counted syslog stream over TCP (drainpipe's
    /// --syslog-listen) instead of Logplex requests; there are no answers, so no latency
    #[arg(long, conflicts_with_all = ["otlp", "elasticsearch"])]
    syslog: bool,
}

impl Args {
    /// Where to send, on `drainpipe`: `POST /logs`, an OTLP/HTTP path, or a gRPC method.
    fn send_url(&self, drainpipe: &Drainpipe, launch: &Launch) -> String {
        let signal = match self.otlp {
            None => return format!("{}/logs", drainpipe.url),
            Some(Otlp::Logs) => "logs",
            Some(Otlp::Metrics) => "metrics",
        };
        if !self.grpc {
            return format!("{}/v1/{signal}", drainpipe.url);
        }
        let service = if signal == "logs" { "logs.v1.LogsService" } else { "metrics.v1.MetricsService" };
        format!(
            "http://{}/opentelemetry.proto.collector.{service}/Export",
            listen_address(launch, "--otlp-grpc-listen")
        )
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Before any thread starts, so that every thread of this tool stays off drainpipe's CPU.
    let cpus = process::split_cpus(&args.cpu);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args, cpus))
}

async fn run(args: Args, cpus: Option<String>) -> anyhow::Result<()> {
    let binary = args
        .drainpipe
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/drainpipe"));
    if !binary.exists() {
        bail!("no drainpipe at {}: run `cargo build --release` first, or pass --drainpipe", binary.display());
    }
    let workdir = std::env::temp_dir().join(format!("drainpipe-load-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let port = process::free_port()?;
    let mut extra_args = args.serve_args.clone();
    if args.grpc {
        extra_args.extend(["--otlp-grpc-listen".to_owned(), format!("127.0.0.1:{port}")]);
    }
    if args.syslog {
        extra_args.extend(["--syslog-listen".to_owned(), format!("127.0.0.1:{port}")]);
    }
    let launch = Launch { binary, cpus: cpus.clone(), spool: args.spool.then(|| workdir.join("spool")), extra_args };
    let frames = Arc::new(match args.otlp {
        Some(signal) => Frames::otlp(signal, args.lines_per_frame),
        None => Frames::new(args.mix, args.lines_per_frame),
    });
    let what = match args.otlp {
        Some(signal) => format!("OTLP {signal:?} over {}", if args.grpc { "gRPC" } else { "HTTP" }).to_lowercase(),
        None if args.syslog => format!("{:?} lines over one octet-counted syslog TCP stream", args.mix).to_lowercase(),
        None => format!("{:?} lines", args.mix).to_lowercase(),
    };
    println!(
        "drainpipe-load: {}, {} per frame ({} KB), {} connections, {}, spool {}{}",
        what,
        args.lines_per_frame,
        frames.frame_bytes() / 1000,
        if args.syslog { 1 } else { args.connections },
        args.rate.map_or("full speed".to_owned(), |r| format!("{} lines/s", thousands(r))),
        if args.spool { "on" } else { "off" },
        match &cpus {
            Some(c) => format!(", drainpipe pinned to CPU {c}, this tool to the others"),
            None => ", not pinned".to_owned(),
        },
    );
    // The reference frames router lines; OTLP runs are set beside the same reference.
    let reference_frames = match args.otlp {
        Some(_) => Arc::new(Frames::new(Mix::Router, args.lines_per_frame)),
        None => frames.clone(),
    };
    let reference = reference_rate(&reference_frames, Duration::from_secs(args.reference_seconds));
    println!("reference (framing + header + router fields + 15-field JSON, one core): {} lines/s", rate(reference));
    let result = match &args.elasticsearch {
        None => null_run(&args, &launch, frames, reference, &workdir).await,
        Some(url) => real_run(&args, &launch, frames, reference, url.trim_end_matches('/'), &workdir).await,
    };
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&workdir);
    } else {
        println!("drainpipe's log is kept in {}", workdir.display());
    }
    result
}

/// Lines per second of the reference over these frames, on this thread.
fn reference_rate(frames: &Frames, time: Duration) -> f64 {
    let bodies: Vec<Vec<u8>> = (0..32).map(|n| frames.body(n)).collect();
    let mut out = Vec::with_capacity(1 << 20);
    let started = Instant::now();
    let mut lines = 0;
    while started.elapsed() < time {
        for body in &bodies {
            out.clear();
            lines += reference::frame(body, &mut out);
        }
    }
    lines as f64 / started.elapsed().as_secs_f64()
}

/// Samples drainpipe's resident memory every second until dropped.
fn sample_memory(pid: u32) -> (Arc<Mutex<Vec<u64>>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let s = samples.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Some((rss, _)) = memory(pid) {
                s.lock().unwrap_or_else(|e| e.into_inner()).push(rss);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (samples, task)
}

/// drainpipe into the null Elasticsearch for `--seconds`.
async fn null_run(
    args: &Args,
    launch: &Launch,
    frames: Arc<Frames>,
    reference: f64,
    workdir: &std::path::Path,
) -> anyhow::Result<()> {
    let sink = Arc::new(Sink::default());
    let sink_url = sink::start(sink.clone())?;
    let mut drainpipe = Drainpipe::start(launch, &sink_url, "load", workdir).await?;
    let pid = drainpipe.pid;
    let cpu_before = cpu_seconds(pid).context("drainpipe's CPU time")?;
    let tool_cpu_before = cpu_seconds(std::process::id()).unwrap_or_default();
    let (rss, sampler) = sample_memory(pid);
    let metrics_client = reqwest::Client::new();
    let scrape = || async { metrics_client.get(format!("{}/metrics", drainpipe.url)).send().await?.text().await };
    let metrics_before = scrape().await?;
    let plan = Plan {
        connections: args.connections,
        duration: Some(Duration::from_secs(args.seconds)),
        frames: None,
        rate: args.rate,
        resend_every: None,
        grpc: args.grpc,
    };
    let sent = match args.syslog {
        true => send::syslog(listen_address(launch, "--syslog-listen"), frames.clone(), plan).await?,
        false => send::run(&args.send_url(&drainpipe, launch), frames.clone(), plan).await?,
    };
    let answered = sent.lines();
    // Everything answered (over syslog: written) must now reach the sink.
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.created() < answered && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered_at = Instant::now();
    let cpu = cpu_seconds(pid).context("drainpipe's CPU time")? - cpu_before;
    let tool_cpu = cpu_seconds(std::process::id()).unwrap_or_default() - tool_cpu_before;
    let (_, peak) = memory(pid).context("drainpipe's memory")?;
    sampler.abort();
    let metrics_after = scrape().await?;
    drainpipe.stop().await?;

    let ledger = sink.ledger.lock().unwrap_or_else(|e| e.into_inner());
    let lost: u64 = sent
        .frames
        .iter()
        .flat_map(|&(n, _, lines)| (n * lines..(n + 1) * lines).filter(|&l| !ledger.is_stored(l)))
        .count() as u64;
    let window = sent.finished.zip(sent.started).map_or(Duration::ZERO, |(f, s)| f.saturating_duration_since(s));
    let whole = sent.started.map_or(Duration::ZERO, |s| delivered_at.saturating_duration_since(s));
    let stored_rate = answered as f64 / whole.as_secs_f64();
    println!("sink: the null Elasticsearch (answers every _bulk item at once, keeps a ledger of lines)");
    report_sent(&sent);
    // With a spool, answers can run ahead of delivery for a while: the rate that counts is
    // from the first send to the last line stored.
    println!(
        "drainpipe: {} lines/s end to end ({:.0} % of the reference; {:.1} s from the first send to the last line stored), \
         {} lines/s answered while sending",
        rate(stored_rate),
        100.0 * stored_rate / reference,
        whole.as_secs_f64(),
        rate(answered as f64 / window.as_secs_f64()),
    );
    report_cost(cpu, answered, peak, &rss.lock().unwrap_or_else(|e| e.into_inner()));
    report_latency(&sent, &ledger.progress);
    report_server_latency(&metrics_before, &metrics_after);
    println!(
        "ledger: lines answered 2xx {}, stored {}, lost {lost}, doubled {}, 409 answers {}, ids shared by two lines {}, \
         documents without a line number {}, bulk requests {}",
        thousands(answered),
        thousands(ledger.created - ledger.unnumbered - ledger.doubled),
        ledger.doubled,
        ledger.conflicts,
        ledger.collided,
        ledger.unnumbered,
        ledger.bulk_requests,
    );
    println!(
        "to Elasticsearch: {:.1} bytes/line of _bulk bodies on the wire ({:.1} inflated; {})",
        ledger.bulk_wire_bytes as f64 / answered.max(1) as f64,
        ledger.bulk_bytes as f64 / answered.max(1) as f64,
        if ledger.bulk_wire_bytes < ledger.bulk_bytes {
            format!("gzip to {:.1} %", 100.0 * ledger.bulk_wire_bytes as f64 / ledger.bulk_bytes.max(1) as f64)
        } else {
            "not compressed".to_owned()
        },
    );
    println!(
        "this tool: {:.0} % of one CPU (sending, and the null Elasticsearch)",
        100.0 * tool_cpu / whole.as_secs_f64()
    );
    if lost > 0 || ledger.doubled > 0 || ledger.collided > 0 {
        bail!("lines were lost or stored twice: see the ledger line; drainpipe's log: {}", drainpipe_log(workdir));
    }
    Ok(())
}

/// The address given to drainpipe's `flag` (`--syslog-listen`, `--otlp-grpc-listen`).
fn listen_address<'a>(launch: &'a Launch, flag: &str) -> &'a str {
    launch.extra_args.iter().skip_while(|a| *a != flag).nth(1).map_or("", String::as_str)
}

fn drainpipe_log(workdir: &std::path::Path) -> String {
    workdir.join("drainpipe-load.log").display().to_string()
}

/// Capture the documents, bulk them directly, send the same traffic through drainpipe, bulk
/// them directly again: drainpipe's rate as a share of the direct rate around it.
async fn real_run(
    args: &Args,
    launch: &Launch,
    frames: Arc<Frames>,
    reference: f64,
    url: &str,
    workdir: &std::path::Path,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let total_frames = args.lines.div_ceil(args.lines_per_frame as u64);
    let lines = total_frames * args.lines_per_frame as u64;
    let tag = format!("{:x}", std::process::id());
    println!("sink: the Elasticsearch at {url}; {} lines, namespaces load*{tag}", thousands(lines));

    // 1. The documents drainpipe makes of this traffic, from a run into the null sink.
    let capture_path = workdir.join("bulk.ndjson");
    let sink = Arc::new(Sink { capture: Some(Mutex::new(std::fs::File::create(&capture_path)?)), ..Sink::default() });
    let sink_url = sink::start(sink.clone())?;
    let capture_launch = Launch { spool: None, ..launch.clone() };
    let capture_ns = "loadcap";
    let mut drainpipe = Drainpipe::start(&capture_launch, &sink_url, capture_ns, workdir).await?;
    // The same traffic for the capture and for the run through drainpipe below.
    let plan = Plan {
        connections: args.connections,
        duration: None,
        frames: Some(total_frames),
        rate: None,
        resend_every: None,
        grpc: args.grpc,
    };
    let sent = send::run(&args.send_url(&drainpipe, launch), frames.clone(), plan).await?;
    while sink.created() < sent.lines() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drainpipe.stop().await?;
    // The sink's thread stays (idle); the capture file is complete once drainpipe stopped.
    drop(sink);
    let captured = std::fs::read(&capture_path)?;
    let bodies = |ns: &str| elasticsearch::rebodies(&captured, capture_ns, ns, 5 * 1024 * 1024);

    // 2. Straight into Elasticsearch: 5 MiB bodies, two at a time. A first load, not counted,
    // warms Elasticsearch up (its JIT, its caches): a cold first run is the slowest by far.
    elasticsearch::direct_bulk(&client, url, &format!("loadw{tag}"), bodies(&format!("loadw{tag}")), 2).await?;
    let first =
        elasticsearch::direct_bulk(&client, url, &format!("loadd1{tag}"), bodies(&format!("loadd1{tag}")), 2).await?;
    report_direct("direct bulk, before", &first, lines);

    // 3. Through drainpipe.
    let namespace = format!("loadp{tag}");
    let mut drainpipe = Drainpipe::start(launch, url, &namespace, workdir).await?;
    let pid = drainpipe.pid;
    let cpu_before = cpu_seconds(pid).context("drainpipe's CPU time")?;
    let (rss, sampler) = sample_memory(pid);
    let answered = Arc::new(Mutex::new(None));
    let send_url = args.send_url(&drainpipe, launch);
    let sending = {
        let (frames, answered) = (frames.clone(), answered.clone());
        tokio::spawn(async move {
            let sent = send::run(&send_url, frames, plan).await;
            if let Ok(s) = &sent {
                *answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.lines());
            }
            sent
        })
    };
    let expected = || *answered.lock().unwrap_or_else(|e| e.into_inner());
    let progress = elasticsearch::watch_acknowledged(
        &client,
        &drainpipe.url,
        expected,
        Duration::from_millis(50),
        Duration::from_secs(60),
    )
    .await?;
    let sent = sending.await??;
    // As for the direct load: everything acknowledged, then one refresh, then the count.
    elasticsearch::refresh(&client, url, &namespace).await?;
    let searchable_at = Instant::now();
    let stored = elasticsearch::count(&client, url, &namespace).await?;
    let cpu = cpu_seconds(pid).context("drainpipe's CPU time")? - cpu_before;
    let (_, peak) = memory(pid).context("drainpipe's memory")?;
    sampler.abort();
    drainpipe.stop().await?;
    let whole = sent.started.map_or(Duration::ZERO, |s| searchable_at.saturating_duration_since(s));
    let piped = stored as f64 / whole.as_secs_f64();

    // 4. Straight into Elasticsearch again, so that drainpipe's run is between two direct ones.
    let second =
        elasticsearch::direct_bulk(&client, url, &format!("loadd2{tag}"), bodies(&format!("loadd2{tag}")), 2).await?;
    report_direct("direct bulk, after", &second, lines);

    let direct = (first.documents + second.documents) as f64 / (first.elapsed + second.elapsed).as_secs_f64();
    report_sent(&sent);
    println!(
        "through drainpipe: {} docs/s from the first send until all were acknowledged and refreshed ({:.1} s): \
         {:.0} % of the direct rate ({} docs/s, both direct runs)",
        rate(piped),
        whole.as_secs_f64(),
        100.0 * piped / direct,
        rate(direct),
    );
    println!("reference for this run: {} lines/s", rate(reference));
    report_cost(cpu, sent.lines(), peak, &rss.lock().unwrap_or_else(|e| e.into_inner()));
    report_latency(&sent, &progress);
    let answered = sent.lines();
    println!(
        "count: lines answered 2xx {}, searchable {}, lost {}, doubled {}",
        thousands(answered),
        thousands(stored),
        answered.saturating_sub(stored),
        stored.saturating_sub(answered),
    );
    if stored != answered {
        bail!("Elasticsearch holds {stored} documents for {answered} lines answered");
    }
    Ok(())
}

fn report_direct(what: &str, d: &elasticsearch::Direct, lines: u64) {
    println!(
        "{what}: {} docs in {:.1} s, {} docs/s{}",
        thousands(d.documents),
        d.elapsed.as_secs_f64(),
        rate(d.documents as f64 / d.elapsed.as_secs_f64()),
        if d.refused > 0 || d.documents != lines {
            format!(" ({} refused: not comparable)", d.refused)
        } else {
            String::new()
        },
    );
}

fn report_sent(sent: &Sent) {
    println!(
        "sent: {} frames answered 2xx (over syslog: written; {} lines); 429/503 answers {}, refused for good {}, connection errors {}",
        thousands(sent.frames.len() as u64),
        thousands(sent.lines()),
        sent.refused,
        sent.failed,
        sent.errors,
    );
}

fn report_cost(cpu: f64, lines: u64, peak: u64, rss: &[u64]) {
    let quarter = rss.len().div_ceil(4).max(1);
    let first = rss.iter().take(quarter).max().copied().unwrap_or(0);
    let last = rss.iter().rev().take(quarter).max().copied().unwrap_or(0);
    println!(
        "drainpipe CPU: {:.2} CPU-seconds per 1M lines ({cpu:.1} s, whole process, from ready to the last line stored); \
         memory: peak RSS {} MiB, highest RSS in the first quarter of the run {} MiB, in the last {} MiB",
        cpu * 1e6 / lines.max(1) as f64,
        peak >> 20,
        first >> 20,
        last >> 20,
    );
}

fn report_latency(sent: &Sent, stored: &[(Instant, u64)]) {
    let mut latencies = sent.latencies.clone();
    latencies.sort();
    let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
    let timeline: Vec<(Instant, u64)> = sent.frames.iter().map(|f| (f.1, f.2)).collect();
    let mut lags = measure::lags(&timeline, stored);
    lags.sort();
    println!(
        "answer latency: p50 {}, p99 {}, p999 {}, max {}; drain-to-stored lag: p50 {}, p99 {}",
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(quantile(&latencies, 0.999)),
        ms(latencies.last().copied()),
        ms(quantile(&lags, 0.5)),
        ms(quantile(&lags, 0.99)),
    );
}

/// Answer latency as drainpipe itself measured it: from a request's headers to its answer,
/// without the network and this tool's own scheduling; bucket bounds, so "at most".
fn report_server_latency(before: &str, after: &str) {
    let name = "drainpipe_ingest_request_duration_seconds";
    let (before, after) = (measure::histogram(before, name), measure::histogram(after, name));
    let q = |q| match measure::bucket_quantile(&before, &after, q) {
        Some(s) if s.is_finite() => format!("<= {} ms", s * 1e3),
        Some(_) => "above the largest bucket".to_owned(),
        None => "-".to_owned(),
    };
    println!("answer latency inside drainpipe ({name}): p50 {}, p99 {}, p999 {}", q(0.5), q(0.99), q(0.999));
}

fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M", per_second / 1e6)
    } else {
        format!("{:.0} k", per_second / 1e3)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
