//! The binary's own metrics (task failures, build info), the registration of every crate's
//! ([`register_all`]), and their `/metrics` exposition.

use std::sync::LazyLock;

use prometheus::{Encoder, Gauge, IntCounterVec, IntGaugeVec, Opts, TextEncoder};

/// Long-lived tasks that ended while the process was running (it then stops, non-zero).
pub static TASK_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_task_failures_total",
        "Long-lived tasks that ended or panicked while drainpipe was running, by task",
    );
    IntCounterVec::new(opts, &["task"]).expect("valid metric")
});

/// Reloads of the configuration (SIGHUP), by result: `success`, or `failure` (the running
/// configuration kept).
pub static CONFIG_RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_config_reloads_total",
        "Configuration reloads (SIGHUP), by result; a failed one kept the running configuration",
    );
    let c = IntCounterVec::new(opts, &["result"]).expect("valid metric");
    for result in ["success", "failure"] {
        let _ = c.with_label_values(&[result]);
    }
    c
});

/// When the configuration was last loaded or reloaded with success (Unix seconds).
pub static CONFIG_LAST_RELOAD_SUCCESS: LazyLock<Gauge> = LazyLock::new(|| {
    Gauge::new(
        "drainpipe_config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded (start) or reloaded (SIGHUP) with success, in Unix seconds",
    )
    .expect("valid metric")
});

/// `drainpipe_build_info{version="…"} 1`.
static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_build_info", "drainpipe's version, as a label");
    let g = IntGaugeVec::new(opts, &["version"]).expect("valid metric");
    g.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    g
});

/// Puts every crate's metrics, and the binary's own, in the registry `/metrics` serves; each
/// starts at zero, so rates and alerts work from the first scrape. Once per process.
pub fn register_all() -> prometheus::Result<()> {
    let registry = prometheus::default_registry();
    let own: [Box<dyn prometheus::core::Collector>; 4] = [
        Box::new(TASK_FAILURES.clone()),
        Box::new(BUILD_INFO.clone()),
        Box::new(CONFIG_RELOADS.clone()),
        Box::new(CONFIG_LAST_RELOAD_SUCCESS.clone()),
    ];
    own.into_iter()
        .try_for_each(|c| registry.register(c))
        .and_then(|()| drainpipe_ingest::metrics::register(registry))
        .and_then(|()| drainpipe_delivery::metrics::register(registry))
        .and_then(|()| drainpipe_spool::metrics::register(registry))
        .and_then(|()| drainpipe_archive::metrics::register(registry))
        .and_then(|()| drainpipe_bulk_indexer::metrics::register(registry))
    // process_cpu_seconds_total, process_resident_memory_bytes, open file descriptors…: the
    // default registry holds that collector already (the prometheus crate's `process` feature).
}

/// Every registered metric in the Prometheus text format.
pub fn render() -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}
