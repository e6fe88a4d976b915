//! Issue-3 receivers end to end: HTTPS with credentials, labels and token-to-app mapping, and
//! syslog drains over TCP and TLS in both framings, all the way into Elasticsearch.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::*;

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

const TOKEN: &str = "d.4f2c9a1e-7b3d-4e5f-8a9b-0c1d2e3f4a5b";

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("drainpipe-e2e-{name}-{}", unique_namespace("t")))
}

#[tokio::test]
async fn https_drain_with_credentials_labels_and_a_broken_message() {
    let dir = temp_dir("https");
    let (cert, key) = self_signed_certificate(&dir);
    let ns = unique_namespace("https");
    let token_map = format!("{TOKEN}=shop");
    let dp = Drainpipe::start_with(
        &ns,
        &["--tls-cert", &cert, "--tls-key", &key, "--basic-auth", "logplex:s3cret", "--drain-token", &token_map],
    );
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let url = format!("https://localhost:{}/logs?env=staging&team=checkout", dp.addr.port());
    let messages = [
        "<190>1 2025-03-14T09:26:53.000001+00:00 host app web.1 - first\n",
        "\u{1}\u{2} not syslog at all \u{fffd}\n",
        "<190>1 2025-03-14T09:26:53.000003+00:00 host app web.2 - third\n",
    ];
    let send = |auth: Option<String>, token: &'static str| {
        let mut r = client
            .post(&url)
            .header("Content-Type", "application/logplex-1")
            .header("Logplex-Msg-Count", "3")
            .header("Logplex-Frame-Id", "0123456789ABCDEF0123456789ABCDEF")
            .header("Logplex-Drain-Token", token)
            .body(logplex_body(&messages));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    assert_eq!(send(None, TOKEN).await.unwrap().status(), 401);
    assert_eq!(send(Some(basic("logplex:wrong")), TOKEN).await.unwrap().status(), 401);
    assert_eq!(send(Some(basic("logplex:s3cret")), "d.unknown").await.unwrap().status(), 403);
    let ok = send(Some(basic("logplex:s3cret")), TOKEN).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-length"], "0");

    let docs = wait_for_documents(&dp.es, &dp.data_stream, 3).await;
    assert_eq!(docs.len(), 3, "every message of the batch, the broken one too");
    for d in &docs {
        let src = &d["_source"];
        assert_eq!(src["heroku"]["app"], "shop", "app from the drain token: {src}");
        assert_eq!(src["labels"], json!({"env": "staging", "team": "checkout"}));
        assert_eq!(src["heroku"]["drain"]["token"], TOKEN);
    }
    let broken: Vec<&Value> =
        docs.iter().filter(|d| d["_source"]["tags"] == json!(["_drainpipe_parse_failure"])).collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["_source"]["message"], "\u{1}\u{2} not syslog at all \u{fffd}");
    let hits = search(&dp.es, &dp.data_stream, json!({"term": {"labels.env": "staging"}})).await;
    assert_eq!(hits.len(), 3, "labels are searchable keywords");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn syslog_drains_over_tcp_and_tls_in_both_framings() {
    let dir = temp_dir("syslog");
    let (cert, key) = self_signed_certificate(&dir);
    let ns = unique_namespace("syslog");
    let token_map = format!("{TOKEN}=shop");
    let dp = Drainpipe::start_with(
        &ns,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--drain-token",
            &token_map,
            "--syslog-listen",
            "127.0.0.1:0",
            "--syslog-tls-listen",
            "127.0.0.1:0",
            "--max-message-size",
            "1KiB",
            // The relay's lines name no drain token (their HOSTNAME is a host's).
            "--syslog-allow-tokenless",
        ],
    );

    // Plain TCP: Heroku's octet counting, a relay's newline framing, and an oversized line.
    let heroku = format!("<190>1 2025-03-14T09:26:53.000001+00:00 {TOKEN} app web.1 - - over tcp\n");
    let mut stream = format!("{} {heroku}", heroku.len()).into_bytes();
    stream.extend_from_slice(b"<13>Mar 14 09:26:53 web-01 nginx[4711]: relayed line\n");
    stream.extend_from_slice(
        format!("<13>1 2025-03-14T09:26:53.000002Z relay app worker.1 - - {}\n", "y".repeat(2000)).as_bytes(),
    );
    let mut tcp = TcpStream::connect(dp.syslog.unwrap()).await.unwrap();
    tcp.write_all(&stream).await.unwrap();
    tcp.shutdown().await.unwrap();

    // TLS: the same certificate as HTTPS.
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let pem = std::fs::read(&cert).unwrap();
    roots.add(rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(dp.syslog_tls.unwrap()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let over_tls = format!("<190>1 2025-03-14T09:26:54.000001+00:00 {TOKEN} app web.2 - - over tls\n");
    tls.write_all(format!("{} {over_tls}", over_tls.len()).as_bytes()).await.unwrap();
    tls.write_all(b"<13>Mar 14 09:26:54 web-02 app: relayed over tls\n").await.unwrap();
    tls.shutdown().await.unwrap();

    let docs = wait_for_documents(&dp.es, &dp.data_stream, 5).await;
    assert_eq!(docs.len(), 5);
    let by_message = |m: &str| -> Value {
        docs.iter().find(|d| d["_source"]["message"] == m).unwrap_or_else(|| panic!("no document for {m:?}"))["_source"]
            .clone()
    };
    for m in ["over tcp", "over tls"] {
        let d = by_message(m);
        assert_eq!(d["heroku"]["drain"]["token"], TOKEN, "HOSTNAME is the drain token");
        assert_eq!(d["heroku"]["app"], "shop", "mapped through --drain-token");
        assert_eq!(d["log"]["syslog"]["hostname"], TOKEN);
        assert_eq!(d["event"]["dataset"], "heroku.app");
    }
    let relayed = by_message("relayed line");
    assert_eq!(relayed["log"]["syslog"]["hostname"], "web-01");
    assert_eq!(relayed["log"]["syslog"]["appname"], "nginx");
    assert_eq!(relayed["log"]["syslog"]["procid"], "4711");
    assert!(relayed["heroku"].get("drain").is_none());
    by_message("relayed over tls");
    let cut =
        docs.iter().find(|d| d["_source"]["tags"] == json!(["_drainpipe_truncated"])).expect("cut message indexed");
    assert!(cut["_source"]["error"]["message"].as_str().unwrap().contains("cut to 1024"));
    assert_eq!(cut["_source"]["heroku"]["dyno"], "worker.1");
    std::fs::remove_dir_all(dir).unwrap();
}
