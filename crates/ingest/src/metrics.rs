//! The ingest crate's Prometheus metrics; [`register`] puts them all in a registry.

// Every `expect` here builds a metric from constant names, help texts, label names and
// buckets: it can fail only on a typo in this file, never on input, and the tests that
// register every metric would fail first.
#![allow(clippy::expect_used)]

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Starts every known label value at zero, so rates and alerts work from the first scrape.
fn with_labels<T: prometheus::core::MetricVecBuilder>(
    v: prometheus::core::MetricVec<T>,
    values: &[&str],
) -> prometheus::core::MetricVec<T> {
    for value in values {
        let _ = v.with_label_values(&[value]);
    }
    v
}

/// Answers to drain requests (`/logs`, any method), by status code; other paths are not counted,
/// so that they do not dilute the share of drains refused (DrainpipeRefusingDrains).
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_requests_total", "Drain requests answered, by status code");
    let c = IntCounterVec::new(opts, &["status"]).expect("valid metric");
    // Every answer POST /logs gives (docs/configuration.md), at zero from the start, so that a
    // rate of 503s is 0 rather than no data before the first one.
    for status in ["200", "400", "401", "403", "405", "408", "413", "415", "429", "503"] {
        let _ = c.with_label_values(&[status]);
    }
    c
});

/// Time from a drain request's headers to its answer (`POST /logs` only): what Logplex waits.
pub static REQUEST_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "drainpipe_ingest_request_duration_seconds",
        "Time from a drain request's headers to its answer",
    )
    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
    Histogram::with_opts(opts).expect("valid metric")
});

/// Messages framed from accepted requests, by protocol.
pub static MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_messages_total", "Messages received (OTLP: log records), by protocol");
    with_labels(IntCounterVec::new(opts, &["protocol"]).expect("valid metric"), &["https", "syslog", "otlp"])
});

/// Body bytes of accepted requests (after decompression), by protocol.
pub static BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_received_bytes_total", "Message bytes received, by protocol");
    with_labels(IntCounterVec::new(opts, &["protocol"]).expect("valid metric"), &["https", "syslog", "otlp"])
});

/// OTLP export requests, by signal and the status they were answered.
pub static OTLP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_otlp_requests_total", "OTLP export requests, by signal and answer status");
    let counter = IntCounterVec::new(opts, &["signal", "status"]).expect("valid metric");
    for signal in ["logs", "metrics", "traces"] {
        for status in ["200", "400", "401", "413", "415", "429", "503"] {
            counter.with_label_values(&[signal, status]);
        }
    }
    counter
});

/// OTLP/gRPC export calls, by signal and the gRPC status they were answered.
pub static OTLP_GRPC_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_otlp_grpc_requests_total", "OTLP/gRPC export calls, by signal and answer code");
    let counter = IntCounterVec::new(opts, &["signal", "code"]).expect("valid metric");
    for signal in ["logs", "metrics", "traces"] {
        for code in ["ok", "invalid_argument", "unauthenticated", "resource_exhausted", "unavailable"] {
            counter.with_label_values(&[signal, code]);
        }
    }
    counter
});

/// Data points refused with a partial success: exponential histograms, which drainpipe does
/// not store (`metrics`; `traces` stays 0, kept for dashboards made before spans were stored).
pub static OTLP_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_otlp_refused_total",
        "OTLP data points refused with a partial success (exponential histograms are not stored), by signal",
    );
    with_labels(IntCounterVec::new(opts, &["signal"]).expect("valid metric"), &["metrics", "traces"])
});

/// Frames whose message count disagreed with `Logplex-Msg-Count`.
pub static COUNT_MISMATCHES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "drainpipe_ingest_msg_count_mismatches_total",
        "Frames whose framed message count disagreed with Logplex-Msg-Count",
    )
    .expect("valid metric")
});

/// Frames with broken framing after some good messages (kept, and tagged downstream).
pub static FRAMING_PROBLEMS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_ingest_framing_problems_total", "Frames whose octet counts broke part-way")
        .expect("valid metric")
});

/// Open client connections, by protocol.
pub static OPEN_CONNECTIONS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_open_connections", "Open receiver connections, by protocol");
    with_labels(IntGaugeVec::new(opts, &["protocol"]).expect("valid metric"), &["https", "syslog", "admin"])
});

