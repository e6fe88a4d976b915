//! The bulk indexer's Prometheus metrics; [`register`] puts them all in a registry.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Documents by what finally became of them: `indexed`, `duplicate` (409: stored before),
/// `dead_lettered` (will never be stored in its index; see the dead-letter index or file).
/// Each document is counted once, so the outcomes add up to the documents sent.
pub static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_bulk_documents_total", "Documents sent to Elasticsearch, by outcome");
    let c = IntCounterVec::new(opts, &["outcome"]).expect("valid metric");
    for outcome in ["indexed", "duplicate", "dead_lettered"] {
        let _ = c.with_label_values(&[outcome]);
    }
    c
});

/// Items Elasticsearch answered 429 or 5xx inside a bulk answer, sent again (once per retry):
/// not an outcome, since each is indexed, a duplicate or dead-lettered in the end.
pub static DOCUMENT_RETRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "drainpipe_bulk_document_retries_total",
        "Documents sent again after a 429, 5xx or cluster-block item answer",
    )
    .expect("valid metric")
});

/// Bulk requests by outcome: `ok`, `error` (failed as a whole and retried), `too_large` (413,
/// split in two), `refused` (a 4xx no retry can fix; its documents were dead-lettered).
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_bulk_requests_total", "Bulk requests, by outcome");
    let c = IntCounterVec::new(opts, &["outcome"]).expect("valid metric");
    for outcome in ["ok", "error", "too_large", "refused"] {
        let _ = c.with_label_values(&[outcome]);
    }
    c
});

/// Time from sending a bulk request to reading its whole answer.
pub static REQUEST_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new("drainpipe_bulk_request_duration_seconds", "Bulk request latency")
        .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
    Histogram::with_opts(opts).expect("valid metric")
});

/// Bytes of `_bulk` request bodies as sent (gzipped when `--elasticsearch-gzip-level` is set),
/// each attempt counted: what egress to a hosted cluster is billed on.
pub static BULK_BODY_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_bulk_request_body_bytes_total", "Bytes of _bulk request bodies sent, after compression")
        .expect("valid metric")
});

/// Dead letters the dead-letter index refused too, written to the dead-letter file instead.
pub static DEAD_LETTER_FILE: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_bulk_dead_letter_file_entries_total", "Dead letters written to the local file")
        .expect("valid metric")
});

/// 1 while the last request to Elasticsearch got an answer (from any node), 0 while no node
/// can be reached.
pub static REACHABLE: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new("drainpipe_elasticsearch_reachable", "Whether Elasticsearch answered the last request")
        .expect("valid metric")
});

/// Per node (each URL given, without credentials): 1 while requests go to it, 0 while it is
/// set aside because it could not be reached (it is probed until it answers).
pub static NODE_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_elasticsearch_node_up",
        "Whether requests go to this Elasticsearch node (1) or it is set aside as unreachable (0)",
    );
    IntGaugeVec::new(opts, &["node"]).expect("valid metric")
});

/// Requests that could not reach a node and went to the next one (only with several nodes).
pub static NODE_FAILOVERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_elasticsearch_node_failovers_total",
        "Requests that could not reach this Elasticsearch node and went to the next one",
    );
    IntCounterVec::new(opts, &["node"]).expect("valid metric")
});

/// `_bulk` requests Elasticsearch refused for drainpipe's credentials (401) or their
/// privileges (403); they are retried, and nothing is stored until someone fixes them.
pub static CREDENTIALS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_elasticsearch_credentials_refused_total",
        "Bulk requests Elasticsearch answered 401 or 403, by status",
    );
    let c = IntCounterVec::new(opts, &["status"]).expect("valid metric");
    for status in ["401", "403"] {
        let _ = c.with_label_values(&[status]);
    }
    c
});

/// Registers every metric of this crate in `registry` (the binary serves it on `/metrics`).
pub fn register(registry: &prometheus::Registry) -> prometheus::Result<()> {
    registry.register(Box::new(DOCUMENTS.clone()))?;
    registry.register(Box::new(REQUESTS.clone()))?;
    registry.register(Box::new(DOCUMENT_RETRIES.clone()))?;
    registry.register(Box::new(REQUEST_DURATION.clone()))?;
    registry.register(Box::new(BULK_BODY_BYTES.clone()))?;
    registry.register(Box::new(DEAD_LETTER_FILE.clone()))?;
    registry.register(Box::new(REACHABLE.clone()))?;
    registry.register(Box::new(NODE_UP.clone()))?;
    registry.register(Box::new(NODE_FAILOVERS.clone()))?;
    registry.register(Box::new(CREDENTIALS_REFUSED.clone()))?;
    Ok(())
}
