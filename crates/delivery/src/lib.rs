//! drainpipe-delivery: from an accepted frame to its documents confirmed by Elasticsearch.
//!
//! The receivers hand frames to a [`Handoff`]: the durable spool (each frame a record,
//! [`record`]) or a bounded memory queue. One flow reads them in order from a [`FrameSource`],
//! transforms every message (drainpipe-transform, under [`panic_guard`]) into a `create` item
//! with a deterministic id ([`MessageIds`]) in the stream of its dataset ([`DataStreams`]),
//! gathers items into bounded chunks ([`Chunker`]) for an [`Indexer`] (drainpipe-bulk-indexer
//! against Elasticsearch, or a stand-in in tests), and acknowledges a frame once every
//! document of it is stored, already stored or dead-lettered. [`Delivery::start`] wires it;
//! the [`DeliveryHandle`] stops it and says what became of everything ([`DeliveryReport`]).
//! With an archive ([`Archiving`]), a second loop reads the same spool and writes every frame
//! raw to drainpipe-archive; a record goes once both are done with it.
//!
//! It knows nothing of HTTP, sockets, options or the index template's content.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod archiving;
mod chunker;
mod delivery;
mod documents;
mod flow;
mod handoff;
pub mod metrics;
pub mod panic_guard;
pub mod record;
mod ruling;
mod source;
mod streams;

pub use archiving::Archiving;
pub use chunker::{Chunker, IndexerGone, CHUNKS_WAITING};
pub use delivery::{
    BulkIndexer, Delivery, DeliveryConfig, DeliveryHandle, DeliveryReport, Indexer, IndexerFailed, Queue, TaskEnd,
    Unflushed,
};
pub use documents::Documents;
pub use flow::FlowEnd;
pub use handoff::{Fill, FillGauge, Handoff};
pub use record::MessageIds;
pub use ruling::LiveRules;
pub use source::{Done, FrameSource};
pub use streams::DataStreams;