/// Refused senders, by reason: `credentials` (401), `drain_token` (403), `rate_limited` (429).
pub static AUTH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_auth_failures_total", "Requests refused for authentication, by reason");
    let reasons = ["credentials", "drain_token", "rate_limited"];
    with_labels(IntCounterVec::new(opts, &["reason"]).expect("valid metric"), &reasons)
});

/// Syslog lines dropped because their HOSTNAME is no listed drain token (with `--drain-token`),
/// by reason: `no_token` (no drain token at all), `unlisted_token` (a `d.` token not listed).
pub static SYSLOG_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_ingest_syslog_refused_total",
        "Syslog lines dropped for a HOSTNAME that is no listed drain token, by reason",
    );
    with_labels(IntCounterVec::new(opts, &["reason"]).expect("valid metric"), &["no_token", "unlisted_token"])
});

/// Syslog messages cut to the size limit (indexed, tagged `_drainpipe_truncated`).
pub static TRUNCATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_ingest_truncated_messages_total", "Messages cut to the size limit, by protocol");
    with_labels(IntCounterVec::new(opts, &["protocol"]).expect("valid metric"), &["syslog"])
});

/// Messages of length zero in Logplex bodies (`0 `): counted, not indexed.
pub static EMPTY_MESSAGES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("drainpipe_ingest_empty_messages_total", "Zero-length messages in drain bodies, not indexed")
        .expect("valid metric")
});

/// Drain URL labels changed to fit the label rules, by change: `renamed`, `value_cut`, `dropped`.
pub static LABEL_CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts =
        Opts::new("drainpipe_ingest_label_changes_total", "Drain URL labels rewritten, cut or dropped, by change");
    with_labels(IntCounterVec::new(opts, &["change"]).expect("valid metric"), &["renamed", "value_cut", "dropped"])
});

/// Bytes of received frames held in memory now (bodies being read, frames queued in memory).
pub static MEMORY_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new("drainpipe_ingest_memory_bytes", "Bytes of received frames held in memory").expect("valid metric")
});

/// The limit of [`MEMORY_BYTES`] (`--queue-max-bytes`).
pub static MEMORY_MAX_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new("drainpipe_ingest_memory_max_bytes", "Limit of bytes of received frames held in memory")
        .expect("valid metric")
});

/// Connections closed to make room for new ones, by protocol (idle first).
pub static EVICTED_CONNECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_ingest_evicted_connections_total",
        "Idle connections closed to make room for new ones at the connection limit, by protocol",
    );
    with_labels(IntCounterVec::new(opts, &["protocol"]).expect("valid metric"), &["https", "syslog", "admin"])
});

/// Registers every metric of this crate in `registry` (the binary serves it on `/metrics`).
pub fn register(registry: &prometheus::Registry) -> prometheus::Result<()> {
    registry.register(Box::new(REQUESTS.clone()))?;
    registry.register(Box::new(REQUEST_DURATION.clone()))?;
    registry.register(Box::new(MESSAGES.clone()))?;
    registry.register(Box::new(BYTES.clone()))?;
    registry.register(Box::new(COUNT_MISMATCHES.clone()))?;
    registry.register(Box::new(FRAMING_PROBLEMS.clone()))?;
    registry.register(Box::new(OPEN_CONNECTIONS.clone()))?;
    registry.register(Box::new(AUTH_FAILURES.clone()))?;
    registry.register(Box::new(TRUNCATED.clone()))?;
    registry.register(Box::new(SYSLOG_REFUSED.clone()))?;
    registry.register(Box::new(EMPTY_MESSAGES.clone()))?;
    registry.register(Box::new(LABEL_CHANGES.clone()))?;
    registry.register(Box::new(MEMORY_BYTES.clone()))?;
    registry.register(Box::new(MEMORY_MAX_BYTES.clone()))?;
    registry.register(Box::new(EVICTED_CONNECTIONS.clone()))?;
    registry.register(Box::new(OTLP_REQUESTS.clone()))?;
    registry.register(Box::new(OTLP_REFUSED.clone()))?;
    registry.register(Box::new(OTLP_GRPC_REQUESTS.clone()))?;
    Ok(())
}
