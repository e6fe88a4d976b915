//! Where documents go that Elasticsearch will never take: the dead-letter index, and when even
//! that refuses them, a local file. Each entry holds the original text, Elasticsearch's reason,
//! and the rejected document itself.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::json;

use crate::response::{classify, ItemOutcome};
use crate::retry::{RequestDecision, RetryPolicy};
use crate::{metrics, Client};

/// Where dead letters are written.
#[derive(Clone, Debug)]
pub struct DeadLetterConfig {
    /// The index (or data stream) dead letters are written to with `create`.
    pub index: String,
    /// Appended to (one JSON object per line) when the index refuses a dead letter.
    pub file: Option<PathBuf>,
}

/// One document that will not be indexed.
#[derive(Clone, Debug)]
pub(crate) struct DeadLetter {
    pub index: String,
    pub id: String,
    pub source: Vec<u8>,
    pub original: Vec<u8>,
    pub status: u16,
    pub kind: String,
    pub reason: String,
    pub attempts: u32,
}

impl DeadLetter {
    /// The entry as stored: `message` is the original text, `deadletter.document` the
    /// rejected document as a string.
    pub(crate) fn document(&self) -> serde_json::Value {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        json!({
            "@timestamp": now_ms,
            "message": String::from_utf8_lossy(&self.original),
            "error": {"type": self.kind, "message": self.reason, "code": self.status.to_string()},
            "deadletter": {
                "index": self.index,
                "id": self.id,
                "status": self.status,
                "attempts": self.attempts,
                "document": String::from_utf8_lossy(&self.source),
            },
        })
    }
}

/// Stores `letters`: in the dead-letter index (same `_id` as the rejected document, so a
/// replay does not store one twice), else in the file, else in the error log.
pub(crate) async fn store(client: &Client, config: &DeadLetterConfig, letters: Vec<DeadLetter>) {
    if letters.is_empty() {
        return;
    }
    let mut body = Vec::new();
    for l in &letters {
        let action = json!({"create": {"_index": config.index, "_id": l.id}});
        body.extend_from_slice(action.to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(l.document().to_string().as_bytes());
        body.push(b'\n');
    }
    // One line per batch, not per document: a mapping conflict can refuse thousands at once.
    let first = &letters[0];
    tracing::warn!(
        documents = letters.len(),
        dead_letter_index = %config.index,
        index = %first.index,
        status = first.status,
        kind = %first.kind,
        reason = %first.reason,
        "dead-lettering documents Elasticsearch will not take (first reason shown)"
    );
    let body = Bytes::from(body);
    let mut refused: Vec<&DeadLetter> = letters.iter().collect();
    let policy = RetryPolicy::DEAD_LETTERS;
    let mut backoff = policy.backoff();
    for attempt in 1.. {
        match client.bulk(body.clone()).await.and_then(|answer| classify(&answer, letters.len())) {
            Ok(outcomes) => {
                refused = letters
                    .iter()
                    .zip(outcomes)
                    .filter(|(_, o)| !matches!(o, ItemOutcome::Created | ItemOutcome::Duplicate))
                    .map(|(l, _)| l)
                    .collect();
                break;
            }
            Err(e) if policy.exhausted(attempt) || policy.request(&e) != RequestDecision::Retry => {
                tracing::warn!(error = %e, attempt, "writing dead letters failed; giving up on the index");
                break;
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %e, attempt, retry_in = ?wait, "writing dead letters failed");
                tokio::time::sleep(wait).await;
            }
        }
    }
    if refused.is_empty() {
        return;
    }
    metrics::DEAD_LETTER_FILE.inc_by(refused.len() as u64);
    let lines: String = refused.iter().map(|l| format!("{}\n", l.document())).collect();
    let written = match config.file.clone() {
        // The write and its fsync block: off the async workers.
        Some(path) => tokio::task::spawn_blocking(move || {
            append(&path, lines.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the dead-letter file write failed: {e}"))),
        None => Err("no dead-letter file configured".to_owned()),
    };
    if let Err(why) = written {
        for l in refused {
            tracing::error!(reason = %why, entry = %l.document(), "dead letter could not be stored; it is only in this log line");
        }
    }
}

fn append(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(data)?;
    f.sync_data()
}
