//! The stage between receiving and indexing: each accepted frame's messages become documents
//! (drainpipe-transform) written as bulk items (drainpipe-bulk-indexer) with deterministic ids.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drainpipe_bulk_indexer::{Backoff, Chunk, DeadLetter};
use drainpipe_ingest::{DrainTokens, Frame, FrameSink, LogThrottle, Position, Protocol, Rejected};
use drainpipe_spool::{Spool, SpoolError, SpoolReader};
use drainpipe_transform::{
    AppForToken, Context, Dataset, DocumentId, FrameKey, FrameSeed, Outcome, StructuredData, Timestamp, Transformer,
};
use tokio::sync::{mpsc, watch};

use crate::{frame_codec, metrics, panic_guard};

/// Where the receivers hand frames: the durable spool, or (without `--spool-dir`) a bounded
/// in-memory queue. Full means 503 with `Retry-After` for HTTPS, and no reading for syslog.
/// Once closed (shutdown), both refuse at once, and a syslog receiver waiting for room stops
/// waiting, so shutdown never hangs on a full queue.
#[derive(Clone, Debug)]
pub struct Handoff {
    queue: Queue,
    closed: watch::Receiver<bool>,
}

#[derive(Clone, Debug)]
enum Queue {
    Memory(mpsc::Sender<Frame>),
    Spool(Spool),
}

/// Closes a [`Handoff`] and every clone of it.
#[derive(Debug)]
pub struct HandoffCloser {
    closed: watch::Sender<bool>,
    spool: Option<Spool>,
}

impl HandoffCloser {
    pub fn close(&self) {
        let _ = self.closed.send(true);
        if let Some(spool) = &self.spool {
            spool.close();
        }
    }
}

impl Handoff {
    pub fn memory(queue: mpsc::Sender<Frame>) -> (Handoff, HandoffCloser) {
        Handoff::new(Queue::Memory(queue), None)
    }

    pub fn spool(spool: Spool) -> (Handoff, HandoffCloser) {
        Handoff::new(Queue::Spool(spool.clone()), Some(spool))
    }

