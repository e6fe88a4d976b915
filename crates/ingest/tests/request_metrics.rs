//! What `drainpipe_ingest_requests_total` counts: drain requests (`/logs`) only, so that probes
//! and scanners do not dilute the share of drain requests refused (DrainpipeRefusingDrains).
//! A test binary of its own: the counters are process-wide, and no other test may move them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use drainpipe_ingest::{http, metrics, ExtraRoutes, HttpConfig};
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use tokio::net::TcpListener;

mod support;

use support::Drop;

/// `/healthz`, which answers other methods than GET 405 itself.
fn healthz() -> ExtraRoutes {
    Arc::new(|method, path| {
        (path == "/healthz").then(|| {
            let mut r = Response::new(Full::new(Bytes::new()));
            if method != Method::GET {
                *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            }
            r
        })
    })
}

/// Every `drainpipe_ingest_requests_total` series, as (status, count).
fn drain_requests() -> Vec<(String, u64)> {
    let registry = prometheus::Registry::new();
    metrics::register(&registry).unwrap();
    let family = registry.gather().into_iter().find(|f| f.name() == "drainpipe_ingest_requests_total").unwrap();
    let mut counts: Vec<(String, u64)> = family
        .get_metric()
        .iter()
        .map(|m| (m.get_label()[0].value().to_owned(), m.get_counter().get_value() as u64))
        .filter(|(_, n)| *n > 0)
        .collect();
    counts.sort();
    counts
}

#[tokio::test]
async fn only_requests_to_the_drain_path_are_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = HttpConfig { extra_routes: Some(healthz()), ..HttpConfig::default() };
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::run(listener, config, Drop, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    assert_eq!(drain_requests(), [], "nothing counted yet");

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(client.get(url("/wp-login.php")).send().await.unwrap()), 404);
    assert_eq!(status(client.post(url("/logs/")).body("4 test").send().await.unwrap()), 404);
    assert_eq!(status(client.post(url("/healthz")).send().await.unwrap()), 405);
    assert_eq!(status(client.get(url("/healthz")).send().await.unwrap()), 200);
    assert_eq!(status(client.get(url("/v1/logs")).send().await.unwrap()), 405, "OTLP has a metric of its own");
    assert_eq!(drain_requests(), [], "none of these is a drain request");

    assert_eq!(status(client.get(url("/logs")).send().await.unwrap()), 405);
    assert_eq!(status(client.post(url("/logs")).body("4 test").send().await.unwrap()), 200);
    assert_eq!(drain_requests(), [("200".to_owned(), 1), ("405".to_owned(), 1)], "a wrong method on /logs counts");
}
