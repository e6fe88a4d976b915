//! Documents of consecutive frames gathered into bounded chunks for the indexer; a frame is
//! done (its spool record acknowledged) when the last chunk holding one of its documents is.

use std::sync::Arc;

use drainpipe_bulk_indexer::Chunk;

use drainpipe_bulk_indexer::Countdown;
use tokio::sync::mpsc;

use crate::metrics;

/// Chunks written and not yet taken by the indexer.
pub const CHUNKS_WAITING: usize = 4;

/// A chunk closes at this many documents or NDJSON bytes (or the bulk request's limits, if
/// lower): small enough to be written while it is still in the CPU's cache, and to bound what
/// delivery holds, whatever a sender sends.
const CHUNK_DOCS: usize = 1_000;
const CHUNK_BYTES: usize = 1024 * 1024;

/// A chunk's buffer has room for a document past its byte limit without growing.
const CHUNK_SLACK: usize = 64 * 1024;

/// The indexer went away.
#[derive(Debug)]
pub struct IndexerGone;

/// Gathers documents of consecutive frames into chunks of at most [`CHUNK_DOCS`] documents
/// and [`CHUNK_BYTES`] bytes; a chunk goes when full, or when no frame is waiting
/// ([`Chunker::flush`]), so that a quiet drain's lines are not held back.
///
/// Each frame is a [`Countdown`]: its producer holds one count until it has written every
/// document, and each chunk with documents of it holds one more, so the frame's callback runs
/// once, after the last of them, whatever order chunks finish in.
#[derive(Debug)]
pub struct Chunker {
    chunks: mpsc::Sender<Chunk>,
    max_docs: usize,
    max_bytes: usize,
    open: Option<OpenChunk>,
}

pub(crate) struct OpenChunk {
    pub(crate) chunk: Chunk,
    /// The frames with documents in this chunk.
    frames: Vec<Arc<Countdown>>,
    /// Each document's timestamp, for the indexing-lag histogram.
    pub(crate) timestamps: Vec<f64>,
}

impl std::fmt::Debug for OpenChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenChunk").field("chunk", &self.chunk).field("frames", &self.frames.len()).finish()
    }
}

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
    pub(crate) fn open(&mut self, frame: &Arc<Countdown>) -> &mut OpenChunk {
        let (docs, bytes) = (self.max_docs, self.max_bytes);
        let open = self.open.get_or_insert_with(|| OpenChunk {
            chunk: Chunk::with_capacity(bytes + CHUNK_SLACK, docs),
            frames: Vec::new(),
            timestamps: Vec::with_capacity(docs),
        });
        if !open.frames.last().is_some_and(|f| Arc::ptr_eq(f, frame)) {
            frame.hold();
            open.frames.push(frame.clone());
        }
        open
    }

    pub(crate) fn is_full(&self) -> bool {
        self.open.as_ref().is_some_and(|o| o.chunk.len() >= self.max_docs || o.chunk.byte_len() >= self.max_bytes)
    }

    /// Sends the chunk being filled, if any.
    pub async fn flush(&mut self) -> Result<(), IndexerGone> {
        let Some(OpenChunk { mut chunk, frames, timestamps }) = self.open.take() else { return Ok(()) };
        chunk.on_done(move || {
            metrics::observe_lag(&timestamps);
            for frame in frames {
                frame.release();
            }
        });
        self.chunks.send(chunk).await.map_err(|_| IndexerGone)
    }
}