    fn new(queue: Queue, spool: Option<Spool>) -> (Handoff, HandoffCloser) {
        let (tx, rx) = watch::channel(false);
        (Handoff { queue, closed: rx }, HandoffCloser { closed: tx, spool })
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the hand-off is closed.
    async fn closing(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }
}

/// While the spool is full, Logplex is told to come back after this long.
const SPOOL_FULL_RETRY: Duration = Duration::from_secs(5);
/// A syslog frame waiting for room in the spool tries again after this long at first.
const SPOOL_RETRY_MIN: Duration = Duration::from_millis(200);
/// While the memory queue is full, Logplex is told to come back after this long.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(1);

impl FrameSink for Handoff {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::ShuttingDown);
        }
        match &self.queue {
            Queue::Memory(queue) => {
                let messages = frame.messages.len();
                match queue.try_send(frame) {
                    Ok(()) => {
                        backlog_add(messages);
                        Ok(())
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => Err(Rejected::Full { retry_after: QUEUE_FULL_RETRY }),
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(Rejected::ShuttingDown),
                }
            }
            Queue::Spool(spool) => match spool.append(frame_codec::encode(&frame)).await {
                Ok(_) => Ok(()),
                Err(SpoolError::Full { .. }) => Err(Rejected::Full { retry_after: SPOOL_FULL_RETRY }),
                Err(SpoolError::Closed) => Err(Rejected::ShuttingDown),
                Err(e) => {
                    tracing::error!(error = %e, "cannot write to the spool; refusing the frame");
                    Err(Rejected::Unavailable { reason: e.to_string(), retry_after: SPOOL_FULL_RETRY })
                }
            },
        }
    }

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::ShuttingDown);
        }
        match &self.queue {
            Queue::Memory(queue) => {
                let messages = frame.messages.len();
                tokio::select! {
                    sent = queue.send(frame) => sent.map_err(|_| Rejected::ShuttingDown)?,
                    () = self.closing() => return Err(Rejected::ShuttingDown),
                }
                backlog_add(messages);
                Ok(())
            }
            Queue::Spool(spool) => {
                let record = frame_codec::encode(&frame);
                drop(frame);
                let mut backoff = Backoff::new(SPOOL_RETRY_MIN, SPOOL_FULL_RETRY);
                loop {
                    match spool.append(record.clone()).await {
                        Ok(_) => return Ok(()),
                        Err(SpoolError::Closed) => return Err(Rejected::ShuttingDown),
                        Err(e) => {
                            if !matches!(e, SpoolError::Full { .. }) {
                                tracing::error!(error = %e, "cannot write to the spool; waiting");
                            }
                            tokio::select! {
                                () = tokio::time::sleep(backoff.next_delay()) => {}
                                () = self.closing() => return Err(Rejected::ShuttingDown),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Frames and messages accepted into memory and not yet delivered (the metric's gauges).
fn backlog_add(messages: usize) {
    metrics::MEMORY_BACKLOG_FRAMES.inc();
    metrics::MEMORY_BACKLOG_MESSAGES.add(messages as i64);
}

fn backlog_done(messages: usize) {
    metrics::MEMORY_BACKLOG_FRAMES.dec();
    metrics::MEMORY_BACKLOG_MESSAGES.sub(messages as i64);
}

/// What the memory backlog holds now: (frames, messages).
pub fn memory_backlog() -> (i64, i64) {
    (metrics::MEMORY_BACKLOG_FRAMES.get(), metrics::MEMORY_BACKLOG_MESSAGES.get())
}

/// What the pipeline needs besides the frames.
#[derive(Clone, Debug)]
pub struct Target {
    /// `data_stream.namespace`.
    pub namespace: String,
    /// The data stream of each dataset, in the order of `Dataset::ALL`:
    /// `logs-heroku.router-<namespace>`, …
    streams: Vec<String>,
    /// `logs-heroku.deadletter-<namespace>`: where a message the transform failed on goes.
    dead_letters: String,
    /// The drain-token list the HTTPS receiver checks, for syslog drains' tokens (HTTPS
    /// frames arrive with their app already found).
    pub drain_tokens: Arc<DrainTokens>,
}

impl Target {
    pub fn new(namespace: &str, drain_tokens: Arc<DrainTokens>) -> Target {
        let streams = Dataset::ALL.iter().map(|d| format!("logs-{}-{namespace}", d.as_str())).collect();
        let dead_letters = Target::dead_letter_stream(namespace);
        Target { namespace: namespace.to_owned(), streams, dead_letters, drain_tokens }
    }

    /// The dead-letter stream of `namespace`.
    pub fn dead_letter_stream(namespace: &str) -> String {
        format!("logs-heroku.deadletter-{namespace}")
    }

    /// Where a document of `dataset` goes (a message that was not syslog is the app's).
    pub fn stream(&self, dataset: Option<Dataset>) -> &str {
        &self.streams[dataset.unwrap_or(Dataset::App).index()]
    }

    /// The pattern of every stream of this namespace, for logs.
    pub fn pattern(&self) -> String {
        format!("logs-heroku.*-{}", self.namespace)
    }
}

/// The receivers' drain-token list, as the transform looks syslog drains' tokens up in it.
#[derive(Debug)]
struct TokenList<'a>(&'a DrainTokens);

impl AppForToken for TokenList<'_> {
    fn app_for_token(&self, token: &str) -> Option<&str> {
        self.0.app(token)
    }
}

/// Reads the spool in order until it is closed or `stop` resolves (then, with `drain_on_stop`,
/// until nothing is left to read), sending each frame's
/// documents on; each record is acknowledged once every document of its frame is done.
pub async fn run_spooled(
    mut reader: SpoolReader,
    spool: Spool,
    mut chunks: Chunker,
    target: Target,
    stop: impl std::future::Future<Output = ()>,
    drain_on_stop: bool,
) {
    let mut transformer = Transformer::new();
    tokio::pin!(stop);
    // Past `stop` with `drain_on_stop`: reading on until the spool has nothing more.
    let mut draining = false;
    loop {
        // Nothing more to read at once: what is gathered goes now rather than waiting.
        if !reader.has_next() && (draining || chunks.flush().await.is_err()) {
            break;
        }
        let next = if draining {
            reader.next().await
        } else {
            tokio::select! {
                next = reader.next() => next,
                () = &mut stop => {
                    if !drain_on_stop {
                        return;
                    }
                    tracing::info!("sending what the spool holds before stopping (its disk goes with the process)");
                    draining = true;
                    continue;
                }
            }
        };
        let (id, record) = match next {
            None => break,
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::error!(error = %e, "unreadable spool record; skipping the rest of its segment");
                reader.skip_segment();
                continue;
            }
        };
        let frame = match frame_codec::decode(&record) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, bytes = record.len(), "spool record is not a frame; dropping it");
                spool.ack(id);
                continue;
            }
        };
        drop(record);
        let acks = spool.clone();
        if send_frame(&mut transformer, &frame, &target, &mut chunks, move || acks.ack(id)).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
        // A frame is a millisecond of work or more: let the receivers answer in between.
        tokio::task::yield_now().await;
    }
    let _ = chunks.flush().await;
}

/// Transforms frames until `frames` closes, sending their documents to the indexer.
pub async fn run(mut frames: mpsc::Receiver<Frame>, mut chunks: Chunker, target: Target) {
    let mut transformer = Transformer::new();
    loop {
        if frames.is_empty() && chunks.flush().await.is_err() {
            break;
        }
        let Some(frame) = frames.recv().await else { break };
        let messages = frame.messages.len();
        if send_frame(&mut transformer, &frame, &target, &mut chunks, move || backlog_done(messages)).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
        tokio::task::yield_now().await;
    }
    let _ = chunks.flush().await;
}

/// Chunks written and not yet taken by the indexer.
pub const CHUNKS_WAITING: usize = 4;

/// A chunk closes at this many documents or NDJSON bytes (or the bulk request's limits, if
/// lower): small enough to be written while it is still in the CPU's cache, and to bound what
/// the pipeline holds, whatever a sender sends.
const CHUNK_DOCS: usize = 1_000;
const CHUNK_BYTES: usize = 1024 * 1024;

/// The indexer went away.
#[derive(Debug)]
pub struct IndexerGone;

/// Counts down the chunks holding a frame's documents; the last one done runs the frame's
/// callback. The producer holds one count itself until it has written every document, so an
/// early chunk finishing first cannot end the frame.
struct FrameDone {
    remaining: AtomicUsize,
    done: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FrameDone {
    fn finish_one(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(f) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                f();
            }
        }
    }
}

