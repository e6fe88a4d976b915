//! The spool's Prometheus metrics; [`register`] puts them all in a registry.

// Every `expect` here builds a metric from constant names and help texts: it can fail only on a
// typo in this file, never on what the spool reads, and the tests that register every metric
// would fail first.
#![allow(clippy::expect_used)]

use std::sync::LazyLock;

use prometheus::{Gauge, IntCounter, IntGauge};

/// Bytes the spool holds (segments on disk plus accepted appends not yet written).
pub static BYTES: LazyLock<IntGauge> =
    LazyLock::new(|| IntGauge::new("drainpipe_spool_bytes", "Bytes held in the spool").expect("valid metric"));

/// The configured limit (`--spool-max-bytes`), for alerting on how full the spool is.
pub static MAX_BYTES: LazyLock<IntGauge> =
    LazyLock::new(|| IntGauge::new("drainpipe_spool_max_bytes", "The spool's size limit").expect("valid metric"));

/// Age of the oldest segment that still holds unacknowledged records.
pub static OLDEST_UNACKED_AGE: LazyLock<Gauge> = LazyLock::new(|| {
    Gauge::new(
        "drainpipe_spool_oldest_unacked_age_seconds",
        "Age of the oldest spooled record not yet acknowledged (upper bound, per segment)",
    )
    .expect("valid metric")
});

pub static APPENDED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_spool_appended_records_total", "Records written to the spool").expect("valid metric")
});

pub static ACKED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_spool_acked_records_total", "Records acknowledged (delivered or dead-lettered)")
        .expect("valid metric")
});

/// Records found on disk at start-up and handed out again.
pub static REPLAYED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_spool_replayed_records_total", "Records replayed at start-up").expect("valid metric")
});

/// Segments whose torn tail (a crash mid-write) was cut off at start-up.
pub static TORN_TAILS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_spool_torn_tails_total", "Torn segment tails cut off at start-up").expect("valid metric")
});

/// Damaged stretches inside written segments that were skipped to the next valid record.
pub static CORRUPT_REGIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "drainpipe_spool_corrupt_regions_total",
        "Damaged stretches of spool segments skipped to the next valid record",
    )
    .expect("valid metric")
});

/// Appends refused because the spool could not write them (a full disk and the like).
pub static WRITE_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_spool_write_failures_total", "Spool writes that failed (the appends were refused)")
        .expect("valid metric")
});

/// Registers every metric of this crate in `registry` (the binary serves it on `/metrics`).
pub fn register(registry: &prometheus::Registry) -> prometheus::Result<()> {
    registry.register(Box::new(BYTES.clone()))?;
    registry.register(Box::new(MAX_BYTES.clone()))?;
    registry.register(Box::new(OLDEST_UNACKED_AGE.clone()))?;
    registry.register(Box::new(APPENDED.clone()))?;
    registry.register(Box::new(ACKED.clone()))?;
    registry.register(Box::new(REPLAYED.clone()))?;
    registry.register(Box::new(TORN_TAILS.clone()))?;
    registry.register(Box::new(CORRUPT_REGIONS.clone()))?;
    registry.register(Box::new(WRITE_FAILURES.clone()))?;
    Ok(())
}
