//! Where documents go that Elasticsearch will never take: the dead-letter index, and when even
//! that refuses them, a local file. Each entry holds the original text, Elasticsearch's reason,
//! and the rejected document itself.
//!
//! The file is shared with `drainpipe deadletter replay`, which moves it aside ([`take_file`])
//! while `serve` may be appending: both hold an exclusive lock on it, and a writer that finds
//! the file moved while it waited writes to the new one ([`append`]).

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
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

/// One document that will not be indexed (or, from the binary's panic guard, that could not
/// be made): written by the indexer, and by the pipeline for a message its transform failed on.
#[derive(Clone, Debug)]
pub struct DeadLetter {
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
    pub fn document(&self) -> serde_json::Value {
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
            DeadLetterFile::new(&path).append(lines.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
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

/// The dead-letter file: one JSON entry per line, appended by `serve`, taken aside by a replay.
#[derive(Clone, Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
}

impl DeadLetterFile {
    pub fn new(path: impl Into<PathBuf>) -> DeadLetterFile {
        DeadLetterFile { path: path.into() }
    }

    /// Where entries are appended.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where [`DeadLetterFile::take`] moves the file: `<file>.replaying`.
    pub fn taken_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".replaying");
        self.path.with_file_name(name)
    }

    /// Where a replay gathers the entries that stay, before it appends them back in one go.
    pub fn staying_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".staying");
        self.path.with_file_name(name)
    }

    /// Held by a replay from start to end, so two never work on the file at once; an error
    /// when another holds it.
    pub fn lock_replays(&self) -> std::io::Result<std::fs::File> {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_file_name(name))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("another replay is working on {}", self.path.display()),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Appends `data` and syncs it. Under the file's lock, and into the file that is at the
    /// path once the lock is held, so nothing is written into a file a replay has just taken.
    pub fn append(&self, data: &[u8]) -> std::io::Result<()> {
        loop {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            f.lock()?;
            let opened = f.metadata()?;
            let current = std::fs::metadata(&self.path).ok();
            if current.is_some_and(|c| c.dev() == opened.dev() && c.ino() == opened.ino()) {
                f.write_all(data)?;
                return f.sync_data();
            }
            // Taken (or removed) while this waited: the entries go to the new file.
        }
    }

    /// Moves the file to [`DeadLetterFile::taken_path`] under its lock (so no append is
    /// half-written in it), for a replay to read while `serve` starts a new file. `false` when
    /// there is no file. A file already taken (a replay that stopped half-way) must be dealt with
    /// first: this refuses to overwrite it.
    pub fn take(&self) -> std::io::Result<bool> {
        let taken = self.taken_path();
        if taken.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} is there already (an unfinished replay)", taken.display()),
            ));
        }
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        f.lock()?;
        std::fs::rename(&self.path, &taken)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_after_the_file_was_taken_starts_a_new_file() {
        let dir = std::env::temp_dir().join(format!("drainpipe-deadletter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = DeadLetterFile::new(dir.join("dead-letters.ndjson"));
        assert!(!file.take().unwrap(), "no file, nothing taken");
        file.append(b"one\n").unwrap();
        // A replay holds the lock while an append waits for it, then takes the file.
        let held = std::fs::File::open(file.path()).unwrap();
        held.lock().unwrap();
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || file.append(b"two\n").unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::rename(file.path(), file.taken_path()).unwrap();
        drop(held);
        writer.join().unwrap();
        assert!(file.take().is_err(), "an unfinished replay is not overwritten");
        assert_eq!(std::fs::read(file.taken_path()).unwrap(), b"one\n");
        assert_eq!(std::fs::read(file.path()).unwrap(), b"two\n", "the waiting append went to the new file");
        let replaying = file.lock_replays().unwrap();
        assert!(file.lock_replays().is_err(), "one replay at a time");
        drop(replaying);
        assert!(file.lock_replays().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
