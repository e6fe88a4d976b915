//! The stage between receiving and indexing: each accepted frame's messages become documents
//! (drainpipe-transform) written as bulk items (drainpipe-bulk-indexer) with deterministic ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drainpipe_bulk_indexer::Chunk;
use drainpipe_ingest::{Frame, FrameSink, Protocol, Rejected};
use drainpipe_spool::{Spool, SpoolError, SpoolReader};
use drainpipe_transform::{Context, DocumentId, FrameSeed, StructuredData, Timestamp, Transformer};
use tokio::sync::{mpsc, watch};

use crate::config::ServeConfig;
use crate::{frame_codec, metrics};

/// Where the receivers hand frames: the durable spool, or (without `--spool-dir`) a bounded
/// in-memory queue. Full means 503 with `Retry-After` for HTTPS, and no reading for syslog.
#[derive(Clone, Debug)]
pub enum Handoff {
    Memory(mpsc::Sender<Frame>),
    Spool(Spool),
}

/// While the spool is full, Logplex is told to come back after this long.
const SPOOL_FULL_RETRY: Duration = Duration::from_secs(5);

impl FrameSink for Handoff {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        match self {
            Handoff::Memory(queue) => queue.try_send(frame).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Rejected::Full { retry_after: Duration::from_secs(1) },
                mpsc::error::TrySendError::Closed(_) => Rejected::ShuttingDown,
            }),
            Handoff::Spool(spool) => match spool.append(frame_codec::encode(&frame)).await {
                Ok(_) => Ok(()),
                Err(SpoolError::Full { .. }) => Err(Rejected::Full { retry_after: SPOOL_FULL_RETRY }),
                Err(SpoolError::Closed) => Err(Rejected::ShuttingDown),
                Err(e) => {
                    tracing::error!(error = %e, "cannot write to the spool; refusing the frame");
                    Err(Rejected::Full { retry_after: SPOOL_FULL_RETRY })
                }
            },
        }
    }

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        match self {
            Handoff::Memory(queue) => queue.send(frame).await.map_err(|_| Rejected::ShuttingDown),
            Handoff::Spool(spool) => {
                let record = frame_codec::encode(&frame);
                loop {
                    match spool.append(record.clone()).await {
                        Ok(_) => return Ok(()),
                        Err(SpoolError::Closed) => return Err(Rejected::ShuttingDown),
                        Err(e) => {
                            if !matches!(e, SpoolError::Full { .. }) {
                                tracing::error!(error = %e, "cannot write to the spool; waiting");
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        }
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

impl Target {
    pub fn new(config: &ServeConfig) -> Target {
        Target { data_stream: config.data_stream(), token_apps: Arc::new(config.drain_tokens.as_map().clone()) }
    }
}

/// Reads the spool in order until it is closed (or `stop` turns true), sending one chunk per
/// frame; each record is acknowledged once every document of its frame is done.
pub async fn run_spooled(
    mut reader: SpoolReader,
    spool: Spool,
    chunks: mpsc::Sender<Chunk>,
    target: Target,
    mut stop: watch::Receiver<bool>,
) {
    let mut transformer = Transformer::new();
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (id, record) = match next {
            None => return,
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::error!(error = %e, "unreadable spool record; skipping the rest of its segment");
                reader.skip_segment();
                continue;
            }
        };
        let frame = match frame_codec::decode(&record) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, bytes = record.len(), "spool record is not a frame; dropping it");
                spool.ack(id);
                continue;
            }
        };
        let acks = spool.clone();
        let chunk = to_chunk(&mut transformer, &frame, &target, move || acks.ack(id));
        if chunks.send(chunk).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
    }
}

/// Transforms frames until `frames` closes, sending one chunk per frame to the indexer.
pub async fn run(mut frames: mpsc::Receiver<Frame>, chunks: mpsc::Sender<Chunk>, target: Target) {
    let mut transformer = Transformer::new();
    while let Some(frame) = frames.recv().await {
        let chunk = to_chunk(&mut transformer, &frame, &target, || {});
        if chunks.send(chunk).await.is_err() {
            tracing::error!("indexer stopped; the pipeline cannot hand on documents");
            return;
        }
    }
}

/// Every message of `frame` as a `create` of its document in the target data stream. HTTPS
/// messages are identified by their frame and position; syslog messages, which arrive in
/// arbitrary reads of a stream, by their own bytes (which hold the drain token as HOSTNAME).
/// `done` runs once every document is stored, already stored, or dead-lettered.
pub fn to_chunk(
    transformer: &mut Transformer,
    frame: &Frame,
    target: &Target,
    done: impl FnOnce() + Send + 'static,
) -> Chunk {
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
    let mut timestamps = Vec::with_capacity(frame.messages.len());
    for (position, range) in frame.messages.iter().enumerate() {
        let raw = &frame.body[range.clone()];
        let id = match frame.protocol {
            Protocol::Https => seed.id(u32::try_from(position).unwrap_or(u32::MAX)),
            Protocol::Syslog => DocumentId::for_stream(frame.drain_token.as_deref(), raw),
        };
        let cut_from = cuts.next_if(|(p, _)| *p == position).map(|(_, full)| *full);
        chunk.push_with(&target.data_stream, id.as_str(), raw, |out| {
            let outcome = match cut_from {
                None => transformer.transform(raw, &ctx, out),
                Some(full) => transformer.transform_cut(raw, full, &ctx, out),
            };
            metrics::record(&outcome);
            let ts = outcome.timestamp;
            timestamps.push(ts.unix_seconds() as f64 + f64::from(ts.subsec_nanos()) / 1e9);
        });
    }
    chunk.on_done(move || {
        metrics::observe_lag(&timestamps);
        done();
    });
    chunk
}
