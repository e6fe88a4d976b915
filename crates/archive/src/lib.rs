//! drainpipe-archive: every accepted frame kept raw, as received, in hourly zstd files per app
//! (`<dir>/<app>/<YYYY>/<MM>/<DD>/<HH>.log.zst`, [`layout`]), with what its documents' ids are
//! made from, so that `replay` gives each line the id it had live ([`format`]).
//!
//! [`ArchiveWriter`] appends batches (one zstd frame per file per batch, synced, then
//! committed in a state file), closes hours by renaming their `.partial` file into place, and
//! removes hours past the retention. [`FileFrames`] reads a file's frames back. Delivery runs
//! the writer as the spool's second reader (drainpipe-delivery's `archiving`): a frame leaves
//! the spool once Elasticsearch and the archive both have it.
//!
//! It knows files and frames, nothing of Elasticsearch or of how frames are transformed.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod format;
pub mod layout;
pub mod metrics;
mod reader;
mod sweep;
mod writer;

pub use layout::{Hour, UNKNOWN_APP};
pub use reader::{files_under, is_archive_file, FileFrames};
pub use writer::{ArchiveConfig, ArchiveWriter, Recovered, DEFAULT_LEVEL, STATE_FILE};

#[cfg(test)]
mod tests;
