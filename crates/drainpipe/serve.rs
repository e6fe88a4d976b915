//! `drainpipe serve`: wires the receivers to delivery (drainpipe-delivery: hand-off, flow,
//! bulk indexer), and shuts them down in that order on SIGTERM or Ctrl-C, flushing what was
//! accepted before one deadline. Every task it starts is owned here and joined (or stopped) on
//! the way out; one [`Phase`] channel tells each where shutdown is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use drainpipe_archive::{ArchiveConfig, ArchiveWriter};
use drainpipe_bulk_indexer::{Chunk, Client, IndexerReport};
use drainpipe_delivery::{
    Archiving, BulkIndexer, DataStreams, Delivery, DeliveryConfig, DeliveryHandle, DeliveryReport, Handoff, Indexer,
    IndexerFailed, LiveRules, Queue, Unflushed,
};
use drainpipe_ingest::{HttpConfig, LiveAccess, MemoryBudget, ReloadableCert, SyslogConfig};
use drainpipe_spool::{Spool, SpoolConfig, SpoolReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::commands::{rules, setup};
use crate::config::{ListenAddr, RetentionRule, ServeOptions};
use crate::reload::{self, Reloadable};
use crate::supervise::{self, Supervisor};
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
    /// Delivery stops reading the spool (what is left stays on disk for the next start).
    StopReading,
}

pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let mut background = JoinSet::new();
    let (phase_tx, phase) = watch::channel(Phase::Running);
    let (supervisor, mut ended) = Supervisor::new(phase.clone());
    // First of all: from here on SIGHUP reloads instead of killing the process.
    let hangups = hangups()?;
    let cert = options.receive.tls_files().map(|(cert, key)| ReloadableCert::load(cert, key)).transpose()?;
    let signal = shutdown_signal();
    if let Err(e) = metrics::register_all() {
        tracing::error!(error = %e, "registering metrics failed; /metrics may be incomplete");
    }
    let client = options.elasticsearch.client()?;
    let listeners = Listeners::bind(&options, cert.clone()).await?;
    let streams = DataStreams::new(&options.elasticsearch.namespace.0);
    let access = LiveAccess::new(reload::access_of(&options));
    tracing::info!(
        elasticsearch = client.url(),
        credentials = client.credentials(),
        data_streams = %streams.pattern(),
        "starting"
    );
    let (rules_tx, live_rules) = LiveRules::channel(rules_at_start(&options));
    let reloadable = Reloadable::new(&options, access.clone(), rules_tx, cert);
    background.spawn(supervisor.watch("SIGHUP handler", reload_on_sighup(hangups, reloadable)));
    let config = DeliveryConfig { streams, access: access.clone(), rules: live_rules, max_docs: 0, max_bytes: 0 };
    let (handoff, delivery) = start_delivery(&options, config, client.clone(), &supervisor, &mut background)?;
    let readiness = health::Readiness {
        client: client.clone(),
        handoff: Some(handoff.fill_gauge()),
        spool_max_bytes: options.delivery.spool_max_bytes.0 as u64,
        budget: MemoryBudget::new(options.receive.queue_max_bytes.0),
        phase: supervisor.phase(),
        supervisor: supervisor.clone(),
    };
    background.spawn(supervisor.watch("elasticsearch probe", health::probe(client)));
    let receivers = start_receivers(&options, listeners, handoff, access, readiness, &supervisor)?;
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
    otlp_grpc: Option<TcpListener>,
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
            otlp_grpc: bind_optional(r.otlp_grpc_listen).await?,
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

