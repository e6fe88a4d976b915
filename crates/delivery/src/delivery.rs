//! [`Delivery::start`]: the hand-off, the flow and the indexer, wired and running; the
//! [`DeliveryHandle`] that stops them and reports.

use std::future::Future;
use std::sync::Arc;

use drainpipe_bulk_indexer::{Chunk, Client, IndexerConfig, IndexerReport};
use drainpipe_ingest::LiveAccess;
use drainpipe_spool::{Spool, SpoolReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::archiving::{self, Archiving};
use crate::chunker::{Chunker, CHUNKS_WAITING};
use crate::documents::Documents;
use crate::flow::{self, FlowEnd};
use crate::handoff::{Backlog, Handoff, HandoffCloser};
use crate::panic_guard::LAST_PANIC;
use crate::ruling::LiveRules;
use crate::source::{FrameSource, MemorySource, SpoolSource};
use crate::streams::DataStreams;

/// What delivery writes to, and how large a chunk may be.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    pub streams: DataStreams,
    /// Who may send, in force, as the receivers check it: the transform finds syslog drains'
    /// tokens' apps in its drain tokens.
    pub access: LiveAccess,
    /// Operators' rules, read once per frame.
    pub rules: LiveRules,
    /// A chunk never holds more than one bulk request does.
    pub max_docs: usize,
    pub max_bytes: usize,
}

/// Where accepted frames wait for the flow.
#[derive(Debug)]
pub enum Queue {
    /// A bounded memory queue of this many frames: a crash loses what it holds.
    Memory { frames: usize },
    /// The spool: a frame is on disk before it is answered. With `drain_on_stop` (its disk
    /// goes with the process), what it holds is sent before stopping; else it stays there.
    /// With `archive` (the spool's second reader and the archive's writer), every frame is
    /// also written to the raw archive, and a record goes once both are done with it.
    Spool { spool: Spool, reader: SpoolReader, drain_on_stop: bool, archive: Option<Box<Archiving>> },
}

/// What takes the chunks and delivers them: drainpipe-bulk-indexer against Elasticsearch
/// ([`BulkIndexer`]), or a stand-in in tests. It returns once `chunks` has closed and every
/// chunk it took is done.
pub trait Indexer: Send + 'static {
    fn index(self, chunks: mpsc::Receiver<Chunk>) -> impl Future<Output = Result<IndexerReport, IndexerFailed>> + Send;
}

/// The indexer could not run at all (what it needed first failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct IndexerFailed(pub String);

/// drainpipe-bulk-indexer's `run` with this client and configuration.
#[derive(Debug)]
pub struct BulkIndexer {
    pub client: Client,
    pub config: IndexerConfig,
}

impl Indexer for BulkIndexer {
    async fn index(self, chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        Ok(drainpipe_bulk_indexer::run(self.client, self.config, chunks).await)
    }
}

/// Starts delivery: see [`Delivery::start`] and [`Delivery::from_source`].
#[derive(Debug)]
pub struct Delivery;

impl Delivery {
    /// The receivers' delivery: the hand-off they give frames to (`queue`), and the flow and
    /// `indexer` behind it, running.
    pub fn start(config: DeliveryConfig, queue: Queue, indexer: impl Indexer) -> (Handoff, DeliveryHandle) {
        let (stop, stopped) = watch::channel(false);
        match queue {
            Queue::Memory { frames } => {
                let (tx, rx) = mpsc::channel(frames.max(1));
                let backlog = Arc::new(Backlog::default());
                let (handoff, closer) = Handoff::memory(tx, backlog.clone());
                let source = MemorySource { frames: rx, backlog: backlog.clone() };
                let mut handle = Delivery::spawn(config, source, indexer, stop);
                (handle.closer, handle.backlog) = (Some(closer), Some(backlog));
                (handoff, handle)
            }
            Queue::Spool { spool, reader, drain_on_stop, archive } => {
                let (handoff, closer) = Handoff::spool(spool.clone());
                let source = SpoolSource::new(reader, spool.clone(), stopped.clone(), drain_on_stop);
                let mut handle = Delivery::spawn(config, source, indexer, stop);
                (handle.closer, handle.spool) = (Some(closer), Some(spool.clone()));
                handle.archive = archive.map(|archiving| {
                    let Archiving { reader, writer } = *archiving;
                    let source = SpoolSource::new(reader, spool, stopped, drain_on_stop);
                    let ended = handle.ended_tx.clone();
                    spawn_reporting("archive", &ended, archiving::run(source, writer), |end| match end {
                        Ok(()) => "it returned".to_owned(),
                        Err(e) => e.clone(),
                    })
                });
                (handoff, handle)
            }
        }
    }