/// Gathers documents of consecutive frames into chunks of at most [`CHUNK_DOCS`] documents
/// and [`CHUNK_BYTES`] bytes; a chunk goes when full, or when no frame is waiting
/// ([`Chunker::flush`]), so that a quiet drain's lines are not held back.
#[derive(Debug)]
pub struct Chunker {
    chunks: mpsc::Sender<Chunk>,
    max_docs: usize,
    max_bytes: usize,
    open: Option<OpenChunk>,
}

struct OpenChunk {
    chunk: Chunk,
    /// The frames with documents in this chunk.
    frames: Vec<Arc<FrameDone>>,
    /// Each document's timestamp, for the indexing-lag histogram.
    timestamps: Vec<f64>,
}

impl std::fmt::Debug for OpenChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenChunk").field("chunk", &self.chunk).field("frames", &self.frames.len()).finish()
    }
}

/// A chunk's buffer has room for a document past its byte limit without growing.
const CHUNK_SLACK: usize = 64 * 1024;

impl Chunker {
    pub fn new(chunks: mpsc::Sender<Chunk>, max_docs: usize, max_bytes: usize) -> Chunker {
        Chunker {
            chunks,
            max_docs: max_docs.clamp(1, CHUNK_DOCS),
            max_bytes: max_bytes.clamp(1, CHUNK_BYTES),
            open: None,
        }
    }

