//! `drainpipe serve`: wires receiver → queue → transform → bulk indexer, and shuts them down in
//! that order on SIGTERM or Ctrl-C, flushing what was accepted before a deadline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use drainpipe_bulk_indexer::{Client, IndexerConfig};
use drainpipe_ingest::{ExtraRoutes, HttpConfig};
use http_body_util::Full;
use hyper::{header, Method, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::ServeConfig;
use crate::{metrics, pipeline, setup};

/// Frames waiting for the transform. At Logplex's ~100 KB per frame this bounds the queue at
/// about 100 MB; past it, senders get 503 and retry.
const QUEUE_FRAMES: usize = 1024;
/// How long shutdown waits for accepted frames to reach Elasticsearch.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let client = Client::new(&config.elasticsearch_url)?;
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let target = config.data_stream();
    tracing::info!(elasticsearch = client.url(), data_stream = %target, "starting");
    tracing::warn!(
        "accepted frames wait in an in-memory queue until indexed: a crash loses what has not reached Elasticsearch"
    );

    let (frame_tx, frame_rx) = mpsc::channel(QUEUE_FRAMES);
    let (chunk_tx, chunk_rx) = mpsc::channel(8);
    let indexer = tokio::spawn(async move {
        setup::install_until_done(&client).await?;
        drainpipe_bulk_indexer::run(client, IndexerConfig::default(), chunk_rx).await;
        anyhow::Ok(())
    });
    let pipeline = tokio::spawn(pipeline::run(frame_rx, chunk_tx, target));

    let http = HttpConfig { extra_routes: Some(routes()), ..HttpConfig::default() };
    tracing::info!("listening on http://{addr}");
    drainpipe_ingest::run(listener, http, pipeline::MemoryQueue(frame_tx), shutdown_signal()).await;

    // The receiver is closed and its sender dropped: the pipeline drains the queue, then the
    // indexer flushes and returns.
    tracing::info!(timeout = ?SHUTDOWN_TIMEOUT, "stopped receiving; flushing accepted frames");
    let flushed = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        let _ = pipeline.await;
        indexer.await
    })
    .await;
    match flushed {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => anyhow::bail!("indexer task failed: {e}"),
        Err(_) => {
            anyhow::bail!("shutdown timed out after {SHUTDOWN_TIMEOUT:?}; frames still queued in memory are lost")
        }
    }
    tracing::info!("all accepted frames flushed; bye");
    Ok(())
}

/// `/healthz` and `/metrics`, served beside the drain endpoint.
fn routes() -> ExtraRoutes {
    Arc::new(|method: &Method, path: &str| {
        if method != Method::GET {
            return None;
        }
        let (content_type, body) = match path {
            "/healthz" => ("text/plain; charset=utf-8", Bytes::from_static(b"ok\n")),
            "/metrics" => ("text/plain; version=0.0.4; charset=utf-8", Bytes::from(metrics::render())),
            _ => return None,
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = StatusCode::OK;
        r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
        Some(r)
    })
}

/// Resolves on SIGTERM (what platforms send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