    /// Delivery of a source that ends by itself (replay's files): no hand-off.
    pub fn from_source(config: DeliveryConfig, source: impl FrameSource, indexer: impl Indexer) -> DeliveryHandle {
        Delivery::spawn(config, source, indexer, watch::channel(false).0)
    }

    fn spawn(
        config: DeliveryConfig,
        source: impl FrameSource,
        indexer: impl Indexer,
        stop: watch::Sender<bool>,
    ) -> DeliveryHandle {
        let (chunk_tx, chunk_rx) = mpsc::channel(CHUNKS_WAITING);
        let chunks = Chunker::new(chunk_tx, config.max_docs, config.max_bytes);
        let documents = Documents::new(config.streams, config.access, config.rules);
        let (ended_tx, ended) = watch::channel(None);
        let indexer = spawn_reporting("indexer", &ended_tx, indexer.index(chunk_rx), |r| match r {
            Ok(_) => "it returned".to_owned(),
            Err(e) => e.to_string(),
        });
        let flow = spawn_reporting("pipeline", &ended_tx, flow::run(source, chunks, documents), |end| match end {
            FlowEnd::SourceEnded => "it returned".to_owned(),
            FlowEnd::IndexerGone => "the indexer stopped".to_owned(),
        });
        DeliveryHandle { closer: None, stop, flow, indexer, archive: None, backlog: None, spool: None, ended, ended_tx }
    }
}

/// One of delivery's tasks ended (before [`DeliveryHandle::finish`], a failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnd {
    /// `pipeline` (the flow), `indexer` or `archive`.
    pub task: &'static str,
    /// How: it returned, its error, or its panic with the place.
    pub error: String,
}

/// Spawns `task`, reporting its end into `ended` however it ends: returned (as `describe`
/// says), panicked (reported while unwinding, with the panic), or stopped.
fn spawn_reporting<T: Send + 'static>(
    task: &'static str,
    ended: &watch::Sender<Option<TaskEnd>>,
    future: impl Future<Output = T> + Send + 'static,
    describe: fn(&T) -> String,
) -> JoinHandle<T> {
    let report = EndReport { task, ended: ended.clone(), error: None };
    tokio::spawn(async move {
        let mut report = report;
        let out = future.await;
        report.error = Some(describe(&out));
        out
    })
}

/// Reports its task's end when dropped: after it returned, or while unwinding from a panic.
struct EndReport {
    task: &'static str,
    ended: watch::Sender<Option<TaskEnd>>,
    error: Option<String>,
}

impl Drop for EndReport {
    fn drop(&mut self) {
        let error = self.error.take().unwrap_or_else(|| {
            if std::thread::panicking() {
                let panic = LAST_PANIC.with(|p| p.borrow_mut().take());
                format!("it panicked: {}", panic.as_deref().unwrap_or("no message"))
            } else {
                "it was stopped".to_owned()
            }
        });
        let end = TaskEnd { task: self.task, error };
        self.ended.send_if_modified(|first| first.is_none() && first.replace(end).is_none());
    }
}

/// Delivery running: stop it with [`DeliveryHandle::finish`].
#[derive(Debug)]
pub struct DeliveryHandle {
    closer: Option<HandoffCloser>,
    /// Tells the spool's reader to stop.
    stop: watch::Sender<bool>,
    flow: JoinHandle<FlowEnd>,
    indexer: JoinHandle<Result<IndexerReport, IndexerFailed>>,
    /// The archive's loop, when there is one.
    archive: Option<JoinHandle<Result<(), String>>>,
    backlog: Option<Arc<Backlog>>,
    spool: Option<Spool>,
    ended: watch::Receiver<Option<TaskEnd>>,
    ended_tx: watch::Sender<Option<TaskEnd>>,
}

