//! `drainpipe serve`: wires receivers → queue → transform → bulk indexer, and shuts them down
//! in that order on SIGTERM or Ctrl-C, flushing what was accepted before a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, ClientConfig};
use drainpipe_ingest::{HttpConfig, MemoryBudget, ReloadableCert, SyslogConfig};
use drainpipe_spool::{Fsync, Spool, SpoolConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{FsyncPolicy, ServeConfig};
use crate::pipeline::{Handoff, Target};
use crate::{frame_codec, health, pipeline, setup};

/// Frames waiting for the transform, at most (besides the byte bound, `--queue-max-bytes`);
/// past it, HTTPS senders get 503 and retry, syslog senders are not read.
const QUEUE_FRAMES: usize = 1024;

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // First of all: from here on SIGHUP reloads instead of killing the process.
    let mut background = JoinSet::new();
    let cert = match &config.tls {
        Some(files) => Some(ReloadableCert::load(&files.cert, &files.key)?),
        None => None,
    };
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot handle SIGHUP")?;
    background.spawn(reload_on_sighup(hup, cert.clone()));
    let signal = shutdown_signal();

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
    let tls = cert.as_ref().map(|c| c.acceptor()).transpose()?;
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
    let retention = config.retention.clone();
    let indexer = tokio::spawn(async move {
        setup::install_until_done(&client, retention.as_ref()).await?;
        drainpipe_bulk_indexer::run(client, indexer_config, chunk_rx).await;
        anyhow::Ok(())
    });

    // The hand-off between receivers and pipeline: the spool, or a queue in memory.
    let (stop_pipeline_tx, stop_pipeline) = watch::channel(false);
    let (handoff, closer, pipeline, spool, queue) = match &config.spool {
        Some(settings) => {
            let (spool, reader) = open_spool(&config, settings)?;
            let pipeline = tokio::spawn(pipeline::run_spooled(reader, spool.clone(), chunk_tx, target, stop_pipeline));
            background.spawn(update_spool_metrics(spool.clone()));
            let (handoff, closer) = Handoff::spool(spool.clone());
            (handoff, closer, pipeline, Some(spool), None)
        }
        None => {
            tracing::warn!(
                "no --spool-dir: accepted frames wait in a bounded in-memory queue, and a crash loses what has not reached Elasticsearch"
            );
            let (frame_tx, frame_rx) = mpsc::channel(QUEUE_FRAMES);
            let pipeline = tokio::spawn(pipeline::run(frame_rx, chunk_tx, target));
            let (handoff, closer) = Handoff::memory(frame_tx.clone());
            (handoff, closer, pipeline, None, Some(frame_tx.downgrade()))
        }
    };

    let budget = MemoryBudget::new(config.queue_max_bytes);
    let stopping = Arc::new(AtomicBool::new(false));
    let readiness = health::Readiness {
        client: probe_client.clone(),
        spool: spool.as_ref().zip(config.spool.as_ref()).map(|(s, settings)| (s.clone(), settings.max_bytes)),
        queue,
        budget: budget.clone(),
        stopping: stopping.clone(),
    };
    background.spawn(health::probe(probe_client));

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
        trust_forwarded_for: config.trust_forwarded_for,
        budget: budget.clone(),
        tls: tls.clone(),
        extra_routes: Some(health::routes(readiness.clone(), config.metrics_listen.is_none())),
        ..HttpConfig::default()
    };
    if let Some(addr) = config.metrics_listen {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!("serving /metrics on http://{}", listener.local_addr()?);
        // The same connection limit and timeouts as the drain listener, without TLS.
        let admin = HttpConfig { tls: None, extra_routes: None, ..http.clone() };
        let routes = health::routes(readiness.clone(), true);
        receivers.spawn(drainpipe_ingest::http::run_routes(listener, admin, routes, stopped()));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{http_addr}");
    receivers.spawn(drainpipe_ingest::http::run(http_listener, http, handoff.clone(), stopped()));
    let syslog = SyslogConfig {
        max_message_bytes: config.max_message_bytes,
        max_connections: config.max_connections,
        budget: budget.clone(),
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

    signal.await;
    // One deadline for the whole shutdown, whatever the receivers are waiting on.
    let deadline = Instant::now() + config.shutdown_timeout;
    stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // Receivers finish the requests they are on and hand on what they read. One still waiting
    // for room (a syslog stream behind a full queue) is released halfway: the hand-off closes,
    // and what it holds is refused (its sender did not get an answer for it).
    let halfway = Instant::now() + config.shutdown_timeout / 2;
    if !join_all_until(&mut receivers, halfway).await {
        tracing::warn!("receivers still waiting for room; closing the queue to them");
    }
    closer.close();
    if !join_all_until(&mut receivers, deadline).await {
        tracing::warn!("receivers did not finish before the shutdown timeout; stopping them");
        receivers.shutdown().await;
    }

    // No more frames arrive. With a spool, what is not yet read stays there for the next start;
    // with the memory queue, the pipeline drains it. Then the indexer sends what it holds.
    if spool.is_some() {
        let _ = stop_pipeline_tx.send(true);
    }
    tracing::info!(timeout = ?config.shutdown_timeout, "stopped receiving; finishing bulk requests in flight");
    let flushed = tokio::time::timeout_at(deadline, async {
        let _ = pipeline.await;
        indexer.await
    })
    .await;
    background.shutdown().await;
    match flushed {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => anyhow::bail!("indexer task failed: {e}"),
        Err(_) if spool.is_some() => {
            tracing::warn!("shutdown timeout reached; unacknowledged frames stay in the spool for the next start");
            return Ok(());
        }
        Err(_) => {
            let (frames, messages) = pipeline::memory_backlog();
            tracing::error!(
                frames,
                messages,
                "shutdown timeout reached without a spool: these accepted frames are lost"
            );
            anyhow::bail!(
                "shutdown timed out; {frames} accepted frame(s) ({messages} messages) held in memory are lost"
            );
        }
    }
    tracing::info!("all accepted frames flushed; bye");
    Ok(())
}

/// Waits for every task of `set` until `deadline`; false when some are still running.
async fn join_all_until(set: &mut JoinSet<()>, deadline: Instant) -> bool {
    tokio::time::timeout_at(deadline, async { while set.join_next().await.is_some() {} }).await.is_ok()
}

/// Opens the spool with segments sized for the largest frame.
fn open_spool(
    config: &ServeConfig,
    settings: &crate::config::SpoolSettings,
) -> anyhow::Result<(Spool, drainpipe_spool::SpoolReader)> {
    let fsync = match settings.fsync {
        FsyncPolicy::Batch => Fsync::EveryBatch,
        FsyncPolicy::Interval(d) => Fsync::Interval(d),
    };
    // A segment holds at least the largest frame; the spool at least two segments.
    let largest =
        frame_codec::max_record_len(config.max_body_bytes.max(2 * config.max_message_bytes + (64 << 10))) as u64;
    let segment_bytes = (settings.max_bytes / 64).clamp(largest, (256 << 20).max(largest));
    if settings.max_bytes < 2 * segment_bytes {
        anyhow::bail!(
            "--spool-max-bytes {} is too small: it must hold at least two segments of {segment_bytes} bytes (the largest frame, from --max-body-size, fits in one)",
            settings.max_bytes
        );
    }
    let spool_config = SpoolConfig { dir: settings.dir.clone(), max_bytes: settings.max_bytes, segment_bytes, fsync };
    let (spool, reader, recovery) = Spool::open(spool_config).context("cannot open the spool")?;
    tracing::info!(
        dir = %settings.dir.display(),
        max_bytes = settings.max_bytes,
        replaying = recovery.records,
        torn_tails_cut = recovery.torn_segments,
        "spool open: frames are on disk before they are answered"
    );
    Ok((spool, reader))
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

/// Handles SIGHUP (what `systemctl reload` sends) for the life of the process, so that it
/// never stops it: re-reads the TLS certificate and key (a bad file keeps the old ones), and
/// says what it did.
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, cert: Option<Arc<ReloadableCert>>) {
    while hup.recv().await.is_some() {
        match &cert {
            None => tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)"),
            Some(cert) => match cert.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one"),
            },
        }
    }
}

/// Resolves on SIGTERM (what platforms send) or Ctrl-C. The handlers are installed when this
/// is called, not when it is first polled, so a SIGTERM during start-up is not missed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move { wait_for_shutdown(term).await }
}

async fn wait_for_shutdown(term: std::io::Result<tokio::signal::unix::Signal>) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match term {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
