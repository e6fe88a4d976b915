//! Shared pieces of the end-to-end tests: the real Elasticsearch, a drainpipe process on port 0
//! writing to a data stream of its own, Logplex requests, and poll-until queries.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The Elasticsearch the tests run against. It must be there: a test never skips for want of it.
pub fn elasticsearch_url() -> String {
    let url = std::env::var("ELASTICSEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".to_owned());
    match health_check(&url) {
        Ok(()) => url,
        Err(e) => panic!(
            "Elasticsearch is not reachable at {url} ({e}). Run the tests with scripts/test, \
             or start it with scripts/elasticsearch start"
        ),
    }
}

/// `GET /_cluster/health` over a plain socket, so the check needs no runtime.
fn health_check(url: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let authority = url.strip_prefix("http://").ok_or("only http:// URLs are checked")?.trim_end_matches('/');
    let addr =
        std::net::ToSocketAddrs::to_socket_addrs(authority).map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(s, "GET /_cluster/health HTTP/1.0\r\nHost: {authority}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    match &head[9..12] {
        b"200" => Ok(()),
        other => Err(format!("health answered {}", String::from_utf8_lossy(other))),
    }
}

/// A namespace no other test uses, so tests can run in parallel against one Elasticsearch.
/// Every dataset's data stream of `namespace`, dead letters left out.
pub fn streams_of(namespace: &str) -> String {
    // An exclusion only takes effect as a wildcard.
    format!("logs-heroku.*-{namespace},-logs-heroku.deadletter-*")
}

pub fn unique_namespace(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{nanos:x}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Runs `drainpipe ARGS` to its end, logging warnings only (a one-run command: `setup`,
/// `search`, `deadletter`, `check-config`).
pub fn run_drainpipe(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(args)
        .env("DRAINPIPE_LOG", "warn")
        .output()
        .expect("drainpipe runs")
}

/// A running `drainpipe serve`, killed when dropped.
pub struct Drainpipe {
    child: Child,
    pub namespace: String,
    args: Vec<String>,
    pub addr: SocketAddr,
    /// `tcp://` and `tls://` syslog listeners, when asked for with `--syslog-listen 127.0.0.1:0`.
    pub syslog: Option<SocketAddr>,
    pub syslog_tls: Option<SocketAddr>,
    /// The `--metrics-listen` address, when asked for.
    pub metrics: Option<SocketAddr>,
    /// The `--otlp-grpc-listen` address, when asked for.
    pub grpc: Option<SocketAddr>,
    /// Every data stream of its namespace but the dead letters' (`logs-heroku.*-<ns>`), as one
    /// index expression for searches and counts.
    pub data_stream: String,
    pub es: String,
    /// Every line the process has logged so far.
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drainpipe {
    pub fn start(namespace: &str) -> Drainpipe {
        Drainpipe::start_with(namespace, &[])
    }

    /// Starts with extra flags; waits for every listener the flags ask for.
    pub fn start_with(namespace: &str, extra: &[&str]) -> Drainpipe {
        Drainpipe::start_against(&elasticsearch_url(), namespace, extra)
    }

    /// The same, against a given Elasticsearch (which need not be up).
    pub fn start_against(es: &str, namespace: &str, extra: &[&str]) -> Drainpipe {
        Drainpipe::start_with_env(es, namespace, extra, &[])
    }

    /// The same, with extra environment variables (the debug build's fault injection).
    pub fn start_with_env(es: &str, namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Drainpipe {
        let es = es.to_owned();
        let wants = |flag: &str| extra.contains(&flag);
        let expected = 1
            + usize::from(wants("--syslog-listen"))
            + usize::from(wants("--syslog-tls-listen"))
            + usize::from(wants("--metrics-listen"))
            + usize::from(wants("--otlp-grpc-listen"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_drainpipe"))
            .args(["serve", "--listen", "127.0.0.1:0", "--elasticsearch-url", &es, "--namespace", namespace])
            .args(extra)
            .env("DRAINPIPE_LOG", "info")
            .envs(env.iter().copied())
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drainpipe binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        // Keep reading stderr for the whole run so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[drainpipe] {line}");
                kept.lock().unwrap().push(line.clone());
                if let Some((_, rest)) = line.split_once("serving /metrics on http://") {
                    let _ = tx.send(("metrics".to_owned(), rest.trim().to_owned()));
                } else if let Some((_, rest)) = line.split_once("OTLP/gRPC listening on ") {
                    let addr = rest.trim().split_once("://").map_or(rest.trim(), |(_, a)| a);
                    let _ = tx.send(("grpc".to_owned(), addr.to_owned()));
                } else if let Some((_, rest)) = line.split_once("listening on ") {
                    if let Some((scheme, addr)) = rest.trim().split_once("://") {
                        let _ = tx.send((scheme.to_owned(), addr.to_owned()));
                    }
                }
            }
        });
        let (mut addr, mut syslog, mut syslog_tls, mut metrics, mut grpc) = (None, None, None, None, None);
        for _ in 0..expected {
            let Ok((scheme, a)) = rx.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                panic!("drainpipe did not report all its listening addresses");
            };
            let a: SocketAddr = a.parse().expect("listening address");
            match scheme.as_str() {
                "tcp" => syslog = Some(a),
                "tls" => syslog_tls = Some(a),
                "metrics" => metrics = Some(a),
                "grpc" => grpc = Some(a),
                _ => addr = Some(a),
            }
        }
        let addr = addr.expect("the drain endpoint's address");
        Drainpipe {
            child,
            namespace: namespace.to_owned(),
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            addr,
            syslog,
            syslog_tls,
            metrics,
            grpc,
            data_stream: streams_of(namespace),
            es,
            logs,
        }
    }

    /// The first line logged so far that contains `needle`.
    pub fn logged(&self, needle: &str) -> Option<String> {
        self.logs.lock().unwrap().iter().find(|l| l.contains(needle)).cloned()
    }

    /// Waits up to `within` for a line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.logged(needle) {
                return line;
            }
            assert!(Instant::now() < deadline, "drainpipe never logged {needle:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`-HUP`, `-TERM`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().expect("kill runs").success());
    }

    /// The exit status once the process has exited within `within`; `None` if still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`, then a new process with the same flags (same spool, new port).
    pub fn kill9_and_restart(mut self) -> Drainpipe {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Drainpipe::start_against(&self.es, &self.namespace, &args)
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.wait_exit(Duration::from_secs(40)).expect("drainpipe exits after SIGTERM")
    }
}

impl Drop for Drainpipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files into `dir`:
/// (certificate path, key path).
pub fn self_signed_certificate(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path.to_string_lossy().into_owned(), key_path.to_string_lossy().into_owned())
}