/// Starts delivery (templates first, then the bulk indexer; the spool or the memory queue;
/// the flow between them) under supervision, and keeps the spool's gauges current.
fn start_delivery(
    options: &ServeOptions,
    mut config: DeliveryConfig,
    client: Client,
    supervisor: &Supervisor,
    background: &mut JoinSet<()>,
) -> anyhow::Result<(Handoff, DeliveryHandle)> {
    let indexer_config = options.indexer_config();
    (config.max_docs, config.max_bytes) = (indexer_config.max_docs, indexer_config.max_bytes);
    let indexer = TemplatesFirst {
        bulk: BulkIndexer { client, config: indexer_config },
        retention: options.elasticsearch.retention.clone(),
        manage_templates: options.delivery.manage_templates,
    };
    let queue = match options.spool_config() {
        None => {
            tracing::warn!(
                "no --spool-dir: accepted frames wait in a bounded in-memory queue, and a crash loses what has not reached Elasticsearch"
            );
            Queue::Memory { frames: QUEUE_FRAMES }
        }
        Some(spool_config) => {
            let archive_config = options.archive_config();
            let (spool, reader, archive) = open_spool(spool_config?, archive_config.as_ref())?;
            background.spawn(supervisor.watch("spool metrics", update_spool_metrics(spool.clone())));
            Queue::Spool { spool, reader, drain_on_stop: options.delivery.spool_ephemeral, archive }
        }
    };
    let (handoff, delivery) = Delivery::start(config, queue, indexer);
    // A delivery task that ends while drainpipe runs is a failure like any other task's.
    let ended = delivery.ended();
    let watcher = supervisor.clone();
    background.spawn(async move { watcher.report_end(ended.await) });
    Ok((handoff, delivery))
}

/// The bulk indexer, once the index templates are installed (retrying until Elasticsearch
/// answers: without them the first write would create an index with guessed mappings).
#[derive(Debug)]
struct TemplatesFirst {
    bulk: BulkIndexer,
    retention: Vec<RetentionRule>,
    manage_templates: bool,
}

impl Indexer for TemplatesFirst {
    async fn index(self, chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        if !self.manage_templates {
            tracing::info!("--manage-templates false: the index templates are left to whoever manages them");
        } else {
            tokio::select! {
                installed = setup::install_until_done(&self.bulk.client, &self.retention) => {
                    installed.map_err(|e| IndexerFailed(format!("{e:#}")))?;
                }
                // Stopped before Elasticsearch ever answered, holding nothing: nothing to
                // wait for (a container with a wrong URL would otherwise take the whole timeout).
                () = closed_with_nothing_waiting(&chunks) => {
                    tracing::info!("stopping before the index templates were installed; nothing was waiting for them");
                }
            }
        }
        self.bulk.index(chunks).await
    }
}

