//! The batching loop and its senders: chunks are gathered into a batch until it is full by
//! documents, bytes or time; a few senders each take a batch and keep sending what
//! Elasticsearch did not take until every item is stored, already there, or dead-lettered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};

use crate::action::blank_id;
use crate::chunk::Spans;
use crate::countdown::Countdown;
use crate::deadletter::{self, DeadLetter, DeadLetterConfig};
use crate::response::{classify, ItemOutcome, BLOCK};
use crate::retry::{ItemDecision, RequestDecision, RetryPolicy};
use crate::{metrics, Chunk, Client, Error};

/// When a batch is sent, how many at once, and how failures are retried.
#[derive(Clone, Debug)]
pub struct IndexerConfig {
    /// Send when this many documents are waiting.
    pub max_docs: usize,
    /// Send when this many NDJSON bytes are waiting.
    pub max_bytes: usize,
    /// Send at most this long after the first document of a batch arrived.
    pub flush_interval: Duration,
    /// Bulk requests in flight at once.
    pub concurrency: usize,
    /// Which failures are tried again, how often, and how long apart.
    pub retry: RetryPolicy,
    pub dead_letter: DeadLetterConfig,
}

impl Default for IndexerConfig {
    fn default() -> IndexerConfig {
        IndexerConfig {
            max_docs: 2_000,
            max_bytes: 2 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            concurrency: 2,
            retry: RetryPolicy::DELIVERY,
            dead_letter: DeadLetterConfig { index: "deadletter".to_owned(), file: None },
        }
    }
}

/// What one [`run`] did with the documents it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexerReport {
    /// Stored now.
    pub indexed: u64,
    /// Already stored (409): an earlier delivery of the same line.
    pub duplicates: u64,
    /// Given up to the dead letters.
    pub dead_lettered: u64,
    /// Tries again at items Elasticsearch answered 429/5xx (one item can count several times).
    pub retried: u64,
}

/// The running counts behind an [`IndexerReport`], shared by the senders; each count also
/// moves its `drainpipe_bulk_documents_total` series.
#[derive(Debug, Default)]
struct Tally {
    indexed: AtomicU64,
    duplicates: AtomicU64,
    dead_lettered: AtomicU64,
    retried: AtomicU64,
}

/// What a document's count is kept under.
#[derive(Clone, Copy, Debug)]
enum Counted {
    Indexed,
    Duplicate,
    Retried,
    DeadLettered,
}

impl Tally {
    fn add(&self, what: Counted, n: u64) {
        let (count, label) = match what {
            Counted::Indexed => (&self.indexed, Some("indexed")),
            Counted::Duplicate => (&self.duplicates, Some("duplicate")),
            Counted::Retried => (&self.retried, None),
            Counted::DeadLettered => (&self.dead_lettered, Some("dead_lettered")),
        };
        count.fetch_add(n, Ordering::Relaxed);
        match label {
            Some(outcome) => metrics::DOCUMENTS.with_label_values(&[outcome]).inc_by(n),
            None => metrics::DOCUMENT_RETRIES.inc_by(n),
        }
    }

    fn report(&self) -> IndexerReport {
        IndexerReport {
            indexed: self.indexed.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }
}

struct Item {
    spans: Spans,
    original: Bytes,
    /// The chunk's count: each item holds one until it is done.
    done: Arc<Countdown>,
    attempts: u32,
}

/// Items gathered for the next request, copied into a buffer of a request's size.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    items: Vec<Item>,
}

impl Pending {
    fn new(buf: Vec<u8>) -> Pending {
        Pending { buf, items: Vec::new() }
    }

    fn add_chunk(&mut self, mut chunk: Chunk, idless: &IdlessStreams) {
        let on_done = chunk.take_on_done();
        let done = Arc::new(Countdown::new(move || on_done.into_iter().for_each(|f| f())));
        self.buf.reserve(chunk.buf.len());
        self.items.reserve(chunk.len());
        let idless = idless.names();
        for (spans, original) in chunk.items.iter().zip(std::mem::take(&mut chunk.originals)) {
            done.hold();
            self.push(&chunk.buf[spans.item.clone()], spans, original, done.clone(), 0, idless.as_deref());
        }
        // Adding is over: an empty chunk is done here, any other when its last item is.
        done.release();
    }

