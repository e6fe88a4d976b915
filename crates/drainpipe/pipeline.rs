//! The stage between receiving and indexing: each accepted frame's messages become documents
//! (drainpipe-transform) written as bulk items (drainpipe-bulk-indexer) with deterministic ids.

use drainpipe_bulk_indexer::Chunk;
use drainpipe_ingest::{Frame, FrameSink, Protocol, Rejected};
use drainpipe_transform::{Context, FrameSeed, StructuredData, Timestamp, Transformer};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::metrics;

/// The in-memory hand-off from the receivers: a bounded queue of frames. When it is full the
/// receiver answers 503 with `Retry-After`, and Logplex sends the frame again.
#[derive(Clone, Debug)]
pub struct MemoryQueue(pub mpsc::Sender<Frame>);

impl FrameSink for MemoryQueue {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        self.0.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Rejected::Full { retry_after: Duration::from_secs(1) },
            mpsc::error::TrySendError::Closed(_) => Rejected::ShuttingDown,
        })
    }
}

/// Transforms frames until `frames` closes, sending one chunk per frame to the indexer.
pub async fn run(mut frames: mpsc::Receiver<Frame>, chunks: mpsc::Sender<Chunk>, target: String) {
    let mut transformer = Transformer::new();
    while let Some(frame) = frames.recv().await {
        let chunk = to_chunk(&mut transformer, &frame, &target);
        if chunks.send(chunk).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
    }
}

/// Every message of `frame` as a `create` of its document in `target`.
pub fn to_chunk(transformer: &mut Transformer, frame: &Frame, target: &str) -> Chunk {
    let seed = FrameSeed::new(frame.frame_id.as_deref(), frame.drain_token.as_deref(), &frame.body);
    let ctx = Context {
        app: frame.app.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        frame_id: frame.frame_id.as_deref(),
        labels: &frame.labels,
        received_at: Timestamp::from_system_time(frame.received_at),
        structured_data: match frame.protocol {
            Protocol::Https => StructuredData::Absent,
        },
    };
    // Documents run to about twice their message's size plus the fixed fields.
    let mut chunk = Chunk::with_capacity(frame.body.len() * 2 + frame.messages.len() * 640, frame.messages.len());
    for (position, range) in frame.messages.iter().enumerate() {
        let id = seed.id(u32::try_from(position).unwrap_or(u32::MAX));
        chunk.push_with(target, id.as_str(), |out| {
            let outcome = transformer.transform(&frame.body[range.clone()], &ctx, out);
            metrics::record(&outcome);
        });
    }
    chunk
}
