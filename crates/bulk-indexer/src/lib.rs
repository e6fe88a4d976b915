//! drainpipe-bulk-indexer gets documents into Elasticsearch with the `_bulk` API.
//!
//! It takes [`Chunk`]s of `(index, id, source)` items, already serialised as NDJSON `create`
//! actions, batches them by documents, bytes and time ([`IndexerConfig`]), and reads every item
//! of every answer ([`response::classify`]): created and 409 (already stored) are done, 429 and
//! 5xx items are sent again alone with backoff (dead-lettered after the policy's `max_attempts`),
//! anything else is dead-lettered ([`DeadLetterConfig`]): to the dead-letter index, or a local
//! file when even that refuses. Whole-request failures are retried with capped exponential
//! backoff for as long as it takes. Every one of those choices is the [`RetryPolicy`]'s. A
//! chunk's callback runs once every item in it is done, which is how the spool learns a record
//! may go, and [`run`] returns an [`IndexerReport`] of what became of the documents. It knows
//! nothing about Heroku.
//!
//! [`Client`] is the connection (one or more nodes, used in turn; credentials from a URL's
//! user-info or an API key) and the home of every Elasticsearch REST call drainpipe makes, each
//! a typed method: `_bulk`, index templates, cluster health, searches and scrolls, counts,
//! field capabilities, privileges, rollovers. Callers name the indices; nothing here does.

mod action;
mod chunk;
mod client;
mod cloud_id;
mod countdown;
mod deadletter;
mod error;
mod indexer;
pub mod metrics;
pub mod response;
mod retry;
mod tls_answer;

pub use action::push_create_action;
pub use chunk::Chunk;
pub use client::{redact, BackingIndex, Client, ClientConfig, Count, DataStream, Privileges, Refusal, Server, Shards};
pub use cloud_id::{CloudId, CloudIdError};
pub use countdown::Countdown;
pub use deadletter::{DeadLetter, DeadLetterConfig, DeadLetterEntry, DeadLetterFile, EntryError, RejectedDocument};
pub use elasticsearch::http::{Method, StatusCode};
pub use error::{login_hint, Error};
pub use indexer::{run, IndexerConfig, IndexerReport};
pub use retry::{Backoff, ItemDecision, RequestDecision, RetryPolicy};
