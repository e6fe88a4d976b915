//! The stage between receiving and indexing: each accepted frame's messages become documents
//! (drainpipe-transform) written as bulk items (drainpipe-bulk-indexer) with deterministic ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drainpipe_bulk_indexer::Chunk;
use drainpipe_ingest::{Frame, FrameSink, Protocol, Rejected};
use drainpipe_transform::{Context, DocumentId, FrameSeed, StructuredData, Timestamp, Transformer};
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

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        self.0.send(frame).await.map_err(|_| Rejected::ShuttingDown)
    }
}

/// What the pipeline needs besides the frames.
#[derive(Clone, Debug)]
pub struct Target {
    /// The data stream documents go to.
    pub data_stream: String,
    /// Drain token to app, for syslog drains (HTTPS frames are resolved by the receiver).
    pub token_apps: Arc<HashMap<String, String>>,
}

/// Transforms frames until `frames` closes, sending one chunk per frame to the indexer.
pub async fn run(mut frames: mpsc::Receiver<Frame>, chunks: mpsc::Sender<Chunk>, target: Target) {
    let mut transformer = Transformer::new();
    while let Some(frame) = frames.recv().await {
        let chunk = to_chunk(&mut transformer, &frame, &target);
        if chunks.send(chunk).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
    }
}

/// Every message of `frame` as a `create` of its document in the target data stream. HTTPS
/// messages are identified by their frame and position; syslog messages, which arrive in
/// arbitrary reads of a stream, by their own bytes (which hold the drain token as HOSTNAME).
pub fn to_chunk(transformer: &mut Transformer, frame: &Frame, target: &Target) -> Chunk {
    let seed = FrameSeed::new(frame.frame_id.as_deref(), frame.drain_token.as_deref(), &frame.body);
    let ctx = Context {
        app: frame.app.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        frame_id: frame.frame_id.as_deref(),
        labels: &frame.labels,
        received_at: Timestamp::from_system_time(frame.received_at),
        structured_data: match frame.protocol {
            Protocol::Https => StructuredData::Absent,
            Protocol::Syslog => StructuredData::Present,
        },
        token_apps: Some(&target.token_apps),
    };
    // Documents run to about twice their message's size plus the fixed fields.
    let mut chunk = Chunk::with_capacity(frame.body.len() * 2 + frame.messages.len() * 640, frame.messages.len());
    let mut cuts = frame.cut.iter().peekable();
    for (position, range) in frame.messages.iter().enumerate() {
        let raw = &frame.body[range.clone()];
        let id = match frame.protocol {
            Protocol::Https => seed.id(u32::try_from(position).unwrap_or(u32::MAX)),
            Protocol::Syslog => DocumentId::for_stream(frame.drain_token.as_deref(), raw),
        };
        let cut_from = cuts.next_if(|(p, _)| *p == position).map(|(_, full)| *full);
        chunk.push_with(&target.data_stream, id.as_str(), |out| {
            let outcome = match cut_from {
                None => transformer.transform(raw, &ctx, out),
                Some(full) => transformer.transform_cut(raw, full, &ctx, out),
            };
            metrics::record(&outcome);
        });
    }
    chunk
}