    /// The chunk being filled, with `frame` counted among its frames.
    fn open(&mut self, frame: &Arc<FrameDone>) -> &mut OpenChunk {
        let (docs, bytes) = (self.max_docs, self.max_bytes);
        let open = self.open.get_or_insert_with(|| OpenChunk {
            chunk: Chunk::with_capacity(bytes + CHUNK_SLACK, docs),
            frames: Vec::new(),
            timestamps: Vec::with_capacity(docs),
        });
        if !open.frames.last().is_some_and(|f| Arc::ptr_eq(f, frame)) {
            frame.remaining.fetch_add(1, Ordering::AcqRel);
            open.frames.push(frame.clone());
        }
        open
    }

    fn is_full(&self) -> bool {
        self.open.as_ref().is_some_and(|o| o.chunk.len() >= self.max_docs || o.chunk.byte_len() >= self.max_bytes)
    }

    /// Sends the chunk being filled, if any.
    pub async fn flush(&mut self) -> Result<(), IndexerGone> {
        let Some(OpenChunk { mut chunk, frames, timestamps }) = self.open.take() else { return Ok(()) };
        chunk.on_done(move || {
            metrics::observe_lag(&timestamps);
            for frame in frames {
                frame.finish_one();
            }
        });
        self.chunks.send(chunk).await.map_err(|_| IndexerGone)
    }
}

/// Every message of `frame` as a `create` of its document in the target data stream, written
/// into `chunks`. `done` runs once every document is stored, already stored, or
/// dead-lettered.
///
/// Ids: an HTTPS message by its frame (`Logplex-Frame-Id`, else body and drain URL) and its
/// position; a syslog or replayed message by its stream and number on it; a syslog frame
/// spooled by drainpipe 0.1 (no stream position) as 0.1 did, by its text.
pub async fn send_frame(
    transformer: &mut Transformer,
    frame: &Frame,
    target: &Target,
    chunks: &mut Chunker,
    done: impl FnOnce() + Send + 'static,
) -> Result<(), IndexerGone> {
    let seed = FrameSeed::new(&FrameKey {
        frame_id: frame.frame_id.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        app: frame.app.as_deref(),
        labels: &frame.labels,
        body: &frame.body,
    });
    let tokens = TokenList(&target.drain_tokens);
    let ctx = frame_context(frame, target, &tokens);
    let frame_done = Arc::new(FrameDone { remaining: AtomicUsize::new(1), done: Mutex::new(Some(Box::new(done))) });
    let mut cuts = frame.cut.iter().peekable();
    let mut tally = metrics::TransformTally::default();
    for position in 0..frame.messages.len() {
        let raw = frame.message(position);
        let id = document_id(frame, &seed, position, raw);
        let cut_from = cuts.next_if(|(p, _)| *p == position).map(|(_, full)| *full);
        let open = chunks.open(&frame_done);
        open.chunk.push_with(id.as_str(), frame.body.slice(frame.messages[position].clone()), |out| {
            let start = out.len();
            #[cfg(debug_assertions)]
            panic_guard::injected_fault(raw, false);
            let transformed = panic_guard::guarded(|| {
                #[cfg(debug_assertions)]
                panic_guard::injected_fault(raw, true);
                match (frame.protocol, cut_from) {
                    (Protocol::Otlp, _) => transformer.transform_otlp(raw, &ctx, out),
                    (_, None) => transformer.transform(raw, &ctx, out),
                    (_, Some(full)) => transformer.transform_cut(raw, full, &ctx, out),
                }
            });
            let (outcome, stream) = match transformed {
                Ok(outcome) => (outcome, target.stream(outcome.dataset)),
                Err(caught) => {
                    out.truncate(start);
                    dead_letter_panic(transformer, raw, id.as_str(), &caught, &ctx, target, out)
                }
            };
            tally.record(&outcome);
            let ts = outcome.timestamp;
            open.timestamps.push(ts.unix_seconds() as f64 + f64::from(ts.subsec_nanos()) / 1e9);
            stream
        });
        if chunks.is_full() {
            chunks.flush().await?;
        }
    }
    frame_done.finish_one();
    Ok(())
}

