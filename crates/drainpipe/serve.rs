//! `drainpipe serve`: wires receivers → hand-off (spool or memory queue) → pipeline → bulk
//! indexer, and shuts them down in that order on SIGTERM or Ctrl-C, flushing what was accepted
//! before one deadline. Every task it starts is owned here and joined (or stopped) on the way
//! out; one [`Phase`] channel tells each where shutdown is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, IndexerReport};
use drainpipe_ingest::{Frame, HttpConfig, MemoryBudget, ReloadableCert, SyslogConfig};
use drainpipe_spool::{Spool, SpoolConfig, SpoolReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::{ListenAddr, ServeOptions};
use crate::pipeline::{self, Handoff, HandoffCloser, Target};
use crate::supervise::{self, Supervisor};
use crate::commands::setup;
use crate::{health, metrics};

/// Frames waiting for the transform, at most (besides the byte bound, `--queue-max-bytes`);
/// past it, HTTPS senders get 503 and retry, syslog senders are not read.
const QUEUE_FRAMES: usize = 1024;

/// Where the process is; it only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    /// Receivers finish what they are on and take nothing new.
    StopReceiving,
    /// The spooled pipeline stops reading (what is left stays on disk for the next start).
    StopReading,
}

pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let mut background = JoinSet::new();
    let (phase_tx, phase) = watch::channel(Phase::Running);
    let (supervisor, mut ended) = Supervisor::new(phase.clone());
    // First of all: from here on SIGHUP reloads instead of killing the process.
    let cert = reload_on_sighup(&options, &supervisor, &mut background)?;
    let signal = shutdown_signal();
    if let Err(e) = metrics::register_all() {
        tracing::error!(error = %e, "registering metrics failed; /metrics may be incomplete");
    }
    let client = options.elasticsearch.client()?;
    let listeners = Listeners::bind(&options, cert).await?;
    let target = Target::new(&options.elasticsearch.namespace.0, Arc::new(options.receive.drain_tokens()));
    tracing::info!(elasticsearch = client.url(), data_streams = %target.pattern(), "starting");
    let delivery = Delivery::start(&options, client.clone(), target.clone(), &supervisor, &mut background)?;
    let budget = MemoryBudget::new(options.receive.queue_max_bytes.0);
    let readiness = delivery.readiness(&options, client.clone(), budget, supervisor.clone());
    background.spawn(supervisor.watch("elasticsearch probe", health::probe(client)));
    let handoff = delivery.handoff.clone();
    let receivers = start_receivers(&options, listeners, handoff, &target, readiness, &supervisor)?;
    // Until SIGTERM, or a task drainpipe cannot run without stops (then exit non-zero, soon,
    // so that the platform restarts it: frames it accepted are in the spool).
    let failed = tokio::select! {
        () = signal => None,
        Some(ended) = ended.recv() => Some(ended),
    };
    let timeout = options.delivery.shutdown_timeout.0;
    let Some(failed) = failed else {
        return shut_down(timeout, phase_tx, receivers, delivery, background).await;
    };
    let stopped = shut_down(timeout.min(supervise::EXIT_WITHIN), phase_tx, receivers, delivery, background).await;
    if let Err(e) = stopped {
        tracing::error!(error = %e, "while stopping");
    }
    Err(anyhow::anyhow!("{failed}"))
}

/// Every listener, bound before anything is served (so a taken port fails the start), and
/// the TLS the drain and syslog-TLS listeners serve.
struct Listeners {
    http: TcpListener,
    metrics: Option<TcpListener>,
    syslog: Option<TcpListener>,
    syslog_tls: Option<TcpListener>,
    cert: Option<Arc<ReloadableCert>>,
}

impl Listeners {
    async fn bind(options: &ServeOptions, cert: Option<Arc<ReloadableCert>>) -> anyhow::Result<Listeners> {
        let r = &options.receive;
        Ok(Listeners {
            http: bind(r.listen).await?,
            metrics: bind_optional(r.metrics_listen).await?,
            syslog: bind_optional(r.syslog_listen).await?,
            syslog_tls: bind_optional(r.syslog_tls_listen).await?,
            cert,
        })
    }
}

async fn bind(addr: ListenAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr.0).await.with_context(|| format!("cannot listen on {}", addr.0))
}

async fn bind_optional(addr: Option<ListenAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => Ok(Some(bind(a).await?)),
        None => Ok(None),
    }
}

