//! Metrics of the binary's own stages, and the `/metrics` exposition of every crate's.

use std::sync::LazyLock;

use drainpipe_transform::{Dataset, Outcome};
use prometheus::{Encoder, IntCounterVec, Opts, TextEncoder};

/// Documents built, by dataset (`none` for messages that were not syslog).
static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_transform_documents_total", "Documents built from messages, by dataset");
    let c = IntCounterVec::new(opts, &["dataset"]).expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
});

/// Documents tagged `_drainpipe_parse_failure`, by dataset.
static PARSE_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_transform_parse_failures_total",
        "Messages indexed raw with a parse-failure tag, by dataset",
    );
    let c = IntCounterVec::new(opts, &["dataset"]).expect("valid metric");
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
});

pub fn record(outcome: &Outcome) {
    let dataset = outcome.dataset.map_or("none", Dataset::as_str);
    DOCUMENTS.with_label_values(&[dataset]).inc();
    if outcome.failure.is_some() {
        PARSE_FAILURES.with_label_values(&[dataset]).inc();
    }
}

/// Every registered metric in the Prometheus text format.
pub fn render() -> Vec<u8> {
    // Touch the lazily registered families so they show up (at zero) before first use.
    LazyLock::force(&DOCUMENTS);
    LazyLock::force(&PARSE_FAILURES);
    LazyLock::force(&drainpipe_ingest::metrics::REQUESTS);
    LazyLock::force(&drainpipe_bulk_indexer::metrics::DOCUMENTS);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}
