//! The spool's Prometheus metrics, registered in the default registry.

use std::sync::LazyLock;

use prometheus::{Gauge, IntCounter, IntGauge};

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

/// Bytes the spool holds (segments on disk plus accepted appends not yet written).
pub static BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register(IntGauge::new("drainpipe_spool_bytes", "Bytes held in the spool").expect("valid metric"))
});

/// The configured limit (`--spool-max-bytes`), for alerting on how full the spool is.
pub static MAX_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register(IntGauge::new("drainpipe_spool_max_bytes", "The spool's size limit").expect("valid metric"))
});

/// Age of the oldest segment that still holds unacknowledged records.
pub static OLDEST_UNACKED_AGE: LazyLock<Gauge> = LazyLock::new(|| {
    register(
        Gauge::new(
            "drainpipe_spool_oldest_unacked_age_seconds",
            "Age of the oldest spooled record not yet acknowledged (upper bound, per segment)",
        )
        .expect("valid metric"),
    )
});

pub static APPENDED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("drainpipe_spool_appended_records_total", "Records written to the spool")
            .expect("valid metric"),
    )
});

pub static ACKED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("drainpipe_spool_acked_records_total", "Records acknowledged (delivered or dead-lettered)")
            .expect("valid metric"),
    )
});

/// Records found on disk at start-up and handed out again.
pub static REPLAYED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("drainpipe_spool_replayed_records_total", "Records replayed at start-up")
            .expect("valid metric"),
    )
});

/// Segments whose torn tail (a crash mid-write) was cut off at start-up.
pub static TORN_TAILS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("drainpipe_spool_torn_tails_total", "Torn segment tails cut off at start-up")
            .expect("valid metric"),
    )
});

/// Damaged stretches inside written segments that were skipped to the next valid record.
pub static CORRUPT_REGIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "drainpipe_spool_corrupt_regions_total",
            "Damaged stretches of spool segments skipped to the next valid record",
        )
        .expect("valid metric"),
    )
});

/// Appends refused because the spool could not write them (a full disk and the like).
pub static WRITE_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("drainpipe_spool_write_failures_total", "Spool writes that failed (the appends were refused)")
            .expect("valid metric"),
    )
});