    /// Copies one item in; without its `_id` when its index is one of `idless`.
    fn push(
        &mut self,
        item: &[u8],
        spans: &Spans,
        original: Bytes,
        done: Arc<Countdown>,
        attempts: u32,
        idless: Option<&HashSet<String>>,
    ) {
        let mut spans = spans.moved_to(self.buf.len());
        self.buf.extend_from_slice(item);
        let index = &self.buf[spans.index.clone()];
        if !spans.id.is_empty()
            && idless.is_some_and(|names| std::str::from_utf8(index).is_ok_and(|i| names.contains(i)))
        {
            blank_id(&mut self.buf, &spans.id);
            spans.id = spans.id.start..spans.id.start;
        }
        self.items.push(Item { spans, original, done, attempts });
    }

    /// The request body, frozen: every attempt sends the same bytes without copying them.
    fn seal(self) -> Batch {
        Batch { buf: Bytes::from(self.buf), items: self.items }
    }
}

/// The data streams whose indices make their own document ids (time series, TSDB), learned
/// from their refusal of drainpipe's ([`ItemOutcome::IdRefused`]): their documents go without
/// `_id`. Until the first is learned, batching pays one atomic load per chunk.
#[derive(Debug, Default)]
struct IdlessStreams {
    any: AtomicBool,
    names: Mutex<HashSet<String>>,
}

impl IdlessStreams {
    /// The names learned so far, held while a batch is added to; `None` while there are none.
    fn names(&self) -> Option<std::sync::MutexGuard<'_, HashSet<String>>> {
        self.any.load(Ordering::Acquire).then(|| self.names.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn learn(&self, stream: String) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if !names.contains(&stream) {
            tracing::info!(
                stream = %stream,
                "the stream's index is a time series one, which makes its own document ids: its documents go without drainpipe's _id from now on"
            );
            names.insert(stream);
        }
        self.any.store(true, Ordering::Release);
    }
}

/// Request buffers used again: a buffer the size of a bulk request, allocated and freed per
/// request, costs page faults and zeroing on every use.
#[derive(Debug, Default)]
struct Buffers {
    idle: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    keep: usize,
}

impl Buffers {
    fn new(capacity: usize, keep: usize) -> Buffers {
        Buffers { idle: Mutex::default(), capacity, keep }
    }

    fn take(&self) -> Vec<u8> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Takes a sent request's body back, unless something still holds it.
    fn give(&self, body: Bytes) {
        let Ok(body) = body.try_into_mut() else { return };
        let mut buf = Vec::from(body);
        if buf.capacity() < self.capacity {
            return;
        }
        buf.clear();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(buf);
        }
    }
}

/// Items ready to send: their NDJSON, the originals, and whom to tell when each is done.
struct Batch {
    buf: Bytes,
    items: Vec<Item>,
}

impl Batch {
    fn text(&self, range: &std::ops::Range<usize>) -> String {
        String::from_utf8_lossy(&self.buf[range.clone()]).into_owned()
    }

    fn dead_letter(&self, i: usize, status: u16, kind: &str, reason: &str) -> DeadLetter {
        let item = &self.items[i];
        DeadLetter {
            index: self.text(&item.spans.index),
            id: self.text(&item.spans.id),
            source: self.buf[item.spans.source.clone()].to_vec(),
            original: item.original.to_vec(),
            status,
            kind: kind.to_owned(),
            reason: reason.to_owned(),
            attempts: item.attempts + 1,
        }
    }

