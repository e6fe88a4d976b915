//! The one delivery loop: frames from a [`FrameSource`], in order, transformed into chunks.

use crate::chunker::Chunker;
use crate::documents::Documents;
use crate::source::FrameSource;

/// How the flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// The source ended (or delivery was told to stop) and what was gathered went on.
    SourceEnded,
    /// The indexer went away: nothing more can be delivered.
    IndexerGone,
}

/// Reads `source` until it ends, handing each frame's documents on; a frame's `done` runs
/// once every document of it is done. What is gathered goes whenever no frame is waiting.
pub(crate) async fn run(mut source: impl FrameSource, mut chunks: Chunker, mut documents: Documents) -> FlowEnd {
    loop {
        // Nothing more to read at once: what is gathered goes now rather than waiting.
        if !source.has_next() && chunks.flush().await.is_err() {
            return indexer_gone();
        }
        let Some((frame, done)) = source.next().await else { break };
        if documents.transform_frame(&frame, &mut chunks, done).await.is_err() {
            return indexer_gone();
        }
        drop(frame);
        // A frame is a millisecond of work or more: let the receivers answer in between.
        tokio::task::yield_now().await;
    }
    match chunks.flush().await {
        Ok(()) => FlowEnd::SourceEnded,
        Err(_) => indexer_gone(),
    }
}

fn indexer_gone() -> FlowEnd {
    tracing::error!("the indexer stopped; delivery cannot hand on documents");
    FlowEnd::IndexerGone
}
