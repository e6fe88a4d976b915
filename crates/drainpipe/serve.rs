//! `drainpipe serve`: wires receivers → queue → transform → bulk indexer, and shuts them down
//! in that order on SIGTERM or Ctrl-C, flushing what was accepted before a deadline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, ClientConfig};
use drainpipe_ingest::{HttpConfig, ReloadableCert, SyslogConfig};
use drainpipe_spool::{Fsync, Spool, SpoolConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{FsyncPolicy, ServeConfig};
use crate::pipeline::{Handoff, Target};
use crate::{admin, frame_codec, health, pipeline, setup};

/// Frames waiting for the transform. At Logplex's ~100 KB per frame this bounds the queue at
/// about 100 MB; past it, HTTPS senders get 503 and retry, syslog senders are not read.
const QUEUE_FRAMES: usize = 1024;

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let ca_pem = match &config.elasticsearch_ca {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let client = Client::with_config(&ClientConfig {
        urls: config.elasticsearch_urls.clone(),
        api_key: config.elasticsearch_api_key.clone(),
        ca_pem,
        gzip: config.elasticsearch_gzip,
    })?;
    let cert = match &config.tls {
        Some(files) => Some(ReloadableCert::load(&files.cert, &files.key)?),
        None => None,
    };
    let tls = cert.as_ref().map(ReloadableCert::acceptor).transpose()?;
    let http_listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let http_addr = http_listener.local_addr()?;
    let syslog_listener = bind_optional(config.syslog_listen).await?;
    let syslog_tls_listener = bind_optional(config.syslog_tls_listen).await?;

    let target = Target::new(&config);
    tracing::info!(elasticsearch = client.url(), data_stream = %target.data_stream, "starting");
    if config.credentials.is_empty() {
        tracing::warn!("no --basic-auth configured: anyone who can reach POST /logs can send logs");
    }

    // Bulk indexer: installs the templates first, then indexes until its channel closes.
    let (chunk_tx, chunk_rx) = mpsc::channel(8);
    let indexer_config = config.indexer_config();
    let probe_client = client.clone();
    let indexer = tokio::spawn(async move {
        setup::install_until_done(&client).await?;
        drainpipe_bulk_indexer::run(client, indexer_config, chunk_rx).await;
        anyhow::Ok(())
    });

    // The hand-off between receivers and pipeline: the spool, or a queue in memory.
    let (stop_pipeline_tx, stop_pipeline) = watch::channel(false);
    let (handoff, pipeline, spool) = match &config.spool {
        Some(settings) => {
            let fsync = match settings.fsync {
                FsyncPolicy::Batch => Fsync::EveryBatch,
                FsyncPolicy::Interval(d) => Fsync::Interval(d),
            };
            // A segment holds at least the largest frame; the spool at least two segments.
            let largest =
                frame_codec::max_record_len(config.max_body_bytes.max(2 * config.max_message_bytes + (64 << 10)))
                    as u64;
            let segment_bytes = (settings.max_bytes / 64).clamp(largest, (256 << 20).max(largest));
            if settings.max_bytes < 2 * segment_bytes {
                anyhow::bail!(
                    "--spool-max-bytes {} is too small: it must hold at least two segments of {segment_bytes} bytes (the largest frame, from --max-body-size, fits in one)",
                    settings.max_bytes
                );
            }
            let spool_config =
                SpoolConfig { dir: settings.dir.clone(), max_bytes: settings.max_bytes, segment_bytes, fsync };
            let (spool, reader, recovery) = Spool::open(spool_config).context("cannot open the spool")?;
            tracing::info!(
                dir = %settings.dir.display(),
                max_bytes = settings.max_bytes,
                replaying = recovery.records,
                torn_tails_cut = recovery.torn_segments,
                "spool open: frames are on disk before they are answered"
            );
            let pipeline = tokio::spawn(pipeline::run_spooled(reader, spool.clone(), chunk_tx, target, stop_pipeline));
            tokio::spawn(update_spool_metrics(spool.clone()));
            (Handoff::Spool(spool.clone()), pipeline, Some(spool))
        }
        None => {
            tracing::warn!(
                "no --spool-dir: accepted frames wait in a bounded in-memory queue, and a crash loses what has not reached Elasticsearch"
            );
            let (frame_tx, frame_rx) = mpsc::channel(QUEUE_FRAMES);
            let pipeline = tokio::spawn(pipeline::run(frame_rx, chunk_tx, target));
            (Handoff::Memory(frame_tx), pipeline, None)
        }
    };

    let readiness = health::Readiness {
        client: probe_client.clone(),
        spool: spool.as_ref().zip(config.spool.as_ref()).map(|(s, settings)| (s.clone(), settings.max_bytes)),
    };
    tokio::spawn(health::probe(probe_client));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut receivers = JoinSet::new();
    let http = HttpConfig {
        max_body_bytes: config.max_body_bytes,
        max_connections: config.max_connections,
        credentials: config.credentials.clone(),
        drain_tokens: Arc::new(config.drain_tokens.clone()),
        tls: tls.clone(),
        extra_routes: Some(health::routes(readiness.clone(), config.metrics_listen.is_none())),
        ..HttpConfig::default()
    };
    if let Some(addr) = config.metrics_listen {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!("serving /metrics on http://{}", listener.local_addr()?);
        receivers.spawn(admin::run(listener, health::routes(readiness.clone(), true), stopped()));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{http_addr}");
    receivers.spawn(drainpipe_ingest::http::run(http_listener, http, handoff.clone(), stopped()));
    let syslog = SyslogConfig {
        max_message_bytes: config.max_message_bytes,
        max_connections: config.max_connections,
        ..SyslogConfig::default()
    };
    if let Some(listener) = syslog_listener {
        tracing::info!("syslog listening on tcp://{}", listener.local_addr()?);
        receivers.spawn(drainpipe_ingest::syslog::run(listener, syslog.clone(), handoff.clone(), stopped()));
    }
    if let Some(listener) = syslog_tls_listener {
        tracing::info!("syslog listening on tls://{}", listener.local_addr()?);
        let config = SyslogConfig { tls: tls.clone(), ..syslog };
        receivers.spawn(drainpipe_ingest::syslog::run(listener, config, handoff.clone(), stopped()));
    }
    drop(handoff);
    if let Some(cert) = cert {
        tokio::spawn(reload_on_sighup(cert));
    }

    shutdown_signal().await;
    let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
    let _ = stop_tx.send(true);
    while receivers.join_next().await.is_some() {}

    // No more frames arrive. With a spool, what is not yet read stays there for the next start;
    // with the memory queue, the pipeline drains it. Then the indexer sends what it holds.
    if let Some(spool) = &spool {
        let _ = stop_pipeline_tx.send(true);
        spool.close();
    }
    tracing::info!(timeout = ?config.shutdown_timeout, "stopped receiving; finishing bulk requests in flight");
    let flushed = tokio::time::timeout_at(deadline, async {
        let _ = pipeline.await;
        indexer.await
    })
    .await;
    match flushed {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => anyhow::bail!("indexer task failed: {e}"),
        Err(_) if spool.is_some() => {
            tracing::warn!("shutdown timeout reached; unacknowledged frames stay in the spool for the next start");
            return Ok(());
        }
        Err(_) => anyhow::bail!("shutdown timed out; frames still queued in memory are lost"),
    }
    tracing::info!("all accepted frames flushed; bye");
    Ok(())
}

/// Keeps the spool gauges current (the oldest record's age grows while nothing happens).
async fn update_spool_metrics(spool: Spool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        spool.update_metrics();
    }
}

async fn bind_optional(addr: Option<std::net::SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => Ok(Some(TcpListener::bind(a).await.with_context(|| format!("cannot listen on {a}"))?)),
        None => Ok(None),
    }
}

/// Re-reads the certificate and key on SIGHUP; a bad file keeps the old certificate.
async fn reload_on_sighup(cert: Arc<ReloadableCert>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; certificates will not be reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = cert;
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
