//! The batching loop: gathers chunks until a batch is full by documents, bytes or time, sends
//! it, and keeps sending what Elasticsearch did not take until every item is done.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, Instant};

use crate::response::{classify, ItemOutcome};
use crate::{metrics, Chunk, Client};

/// When a batch is sent, and how retries back off.
#[derive(Clone, Debug)]
pub struct IndexerConfig {
    /// Send when this many documents are waiting.
    pub max_docs: usize,
    /// Send when this many NDJSON bytes are waiting.
    pub max_bytes: usize,
    /// Send at most this long after the first document of a batch arrived.
    pub flush_interval: Duration,
    /// First and longest wait between attempts at the same items.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for IndexerConfig {
    fn default() -> IndexerConfig {
        IndexerConfig {
            max_docs: 5_000,
            max_bytes: 5 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Indexes every chunk received on `chunks` until the channel closes, then flushes what is
/// left and returns. A batch is retried until each of its items is stored or rejected; while
/// that goes on no new chunks are read, so the bounded channel pushes back on the senders.
pub async fn run(client: Client, config: IndexerConfig, mut chunks: mpsc::Receiver<Chunk>) {
    let mut pending = Chunk::with_capacity(config.max_bytes + config.max_bytes / 4, config.max_docs);
    let mut deadline: Option<Instant> = None;
    loop {
        let far = Instant::now() + Duration::from_secs(86_400);
        let closed = tokio::select! {
            received = chunks.recv() => match received {
                Some(chunk) => {
                    pending.append(&chunk);
                    deadline.get_or_insert_with(|| Instant::now() + config.flush_interval);
                    false
                }
                None => true,
            },
            () = sleep_until(deadline.unwrap_or(far)) => false,
        };
        let due = deadline.is_some_and(|d| d <= Instant::now());
        if !pending.is_empty()
            && (closed || due || pending.len() >= config.max_docs || pending.byte_len() >= config.max_bytes)
        {
            send_until_done(&client, &config, &pending).await;
            pending.clear();
            deadline = None;
        }
        if closed {
            return;
        }
    }
}

/// Sends `batch`, then only its items that Elasticsearch asked to have again, with capped
/// exponential backoff and jitter, until none are left.
async fn send_until_done(client: &Client, config: &IndexerConfig, batch: &Chunk) {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(config.min_backoff)
        .with_max_delay(config.max_backoff)
        .with_jitter()
        .without_max_times()
        .build();
    let mut retry_chunk;
    let mut current = batch;
    loop {
        let started = Instant::now();
        let result = match client.bulk(Bytes::copy_from_slice(current.bytes())).await {
            Ok(body) => classify(&body, current.len()),
            Err(e) => Err(e),
        };
        metrics::REQUEST_DURATION.observe(started.elapsed().as_secs_f64());
        let outcomes = match result {
            Ok(o) => {
                metrics::REQUESTS.with_label_values(&["ok"]).inc();
                o
            }
            Err(e) => {
                metrics::REQUESTS.with_label_values(&["error"]).inc();
                let wait = backoff.next().unwrap_or(config.max_backoff);
                tracing::warn!(error = %e, retry_in = ?wait, docs = current.len(), "bulk request failed; retrying");
                sleep(wait).await;
                continue;
            }
        };
        let mut retry = Chunk::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                ItemOutcome::Created => metrics::DOCUMENTS.with_label_values(&["indexed"]).inc(),
                ItemOutcome::Duplicate => metrics::DOCUMENTS.with_label_values(&["duplicate"]).inc(),
                ItemOutcome::Retry { .. } => {
                    metrics::DOCUMENTS.with_label_values(&["retried"]).inc();
                    retry.push_raw(current.item(i));
                }
                ItemOutcome::Rejected { status, kind, reason } => {
                    metrics::DOCUMENTS.with_label_values(&["rejected"]).inc();
                    tracing::error!(status, kind = %kind, reason = %reason, "Elasticsearch rejected a document");
                }
            }
        }
        if retry.is_empty() {
            return;
        }
        let wait = backoff.next().unwrap_or(config.max_backoff);
        tracing::debug!(items = retry.len(), retry_in = ?wait, "retrying items Elasticsearch could not take");
        sleep(wait).await;
        retry_chunk = retry;
        current = &retry_chunk;
    }
}