/// Logs a caught transform panic at most this often (each is counted and dead-lettered).
static PANIC_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// A message the transform panicked on, as a dead letter in `out`: its raw line, the panic as
/// the reason, and the document it is stored as by `deadletter replay` (the line kept raw,
/// tagged). The pipeline goes on with the next message. Returns the outcome to count and the
/// stream the entry goes to.
fn dead_letter_panic<'t>(
    transformer: &mut Transformer,
    raw: &[u8],
    id: &str,
    caught: &panic_guard::Caught,
    ctx: &Context<'_>,
    target: &'t Target,
    out: &mut Vec<u8>,
) -> (Outcome, &'t str) {
    metrics::TRANSFORM_PANICS.inc();
    if let Some(held_back) = PANIC_LOG.allow() {
        tracing::error!(
            panic = %caught,
            id,
            bytes = raw.len(),
            held_back,
            "the transform panicked on a message (a bug: please report it); the message is dead-lettered raw and delivery goes on"
        );
    }
    let reason = format!("the transform panicked: {caught}");
    let mut source = Vec::new();
    // The raw document writes no parsed field; should even it fail, the entry keeps the line.
    let outcome =
        panic_guard::guarded(|| transformer.transform_raw(raw, &reason, ctx, &mut source)).unwrap_or_else(|_| {
            source.clear();
            Outcome {
                dataset: Some(Dataset::App),
                failure: Some("the transform failed"),
                timestamp: ctx.received_at,
                logplex_dropped: None,
            }
        });
    let letter = DeadLetter {
        index: target.stream(Some(Dataset::App)).to_owned(),
        id: id.to_owned(),
        source,
        original: raw.to_vec(),
        status: 0,
        kind: "transform_panic".to_owned(),
        reason,
        attempts: 0,
    };
    out.extend_from_slice(letter.document().to_string().as_bytes());
    (outcome, &target.dead_letters)
}

/// What the transform needs to know of the frame a message came in.
fn frame_context<'a>(frame: &'a Frame, target: &'a Target, tokens: &'a TokenList<'a>) -> Context<'a> {
    Context {
        app: frame.app.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        frame_id: frame.frame_id.as_deref(),
        labels: &frame.labels,
        received_at: Timestamp::from_system_time(frame.received_at),
        structured_data: match frame.protocol {
            Protocol::Logplex | Protocol::Otlp => StructuredData::Absent,
            Protocol::Syslog => StructuredData::Present,
        },
        app_for_token: Some(tokens),
        namespace: &target.namespace,
    }
}

/// The `_id` of the message at `position` of `frame` (see [`send_frame`]).
fn document_id(frame: &Frame, seed: &FrameSeed, position: usize, raw: &[u8]) -> DocumentId {
    let at = |first: u64| first + position as u64;
    match (frame.protocol, frame.position) {
        (Protocol::Otlp, Position::InExport { first_record }) => {
            DocumentId::for_otlp_record(raw, u32::try_from(at(first_record)).unwrap_or(u32::MAX))
        }
        (Protocol::Otlp, _) => DocumentId::for_otlp_record(raw, u32::try_from(at(0)).unwrap_or(u32::MAX)),
        (_, Position::OnStream { stream, first }) => DocumentId::for_stream(stream, at(first)),
        (Protocol::Logplex, _) => seed.id(u32::try_from(position).unwrap_or(u32::MAX)),
        (Protocol::Syslog, _) => DocumentId::for_line_v1(frame.drain_token.as_deref(), raw),
    }
}

#[cfg(test)]
mod tests {

    use bytes::Bytes;
    
    use super::*;

    fn target() -> Target {
        Target::new("test", Arc::default())
    }

