//! What operators see: metrics that move by exactly what a known batch should move them by,
//! and readiness that follows Elasticsearch.

use std::time::{Duration, Instant};

use crate::support::*;

/// The value of one sample line of the Prometheus text format (`name{labels} value`).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_move_by_what_a_known_batch_moves_them() {
    let dp = Drainpipe::start_with(&unique_namespace("metrics"), &["--metrics-listen", "127.0.0.1:0"]);
    let client = reqwest::Client::new();
    let metrics_url = format!("http://{}/metrics", dp.metrics.expect("metrics listener"));
    assert_eq!(client.get(dp.url("/metrics")).send().await.unwrap().status(), 404, "not on the drain listener");

    let mut lines = sample_lines("router.log");
    lines.push("<172>1 2025-03-14T09:31:00+00:00 host heroku logplex - Error L10 (output buffer overflow): 7 messages dropped since 2025-03-14T09:30:59+00:00.\n".to_owned());
    lines.push("not syslog at all\n".to_owned());
    let headers =
        LogplexHeaders { frame_id: Some("C0FFEE"), drain_token: Some("d.metrics"), msg_count: lines.len() + 1 };
    let answer = post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await;
    assert_eq!(answer.status(), 200);
    let n = lines.len() as f64;
    wait_for_documents(&dp.es, &dp.data_stream, lines.len()).await;

    // The chunk's documents are confirmed before the lag is observed; poll for it briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        if sample(&text, "drainpipe_indexing_lag_seconds_count") == Some(n) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expect = |series: &str, value: f64| assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    expect("drainpipe_ingest_requests_total{status=\"200\"}", 1.0);
    expect("drainpipe_ingest_messages_total{protocol=\"https\"}", n);
    expect("drainpipe_ingest_msg_count_mismatches_total", 1.0);
    expect("drainpipe_transform_documents_total{dataset=\"heroku.router\"}", 5.0);
    expect("drainpipe_transform_documents_total{dataset=\"heroku.logplex\"}", 1.0);
    expect("drainpipe_transform_parse_failures_total{dataset=\"none\"}", 1.0);
    expect("drainpipe_logplex_dropped_messages_total", 7.0);
    expect("drainpipe_bulk_documents_total{outcome=\"indexed\"}", n);
    expect("drainpipe_indexing_lag_seconds_count", n);
    expect("drainpipe_elasticsearch_reachable", 1.0);
    expect(&format!("drainpipe_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0);
    assert!(sample(&text, "drainpipe_bulk_request_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    assert!(text.contains("# TYPE drainpipe_bulk_request_duration_seconds histogram"));

    // The alert rules and the Grafana dashboard name only metrics drainpipe exports.
    for asset in ["deploy/prometheus/alerts.yaml", "deploy/grafana/drainpipe.json"] {
        let content = std::fs::read_to_string(format!("{}/{asset}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for name in
            content.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("drainpipe_"))
        {
            let family = name.trim_end_matches("_bucket");
            let spool_metric = family.starts_with("drainpipe_spool_");
            assert!(
                text.contains(&format!("# TYPE {family} ")) || spool_metric,
                "{asset} uses {name}, which /metrics does not export"
            );
        }
    }
}

/// Polls `url` until its body contains `needle`; the last body.
async fn wait_for_body(client: &reqwest::Client, url: &str, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let body = match client.get(url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(needle) {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} never said {needle:?}; last: {body:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Ready means "accepting drains": an Elasticsearch outage is what the queue is for, so it
/// is reported (body, metric) but does not take drainpipe out of a load balancer.
#[tokio::test]
async fn readyz_means_accepting_and_reports_elasticsearch_beside_it() {
    let es = FaultElasticsearch::start().await;
    let dp = Drainpipe::start_against(&es.url, &unique_namespace("ready"), &[]);
    let client = reqwest::Client::new();
    let readyz = dp.url("/readyz");
    wait_for_body(&client, &readyz, "elasticsearch: answering", Duration::from_secs(30)).await;
    es.pause();
    let body = wait_for_body(&client, &readyz, "elasticsearch: not answering", Duration::from_secs(40)).await;
    assert!(body.starts_with("ready\n"), "{body}");
    assert_eq!(client.get(&readyz).send().await.unwrap().status(), 200, "still accepting drains");
    let metrics = client.get(dp.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "drainpipe_elasticsearch_reachable"), Some(0.0), "{metrics}");
    let lines = sample_lines("router.log");
    let headers = LogplexHeaders { frame_id: Some("READY01"), drain_token: Some("d.ready"), msg_count: lines.len() };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    es.resume();
    wait_for_body(&client, &readyz, "elasticsearch: answering", Duration::from_secs(60)).await;
    assert_eq!(wait_for_count(&es.url, &dp.data_stream, lines.len() as u64, Duration::from_secs(60)).await, 5);
}

/// Runs the drainpipe binary to completion; its standard output.
fn drainpipe(args: &[&str]) -> String {
    let out = run_drainpipe(args);
    assert!(out.status.success(), "drainpipe {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Tests that change the shared templates' retention take turns with those that compare them.
static RETENTION_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn setup_run_twice_changes_nothing_the_second_time() {
    let _turn = RETENTION_TURN.lock().await;
    let es = elasticsearch_url();
    drainpipe(&["setup", "--elasticsearch-url", &es]);
    let second = drainpipe(&["setup", "--elasticsearch-url", &es]);
    assert!(second.contains("unchanged index template logs-heroku-by-dataset\n"), "{second}");
    assert!(second.contains("unchanged index template logs-heroku-deadletter\n"), "{second}");
    assert!(!second.contains("created") && !second.contains("updated"), "{second}");
}

/// The lifecycle `data_retention` of the installed `logs-heroku-by-dataset` template.
async fn installed_retention(es: &str) -> Option<String> {
    installed_retention_of(es, "logs-heroku-by-dataset").await
}

/// The retention of an installed template (`None` also when there is none): its lifecycle's
/// `data_retention`, or on OpenSearch the one its `_meta` records for its ISM policy.
async fn installed_retention_of(es: &str, template: &str) -> Option<String> {
    let v: serde_json::Value =
        reqwest::get(format!("{es}/_index_template/{template}")).await.unwrap().json().await.unwrap();
    let t = &v["index_templates"][0]["index_template"];
    let retention =
        t["template"]["lifecycle"]["data_retention"].as_str().or(t["_meta"]["drainpipe_retention"].as_str());
    retention.map(str::to_owned)
}

#[tokio::test]
async fn retention_set_by_setup_is_kept_by_serve_and_validated() {
    let _turn = RETENTION_TURN.lock().await;
    let es = elasticsearch_url();
    let said = drainpipe(&["setup", "--elasticsearch-url", &es, "--retention", "30d"]);
    if is_opensearch(&es).await {
        // The retention goes into an ISM policy per template; the test distribution has no ISM
        // plugin, which setup says. The templates still record it, for the plugin-less steps below.
        assert!(
            said.contains("skipped   rollover and retention: the server has no Index State Management plugin"),
            "{said}"
        );
    }
    assert_eq!(installed_retention(&es).await.as_deref(), Some("30d"));
    // serve without a retention of its own keeps it (it used to re-install without one).
    let dp = Drainpipe::start_against(&es, &unique_namespace("retention"), &[]);
    dp.wait_for_log("setup: ", Duration::from_secs(30));
    drop(dp);
    assert_eq!(installed_retention(&es).await.as_deref(), Some("30d"));
    // A retention in the TOML file is one option for both commands.
    let file = std::env::temp_dir().join(format!("{}.toml", unique_namespace("retention")));
    std::fs::write(&file, "retention = \"7d\"\n").unwrap();
    let dp = Drainpipe::start_against(&es, &unique_namespace("retention"), &["--config", file.to_str().unwrap()]);
    dp.wait_for_log("setup: ", Duration::from_secs(30));
    drop(dp);
    assert_eq!(installed_retention(&es).await.as_deref(), Some("7d"));
    // A typo is refused, and leaves the retention alone.
    let typo = std::process::Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(["setup", "--elasticsearch-url", &es, "--retention", "30x"])
        .output()
        .unwrap();
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("30x"));
    assert_eq!(installed_retention(&es).await.as_deref(), Some("7d"));
    // Per dataset: the router's own template, kept by serve, gone once no longer asked for.
    let said = drainpipe(&["setup", "--elasticsearch-url", &es, "--retention", "30d,router=7d"]);
    assert!(said.contains("index template logs-heroku-by-dataset-router"), "{said}");
    assert_eq!(installed_retention(&es).await.as_deref(), Some("30d"));
    let router = "logs-heroku-by-dataset-router";
    assert_eq!(installed_retention_of(&es, router).await.as_deref(), Some("7d"));
    let dp = Drainpipe::start_against(&es, &unique_namespace("retention"), &[]);
    dp.wait_for_log("setup: ", Duration::from_secs(30));
    drop(dp);
    assert_eq!(installed_retention_of(&es, router).await.as_deref(), Some("7d"), "serve keeps it");
    let said = drainpipe(&["setup", "--elasticsearch-url", &es, "--retention", "30d"]);
    if is_opensearch(&es).await {
        // OpenSearch keeps a template its streams use: it stays, with every dataset's retention.
        assert!(said.contains("updated   index template logs-heroku-by-dataset-router"), "{said}");
        assert_eq!(installed_retention_of(&es, router).await.as_deref(), Some("30d"));
    } else {
        assert!(said.contains("deleted   index template logs-heroku-by-dataset-router"), "{said}");
        let gone = reqwest::get(format!("{es}/_index_template/{router}")).await.unwrap().status();
        assert_eq!(gone, 404);
    }
    drainpipe(&["setup", "--elasticsearch-url", &es, "--retention", "forever"]);
    assert_eq!(installed_retention(&es).await, None);
    std::fs::remove_file(file).unwrap();
}

/// The data streams of `namespace` as the cluster state holds them, by name (the test
/// distributions of Elasticsearch lack the `_data_stream` API, which the data-streams module
/// brings; the cluster state is there on every target).
async fn data_streams_of(es: &str, namespace: &str) -> serde_json::Map<String, serde_json::Value> {
    // filter_path reads the dots in a stream's name as a path: filtered here instead.
    let url = format!("{es}/_cluster/state/metadata?filter_path=metadata.data_stream.data_stream");
    let mut v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let all = v["metadata"]["data_stream"]["data_stream"].as_object_mut().map(std::mem::take).unwrap_or_default();
    let ours = |name: &String| name.starts_with("logs-heroku.") && name.ends_with(&format!("-{namespace}"));
    all.into_iter().filter(|(name, _)| ours(name)).collect()
}

/// The backing indices of `stream`.
async fn backing_indices(es: &str, stream: &str) -> usize {
    let v: serde_json::Value = reqwest::get(format!("{es}/{stream}/_settings")).await.unwrap().json().await.unwrap();
    v.as_object().map_or(0, serde_json::Map::len)
}

/// Streams roll over by default: on Elasticsearch every stream has an enabled lifecycle from its
/// template, kept for ever without `--retention` (OpenSearch has ISM policies instead, when it has
/// the plugin; `setup` says when it has not).
/// Rolled over to a second backing index (by hand: the cluster's own rollover waits for days or
/// 50 GB, and this cluster is shared with the other tests), a stream is still read whole by
/// `search` and `tail`.
#[tokio::test]
async fn streams_have_a_lifecycle_and_are_read_whole_across_a_rollover() {
    let _turn = RETENTION_TURN.lock().await;
    let es = elasticsearch_url();
    let ns = unique_namespace("rollover");
    let stream = format!("logs-heroku.app-{ns}");
    let dp = Drainpipe::start_against(&es, &ns, &[]);
    let post = |frame: &'static str, first: usize| {
        let lines: Vec<String> = (first..first + 3)
            .map(|i| format!("<190>1 2025-03-14T09:26:{i:02}.000000+00:00 host app web.1 - rolled {i}\n"))
            .collect();
        let url = dp.url("/logs?app=shop");
        async move {
            let headers = LogplexHeaders { frame_id: Some(frame), drain_token: Some("d.roll"), msg_count: 3 };
            assert_eq!(post_frame(&url, logplex_body(&lines), &headers).await.status(), 200);
        }
    };
    post("ROLL1", 0).await;
    // A router line too: a second stream, from the same template.
    let router = "<158>1 2025-03-14T09:26:59.000000+00:00 host heroku router - at=info method=GET path=\"/\" host=a.herokuapp.com request_id=1 fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=2ms status=200 bytes=3 protocol=https\n";
    let headers = LogplexHeaders { frame_id: Some("ROLLR"), drain_token: Some("d.roll"), msg_count: 1 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&[router]), &headers).await.status(), 200);
    assert_eq!(wait_for_count(&es, &streams_of(&ns), 4, Duration::from_secs(30)).await, 4);
    if is_opensearch(&es).await {
        let said = drainpipe(&["setup", "--elasticsearch-url", &es]);
        // The test distribution has no ISM plugin (and Maven Central has none to add): setup
        // says what that costs. With the plugin, it installs a policy per template (setup/ism.rs).
        assert!(
            said.contains("skipped   rollover and retention: the server has no Index State Management plugin"),
            "{said}"
        );
    } else {
        let streams = data_streams_of(&es, &ns).await;
        assert_eq!(streams.len(), 2, "{streams:?}");
        for (name, s) in &streams {
            assert_eq!(s["lifecycle"], serde_json::json!({"enabled": true}), "{name}: rolled over, kept for ever");
        }
    }
    let rolled = reqwest::Client::new().post(format!("{es}/{stream}/_rollover")).send().await.unwrap();
    assert!(rolled.status().is_success(), "{}", rolled.text().await.unwrap());
    assert_eq!(backing_indices(&es, &stream).await, 2);
    post("ROLL2", 3).await;
    assert_eq!(wait_for_count(&es, &stream, 6, Duration::from_secs(30)).await, 6);
    let window = ["--since", "2025-03-14T09:00:00Z", "--until", "2025-03-14T10:00:00Z"];
    let found = drainpipe(&[&["search", "--elasticsearch-url", &es, "--namespace", &ns], &window[..]].concat());
    assert_eq!(found.matches("rolled ").count(), 6, "{found}");
    let tailed = drainpipe(&["tail", "--no-follow", "--elasticsearch-url", &es, "--namespace", &ns]);
    assert_eq!(tailed.matches("rolled ").count(), 6, "{tailed}");
    drop(dp);
}

#[tokio::test]
async fn replaying_heroku_logs_twice_indexes_each_line_once() {
    let es = elasticsearch_url();
    let ns = unique_namespace("replay");
    let file = std::env::temp_dir().join(format!("{ns}.log"));
    // What `heroku logs` prints for the sample traffic: timestamp, source[dyno]: message.
    let mut text = String::new();
    for name in ["router.log", "app.log", "platform.log", "metrics.log"] {
        for line in sample_lines(name) {
            let parts: Vec<&str> = line.trim_end().splitn(7, ' ').collect();
            text.push_str(&format!("{} {}[{}]: {}\n", parts[1], parts[3], parts[4], parts[6]));
        }
    }
    std::fs::write(&file, &text).unwrap();
    let n = text.lines().count();
    let args = ["replay", "--elasticsearch-url", &es, "--namespace", &ns, "--app", "shop", file.to_str().unwrap()];
    let first = drainpipe(&args);
    assert!(first.contains(&format!("replayed {n} lines")) && first.contains(&format!("{n} indexed")), "{first}");
    let second = drainpipe(&args);
    assert!(second.contains(&format!("0 indexed, {n} already there")), "{second}");
    let index = streams_of(&ns);
    assert_eq!(wait_for_count(&es, &index, n as u64, Duration::from_secs(30)).await, n as u64);
    let docs = search(&es, &index, serde_json::json!({"term": {"event.dataset": "heroku.router"}})).await;
    assert_eq!(docs.len(), 5, "router lines are typed as router lines");
    assert_eq!(docs[0]["_source"]["heroku"]["app"], "shop");
    assert_eq!(docs[0]["_source"]["log"]["syslog"]["priority"], 158);
    std::fs::remove_file(file).unwrap();
}

/// A test-only TLS terminator in front of the real Elasticsearch, with a certificate from a
/// private CA made here: how a cluster behind a company CA looks to drainpipe. Also counts the
/// TLS handshakes that failed (a client that does not trust the certificate).
async fn tls_proxy_to(
    es: &str,
    dir: &std::path::Path,
) -> (u16, String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();

    let chain = vec![cert.der().clone()];
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = es.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = failed.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, upstream, failures) = (acceptor.clone(), upstream.clone(), failures.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return;
                };
                let Ok(mut es) = tokio::net::TcpStream::connect(&upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut es).await;
            });
        }
    });
    (port, ca_path.to_string_lossy().into_owned(), failed)
}