/// `LEN SP MSG` for each message, as Logplex frames them.
pub fn logplex_body<M: AsRef<[u8]>>(messages: &[M]) -> Vec<u8> {
    let mut body = Vec::new();
    for m in messages {
        let m = m.as_ref();
        body.extend_from_slice(format!("{} ", m.len()).as_bytes());
        body.extend_from_slice(m);
    }
    body
}

/// The sample lines in tests/data/samples, each with the newline Logplex counts.
pub fn sample_lines(file: &str) -> Vec<String> {
    let path = format!("{}/tests/data/samples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{l}\n")).collect()
}

/// Headers Logplex sends with a frame.
pub struct LogplexHeaders<'a> {
    pub frame_id: Option<&'a str>,
    pub drain_token: Option<&'a str>,
    pub msg_count: usize,
}

pub async fn post_frame(url: &str, body: Vec<u8>, h: &LogplexHeaders<'_>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/logplex-1")
        .header("User-Agent", "Logplex/v123")
        .header("Logplex-Msg-Count", h.msg_count.to_string())
        .body(body);
    if let Some(id) = h.frame_id {
        req = req.header("Logplex-Frame-Id", id);
    }
    if let Some(token) = h.drain_token {
        req = req.header("Logplex-Drain-Token", token);
    }
    req.send().await.expect("drainpipe answers")
}

/// Refreshes `index` and polls until it holds at least `expected` documents and their count
/// is stable ([`wait_for_count`]; it fails after 30 s), then returns all of them sorted by
/// `@timestamp`, each with its `_id` and the `@timestamp` Elasticsearch parsed (as `fields`).
pub async fn wait_for_documents(es: &str, index: &str, expected: usize) -> Vec<Value> {
    let count = wait_for_count(es, index, expected as u64, Duration::from_secs(30)).await;
    assert!(count as usize >= expected, "{index} holds {count} documents after 30 s; expected {expected}");
    search(es, index, json!({"match_all": {}})).await
}