    /// The `_id`s of the items `send_frame` makes of `frame`, in order.
    async fn ids(frame: &Frame) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut chunks = Chunker::new(tx, 1000, 1 << 20);
        send_frame(&mut Transformer::new(), frame, &target(), &mut chunks, || {}).await.unwrap();
        chunks.flush().await.unwrap();
        drop(chunks);
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend((0..chunk.len()).map(|i| chunk.id(i).to_owned()));
        }
        out
    }

    fn syslog_frame(lines: &[&str], first: u64) -> Frame {
        let mut body = Vec::new();
        let mut messages = Vec::new();
        for l in lines {
            let start = body.len();
            body.extend_from_slice(l.as_bytes());
            messages.push(start..body.len());
        }
        Frame {
            position: Position::OnStream { stream: 42, first },
            ..Frame::new(Protocol::Syslog, Bytes::from(body), messages)
        }
    }

    /// The chunks `send_frame` makes of `frame`, flushed, and whether the frame was done.
    async fn chunks_of(frame: &Frame, transformer: &mut Transformer) -> (Vec<Chunk>, bool) {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut chunker = Chunker::new(tx, 1000, 1 << 20);
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        send_frame(transformer, frame, &target(), &mut chunker, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
        chunker.flush().await.unwrap();
        drop(chunker);
        let mut chunks = Vec::new();
        while let Some(mut c) = rx.recv().await {
            (c.take_on_done().unwrap())();
            chunks.push(c);
        }
        (chunks, done.load(Ordering::SeqCst) == 1)
    }

    #[tokio::test]
    async fn a_message_the_transform_panics_on_is_dead_lettered_raw_and_the_rest_go_on() {
        panic_guard::install_hook();
        let poison = "<190>1 2025-03-14T09:26:53Z host heroku web.1 - - Error POISON R14\n";
        let good = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
        let frame = syslog_frame(&[good, poison, good], 0);
        panic_guard::TEST_FAULT.with(|f| *f.borrow_mut() = Some((b"POISON".to_vec(), false)));
        let before = metrics::TRANSFORM_PANICS.get();
        let mut transformer = Transformer::new();
        let (chunks, done) = chunks_of(&frame, &mut transformer).await;
        // The same transformer, after a panic, still works for the next frame.
        let (after, _) = chunks_of(&syslog_frame(&[good], 3), &mut transformer).await;
        panic_guard::TEST_FAULT.with(|f| *f.borrow_mut() = None);
        assert!(done, "the frame completes, so its spool record is acknowledged");
        assert_eq!(metrics::TRANSFORM_PANICS.get() - before, 1);
        let c = &chunks[0];
        assert_eq!(c.len(), 3);
        assert_eq!(
            [c.index_of(0), c.index_of(1), c.index_of(2)],
            ["logs-heroku.app-test", "logs-heroku.deadletter-test", "logs-heroku.app-test"]
        );
        let letter: serde_json::Value = serde_json::from_slice(c.source(1)).unwrap();
        assert_eq!(letter["message"], poison);
        assert_eq!(letter["error"]["type"], "transform_panic");
        let reason = letter["error"]["message"].as_str().unwrap();
        assert!(reason.contains("injected fault") && reason.contains("panic_guard.rs"), "{reason}");
        assert_eq!(letter["deadletter"]["index"], "logs-heroku.app-test");
        assert_eq!(letter["deadletter"]["id"], c.id(1));
        // What `deadletter replay` stores: the line kept raw, tagged.
        let stored: serde_json::Value =
            serde_json::from_str(letter["deadletter"]["document"].as_str().unwrap()).unwrap();
        assert_eq!(stored["message"], poison.trim_end());
        assert!(
            stored["tags"].as_array().unwrap().iter().any(|t| t == drainpipe_transform::PARSE_FAILURE_TAG),
            "{stored}"
        );
        for i in [0, 2] {
            let doc: serde_json::Value = serde_json::from_slice(c.source(i)).unwrap();
            assert_eq!(doc["message"], "hello");
        }
        assert_eq!(after[0].len(), 1);
        let doc: serde_json::Value = serde_json::from_slice(after[0].source(0)).unwrap();
        assert_eq!(doc["message"], "hello");
    }

    #[tokio::test]
    async fn a_frame_the_spool_cannot_store_is_refused_as_unavailable_not_as_full() {
        let dir = std::env::temp_dir().join(format!("drainpipe-handoff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = drainpipe_spool::SpoolConfig {
            dir: dir.clone(),
            max_bytes: 1 << 20,
            segment_bytes: 4096,
            fsync: drainpipe_spool::Fsync::EveryBatch,
        };
        let (spool, _reader, _) = Spool::open(config).unwrap();
        let (handoff, _closer) = Handoff::spool(spool);
        let line = "x".repeat(10_000);
        match handoff.accept(syslog_frame(&[&line], 0)).await {
            Err(Rejected::Unavailable { reason, .. }) => assert!(reason.contains("larger than a segment"), "{reason}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn identical_syslog_lines_get_distinct_ids_that_survive_the_spool() {
        let line = "<13>Mar 14 09:26:53 relay nginx[1]: same";
        let frame = syslog_frame(&[line, line, line], 7);
        let first = ids(&frame).await;
        assert_eq!(first.len(), 3);
        assert!(first[0] != first[1] && first[1] != first[2] && first[0] != first[2], "{first:?}");
        // Through a spool record and back (a replay after a crash): the same ids.
        let replayed = frame_codec::decode(&frame_codec::encode(&frame)).unwrap();
        assert_eq!(ids(&replayed).await, first);
        // The next frame of the same connection continues the numbering.
        let next = ids(&syslog_frame(&[line], 10)).await;
        assert!(!first.contains(&next[0]));
    }

    #[tokio::test]
    async fn a_frame_of_many_messages_goes_in_bounded_chunks_and_completes_once() {
        let line = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";
        let mut frame = syslog_frame(&vec![line; 2_500], 0);
        frame.protocol = Protocol::Logplex;
        frame.position = Position::InFrame;
        let (tx, mut rx) = mpsc::channel(16);
        let mut chunks = Chunker::new(tx, 1000, 1 << 20);
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        send_frame(&mut Transformer::new(), &frame, &target(), &mut chunks, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
        chunks.flush().await.unwrap();
        drop(chunks);
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        assert_eq!(chunks.iter().map(Chunk::len).collect::<Vec<_>>(), [1000, 1000, 500]);
        // The frame is done only when its last chunk is, in whatever order they finish.
        for mut c in chunks.into_iter().rev() {
            assert_eq!(done.load(Ordering::SeqCst), 0);
            (c.take_on_done().expect("every chunk has a callback"))();
        }
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn frames_share_a_chunk_and_each_is_done_only_when_its_documents_are() {
        let line = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";
        let (tx, mut rx) = mpsc::channel(16);
        let mut chunks = Chunker::new(tx, 5, 1 << 20);
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut transformer = Transformer::new();
        for (n, lines) in [(0, 3), (1, 3), (2, 1)] {
            let mut frame = syslog_frame(&vec![line; lines], n * 10);
            frame.position = Position::OnStream { stream: n, first: 0 };
            let d = done.clone();
            send_frame(&mut transformer, &frame, &target(), &mut chunks, move || d.lock().unwrap().push(n))
                .await
                .unwrap();
        }
        // Five documents fill the first chunk; the last two wait for more until a flush.
        let mut first = rx.try_recv().expect("a full chunk goes at once");
        assert_eq!(first.len(), 5);
        assert!(rx.try_recv().is_err());
        chunks.flush().await.unwrap();
        let mut second = rx.try_recv().expect("flushed");
        assert_eq!(second.len(), 2);
        (first.take_on_done().unwrap())();
        // Frame 0 is all in the first chunk; frame 1 has a document in the second.
        assert_eq!(*done.lock().unwrap(), [0]);
        (second.take_on_done().unwrap())();
        assert_eq!(*done.lock().unwrap(), [0, 1, 2]);
    }
}