#[tokio::test]
async fn elasticsearch_behind_a_private_ca() {
    let es = elasticsearch_url();
    let dir = std::env::temp_dir().join(unique_namespace("private-ca"));
    let (port, ca, failed_handshakes) = tls_proxy_to(&es, &dir).await;
    let https = format!("https://localhost:{port}");
    let client = reqwest::Client::new();

    // Without the CA, drainpipe does not trust the cluster: it never gets an answer.
    let untrusting = Drainpipe::start_against(&https, &unique_namespace("noca"), &[]);
    // Once it has tried the cluster and given up on the certificate (a handshake the proxy
    // saw fail), it is still not answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while failed_handshakes.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no handshake failed: drainpipe never tried the cluster, or trusted it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = client.get(untrusting.url("/readyz")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("elasticsearch: not answered yet"), "{body}");
    drop(untrusting);

    let ns = unique_namespace("ca");
    let dp = Drainpipe::start_against(&https, &ns, &["--elasticsearch-ca", &ca, "--elasticsearch-gzip"]);
    wait_for_body(&client, &dp.url("/readyz"), "elasticsearch: answering", Duration::from_secs(30)).await;
    let lines = sample_lines("router.log");
    let headers = LogplexHeaders { frame_id: Some("CA000001"), drain_token: Some("d.ca"), msg_count: lines.len() };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    // Read back from Elasticsearch directly: the documents went through TLS (and gzip).
    let docs = wait_for_documents(&es, &dp.data_stream, lines.len()).await;
    assert_eq!(docs.len(), lines.len());
    std::fs::remove_dir_all(dir).unwrap();
}