    /// The items at `which`, as a new batch (without `_id` for the streams in `idless`).
    fn subset(&self, which: impl IntoIterator<Item = usize>, bump_attempts: bool, idless: &IdlessStreams) -> Batch {
        let mut b = Pending::default();
        let idless = idless.names();
        for i in which {
            let it = &self.items[i];
            let attempts = it.attempts + u32::from(bump_attempts);
            let (item, original, done) = (&self.buf[it.spans.item.clone()], it.original.clone(), it.done.clone());
            b.push(item, &it.spans, original, done, attempts, idless.as_deref());
        }
        b.seal()
    }

    fn finish(&self, which: impl IntoIterator<Item = usize>) {
        for i in which {
            self.items[i].done.release();
        }
    }
}

/// A partly filled batch this old goes as soon as a sender is idle (and `flush_interval` is
/// longer); below it, chunks arriving back to back still gather into one request.
pub const IDLE_FLUSH: Duration = Duration::from_millis(50);

/// Indexes every chunk received on `chunks` until the channel closes, then flushes what is
/// left, waits for the batches in flight, and says what became of the documents. A batch goes
/// when it is full, when `flush_interval` has passed, or once it is [`IDLE_FLUSH`] old while a
/// sender is idle and no chunk is waiting: a quiet drain's lines wait 50 ms, not a second, and
/// Elasticsearch is never left idle with documents ready. While every sender is busy and a batch
/// waits, no new chunks are read, so the bounded channel pushes back on the pipeline.
pub async fn run(client: Client, config: IndexerConfig, chunks: mpsc::Receiver<Chunk>) -> IndexerReport {
    let tally = Arc::new(Tally::default());
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(1);
    let shared = Arc::new(Shared {
        // A batch closes at the first chunk that reaches a limit, so it may pass it: room for
        // a quarter more, and a buffer that had to grow is kept at its grown size.
        buffers: Buffers::new(config.max_bytes + config.max_bytes / 4, config.concurrency + 2),
        idle: AtomicUsize::new(0),
        became_idle: tokio::sync::Notify::new(),
        idless: IdlessStreams::default(),
    });
    let mut senders = spawn_senders(&client, &config, &tally, &shared, batch_rx);
    gather(&config, &shared, chunks, batch_tx).await;
    while senders.join_next().await.is_some() {}
    tally.report()
}

/// What the gathering loop and the senders share.
struct Shared {
    buffers: Buffers,
    /// Senders waiting for a batch: while one is, a batch goes as soon as no chunk is waiting
    /// (Elasticsearch has room); only while all are busy does a batch fill to its limits.
    idle: AtomicUsize,
    became_idle: tokio::sync::Notify,
    idless: IdlessStreams,
}

/// `config.concurrency` senders, each taking the next batch from `batches` until it closes.
fn spawn_senders(
    client: &Client,
    config: &IndexerConfig,
    tally: &Arc<Tally>,
    shared: &Arc<Shared>,
    batches: mpsc::Receiver<Batch>,
) -> JoinSet<()> {
    let batches = Arc::new(tokio::sync::Mutex::new(batches));
    let mut senders = JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let sender =
            Sender { client: client.clone(), config: config.clone(), tally: tally.clone(), shared: shared.clone() };
        let (batches, shared) = (batches.clone(), shared.clone());
        senders.spawn(async move {
            loop {
                shared.idle.fetch_add(1, Ordering::AcqRel);
                shared.became_idle.notify_one();
                let next = batches.lock().await.recv().await;
                shared.idle.fetch_sub(1, Ordering::AcqRel);
                let Some(batch) = next else { break };
                let body = batch.buf.clone();
                sender.send_until_done(batch).await;
                shared.buffers.give(body);
            }
        });
    }
    senders
}