/// The hand-off between receivers and pipeline, and the tasks behind it.
struct Delivery {
    handoff: Handoff,
    closer: HandoffCloser,
    spool: Option<Spool>,
    /// The memory queue (no spool), for readiness; weak, so it closes with the receivers.
    queue: Option<mpsc::WeakSender<Frame>>,
    pipeline: JoinHandle<()>,
    indexer: JoinHandle<anyhow::Result<IndexerReport>>,
}

impl Delivery {
    /// Starts the indexer (templates first), opens the spool or the memory queue, and starts
    /// the pipeline between them.
    fn start(
        options: &ServeOptions,
        client: Client,
        target: Target,
        supervisor: &Supervisor,
        background: &mut JoinSet<()>,
    ) -> anyhow::Result<Delivery> {
        let (chunk_tx, chunk_rx) = mpsc::channel(pipeline::CHUNKS_WAITING);
        let (indexer_config, retention) = (options.indexer_config(), options.elasticsearch.retention.clone());
        let manage_templates = options.delivery.manage_templates;
        let chunks = pipeline::Chunker::new(chunk_tx, indexer_config.max_docs, indexer_config.max_bytes);
        let indexer = tokio::spawn(supervisor.watch("indexer", async move {
            if !manage_templates {
                tracing::info!("--manage-templates false: the index templates are left to whoever manages them");
            } else {
                tokio::select! {
                    installed = setup::install_until_done(&client, &retention) => installed?,
                    // Stopped before Elasticsearch ever answered, holding nothing: nothing to
                    // wait for (a container with a wrong URL would otherwise take the whole timeout).
                    () = closed_with_nothing_waiting(&chunk_rx) => {
                        tracing::info!("stopping before the index templates were installed; nothing was waiting for them");
                    }
                }
            }
            Ok(drainpipe_bulk_indexer::run(client, indexer_config, chunk_rx).await)
        }));
        let Some(spool_config) = options.spool_config() else {
            tracing::warn!(
                "no --spool-dir: accepted frames wait in a bounded in-memory queue, and a crash loses what has not reached Elasticsearch"
            );
            let (frame_tx, frame_rx) = mpsc::channel(QUEUE_FRAMES);
            let pipeline = tokio::spawn(supervisor.watch("pipeline", pipeline::run(frame_rx, chunks, target)));
            let queue = Some(frame_tx.downgrade());
            let (handoff, closer) = Handoff::memory(frame_tx);
            return Ok(Delivery { handoff, closer, spool: None, queue, pipeline, indexer });
        };
        let (spool, reader) = open_spool(spool_config?)?;
        let stop_reading = reached(supervisor.phase(), Phase::StopReading);
        let drain = options.delivery.spool_ephemeral;
        let run = pipeline::run_spooled(reader, spool.clone(), chunks, target, stop_reading, drain);
        let pipeline = tokio::spawn(supervisor.watch("pipeline", run));
        background.spawn(supervisor.watch("spool metrics", update_spool_metrics(spool.clone())));
        let (handoff, closer) = Handoff::spool(spool.clone());
        Ok(Delivery { handoff, closer, spool: Some(spool), queue: None, pipeline, indexer })
    }

    fn readiness(
        &self,
        options: &ServeOptions,
        client: Client,
        budget: MemoryBudget,
        supervisor: Supervisor,
    ) -> health::Readiness {
        health::Readiness {
            client,
            spool: self.spool.clone().map(|s| (s, options.delivery.spool_max_bytes.0 as u64)),
            queue: self.queue.clone(),
            budget,
            phase: supervisor.phase(),
            supervisor,
        }
    }

    /// Waits for the pipeline to hand on what it holds and the indexer to deliver it. The
    /// hand-off goes first: the memory queue ends once no sender is left.
    async fn finish(self) -> anyhow::Result<IndexerReport> {
        let Delivery { handoff, pipeline, indexer, .. } = self;
        drop(handoff);
        let _ = pipeline.await;
        indexer.await.context("the indexer task failed")?
    }
}

