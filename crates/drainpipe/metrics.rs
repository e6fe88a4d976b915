//! Metrics of the binary's own stages, and the `/metrics` exposition of every crate's.

use std::sync::LazyLock;

use std::time::{SystemTime, UNIX_EPOCH};

use drainpipe_transform::{Dataset, Outcome};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, TextEncoder,
};

/// Documents built, by dataset (`none` for messages that were not syslog).
static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_transform_documents_total", "Documents built from messages, by dataset");
    let c = every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"));
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
});

/// Documents tagged `_drainpipe_parse_failure`, by dataset.
static PARSE_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_transform_parse_failures_total",
        "Messages indexed raw with a parse-failure tag, by dataset",
    );
    let c = every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"));
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
});

/// Messages Logplex says it dropped before they reached drainpipe (the counts in L10 notices).
static LOGPLEX_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "drainpipe_logplex_dropped_messages_total",
        "Messages Logplex reported dropped upstream (L10 output buffer overflow)",
    )
    .expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
});

/// From a line's `@timestamp` to Elasticsearch confirming its document.
static INDEXING_LAG: LazyLock<Histogram> = LazyLock::new(|| {
    let opts =
        HistogramOpts::new("drainpipe_indexing_lag_seconds", "Time from a line's @timestamp until it is indexed")
            .buckets(vec![0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0]);
    let h = Histogram::with_opts(opts).expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(h.clone()));
    h
});

/// Without a spool: frames accepted (answered 2xx) and not yet delivered, which a crash loses.
pub static MEMORY_BACKLOG_FRAMES: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "drainpipe_memory_backlog_frames",
        "Frames accepted into memory (no spool) and not yet delivered; a crash loses them",
    )
    .expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(g.clone()));
    g
});

/// The messages of [`MEMORY_BACKLOG_FRAMES`].
pub static MEMORY_BACKLOG_MESSAGES: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "drainpipe_memory_backlog_messages",
        "Messages accepted into memory (no spool) and not yet delivered; a crash loses them",
    )
    .expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(g.clone()));
    g
});

/// `drainpipe_build_info{version="…"} 1`.
static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_build_info", "drainpipe's version, as a label");
    let g = IntGaugeVec::new(opts, &["version"]).expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(g.clone()));
    g.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    g
});

/// Starts every dataset (and `none`, for lines that are not syslog) at zero.
fn every_dataset(c: IntCounterVec) -> IntCounterVec {
    for d in Dataset::ALL.iter().map(|d| d.as_str()).chain(["none"]) {
        let _ = c.with_label_values(&[d]);
    }
    c
}

pub fn record(outcome: &Outcome) {
    let dataset = outcome.dataset.map_or("none", Dataset::as_str);
    DOCUMENTS.with_label_values(&[dataset]).inc();
    if outcome.failure.is_some() {
        PARSE_FAILURES.with_label_values(&[dataset]).inc();
    }
    if let Some(n) = outcome.logplex_dropped {
        LOGPLEX_DROPPED.inc_by(n);
    }
}

/// Observes the indexing lag of documents whose `@timestamp`s (Unix seconds) are given.
pub fn observe_lag(timestamps: &[f64]) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    for ts in timestamps {
        INDEXING_LAG.observe((now - ts).max(0.0));
    }
}

/// Every registered metric in the Prometheus text format.
pub fn render() -> Vec<u8> {
    // Touch the lazily registered families so they show up (at zero) before first use.
    LazyLock::force(&DOCUMENTS);
    LazyLock::force(&PARSE_FAILURES);
    LazyLock::force(&LOGPLEX_DROPPED);
    LazyLock::force(&INDEXING_LAG);
    LazyLock::force(&BUILD_INFO);
    LazyLock::force(&MEMORY_BACKLOG_FRAMES);
    LazyLock::force(&MEMORY_BACKLOG_MESSAGES);
    LazyLock::force(&drainpipe_ingest::metrics::EMPTY_MESSAGES);
    LazyLock::force(&drainpipe_ingest::metrics::LABEL_CHANGES);
    LazyLock::force(&drainpipe_ingest::metrics::MEMORY_BYTES);
    LazyLock::force(&drainpipe_ingest::metrics::MEMORY_MAX_BYTES);
    LazyLock::force(&drainpipe_ingest::metrics::EVICTED_CONNECTIONS);
    LazyLock::force(&drainpipe_ingest::metrics::MESSAGES);
    LazyLock::force(&drainpipe_ingest::metrics::BYTES);
    LazyLock::force(&drainpipe_ingest::metrics::COUNT_MISMATCHES);
    LazyLock::force(&drainpipe_ingest::metrics::AUTH_FAILURES);
    LazyLock::force(&drainpipe_ingest::metrics::OPEN_CONNECTIONS);
    LazyLock::force(&drainpipe_ingest::metrics::FRAMING_PROBLEMS);
    LazyLock::force(&drainpipe_ingest::metrics::TRUNCATED);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::DEAD_LETTER_FILE);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::REQUESTS);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::REQUEST_DURATION);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::REACHABLE);
    LazyLock::force(&drainpipe_spool::metrics::BYTES);
    LazyLock::force(&drainpipe_spool::metrics::OLDEST_UNACKED_AGE);
    LazyLock::force(&drainpipe_ingest::metrics::REQUESTS);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::DOCUMENTS);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}