/// Gathers chunks into batches and hands each to the senders when it is due (see [`run`]),
/// until `chunks` closes and the last batch is handed over.
async fn gather(
    config: &IndexerConfig,
    shared: &Shared,
    mut chunks: mpsc::Receiver<Chunk>,
    batches: mpsc::Sender<Batch>,
) {
    // How old a partly filled batch may get, depending on whether a sender waits for one.
    let flush_after =
        |sender_idle: bool| if sender_idle { IDLE_FLUSH.min(config.flush_interval) } else { config.flush_interval };
    let mut pending = Pending::new(shared.buffers.take());
    // When the first chunk of the pending batch arrived.
    let mut first: Option<Instant> = None;
    loop {
        let far = Instant::now() + Duration::from_secs(86_400);
        let wait = flush_after(shared.idle.load(Ordering::Acquire) > 0);
        let closed = tokio::select! {
            received = chunks.recv() => match received {
                Some(chunk) => {
                    pending.add_chunk(chunk, &shared.idless);
                    first.get_or_insert_with(Instant::now);
                    false
                }
                None => true,
            },
            () = sleep_until(first.map_or(far, |f| f + wait)) => false,
            () = shared.became_idle.notified(), if first.is_some() => false,
        };
        let sender_idle = shared.idle.load(Ordering::Acquire) > 0 && chunks.is_empty();
        let due = first.is_some_and(|f| f.elapsed() >= flush_after(sender_idle));
        let full = pending.items.len() >= config.max_docs || pending.buf.len() >= config.max_bytes;
        if !pending.items.is_empty() && (closed || due || full) {
            let batch = std::mem::replace(&mut pending, Pending::new(shared.buffers.take())).seal();
            if batches.send(batch).await.is_err() {
                break;
            }
            first = None;
        } else if pending.items.is_empty() {
            first = None;
        }
        if closed {
            break;
        }
    }
}

/// One of the senders: takes a batch and sees every item of it done.
struct Sender {
    client: Client,
    config: IndexerConfig,
    tally: Arc<Tally>,
    shared: Arc<Shared>,
}

/// Which items of an answered batch are done, to be sent again, or dead letters.
#[derive(Default)]
struct Settled {
    finished: Vec<usize>,
    retry: Vec<usize>,
    letters: Vec<DeadLetter>,
}

impl Sender {
    /// Sends `batch`, then only the items Elasticsearch asked to have again, until each item
    /// is stored, already stored, or dead-lettered, as the retry policy decides.
    async fn send_until_done(&self, batch: Batch) {
        let mut backoff = self.config.retry.backoff();
        let mut current = batch;
        while !current.items.is_empty() {
            match self.attempt(&current).await {
                Ok(outcomes) => {
                    let settled = self.settle(&current, &outcomes);
                    self.dead_letter(settled.letters).await;
                    current.finish(settled.finished);
                    if settled.retry.is_empty() {
                        return;
                    }
                    let wait = backoff.next_delay();
                    tracing::debug!(items = settled.retry.len(), retry_in = ?wait, "retrying items Elasticsearch could not take");
                    sleep(wait).await;
                    current = current.subset(settled.retry, true, &self.shared.idless);
                }
                Err(e) => match self.config.retry.request(&e) {
                    RequestDecision::Retry => {
                        let wait = backoff.next_delay();
                        // A refusal of the credentials is logged by the client, once a minute.
                        if !e.is_refusal() {
                            tracing::warn!(error = %e, retry_in = ?wait, docs = current.items.len(), "bulk request failed; retrying");
                        }
                        sleep(wait).await;
                    }
                    RequestDecision::Split => return Box::pin(self.split(current)).await,
                    RequestDecision::Refuse => return self.refuse(current, &e).await,
                },
            }
        }
    }

