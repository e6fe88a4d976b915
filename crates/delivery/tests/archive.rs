//! The raw archive as the spool's second reader, against stand-in indexers (no
//! Elasticsearch): with the indexer stuck the archive still fills; with the archive's disk full
//! (ENOSPC) delivery still goes on; a spool record goes only once both have it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use drainpipe_archive::{files_under, ArchiveConfig, ArchiveWriter, FileFrames, DEFAULT_LEVEL};
use drainpipe_bulk_indexer::{Chunk, IndexerReport};
use drainpipe_delivery::{Archiving, DataStreams, Delivery, DeliveryConfig, Indexer, IndexerFailed, LiveRules, Queue};
use drainpipe_ingest::{Frame, FrameSink, LiveAccess, Position, Protocol};
use drainpipe_spool::{Fsync, Spool, SpoolConfig};
use tokio::sync::mpsc;

/// 2026-12-06T22:41:07Z: frames received then go to `_unknown/2026/12/06/22.log.zst`.
fn received() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_596_867)
}

fn frame(i: u64) -> Frame {
    let line = format!("<190>1 2026-12-06T22:41:07Z d.token app web.1 - - line {i}\n");
    Frame {
        position: Position::OnStream { stream: 7, first: i },
        received_at: received(),
        ..Frame::new(Protocol::Syslog, Bytes::from(line.clone()), std::iter::once(0..line.len()).collect())
    }
}

fn dirs(name: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("drainpipe-archiving-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    (base.join("spool"), base.join("archive"))
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        streams: DataStreams::new("test"),
        access: LiveAccess::default(),
        rules: LiveRules::default(),
        max_docs: 1000,
        max_bytes: 1 << 20,
    }
}

/// A spool with two readers and the archive on the second.
fn queue(spool_dir: &Path, archive_dir: &Path) -> (Spool, Queue) {
    let config =
        SpoolConfig { dir: spool_dir.to_owned(), max_bytes: 1 << 20, segment_bytes: 4096, fsync: Fsync::EveryBatch };
    let (spool, mut readers, _) = Spool::open_readers(config, 2).unwrap();
    let archive = ArchiveConfig { dir: archive_dir.to_owned(), retention: None, level: DEFAULT_LEVEL };
    let (writer, _) = ArchiveWriter::open(&archive, spool.writing_segment()).unwrap();
    let archiving = Archiving { reader: readers.pop().unwrap(), writer };
    let reader = readers.pop().unwrap();
    (spool.clone(), Queue::Spool { spool, reader, drain_on_stop: false, archive: Some(Box::new(archiving)) })
}

/// The lines of every archive file under `dir`.
fn archived(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files_under(dir).unwrap() {
        let mut frames = FileFrames::open(&file).unwrap();
        while let Some(f) = frames.next_frame().unwrap() {
            lines.push(String::from_utf8(f.message(0).to_vec()).unwrap());
        }
    }
    lines
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes chunks and never finishes them: Elasticsearch unreachable.
#[derive(Clone, Debug, Default)]
struct Stuck {
    held: Arc<Mutex<Vec<Chunk>>>,
}

impl Indexer for Stuck {
    async fn index(self, mut chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        while let Some(chunk) = chunks.recv().await {
            self.held.lock().unwrap().push(chunk);
        }
        Ok(IndexerReport::default())
    }
}

/// Finishes every chunk at once, counting its documents.
#[derive(Clone, Debug, Default)]
struct Stores {
    documents: Arc<Mutex<usize>>,
}

impl Indexer for Stores {
    async fn index(self, mut chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        while let Some(mut chunk) = chunks.recv().await {
            *self.documents.lock().unwrap() += chunk.len();
            if let Some(done) = chunk.take_on_done() {
                done();
            }
        }
        Ok(IndexerReport::default())
    }
}

#[tokio::test]
async fn with_elasticsearch_down_the_archive_still_fills_and_the_spool_keeps_every_frame() {
    let (spool_dir, archive_dir) = dirs("es-down");
    let (spool, queue) = queue(&spool_dir, &archive_dir);
    let (handoff, handle) = Delivery::start(config(), queue, Stuck::default());
    for i in 0..50 {
        handoff.accept(frame(i)).await.unwrap();
    }
    until("the archive has every frame", || {
        files_under(&archive_dir).is_ok_and(|f| !f.is_empty()) && archived(&archive_dir).len() == 50
    })
    .await;
    assert_eq!(
        archived(&archive_dir),
        (0..50).map(frame).map(|f| String::from_utf8(f.body.to_vec()).unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(spool.unacked_records(), 50, "Elasticsearch has none of them: the spool keeps them all");
    drop(handoff);
    handle.finish(Some(tokio::time::Instant::now() + Duration::from_secs(2))).await;
    std::fs::remove_dir_all(spool_dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn with_the_archive_disk_full_delivery_goes_on_and_the_archive_catches_up_once_there_is_room() {
    let (spool_dir, archive_dir) = dirs("enospc");
    let partial = archive_dir.join("_unknown/2026/12/06/22.log.zst.partial");
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &partial).unwrap();
    let (spool, queue) = queue(&spool_dir, &archive_dir);
    let indexer = Stores::default();
    let (handoff, handle) = Delivery::start(config(), queue, indexer.clone());
    let failures = drainpipe_archive::metrics::WRITE_FAILURES.get();
    for i in 0..40 {
        handoff.accept(frame(i)).await.unwrap();
    }
    until("Elasticsearch has every document", || *indexer.documents.lock().unwrap() == 40).await;
    until("the archive has failed to write", || drainpipe_archive::metrics::WRITE_FAILURES.get() > failures).await;
    assert_eq!(spool.unacked_records(), 40, "the archive has none of them: the spool keeps them all");
    // Room again: the archive writes what waited, once, and the spool lets the records go.
    std::fs::remove_file(&partial).unwrap();
    until("the spool holds nothing", || spool.unacked_records() == 0).await;
    let lines = archived(&archive_dir);
    assert_eq!(lines.len(), 40, "each frame once");
    drop(handoff);
    handle.finish(Some(tokio::time::Instant::now() + Duration::from_secs(2))).await;
    std::fs::remove_dir_all(spool_dir.parent().unwrap()).unwrap();
}
