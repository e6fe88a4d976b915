//! The batching loop and its senders: chunks are gathered into a batch until it is full by
//! documents, bytes or time; a few senders each take a batch and keep sending what
//! Elasticsearch did not take until every item is stored, already there, or dead-lettered.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};

use crate::chunk::{index_and_id, source_of, OnDone};
use crate::deadletter::{self, DeadLetter, DeadLetterConfig};
use crate::response::{classify, ItemOutcome};
use crate::{metrics, Chunk, Client, Error};

/// When a batch is sent, how many at once, and how retries back off.
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
    /// An item Elasticsearch keeps answering 429/5xx for is dead-lettered after this many tries.
    pub max_item_attempts: u32,
    /// First and longest wait between attempts at the same items.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub dead_letter: DeadLetterConfig,
}

impl Default for IndexerConfig {
    fn default() -> IndexerConfig {
        IndexerConfig {
            max_docs: 5_000,
            max_bytes: 5 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            concurrency: 2,
            max_item_attempts: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            dead_letter: DeadLetterConfig { index: "deadletter".to_owned(), file: None },
        }
    }
}

/// Counts a chunk's items down; the last one done calls the chunk's callback.
struct Completion {
    remaining: AtomicUsize,
    on_done: Mutex<Option<OnDone>>,
}

impl Completion {
    fn finish_one(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(f) = self.on_done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                f();
            }
        }
    }
}

struct Item {
    span: Range<usize>,
    original: Range<usize>,
    done: Arc<Completion>,
    attempts: u32,
}

/// Items ready to send: their NDJSON, the originals, and whom to tell when each is done.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    originals: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    fn add_chunk(&mut self, mut chunk: Chunk) {
        let on_done = chunk.take_on_done();
        if chunk.is_empty() {
            if let Some(f) = on_done {
                f();
            }
            return;
        }
        let done = Arc::new(Completion { remaining: AtomicUsize::new(chunk.len()), on_done: Mutex::new(on_done) });
        for i in 0..chunk.len() {
            self.push(chunk.item(i), chunk.original(i), done.clone(), 0);
        }
    }

    fn push(&mut self, item: &[u8], original: &[u8], done: Arc<Completion>, attempts: u32) {
        let s = self.buf.len();
        self.buf.extend_from_slice(item);
        let o = self.originals.len();
        self.originals.extend_from_slice(original);
        self.items.push(Item { span: s..self.buf.len(), original: o..self.originals.len(), done, attempts });
    }

    fn item(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].span.clone()]
    }

    fn dead_letter(&self, i: usize, status: u16, kind: &str, reason: &str) -> DeadLetter {
        let item = self.item(i);
        let (index, id) = index_and_id(item);
        DeadLetter {
            index,
            id,
            source: source_of(item).to_vec(),
            original: self.originals[self.items[i].original.clone()].to_vec(),
            status,
            kind: kind.to_owned(),
            reason: reason.to_owned(),
            attempts: self.items[i].attempts + 1,
        }
    }

    /// The items at `which`, as a new batch.
    fn subset(&self, which: impl IntoIterator<Item = usize>, bump_attempts: bool) -> Batch {
        let mut b = Batch::default();
        for i in which {
            let it = &self.items[i];
            let attempts = it.attempts + u32::from(bump_attempts);
            b.push(self.item(i), &self.originals[it.original.clone()], it.done.clone(), attempts);
        }
        b
    }
}

/// Indexes every chunk received on `chunks` until the channel closes, then flushes what is
/// left, waits for the batches in flight, and returns. While every sender is busy no new
/// chunks are read, so the bounded channel pushes back on the pipeline.
pub async fn run(client: Client, config: IndexerConfig, mut chunks: mpsc::Receiver<Chunk>) {
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(1);
    let batch_rx = Arc::new(tokio::sync::Mutex::new(batch_rx));
    let mut senders = JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let (client, config, batch_rx) = (client.clone(), config.clone(), batch_rx.clone());
        senders.spawn(async move {
            loop {
                let next = batch_rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                send_until_done(&client, &config, batch).await;
            }
        });
    }

    let mut pending = Batch::default();
    let mut deadline: Option<Instant> = None;
    loop {
        let far = Instant::now() + Duration::from_secs(86_400);
        let closed = tokio::select! {
            received = chunks.recv() => match received {
                Some(chunk) => {
                    pending.add_chunk(chunk);
                    deadline.get_or_insert_with(|| Instant::now() + config.flush_interval);
                    false
                }
                None => true,
            },
            () = sleep_until(deadline.unwrap_or(far)) => false,
        };
        let due = deadline.is_some_and(|d| d <= Instant::now());
        let full = pending.items.len() >= config.max_docs || pending.buf.len() >= config.max_bytes;
        if !pending.items.is_empty() && (closed || due || full) {
            if batch_tx.send(std::mem::take(&mut pending)).await.is_err() {
                break;
            }
            deadline = None;
        } else if pending.items.is_empty() {
            deadline = None;
        }
        if closed {
            break;
        }
    }
    drop(batch_tx);
    while senders.join_next().await.is_some() {}
}