    /// One `_bulk` request of the whole batch, read item by item; counted by outcome.
    async fn attempt(&self, batch: &Batch) -> Result<Vec<ItemOutcome>, Error> {
        let started = Instant::now();
        let result = match self.client.bulk(batch.buf.clone()).await {
            Ok(answer) => classify(&answer, batch.items.len()),
            Err(e) => Err(e),
        };
        metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => match self.config.retry.request(e) {
                RequestDecision::Retry => "error",
                RequestDecision::Split => "too_large",
                RequestDecision::Refuse => "refused",
            },
        };
        metrics::REQUESTS.with_label_values(&[outcome]).inc();
        result
    }

    /// What the retry policy makes of each item's outcome.
    fn settle(&self, batch: &Batch, outcomes: &[ItemOutcome]) -> Settled {
        let mut settled = Settled::default();
        for (i, outcome) in outcomes.iter().enumerate() {
            let attempts = batch.items[i].attempts + 1;
            match (self.config.retry.item(outcome, attempts), outcome) {
                (ItemDecision::Done, ItemOutcome::Created) => self.tally.add(Counted::Indexed, 1),
                (ItemDecision::Done, _) => self.tally.add(Counted::Duplicate, 1),
                (ItemDecision::WithoutId, _) => {
                    self.shared.idless.learn(batch.text(&batch.items[i].spans.index));
                    self.tally.add(Counted::Retried, 1);
                    settled.retry.push(i);
                    continue;
                }
                (ItemDecision::Retry, outcome) => {
                    if let ItemOutcome::Blocked { reason, .. } = outcome {
                        self.client.note_block(reason);
                    }
                    self.tally.add(Counted::Retried, 1);
                    settled.retry.push(i);
                    continue;
                }
                (ItemDecision::DeadLetter, ItemOutcome::Rejected { status, kind, reason }) => {
                    settled.letters.push(batch.dead_letter(i, *status, kind, reason));
                }
                (ItemDecision::DeadLetter, ItemOutcome::Blocked { status, reason }) => {
                    settled.letters.push(batch.dead_letter(i, *status, BLOCK, reason));
                }
                (ItemDecision::DeadLetter, outcome) => {
                    let status = if let ItemOutcome::Retry { status } = outcome { *status } else { 0 };
                    let reason = format!("still answered {status} after {attempts} attempts");
                    settled.letters.push(batch.dead_letter(i, status, "retries_exhausted", &reason));
                }
            }
            settled.finished.push(i);
        }
        settled
    }

    async fn dead_letter(&self, letters: Vec<DeadLetter>) {
        if letters.is_empty() {
            return;
        }
        self.tally.add(Counted::DeadLettered, letters.len() as u64);
        deadletter::store(&self.client, &self.config.dead_letter, letters).await;
    }

    /// A request no retry can fix: every document of it becomes a dead letter.
    async fn refuse(&self, batch: Batch, e: &Error) {
        tracing::error!(error = %e, docs = batch.items.len(), "bulk request refused; dead-lettering its documents");
        let reason = e.to_string();
        let status = if let Error::Status { status, .. } = e { status.as_u16() } else { 0 };
        let letters =
            (0..batch.items.len()).map(|i| batch.dead_letter(i, status, "bulk_request_refused", &reason)).collect();
        self.dead_letter(letters).await;
        batch.finish(0..batch.items.len());
    }

    /// A 413: send each half on its own; a single document too large is dead-lettered.
    async fn split(&self, batch: Batch) {
        let n = batch.items.len();
        if n == 1 {
            let letter =
                batch.dead_letter(0, 413, "request_too_large", "a single document exceeds http.max_content_length");
            self.dead_letter(vec![letter]).await;
            batch.finish(0..1);
            return;
        }
        self.send_until_done(batch.subset(0..n / 2, false, &self.shared.idless)).await;
        self.send_until_done(batch.subset(n / 2..n, false, &self.shared.idless)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_body_nobody_holds_is_used_again_and_a_held_one_is_not() {
        let buffers = Buffers::new(1024, 1);
        let mut buf = buffers.take();
        buf.extend_from_slice(b"{}\n");
        let ptr = buf.as_ptr();
        let body = Bytes::from(buf);
        let held = body.clone();
        buffers.give(body);
        assert!(buffers.idle.lock().unwrap().is_empty(), "a clone still reads it");
        buffers.give(held);
        let again = buffers.take();
        assert_eq!((again.as_ptr(), again.len(), again.capacity() >= 1024), (ptr, 0, true));
    }
}