/// All documents of `index` matching `query`, sorted by `@timestamp`.
pub async fn search(es: &str, index: &str, query: Value) -> Vec<Value> {
    let body = json!({
        "size": 10_000,
        "query": query,
        "sort": [{"@timestamp": "asc"}, {"_doc": "asc"}],
        "fields": [{"field": "@timestamp", "format": "strict_date_optional_time_nanos"}],
    });
    let r = reqwest::Client::new().post(format!("{es}/{index}/_search")).json(&body).send().await.expect("search");
    let status = r.status();
    let v: Value = r.json().await.expect("search answer is JSON");
    assert!(status.is_success(), "search failed: {v}");
    v["hits"]["hits"].as_array().cloned().unwrap_or_default()
}

/// A private Elasticsearch that a fault test may stop and start again (keeping its data). Fault
/// tests run [`FAULT_SLOTS`] at a time, each on a server of its own: slot `k` listens on
/// `DRAINPIPE_FAULT_ES_PORT` + 2k (scripts/test sets the port and stops every slot's at the end).
pub struct FaultElasticsearch {
    pub url: String,
    port: u16,
    _turn: tokio::sync::SemaphorePermit<'static>,
}

/// How many fault tests run at once (each starts a server of its own, on two cores).
pub const FAULT_SLOTS: u16 = 2;
static FAULT_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(FAULT_SLOTS as usize);
/// The slots' ports in use.
static FAULT_PORTS_TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

impl FaultElasticsearch {
    /// Waits for a free slot, then starts that slot's server.
    pub async fn start() -> FaultElasticsearch {
        let turn = FAULT_TURNS.acquire().await.expect("the semaphore is never closed");
        let base = fault_base_port();
        let port = {
            let mut taken = FAULT_PORTS_TAKEN.lock().unwrap_or_else(|e| e.into_inner());
            let port = (0..FAULT_SLOTS).map(|k| base + 2 * k).find(|p| !taken.contains(p)).expect("a turn has a slot");
            taken.push(port);
            port
        };
        let es = FaultElasticsearch { url: format!("http://127.0.0.1:{port}"), port, _turn: turn };
        es.script(&["start"]);
        es
    }

    /// Stops it; its documents stay for [`FaultElasticsearch::resume`].
    pub fn pause(&self) {
        self.script(&["stop", "--keep-data"]);
    }

    pub fn resume(&self) {
        self.script(&["start"]);
    }

    /// Runs scripts/elasticsearch on this slot's port. A start that fails is tried once more
    /// (on the same kept data): a server that dies while starting on a loaded two-core machine
    /// is the test's ground giving way, not what the test is about; twice is a real failure.
    fn script(&self, args: &[&str]) {
        let run = |args: &[&str]| elasticsearch_script(self.port, args, &[]);
        let mut ok = run(args);
        if !ok && args == ["start"] {
            eprintln!("scripts/elasticsearch start failed on port {}; trying once more", self.port);
            ok = run(&["stop", "--keep-data"]) && run(args);
        }
        assert!(ok, "scripts/elasticsearch {args:?} failed on port {}", self.port);
    }
}

impl Drop for FaultElasticsearch {
    fn drop(&mut self) {
        elasticsearch_script(self.port, &["stop"], &[]);
        // The slot is free once its server is stopped; the turn goes when the fields drop.
        FAULT_PORTS_TAKEN.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != self.port);
    }
}