fn backoff(config: &IndexerConfig) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(config.min_backoff)
        .with_max_delay(config.max_backoff)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Sends `batch`, then only the items Elasticsearch asked to have again, until each item is
/// stored, already stored, or dead-lettered. Whole-request failures that a retry can fix
/// (connection, timeout, 429, 5xx, 401/403) are retried with capped backoff for as long as it
/// takes; a request too large is split; any other refusal dead-letters the batch.
async fn send_until_done(client: &Client, config: &IndexerConfig, batch: Batch) {
    let mut delays = backoff(config);
    let mut current = batch;
    while !current.items.is_empty() {
        let started = Instant::now();
        let body = Bytes::copy_from_slice(&current.buf);
        let result = match client.bulk(body).await {
            Ok(answer) => classify(&answer, current.items.len()),
            Err(e) => Err(e),
        };
        metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
        let outcomes = match result {
            Ok(o) => {
                metrics::REQUESTS.with_label_values(&["ok"]).inc();
                o
            }
            Err(Error::Status { status, .. }) if status.as_u16() == 413 => {
                metrics::REQUESTS.with_label_values(&["too_large"]).inc();
                split_or_give_up(client, config, current).await;
                return;
            }
            Err(e) if e.is_retryable() => {
                metrics::REQUESTS.with_label_values(&["error"]).inc();
                let wait = delays.next().unwrap_or(config.max_backoff);
                tracing::warn!(error = %e, retry_in = ?wait, docs = current.items.len(), "bulk request failed; retrying");
                sleep(wait).await;
                continue;
            }
            Err(e) => {
                metrics::REQUESTS.with_label_values(&["refused"]).inc();
                tracing::error!(error = %e, docs = current.items.len(), "bulk request refused; dead-lettering its documents");
                let reason = e.to_string();
                let status = if let Error::Status { status, .. } = &e { status.as_u16() } else { 0 };
                let letters = (0..current.items.len())
                    .map(|i| current.dead_letter(i, status, "bulk_request_refused", &reason))
                    .collect();
                deadletter::store(client, &config.dead_letter, letters).await;
                finish_all(&current, 0..current.items.len());
                return;
            }
        };
        let mut retry = Vec::new();
        let mut letters = Vec::new();
        let mut finished = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                ItemOutcome::Created => {
                    metrics::DOCUMENTS.with_label_values(&["indexed"]).inc();
                    finished.push(i);
                }
                ItemOutcome::Duplicate => {
                    metrics::DOCUMENTS.with_label_values(&["duplicate"]).inc();
                    finished.push(i);
                }
                ItemOutcome::Retry { status } if current.items[i].attempts + 1 >= config.max_item_attempts => {
                    let reason = format!("still answered {status} after {} attempts", current.items[i].attempts + 1);
                    letters.push(current.dead_letter(i, *status, "retries_exhausted", &reason));
                    finished.push(i);
                }
                ItemOutcome::Retry { .. } => {
                    metrics::DOCUMENTS.with_label_values(&["retried"]).inc();
                    retry.push(i);
                }
                ItemOutcome::Rejected { status, kind, reason } => {
                    letters.push(current.dead_letter(i, *status, kind, reason));
                    finished.push(i);
                }
            }
        }
        deadletter::store(client, &config.dead_letter, letters).await;
        finish_all(&current, finished);
        if retry.is_empty() {
            return;
        }
        let wait = delays.next().unwrap_or(config.max_backoff);
        tracing::debug!(items = retry.len(), retry_in = ?wait, "retrying items Elasticsearch could not take");
        sleep(wait).await;
        current = current.subset(retry, true);
    }
}

fn finish_all(batch: &Batch, which: impl IntoIterator<Item = usize>) {
    for i in which {
        batch.items[i].done.finish_one();
    }
}

/// A 413: send each half on its own; a single document too large is dead-lettered.
async fn split_or_give_up(client: &Client, config: &IndexerConfig, batch: Batch) {
    let n = batch.items.len();
    if n == 1 {
        let letter =
            batch.dead_letter(0, 413, "request_too_large", "a single document exceeds http.max_content_length");
        deadletter::store(client, &config.dead_letter, vec![letter]).await;
        finish_all(&batch, 0..1);
        return;
    }
    let (left, right) = (batch.subset(0..n / 2, false), batch.subset(n / 2..n, false));
    Box::pin(send_until_done(client, config, left)).await;
    Box::pin(send_until_done(client, config, right)).await;
}
