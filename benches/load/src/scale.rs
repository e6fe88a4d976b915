//! `drainpipe-scale`: the scale-out test (docs/scaling.md). Several `drainpipe serve` replicas,
//! each with its own spool, behind HAProxy, writing to a two-node Elasticsearch cluster; steady
//! Logplex traffic through the balancer with distinct frame ids, a share of it sent twice (so
//! a retry lands on another replica than the first attempt); meanwhile one replica is killed
//! with `kill -9` and restarted on its spool, and one Elasticsearch node is stopped and started
//! again. At the end every line answered 2xx must be stored exactly once, counted per frame id.

#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::{json, Value};

use drainpipe_load::elasticsearch;
use drainpipe_load::measure::{cpu_seconds, memory, sample_sum};
use drainpipe_load::process::{free_port, Drainpipe, Launch};
use drainpipe_load::send::{self, Plan};
use drainpipe_load::traffic::{line_number, Frames, Mix};

/// Replicas behind HAProxy on a two-node cluster, with a replica and a node taken away under load.
#[derive(Debug, Parser)]
#[command(name = "drainpipe-scale", version)]
struct Args {
    /// The two-node cluster's URLs, comma-separated (`scripts/elasticsearch start --nodes 2`
    /// prints them)
    #[arg(long, value_name = "URLS", value_delimiter = ',', required = true)]
    elasticsearch: Vec<String>,
    /// The drainpipe binary [default: target/release/drainpipe of this workspace]
    #[arg(long, value_name = "PATH")]
    drainpipe: Option<PathBuf>,
    /// drainpipe replicas behind the balancer
    #[arg(long, value_name = "N", default_value_t = 3)]
    replicas: usize,
    /// Seconds of traffic
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    seconds: u64,
    /// Lines per second, steady
    #[arg(long, value_name = "LINES", default_value_t = 4000)]
    rate: u64,
    /// Lines per Logplex frame
    #[arg(long, value_name = "N", default_value_t = 100)]
    lines_per_frame: usize,
    /// Requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    connections: usize,
    /// Send every N-th frame a second time after its 2xx, as Logplex does when an answer is lost
    #[arg(long, value_name = "N", default_value_t = 10)]
    resend_every: u64,
    /// Seconds into the run when one replica gets `kill -9`
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    kill_at: u64,
    /// Seconds before the killed replica is started again on its spool
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    kill_for: u64,
    /// Seconds into the run when an Elasticsearch node is stopped
    #[arg(long, value_name = "SECONDS", default_value_t = 25)]
    node_stop_at: u64,
    /// Seconds the node stays stopped before it is started again
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    node_down: u64,
    /// The node to stop (`scripts/elasticsearch stop-node NAME`); node-1 holds the cluster's
    /// only vote, so stopping it stops writes until it is back
    #[arg(long, value_name = "NAME", default_value = "node-2")]
    node: String,
    /// The HAProxy binary
    #[arg(long, value_name = "PATH", default_value = "haproxy")]
    haproxy: PathBuf,
    /// Roll the router stream over every this many seconds while sending (`POST
    /// <stream>/_rollover`), as a lifecycle does: a Logplex retry that arrives after a rollover
    /// is stored a second time (`create` sees only the write index), and those doubles are then
    /// counted and reported rather than failing the run
    #[arg(long, value_name = "SECONDS")]
    rollover_every: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = args.drainpipe.clone().unwrap_or_else(|| root().join("target/release/drainpipe"));
    if !binary.exists() {
        bail!("no drainpipe at {}: run `cargo build --release` first, or pass --drainpipe", binary.display());
    }
    let urls: Vec<String> = args.elasticsearch.iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let nodes = cluster_nodes(&http, &urls).await?;
    if nodes < 2 {
        bail!("{} is a {nodes}-node cluster: start two nodes with `scripts/elasticsearch start --nodes 2`", urls[0]);
    }
    let workdir = std::env::temp_dir().join(format!("drainpipe-scale-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let namespace = format!("scale{:x}", std::process::id());
    // Router lines: each carries its number in `http.request.id`, so every line is counted.
    let frames = Arc::new(Frames::new(Mix::Router, args.lines_per_frame));
    println!(
        "drainpipe-scale: {} replicas behind HAProxy, a {nodes}-node cluster ({}), {} lines/s for {} s, {} lines per frame, \
         every {}th frame sent twice; kill -9 of replica 2 at {} s, {} stopped at {} s for {} s",
        args.replicas,
        urls.join(", "),
        args.rate,
        args.seconds,
        args.lines_per_frame,
        args.resend_every,
        args.kill_at,
        args.node,
        args.node_stop_at,
        args.node_down,
    );

    // The replicas: one spool each, both node URLs, started at once (as a StatefulSet with
    // `podManagementPolicy: Parallel` or a Heroku formation does: each installs the templates).
    let es = urls.join(",");
    let mut starting = tokio::task::JoinSet::new();
    for k in 0..args.replicas {
        let launch = Launch {
            binary: binary.clone(),
            cpus: None,
            spool: Some(workdir.join(format!("spool-{}", k + 1))),
            extra_args: Vec::new(),
        };
        let log = workdir.join(format!("replica-{}.log", k + 1));
        let port = free_port()?;
        let (es, namespace) = (es.clone(), namespace.clone());
        starting.spawn(async move {
            let dp = Drainpipe::start_on(&launch, &es, &namespace, port, log.clone(), true).await;
            (k, dp.map(|dp| Replica { launch, port, log, dp, cpu_before_restarts: 0.0, peak_rss: 0 }))
        });
    }
    let mut replicas: Vec<(usize, Replica)> = Vec::new();
    while let Some(started) = starting.join_next().await {
        let (k, replica) = started?;
        replicas.push((k, replica?));
    }
    replicas.sort_by_key(|r| r.0);
    let mut replicas: Vec<Replica> = replicas.into_iter().map(|r| r.1).collect();
    let balancer = Haproxy::start(&args.haproxy, &replicas, &workdir).await?;
    println!(
        "haproxy: {} in front of {}",
        balancer.url,
        replicas.iter().map(|r| r.dp.url.as_str()).collect::<Vec<_>>().join(", ")
    );

    let plan = Plan {
        connections: args.connections,
        duration: Some(Duration::from_secs(args.seconds)),
        frames: None,
        rate: Some(args.rate),
        grpc: false,
        resend_every: Some(args.resend_every),
    };
    let started = Instant::now();
    let sending = {
        let (url, frames) = (format!("{}/logs", balancer.url), frames.clone());
        tokio::spawn(async move { send::run(&url, frames, plan).await })
    };
    let rollovers = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let rolling = args.rollover_every.map(|every| {
        let (http, url, stream) = (http.clone(), urls[0].clone(), format!("logs-heroku.router-{namespace}"));
        let done = rollovers.clone();
        tokio::spawn(async move { roll_over(&http, &url, &stream, Duration::from_secs(every.max(1)), &done).await })
    });
    let chaos = chaos(&args, &mut replicas, &es, &namespace, started).await;
    let sent = sending.await??;
    if let Some(task) = rolling {
        task.abort();
    }
    let rollovers = rollovers.load(std::sync::atomic::Ordering::Relaxed);
    chaos?;
    let answered = sent.lines();
    let last_send = sent.finished.unwrap_or_else(Instant::now);

    // Until everything answered is searchable (or clearly is not going to be).
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = count(&http, &urls, &namespace).await.unwrap_or(stored);
        if stored >= answered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let searchable_after = last_send.elapsed();
    let index = format!("logs-heroku.*-{namespace}");
    let per_frame = counts_per_value(&http, &urls, &index, "heroku.drain.frame_id").await?;
    let per_request_id = counts_per_value(&http, &urls, &index, "http.request.id").await?;
    let documents = count(&http, &urls, &namespace).await?;

    let mut metrics = Vec::new();
    for r in &mut replicas {
        metrics.push(http.get(format!("{}/metrics", r.dp.url)).send().await?.text().await?);
        r.peak_rss = r.peak_rss.max(memory(r.dp.pid).map_or(0, |m| m.1));
        r.cpu_before_restarts += cpu_seconds(r.dp.pid).unwrap_or_default();
    }
    for r in &mut replicas {
        r.dp.stop().await?;
    }
    drop(balancer);

    // Per frame id: every frame answered 2xx holds exactly its lines; no frame holds more.
    let lines = args.lines_per_frame as u64;
    let answered_ids: Vec<String> = sent.frames.iter().map(|f| frames.frame_id(f.0).to_lowercase()).collect();
    let lost: u64 = answered_ids.iter().map(|id| lines.saturating_sub(per_frame.get(id).copied().unwrap_or(0))).sum();
    let doubled: u64 = per_frame.values().map(|&c| c.saturating_sub(lines)).sum();
    let stored_total: u64 = per_frame.values().sum();
    // Per line, by the number in its request id: a line lost and another doubled in one frame
    // do not cancel out, and a document without its frame id or number is seen too.
    let mut per_line: HashMap<u64, u64> = HashMap::new();
    let mut unnumbered = documents.saturating_sub(per_request_id.values().sum());
    for (id, count) in &per_request_id {
        match line_number(id.as_bytes()) {
            Some(n) => *per_line.entry(n).or_insert(0) += count,
            None => unnumbered += count,
        }
    }
    let lines_lost =
        sent.frames.iter().flat_map(|f| f.0 * lines..(f.0 + 1) * lines).filter(|n| !per_line.contains_key(n)).count()
            as u64;
    let lines_doubled: u64 = per_line.values().map(|&c| c.saturating_sub(1)).sum();
    let without_frame_id = documents.saturating_sub(stored_total);
    let worst = sent.latencies.iter().max().copied().unwrap_or_default();
    let sum = |name: &str| metrics.iter().map(|m| sample_sum(m, name)).sum::<f64>();

    println!(
        "sent: {} frames ({} lines), {} of them again after their 2xx ({} of those answered by another replica \
         than the first time); 429/5xx answers {}, connection errors {}, given up {}",
        sent.frames.len() as u64 + sent.failed,
        (sent.frames.len() as u64 + sent.failed) * lines,
        sent.resent,
        sent.resent_elsewhere,
        sent.refused,
        sent.errors,
        sent.failed,
    );
    println!(
        "answered 2xx: {answered} lines; stored: {documents}; lost: {lost}; doubled: {doubled} (per frame id); \
         worst answer latency {:.0} ms (slowest frame from first send to 2xx, retries included: {:.1} s); \
         searchable {:.1} s after the last send",
        worst.as_secs_f64() * 1e3,
        sent.slowest.as_secs_f64(),
        searchable_after.as_secs_f64(),
    );
    println!(
        "per line (the number in each request id): lost {lines_lost}, doubled {lines_doubled}; documents without \
         a line number {unnumbered}, without a frame id {without_frame_id}"
    );
    println!(
        "replicas (as counted by each process since its last start): documents Elasticsearch answered 409 \
         (already stored by a retry's first attempt) {}, requests moved to the other node {}",
        sum("drainpipe_bulk_documents_total{outcome=\"duplicate\"}"),
        sum("drainpipe_elasticsearch_node_failovers_total"),
    );
    let up: Vec<Vec<(&str, bool)>> = metrics.iter().map(|m| nodes_up(m)).collect();
    let in_use: Vec<String> = up
        .iter()
        .enumerate()
        .map(|(k, nodes)| {
            let used: Vec<&str> = nodes.iter().filter(|n| n.1).map(|n| n.0).collect();
            format!("replica {}: {}", k + 1, used.join(" "))
        })
        .collect();
    println!("nodes in use at the end (drainpipe_elasticsearch_node_up 1): {}", in_use.join("; "));
    let cpu: f64 = replicas.iter().map(|r| r.cpu_before_restarts).sum();
    println!(
        "cost: {:.2} CPU-seconds per 1M lines over all replicas ({cpu:.1} s); peak RSS per replica {} MiB",
        cpu * 1e6 / answered.max(1) as f64,
        replicas.iter().map(|r| (r.peak_rss >> 20).to_string()).collect::<Vec<_>>().join(" / "),
    );
    let mut failures = Vec::new();
    // With rollovers forced, doubles are the known cost being measured: reported, not failed.
    let counted_doubles = if args.rollover_every.is_some() {
        println!(
            "rollovers: {rollovers} of the router stream; lines stored twice across them: {doubled} per frame id, \
             {lines_doubled} per line, of {answered} answered 2xx ({:.4} %)",
            100.0 * lines_doubled as f64 / answered.max(1) as f64
        );
        0
    } else {
        doubled + lines_doubled
    };
    if lost + counted_doubles + lines_lost + unnumbered + without_frame_id > 0 || sent.frames.is_empty() {
        failures.push(format!(
            "of {answered} lines answered 2xx, per frame id {lost} lost and {doubled} doubled, per line \
             {lines_lost} lost and {lines_doubled} doubled; {unnumbered} documents without a line number, \
             {without_frame_id} without a frame id"
        ));
    }
    if sent.failed > 0 {
        failures.push(format!("{} frames were refused for good or given up", sent.failed));
    }
    if sum("drainpipe_elasticsearch_node_failovers_total") == 0.0 {
        failures.push(format!("no replica moved a request off {} while it was stopped", args.node));
    }
    if !up.iter().all(|nodes| nodes.len() == urls.len() && nodes.iter().all(|n| n.1)) {
        failures.push(format!("not every replica sends to {} again", args.node));
    }
    if !failures.is_empty() {
        println!("logs kept in {}", workdir.display());
        bail!("{}", failures.join("; "));
    }
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(())
}

/// A replica: how to start it again on its port and spool, and what it cost before a restart.
struct Replica {
    launch: Launch,
    port: u16,
    log: PathBuf,
    dp: Drainpipe,
    /// CPU seconds of processes of this replica that are gone (killed).
    cpu_before_restarts: f64,
    peak_rss: u64,
}

/// The faults, at their times: `kill -9` of replica 2 and its restart on its spool; one
/// Elasticsearch node stopped, then started.
async fn chaos(
    args: &Args,
    replicas: &mut [Replica],
    es: &str,
    namespace: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let at = |s: u64| tokio::time::sleep_until((started + Duration::from_secs(s)).into());
    let say = |what: String| println!("{:>5.1} s  {what}", started.elapsed().as_secs_f64());
    let victim = replicas.len().min(2) - 1;
    at(args.kill_at).await;
    let r = &mut replicas[victim];
    r.peak_rss = r.peak_rss.max(memory(r.dp.pid).map_or(0, |m| m.1));
    r.cpu_before_restarts += cpu_seconds(r.dp.pid).unwrap_or_default();
    r.dp.kill9()?;
    say(format!("replica {} killed (kill -9)", victim + 1));
    tokio::time::sleep(Duration::from_secs(args.kill_for)).await;
    r.dp = Drainpipe::start_on(&r.launch, es, namespace, r.port, r.log.clone(), false).await?;
    say(format!("replica {} ready again on its spool", victim + 1));

    at(args.node_stop_at).await;
    say(format!("Elasticsearch {} stopping", args.node));
    es_script(&["stop-node", &args.node], es)?;
    say(format!("Elasticsearch {} stopped", args.node));
    tokio::time::sleep(Duration::from_secs(args.node_down)).await;
    say(format!("Elasticsearch {} starting", args.node));
    es_script(&["start-node", &args.node], es)?;
    say(format!("Elasticsearch {} back in the cluster", args.node));
    Ok(())
}

/// Rolls `stream` over every `every` until aborted, counting the rollovers that succeeded.
async fn roll_over(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    every: Duration,
    done: &std::sync::atomic::AtomicU32,
) {
    loop {
        tokio::time::sleep(every).await;
        let answer = http.post(format!("{url}/{stream}/_rollover")).send().await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// `scripts/elasticsearch ARGS` for the cluster whose first node is the first URL.
fn es_script(script_args: &[&str], es: &str) -> anyhow::Result<()> {
    let port = es.split(',').next().and_then(|u| u.rsplit(':').next()).unwrap_or("9200").trim_end_matches('/');
    let status = Command::new("bash")
        .arg(root().join("scripts/elasticsearch"))
        .args(script_args)
        .env("ES_PORT", port)
        .stdout(Stdio::null())
        .status()
        .context("running scripts/elasticsearch")?;
    if !status.success() {
        bail!("scripts/elasticsearch {} failed", script_args.join(" "));
    }
    Ok(())
}

/// HAProxy in front of the replicas: round robin per request, `/readyz` as the health check,
/// a connection refused by a replica retried on another.
struct Haproxy {
    child: Child,
    url: String,
}

impl Haproxy {
    async fn start(binary: &Path, replicas: &[Replica], workdir: &Path) -> anyhow::Result<Haproxy> {
        let port = free_port()?;
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(k, r)| format!("    server replica-{} 127.0.0.1:{} check\n", k + 1, r.port))
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 10s\n\
             \x20   retries 3\n    option redispatch 1\n\
             frontend drains\n    bind 127.0.0.1:{port}\n    default_backend drainpipe\n\
             backend drainpipe\n    balance roundrobin\n    http-response set-header x-served-by %s\n    option httpchk\n    http-check send meth GET uri /readyz\n\
             \x20   http-check expect status 200\n    default-server inter 500ms fall 2 rise 2\n{servers}"
        );
        let path = workdir.join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let log = std::fs::File::create(workdir.join("haproxy.log"))?;
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} (Debian: apt-get install haproxy)", binary.display()))?;
        let haproxy = Haproxy { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(a) = client.get(format!("{}/readyz", haproxy.url)).send().await {
                if a.status().is_success() {
                    return Ok(haproxy);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "HAProxy did not pass /readyz through within 30 s; see {}",
                    workdir.join("haproxy.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of nodes in the cluster, from the first URL that answers.
async fn cluster_nodes(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<u64> {
    let v: Value = first_answer(urls, |u| http.get(format!("{u}/_cluster/health"))).await?;
    Ok(v["number_of_nodes"].as_u64().unwrap_or(0))
}

/// Documents of `namespace` after a refresh, from the first node that answers.
async fn count(http: &reqwest::Client, urls: &[String], namespace: &str) -> anyhow::Result<u64> {
    for u in urls {
        let _ = elasticsearch::refresh(http, u, namespace).await;
    }
    let mut last = None;
    for u in urls {
        match elasticsearch::count(http, u, namespace).await {
            Ok(n) => return Ok(n),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no Elasticsearch URL")))
}

/// Documents per value of a keyword `field` (lower case), every value, page by page.
async fn counts_per_value(
    http: &reqwest::Client,
    urls: &[String],
    index: &str,
    field: &str,
) -> anyhow::Result<HashMap<String, u64>> {
    let mut counts = HashMap::new();
    let mut after: Option<Value> = None;
    loop {
        let mut composite = json!({"size": 10_000, "sources": [{"v": {"terms": {"field": field}}}]});
        if let Some(a) = &after {
            composite["after"] = a.clone();
        }
        let body = json!({"size": 0, "track_total_hits": false, "aggs": {"values": {"composite": composite}}});
        let v: Value = first_answer(urls, |u| http.post(format!("{u}/{index}/_search")).json(&body)).await?;
        // A shard that failed would make the counts short: lines would look lost.
        if v["_shards"]["failed"].as_u64().unwrap_or(0) > 0 {
            bail!("counting {field} in {index}: shards failed: {}", v["_shards"]["failures"]);
        }
        let buckets = v["aggregations"]["values"]["buckets"].as_array().cloned().unwrap_or_default();
        for b in &buckets {
            let value = b["key"]["v"].as_str().unwrap_or_default().to_lowercase();
            *counts.entry(value).or_insert(0) += b["doc_count"].as_u64().unwrap_or(0);
        }
        match v["aggregations"]["values"].get("after_key") {
            Some(a) if !buckets.is_empty() => after = Some(a.clone()),
            _ => return Ok(counts),
        }
    }
}

/// The JSON answer of the first node that answers 2xx.
async fn first_answer(urls: &[String], request: impl Fn(&str) -> reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let mut last = None;
    for u in urls {
        match request(u).send().await.and_then(reqwest::Response::error_for_status) {
            Ok(a) => return Ok(a.json().await?),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no Elasticsearch URL"), anyhow::Error::from))
}

/// Each node on a replica's `/metrics` and whether it is in use (`drainpipe_elasticsearch_node_up`).
fn nodes_up(text: &str) -> Vec<(&str, bool)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("drainpipe_elasticsearch_node_up{node=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(node, v)| (node, v.trim() == "1"))
        .collect()
}