/// Resolves once delivery's flow is done with `chunks` (shutdown) and left no chunk in it.
async fn closed_with_nothing_waiting<T>(chunks: &mpsc::Receiver<T>) {
    while !(chunks.is_closed() && chunks.is_empty()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the spool (with a second reader for the archive, when there is one) and the archive,
/// and says what they found.
fn open_spool(
    config: SpoolConfig,
    archive: Option<&ArchiveConfig>,
) -> anyhow::Result<(Spool, SpoolReader, Option<Box<Archiving>>)> {
    let (dir, max_bytes) = (config.dir.clone(), config.max_bytes);
    let readers = if archive.is_some() { 2 } else { 1 };
    let (spool, mut readers, recovery) = Spool::open_readers(config, readers).context("cannot open the spool")?;
    tracing::info!(
        dir = %dir.display(),
        max_bytes,
        replaying = recovery.records,
        torn_tails_cut = recovery.torn_segments,
        "spool open: frames are on disk before they are answered"
    );
    let archive_reader = (readers.len() > 1).then(|| readers.pop()).flatten();
    let reader = readers.pop().context("the spool gave no reader")?;
    let archiving = match (archive, archive_reader) {
        (Some(config), Some(reader)) => {
            let (writer, found) = ArchiveWriter::open(config, spool.writing_segment())
                .with_context(|| format!("cannot open the archive in {}", config.dir.display()))?;
            if found.spool_replaced {
                tracing::warn!("the archive's state names spool records this spool does not have (a new spool): archiving every frame it holds");
            }
            tracing::info!(
                dir = %config.dir.display(),
                retention = ?config.retention,
                uncommitted_bytes_cut = found.cut_bytes,
                uncommitted_files_removed = found.removed_partials,
                "archive open: every accepted frame is also kept raw, by app and hour"
            );
            Some(Box::new(Archiving { reader, writer }))
        }
        _ => None,
    };
    Ok((spool, reader, archiving))
}

/// Starts every receiver on its listener, each stopping once shutdown reaches them.
fn start_receivers(
    options: &ServeOptions,
    listeners: Listeners,
    handoff: Handoff,
    access: LiveAccess,
    readiness: health::Readiness,
    supervisor: &Supervisor,
) -> anyhow::Result<JoinSet<()>> {
    let r = &options.receive;
    let stopped = || reached(supervisor.phase(), Phase::StopReceiving);
    let tls = listeners.cert.as_ref().map(|c| c.acceptor()).transpose()?;
    let mut receivers = JoinSet::new();
    let http = HttpConfig {
        max_body_bytes: r.max_body_size.0,
        max_connections: r.max_connections.get(),
        access: access.clone(),
        allow_tokenless: r.allow_tokenless,
        trust_forwarded_for: r.trust_forwarded_for,
        budget: readiness.budget.clone(),
        tls: tls.clone(),
        extra_routes: Some(health::routes(readiness.clone(), listeners.metrics.is_none())),
        ..HttpConfig::default()
    };
    warn_if_open(options);
    if let Some(listener) = listeners.metrics {
        tracing::info!("serving /metrics on http://{}", listener.local_addr()?);
        // The same connection limit and timeouts as the drain listener, without TLS.
        let admin = HttpConfig { tls: None, extra_routes: None, ..http.clone() };
        let routes = health::routes(readiness.clone(), true);
        let serve = drainpipe_ingest::http::run_routes(listener, admin, routes, stopped());
        receivers.spawn(supervisor.watch("metrics listener", serve));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{}", listeners.http.local_addr()?);
    if let Some(listener) = listeners.otlp_grpc {
        let grpc = otlp_grpc(listener, listeners.cert.as_ref(), &http, handoff.clone(), stopped())?;
        receivers.spawn(supervisor.watch("OTLP/gRPC listener", grpc));
    }
    let serve = drainpipe_ingest::http::run(listeners.http, http, handoff.clone(), stopped());
    receivers.spawn(supervisor.watch("drain listener", serve));
    let syslog = SyslogConfig {
        max_message_bytes: r.max_message_size.0,
        max_connections: r.max_connections.get(),
        budget: readiness.budget,
        access,
        allow_tokenless: r.syslog_allow_tokenless,
        ..SyslogConfig::default()
    };
    let plain = listeners.syslog.map(|l| (l, syslog.clone(), "tcp", "syslog listener"));
    let secure = listeners.syslog_tls.map(|l| (l, SyslogConfig { tls, ..syslog }, "tls", "syslog TLS listener"));
    for (listener, config, scheme, task) in plain.into_iter().chain(secure) {
        tracing::info!("syslog listening on {scheme}://{}", listener.local_addr()?);
        let serve = drainpipe_ingest::syslog::run(listener, config, handoff.clone(), stopped());
        receivers.spawn(supervisor.watch(task, serve));
    }
    Ok(receivers)
}

/// The OTLP/gRPC receiver on `listener`, with the drain listener's credentials and limits, and
/// its certificate offered for HTTP/2 (gRPC clients insist on ALPN `h2`).
fn otlp_grpc(
    listener: TcpListener,
    cert: Option<&Arc<ReloadableCert>>,
    http: &HttpConfig,
    handoff: Handoff,
    stopped: impl std::future::Future<Output = ()>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let h2 = cert.map(|c| c.acceptor_h2()).transpose()?;
    let scheme = if h2.is_some() { "https" } else { "http" };
    tracing::info!("OTLP/gRPC listening on {scheme}://{}", listener.local_addr()?);
    let grpc = HttpConfig { tls: h2, extra_routes: None, ..http.clone() };
    Ok(drainpipe_ingest::grpc::run(listener, grpc, handoff, stopped))
}

/// Says so at start-up when a listener takes lines from anyone who can reach it.
fn warn_if_open(options: &ServeOptions) {
    let r = &options.receive;
    if r.basic_auth.is_empty() {
        tracing::warn!("no --basic-auth configured: anyone who can reach POST /logs can send logs");
        if r.otlp_token.is_empty() {
            tracing::warn!("no --otlp-token or --basic-auth configured: the OTLP endpoints are open too");
        }
    }
    if r.syslog_listen.is_some() || r.syslog_tls_listen.is_some() {
        // Syslog has no credentials: the drain-token list (HOSTNAME) is all that keeps it closed.
        if r.drain_token.is_empty() {
            tracing::warn!("no --drain-token configured: the syslog listener takes lines from anyone who can reach it");
        } else if r.syslog_allow_tokenless {
            tracing::warn!("--syslog-allow-tokenless: the syslog listener takes lines without a drain token from anyone who can reach it");
        }
    }
}

/// Resolves once shutdown has reached `phase`.
async fn reached(mut current: watch::Receiver<Phase>, phase: Phase) {
    let _ = current.wait_for(|p| *p >= phase).await;
}

/// Stops everything in order within `timeout`: the receivers (the hand-off closes to them
/// halfway, so one waiting for room cannot hold the rest), then delivery (the flow, then the
/// indexer's last requests); background tasks last. Without a spool, frames still held at the
/// deadline are lost, and that is the error returned.
async fn shut_down(
    timeout: Duration,
    phase: watch::Sender<Phase>,
    mut receivers: JoinSet<()>,
    delivery: DeliveryHandle,
    mut background: JoinSet<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    phase.send_replace(Phase::StopReceiving);
    if !join_all_until(&mut receivers, Instant::now() + timeout / 2).await {
        tracing::warn!("receivers still waiting for room; closing the queue to them");
    }
    delivery.close_handoff();
    if !join_all_until(&mut receivers, deadline).await {
        tracing::warn!("receivers did not finish before the shutdown timeout; stopping them");
        receivers.shutdown().await;
    }
    // No more frames arrive. With a spool, what is not yet read stays there for the next start;
    // with the memory queue, the flow drains it. Then the indexer sends what it holds.
    phase.send_replace(Phase::StopReading);
    tracing::info!(?timeout, "stopped receiving; finishing bulk requests in flight");
    let report = delivery.finish(Some(deadline)).await;
    background.shutdown().await;
    left_behind(&report)
}

/// Says what shutdown delivered and what it left: frames that stay in the spool for the next
/// start, or, without a spool, frames held in memory, which are lost (the error returned).
fn left_behind(report: &DeliveryReport) -> anyhow::Result<()> {
    let DeliveryReport { indexed, duplicates, dead_lettered, .. } = *report;
    if let Some(failure) = &report.failure {
        anyhow::bail!("{failure}");
    }
    let deadline = if report.in_time { "stopped" } else { "shutdown timeout reached" };
    match report.unflushed {
        Unflushed::Spooled { frames: 0, .. } | Unflushed::InMemory { frames: 0, .. } => {
            tracing::info!(indexed, duplicates, dead_lettered, "{deadline}: every accepted frame is delivered; bye");
            Ok(())
        }
        Unflushed::Spooled { frames, bytes } => {
            tracing::warn!(
                indexed,
                duplicates,
                dead_lettered,
                spooled_frames = frames,
                spool_bytes = bytes,
                "{deadline}: frames not yet delivered stay in the spool for the next start"
            );
            Ok(())
        }
        Unflushed::InMemory { frames, messages } => {
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
    }
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

/// The configuration file's rules (checked with the other options before serving started).
fn rules_at_start(options: &ServeOptions) -> drainpipe_rules::Rules {
    let rules = rules::read(options.general.config.as_deref()).unwrap_or_default();
    if !rules.is_empty() {
        let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
        tracing::info!(rules = %names.join(", "), "applying the configuration file's rules");
    }
    rules
}

/// SIGHUP (what `systemctl reload` sends) as a stream: once this is called it no longer stops
/// the process.
fn hangups() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot handle SIGHUP")
}

/// Reloads the configuration on every SIGHUP, for the life of the process (crate::reload).
async fn reload_on_sighup(mut hangups: tokio::signal::unix::Signal, reloadable: Reloadable) {
    while hangups.recv().await.is_some() {
        reloadable.reload();
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
