//! The archive's Prometheus metrics; [`register`] puts them all in a registry.

// Every `expect` here builds a metric from constant names and help texts: it can fail only on a
// typo in this file, never on what the archive reads, and the tests that register every metric
// would fail first.
#![allow(clippy::expect_used)]

use std::sync::LazyLock;

use prometheus::{Gauge, IntCounter, IntGauge};

/// Compressed bytes appended to archive files.
pub static BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_written_bytes_total", "Compressed bytes written to the archive")
        .expect("valid metric")
});

/// Lines (messages) archived, and the bytes they had as received.
pub static LINES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_lines_total", "Lines written to the archive").expect("valid metric")
});

pub static RAW_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_raw_bytes_total", "Bytes of frames written to the archive, before compression")
        .expect("valid metric")
});

/// Files in the archive (finished and open hours), and their bytes: counted at start-up and at
/// each retention sweep, kept current in between.
pub static FILES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new("drainpipe_archive_files", "Hour files in the archive, finished and open").expect("valid metric")
});

pub static SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new("drainpipe_archive_size_bytes", "Bytes of the archive's hour files on disk").expect("valid metric")
});

/// Start of the oldest hour still in the archive (0 while it is empty).
pub static OLDEST_HOUR: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new(
        "drainpipe_archive_oldest_hour_timestamp_seconds",
        "Start of the oldest hour the archive holds, in seconds since the epoch",
    )
    .expect("valid metric")
});

/// Hours closed (their file renamed into place) and removed by retention.
pub static CLOSED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_files_closed_total", "Hour files finished and renamed into place")
        .expect("valid metric")
});

pub static REMOVED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_files_removed_total", "Hour files removed by --archive-retention")
        .expect("valid metric")
});

/// Batches that could not be written (a full or failing disk); each is tried again.
pub static WRITE_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_archive_write_failures_total", "Archive batches that could not be written")
        .expect("valid metric")
});

/// How long the oldest frame waiting for the archive has waited (by its receive time); 0 while
/// the archive has written everything the spool holds.
pub static LAG: LazyLock<Gauge> = LazyLock::new(|| {
    Gauge::new("drainpipe_archive_lag_seconds", "Age of the oldest frame not yet in the archive (0: caught up)")
        .expect("valid metric")
});

/// When a batch was last made durable in the archive.
pub static LAST_WRITE: LazyLock<Gauge> = LazyLock::new(|| {
    Gauge::new(
        "drainpipe_archive_last_write_timestamp_seconds",
        "When a batch was last written and synced to the archive",
    )
    .expect("valid metric")
});

/// Registers every archive metric in `registry`.
pub fn register(registry: &prometheus::Registry) -> prometheus::Result<()> {
    registry.register(Box::new(BYTES.clone()))?;
    registry.register(Box::new(LINES.clone()))?;
    registry.register(Box::new(RAW_BYTES.clone()))?;
    registry.register(Box::new(FILES.clone()))?;
    registry.register(Box::new(SIZE.clone()))?;
    registry.register(Box::new(OLDEST_HOUR.clone()))?;
    registry.register(Box::new(CLOSED.clone()))?;
    registry.register(Box::new(REMOVED.clone()))?;
    registry.register(Box::new(WRITE_FAILURES.clone()))?;
    registry.register(Box::new(LAG.clone()))?;
    registry.register(Box::new(LAST_WRITE.clone()))?;
    Ok(())
}