/// Resolves once the pipeline is done with `chunks` (shutdown) and left no chunk in it.
async fn closed_with_nothing_waiting<T>(chunks: &mpsc::Receiver<T>) {
    while !(chunks.is_closed() && chunks.is_empty()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the spool and says what it found.
fn open_spool(config: SpoolConfig) -> anyhow::Result<(Spool, SpoolReader)> {
    let (dir, max_bytes) = (config.dir.clone(), config.max_bytes);
    let (spool, reader, recovery) = Spool::open(config).context("cannot open the spool")?;
    tracing::info!(
        dir = %dir.display(),
        max_bytes,
        replaying = recovery.records,
        torn_tails_cut = recovery.torn_segments,
        "spool open: frames are on disk before they are answered"
    );
    Ok((spool, reader))
}

/// Starts every receiver on its listener, each stopping once shutdown reaches them.
fn start_receivers(
    options: &ServeOptions,
    listeners: Listeners,
    handoff: Handoff,
    target: &Target,
    readiness: health::Readiness,
    supervisor: &Supervisor,
) -> anyhow::Result<JoinSet<()>> {
    let r = &options.receive;
    let stopped = || reached(supervisor.phase(), Phase::StopReceiving);
    let tls = listeners.cert.as_ref().map(|c| c.acceptor()).transpose()?;
    let budget = readiness.budget.clone();
    let mut receivers = JoinSet::new();
    let http = HttpConfig {
        max_body_bytes: r.max_body_size.0,
        max_connections: r.max_connections.get(),
        credentials: r.credentials(),
        drain_tokens: target.drain_tokens.clone(),
        otlp_tokens: r.otlp_tokens(),
        allow_tokenless: r.allow_tokenless,
        trust_forwarded_for: r.trust_forwarded_for,
        budget: budget.clone(),
        tls: tls.clone(),
        extra_routes: Some(health::routes(readiness.clone(), listeners.metrics.is_none())),
        ..HttpConfig::default()
    };
    if r.basic_auth.is_empty() {
        tracing::warn!("no --basic-auth configured: anyone who can reach POST /logs can send logs");
        if r.otlp_token.is_empty() {
            tracing::warn!("no --otlp-token or --basic-auth configured: POST /v1/logs is open too");
        }
    }
    if let Some(listener) = listeners.metrics {
        tracing::info!("serving /metrics on http://{}", listener.local_addr()?);
        // The same connection limit and timeouts as the drain listener, without TLS.
        let admin = HttpConfig { tls: None, extra_routes: None, ..http.clone() };
        let routes = health::routes(readiness, true);
        let serve = drainpipe_ingest::http::run_routes(listener, admin, routes, stopped());
        receivers.spawn(supervisor.watch("metrics listener", serve));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{}", listeners.http.local_addr()?);
    let serve = drainpipe_ingest::http::run(listeners.http, http, handoff.clone(), stopped());
    receivers.spawn(supervisor.watch("drain listener", serve));
    let syslog = SyslogConfig {
        max_message_bytes: r.max_message_size.0,
        max_connections: r.max_connections.get(),
        budget,
        drain_tokens: target.drain_tokens.clone(),
        allow_tokenless: r.syslog_allow_tokenless,
        ..SyslogConfig::default()
    };
    if listeners.syslog.is_some() || listeners.syslog_tls.is_some() {
        // Syslog has no credentials: the drain-token list (HOSTNAME) is all that keeps it closed.
        if r.drain_token.is_empty() {
            tracing::warn!("no --drain-token configured: the syslog listener takes lines from anyone who can reach it");
        } else if r.syslog_allow_tokenless {
            tracing::warn!("--syslog-allow-tokenless: the syslog listener takes lines without a drain token from anyone who can reach it");
        }
    }
    let plain = listeners.syslog.map(|l| (l, syslog.clone(), "tcp", "syslog listener"));
    let secure = listeners.syslog_tls.map(|l| (l, SyslogConfig { tls, ..syslog }, "tls", "syslog TLS listener"));
    for (listener, config, scheme, task) in plain.into_iter().chain(secure) {
        tracing::info!("syslog listening on {scheme}://{}", listener.local_addr()?);
        let serve = drainpipe_ingest::syslog::run(listener, config, handoff.clone(), stopped());
        receivers.spawn(supervisor.watch(task, serve));
    }
    Ok(receivers)
}

/// Resolves once shutdown has reached `phase`.
async fn reached(mut current: watch::Receiver<Phase>, phase: Phase) {
    let _ = current.wait_for(|p| *p >= phase).await;
}

/// Stops everything in order within `timeout`: the receivers (the hand-off closes to them
/// halfway, so one waiting for room cannot hold the rest), then the pipeline, then the indexer
/// flushes; background tasks last. Without a spool, frames still held at the deadline are
/// lost, and that is the error returned.
async fn shut_down(
    timeout: Duration,
    phase: watch::Sender<Phase>,
    mut receivers: JoinSet<()>,
    delivery: Delivery,
    mut background: JoinSet<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    phase.send_replace(Phase::StopReceiving);
    if !join_all_until(&mut receivers, Instant::now() + timeout / 2).await {
        tracing::warn!("receivers still waiting for room; closing the queue to them");
    }
    delivery.closer.close();
    if !join_all_until(&mut receivers, deadline).await {
        tracing::warn!("receivers did not finish before the shutdown timeout; stopping them");
        receivers.shutdown().await;
    }
    // No more frames arrive. With a spool, what is not yet read stays there for the next start;
    // with the memory queue, the pipeline drains it. Then the indexer sends what it holds.
    phase.send_replace(Phase::StopReading);
    tracing::info!(?timeout, "stopped receiving; finishing bulk requests in flight");
    let spool = delivery.spool.clone();
    let flushed = tokio::time::timeout_at(deadline, delivery.finish()).await;
    background.shutdown().await;
    let report = match flushed {
        Ok(report) => Some(report?),
        Err(_) => None,
    };
    left_behind(report.as_ref(), spool.as_ref())
}

/// Says what shutdown delivered (`report`: `None` when the deadline came first) and what it
/// left: frames that stay in the spool for the next start, or, without a spool, frames held in
/// memory, which are lost (the error returned).
fn left_behind(report: Option<&IndexerReport>, spool: Option<&Spool>) -> anyhow::Result<()> {
    let (indexed, duplicates, dead_lettered) = report.map_or((0, 0, 0), |r| (r.indexed, r.duplicates, r.dead_lettered));
    let deadline = if report.is_some() { "stopped" } else { "shutdown timeout reached" };
    if let Some(spool) = spool {
        let (records, bytes) = (spool.unacked_records(), spool.used_bytes());
        if records == 0 {
            tracing::info!(indexed, duplicates, dead_lettered, "{deadline}: every accepted frame is delivered; bye");
        } else {
            tracing::warn!(
                indexed,
                duplicates,
                dead_lettered,
                spooled_frames = records,
                spool_bytes = bytes,
                "{deadline}: frames not yet delivered stay in the spool for the next start"
            );
        }
        return Ok(());
    }
    let (frames, messages) = pipeline::memory_backlog();
    if frames == 0 {
        tracing::info!(indexed, duplicates, dead_lettered, "{deadline}: every accepted frame is delivered; bye");
        return Ok(());
    }
    tracing::error!(
        indexed,
        duplicates,
        dead_lettered,
        frames,
        messages,
        "{deadline} without a spool: these accepted frames are lost"
    );
    anyhow::bail!("{deadline}; {frames} accepted frame(s) ({messages} messages) held in memory are lost")
}

/// Waits for every task of `set` until `deadline`; false when some are still running.
async fn join_all_until(set: &mut JoinSet<()>, deadline: Instant) -> bool {
    tokio::time::timeout_at(deadline, async { while set.join_next().await.is_some() {} }).await.is_ok()
}

/// Keeps the spool gauges current (the oldest record's age grows while nothing happens).
async fn update_spool_metrics(spool: Spool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        spool.update_metrics();
    }
}

/// Loads the TLS certificate, if any, and handles SIGHUP (what `systemctl reload` sends) for
/// the life of the process, so that it never stops it: the certificate and key are read again
/// (a bad file keeps the old ones).
fn reload_on_sighup(
    options: &ServeOptions,
    supervisor: &Supervisor,
    background: &mut JoinSet<()>,
) -> anyhow::Result<Option<Arc<ReloadableCert>>> {
    let cert = match options.receive.tls_files() {
        Some((cert, key)) => Some(ReloadableCert::load(cert, key)?),
        None => None,
    };
    let kind = tokio::signal::unix::SignalKind::hangup();
    let mut hup = tokio::signal::unix::signal(kind).context("cannot handle SIGHUP")?;
    let reloaded = cert.clone();
    background.spawn(supervisor.watch("SIGHUP handler", async move {
        while hup.recv().await.is_some() {
            match &reloaded {
                None => tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)"),
                Some(cert) => match cert.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one"),
                },
            }
        }
    }));
    Ok(cert)
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