/// What became of what delivery was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Documents stored, already stored (`409`: a frame seen before) and dead-lettered.
    pub indexed: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    /// Frames accepted and not delivered when delivery stopped.
    pub unflushed: Unflushed,
    /// False when the deadline came before delivery had finished.
    pub in_time: bool,
    /// Why delivery could not go on, when it could not (the indexer failed, a task panicked).
    pub failure: Option<String>,
}

/// Frames accepted and not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unflushed {
    /// In the spool: sent at the next start.
    Spooled { frames: u64, bytes: u64 },
    /// In memory (no spool): lost.
    InMemory { frames: u64, messages: u64 },
}

impl Default for Unflushed {
    fn default() -> Unflushed {
        Unflushed::InMemory { frames: 0, messages: 0 }
    }
}

impl Unflushed {
    pub fn frames(&self) -> u64 {
        match self {
            Unflushed::Spooled { frames, .. } | Unflushed::InMemory { frames, .. } => *frames,
        }
    }
}

impl DeliveryHandle {
    /// The hand-off refuses every frame from now on, and a receiver waiting for room stops
    /// waiting. Frames already accepted are still delivered.
    pub fn close_handoff(&self) {
        if let Some(closer) = &self.closer {
            closer.close();
        }
    }

    /// Resolves with the first of delivery's tasks to end: before [`DeliveryHandle::finish`],
    /// delivery has failed.
    pub fn ended(&self) -> impl Future<Output = TaskEnd> + Send + 'static {
        let mut ended = self.ended.clone();
        async move {
            let end = ended.wait_for(Option::is_some).await.ok().and_then(|end| end.clone());
            match end {
                Some(end) => end,
                None => std::future::pending().await,
            }
        }
    }

    /// Stops delivery: closes the hand-off, lets the flow deliver what it holds (the memory
    /// queue's frames; the spool's stay on disk unless it drains on stop) and the indexer send
    /// its last requests, until `deadline` at the latest. A source of its own (files) is read
    /// to its end first.
    pub async fn finish(self, deadline: Option<Instant>) -> DeliveryReport {
        let DeliveryHandle { closer, stop, flow, indexer, archive, backlog, spool, .. } = self;
        if let Some(closer) = &closer {
            closer.close();
        }
        let _ = stop.send(true);
        let mut stoppers = vec![flow.abort_handle(), indexer.abort_handle()];
        stoppers.extend(archive.as_ref().map(JoinHandle::abort_handle));
        let archived = async {
            match archive {
                Some(archive) => archive.await.map_err(|e| e.to_string()).and_then(|r| r),
                None => Ok(()),
            }
        };
        let joined = async {
            let (flow, indexer, archived) = tokio::join!(flow, indexer, archived);
            if let Err(e) = archived {
                tracing::error!(error = %e, "the archive stopped before delivery did");
            }
            (flow, indexer)
        };
        let joined = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, joined).await.ok(),
            None => Some(joined.await),
        };
        let mut report = DeliveryReport { in_time: joined.is_some(), ..DeliveryReport::default() };
        match joined {
            None => stoppers.iter().for_each(tokio::task::AbortHandle::abort),
            Some((_, Ok(Ok(indexed)))) => {
                (report.indexed, report.duplicates, report.dead_lettered) =
                    (indexed.indexed, indexed.duplicates, indexed.dead_lettered);
            }
            Some((_, Ok(Err(failed)))) => report.failure = Some(failed.to_string()),
            Some((_, Err(e))) => report.failure = Some(format!("the indexer task failed: {e}")),
        }
        report.unflushed = match (&spool, &backlog) {
            (Some(spool), _) => Unflushed::Spooled { frames: spool.unacked_records(), bytes: spool.used_bytes() },
            (None, Some(backlog)) => {
                let (frames, messages) = backlog.now();
                Unflushed::InMemory { frames, messages }
            }
            (None, None) => Unflushed::default(),
        };
        report
    }
}
