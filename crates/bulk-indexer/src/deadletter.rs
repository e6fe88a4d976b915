//! Where documents go that Elasticsearch will never take: the dead-letter index, and when even
//! that refuses them, a local file. Each entry ([`DeadLetterEntry`], the one type both written
//! here and read back by `drainpipe deadletter`) holds the original text, Elasticsearch's
//! reason, and the rejected document itself.
//!
//! The file is shared with `drainpipe deadletter replay`, which moves it aside ([`take_file`])
//! while `serve` may be appending: both hold an exclusive lock on it, and a writer that finds
//! the file moved while it waited writes to the new one ([`append`]).

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use crate::action::push_create_action;
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
    /// The entry as stored, stamped now.
    pub fn document(&self) -> DeadLetterEntry {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        DeadLetterEntry {
            timestamp_ms: now_ms,
            deadletter: RejectedDocument {
                attempts: self.attempts,
                document: String::from_utf8_lossy(&self.source).into_owned(),
                id: self.id.clone(),
                index: self.index.clone(),
                status: self.status,
            },
            error: EntryError { code: self.status.to_string(), message: self.reason.clone(), kind: self.kind.clone() },
            message: String::from_utf8_lossy(&self.original).into_owned(),
        }
    }
}

/// A dead letter as stored in the dead-letter index and file, and as `drainpipe deadletter`
/// reads it back. Fields are declared in the order of their names, as entries have always
/// been written. Reading is as lenient as it always was: only where the document was meant to
/// go and the document itself must be there; any other field missing or of another type reads
/// as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterEntry {
    /// When it was dead-lettered (ms since the epoch).
    #[serde(rename = "@timestamp", default, deserialize_with = "lenient")]
    pub timestamp_ms: u64,
    pub deadletter: RejectedDocument,
    #[serde(default, deserialize_with = "lenient")]
    pub error: EntryError,
    /// The original text the document was made from.
    #[serde(default, deserialize_with = "lenient")]
    pub message: String,
}

/// Where the document was meant to go, and the document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedDocument {
    #[serde(default, deserialize_with = "lenient")]
    pub attempts: u32,
    /// The rejected document's JSON, as a string (its fields must not be mapped here).
    pub document: String,
    pub id: String,
    pub index: String,
    #[serde(default, deserialize_with = "lenient")]
    pub status: u16,
}

/// Why Elasticsearch would not take the document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryError {
    /// The HTTP status, as a string (`error.code` is a keyword of the field contract).
    #[serde(default, deserialize_with = "lenient")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient")]
    pub message: String,
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    pub kind: String,
}

/// A value of another type reads as the default, as string indexing into the JSON did.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    Ok(serde_json::from_value(serde_json::Value::deserialize(d)?).unwrap_or_default())
}

impl std::fmt::Display for DeadLetterEntry {
    /// The entry as one line of JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// Stores `letters`: in the dead-letter index (same `_id` as the rejected document, so a
/// replay does not store one twice), else in the file, else in the error log.
pub(crate) async fn store(client: &Client, config: &DeadLetterConfig, letters: Vec<DeadLetter>) {
    let Some(first) = letters.first() else { return };
    // One line per batch, not per document: a mapping conflict can refuse thousands at once.
    tracing::warn!(
        documents = letters.len(),
        dead_letter_index = %config.index,
        index = %first.index,
        status = first.status,
        kind = %first.kind,
        reason = %first.reason,
        "dead-lettering documents Elasticsearch will not take (first reason shown)"
    );
    let entries: Vec<DeadLetterEntry> = letters.iter().map(DeadLetter::document).collect();
    let refused = write_to_index(client, &config.index, &entries).await;
    if !refused.is_empty() {
        write_to_file(config.file.clone(), refused).await;
    }
}

/// Writes `entries` to the dead-letter index as [`RetryPolicy::DEAD_LETTERS`] allows; the
/// entries it did not take.
async fn write_to_index<'e>(client: &Client, index: &str, entries: &'e [DeadLetterEntry]) -> Vec<&'e DeadLetterEntry> {
    let mut body = Vec::new();
    for entry in entries {
        push_create_action(&mut body, index, &entry.deadletter.id);
        body.extend_from_slice(format!("{entry}\n").as_bytes());
    }
    let body = Bytes::from(body);
    let policy = RetryPolicy::DEAD_LETTERS;
    let mut backoff = policy.backoff();
    for attempt in 1.. {
        match client.bulk(body.clone()).await.and_then(|answer| classify(&answer, entries.len())) {
            Ok(outcomes) => {
                return entries
                    .iter()
                    .zip(outcomes)
                    .filter(|(_, o)| !matches!(o, ItemOutcome::Created | ItemOutcome::Duplicate))
                    .map(|(entry, _)| entry)
                    .collect();
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
    entries.iter().collect()
}

/// Appends the entries the index refused to the dead-letter file; logs them when there is none
/// or it cannot be written.
async fn write_to_file(file: Option<PathBuf>, refused: Vec<&DeadLetterEntry>) {
    metrics::DEAD_LETTER_FILE.inc_by(refused.len() as u64);
    let lines: String = refused.iter().map(|entry| format!("{entry}\n")).collect();
    let written = match file {
        // The write and its fsync block: off the async workers.
        Some(path) => tokio::task::spawn_blocking(move || {
            DeadLetterFile::new(&path).append(lines.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the dead-letter file write failed: {e}"))),
        None => Err("no dead-letter file configured".to_owned()),
    };
    if let Err(why) = written {
        for entry in refused {
            tracing::error!(reason = %why, %entry, "dead letter could not be stored; it is only in this log line");
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
    fn an_entry_is_written_as_it_always_was_and_read_back() {
        let letter = DeadLetter {
            index: "logs-x".into(),
            id: "abc".into(),
            source: b"{\"message\":1}".to_vec(),
            original: b"line \xff one".to_vec(),
            status: 400,
            kind: "document_parsing_exception".into(),
            reason: "failed to parse".into(),
            attempts: 2,
        };
        let entry = letter.document();
        // What `json!` wrote before the type: serde_json orders an object's keys by name.
        let before = serde_json::json!({
            "@timestamp": entry.timestamp_ms,
            "message": String::from_utf8_lossy(&letter.original),
            "error": {"type": letter.kind, "message": letter.reason, "code": "400"},
            "deadletter": {"index": "logs-x", "id": "abc", "status": 400, "attempts": 2, "document": "{\"message\":1}"},
        });
        assert_eq!(entry.to_string(), before.to_string());
        let read: DeadLetterEntry = serde_json::from_str(&before.to_string()).unwrap();
        assert_eq!(read, entry);
        // Only the target, the id and the document are needed; the rest reads as empty.
        let sparse = r#"{"@timestamp":"soon","error":{"type":7},"deadletter":{"index":"i","id":"d","document":"{}","status":"x"}}"#;
        let sparse: DeadLetterEntry = serde_json::from_str(sparse).unwrap();
        assert_eq!((sparse.timestamp_ms, sparse.error.kind.as_str(), sparse.deadletter.index.as_str()), (0, "", "i"));
        assert!(serde_json::from_str::<DeadLetterEntry>(r#"{"deadletter":{"index":"i","id":"d"}}"#).is_err());
    }

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