/// The port of the first fault-test server (`DRAINPIPE_FAULT_ES_PORT`, set by scripts/test);
/// the fault tests and the secured-cluster test take theirs from it.
pub fn fault_base_port() -> u16 {
    std::env::var("DRAINPIPE_FAULT_ES_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(9251)
}

/// Runs scripts/elasticsearch `args` for the server on `port` (of the distribution
/// `DRAINPIPE_DISTRIBUTION` names, which the script reads), with `env` besides; whether it
/// succeeded.
pub fn elasticsearch_script(port: u16, args: &[&str], env: &[(&str, &str)]) -> bool {
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/elasticsearch"))
        .args(args)
        .env("ES_PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .status()
        .expect("scripts/elasticsearch runs")
        .success()
}

/// Documents per value of `labels.<label>` in `index` (after a refresh).
pub async fn counts_by_label(es: &str, index: &str, label: &str) -> std::collections::HashMap<String, u64> {
    let client = reqwest::Client::new();
    let _ = client.post(format!("{es}/{index}/_refresh")).send().await;
    let body = json!({"size": 0, "aggs": {"by": {"terms": {"field": format!("labels.{label}"), "size": 10_000}}}});
    let r = client.post(format!("{es}/{index}/_search")).json(&body).send().await.expect("search");
    let v: Value = r.json().await.expect("JSON");
    v["aggregations"]["by"]["buckets"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| (b["key"].as_str().unwrap_or("").to_owned(), b["doc_count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// How long a count must stay the same, over several refresh+count rounds, before
/// [`wait_for_count`] takes it: a duplicate that lands late still shows.
pub const STABLE_FOR: Duration = Duration::from_millis(600);

/// `_count` of `index` after a refresh; 0 while the index does not exist.
async fn refreshed_count(client: &reqwest::Client, es: &str, index: &str) -> u64 {
    let _ = client.post(format!("{es}/{index}/_refresh")).send().await;
    match client.get(format!("{es}/{index}/_count")).send().await {
        Ok(r) if r.status().is_success() => {
            r.json::<Value>().await.map(|v| v["count"].as_u64().unwrap_or(0)).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Polls `_count` (refreshing first) until it has reached `expected` and then stayed the same
/// over [`STABLE_FOR`] (at least three rounds), or `timeout` passes; returns the last count.
/// A count that reaches `expected` and goes on growing is returned as it ends up, so a
/// duplicate indexed late fails an exact comparison instead of slipping past it.
pub async fn wait_for_count(es: &str, index: &str, expected: u64, timeout: Duration) -> u64 {
    let client = reqwest::Client::new();
    let mut deadline = Instant::now() + timeout;
    let mut reached = false;
    // The count seen, since when, and in how many rounds in a row.
    let mut steady: Option<(u64, Instant, u32)> = None;
    loop {
        let count = refreshed_count(&client, es, index).await;
        if count >= expected && !reached {
            // Reached: it gets its stability window, even past the deadline.
            reached = true;
            deadline = deadline.max(Instant::now() + 2 * STABLE_FOR);
        }
        steady = match steady {
            Some((c, since, rounds)) if c == count => Some((c, since, rounds + 1)),
            _ => Some((count, Instant::now(), 1)),
        };
        if let Some((c, since, rounds)) = steady {
            if c >= expected && rounds >= 3 && since.elapsed() >= STABLE_FOR {
                return c;
            }
        }
        if Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Whether the server at `es` is OpenSearch (whose `GET /` says so; Elasticsearch's test
/// distribution refuses `GET /`).
pub async fn is_opensearch(es: &str) -> bool {
    match reqwest::get(format!("{es}/")).await {
        Ok(r) if r.status().is_success() => {
            r.json::<Value>().await.is_ok_and(|v| v["version"]["distribution"] == "opensearch")
        }
        _ => false,
    }
}

/// The poll-until itself: a document indexed just after the count was first reached (a late
/// duplicate) is still counted, so an exact comparison fails. Returning at the first count
/// that reached `expected`, this gave 3.
#[tokio::test]
async fn wait_for_count_sees_a_document_indexed_after_the_count_was_reached() {
    let es = elasticsearch_url();
    let index = format!("drainpipe-test-{}", unique_namespace("late"));
    let client = reqwest::Client::new();
    // Only an explicit refresh (wait_for_count's) makes documents visible.
    let settings = json!({"settings": {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}});
    assert!(client.put(format!("{es}/{index}")).json(&settings).send().await.unwrap().status().is_success());
    let put = |id: u32| {
        let request = client.put(format!("{es}/{index}/_doc/{id}")).json(&json!({"n": id})).send();
        async move { assert!(request.await.unwrap().status().is_success(), "document {id} indexed") }
    };
    for id in 0..3 {
        put(id).await;
    }
    // Once wait_for_count's refresh has shown the three, a fourth: visible at its next refresh.
    let late = async {
        loop {
            let r = client.get(format!("{es}/{index}/_count")).send().await.unwrap();
            if r.json::<Value>().await.unwrap()["count"] == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        put(3).await;
    };
    let (count, ()) = tokio::join!(wait_for_count(&es, &index, 3, Duration::from_secs(10)), late);
    let _ = client.delete(format!("{es}/{index}")).send().await;
    assert_eq!(count, 4, "the late document is counted");
}

/// Starts a test helper script of this repository (`tests/…`) that serves on 127.0.0.1 and
/// prints its port on its first line (making its Python environment first, when it has to);
/// the child and its `http://127.0.0.1:PORT` URL.
pub fn start_port_printer(script: &str, args: &[&str]) -> (Child, String) {
    let path = format!("{}/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&path)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{script} runs (it needs python3 and PyPI the first time): {e}"));
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let port: u16 = port.trim().parse().unwrap_or_else(|_| panic!("{script} printed no port: {port:?}"));
    (child, format!("http://127.0.0.1:{port}"))
}
