//! The bulk indexer's Prometheus metrics, registered in the default registry.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

/// Documents by what Elasticsearch did with them: `indexed`, `duplicate` (409: stored
/// before), `retried` (429/5xx item, sent again), `rejected` (will never be stored).
pub static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_bulk_documents_total", "Documents sent to Elasticsearch, by outcome");
    register(IntCounterVec::new(opts, &["outcome"]).expect("valid metric"))
});

/// Bulk requests by outcome: `ok` or `error` (the whole request failed and is retried).
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_bulk_requests_total", "Bulk requests, by outcome");
    register(IntCounterVec::new(opts, &["outcome"]).expect("valid metric"))
});

/// Time from sending a bulk request to reading its whole answer.
pub static REQUEST_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new("drainpipe_bulk_request_duration_seconds", "Bulk request latency")
        .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
    register(Histogram::with_opts(opts).expect("valid metric"))
});
