//! The binary's own metrics (task failures, build info), the registration of every crate's
//! ([`register_all`]), and their `/metrics` exposition.

use std::sync::LazyLock;

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, TextEncoder};

/// Long-lived tasks that ended while the process was running (it then stops, non-zero).
pub static TASK_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_task_failures_total",
        "Long-lived tasks that ended or panicked while drainpipe was running, by task",
    );
    IntCounterVec::new(opts, &["task"]).expect("valid metric")
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
    let own: [Box<dyn prometheus::core::Collector>; 2] =
        [Box::new(TASK_FAILURES.clone()), Box::new(BUILD_INFO.clone())];
    own.into_iter()
        .try_for_each(|c| registry.register(c))
        .and_then(|()| drainpipe_ingest::metrics::register(registry))
        .and_then(|()| drainpipe_delivery::metrics::register(registry))
        .and_then(|()| drainpipe_spool::metrics::register(registry))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Names `drainpipe_…` used in a text (PromQL in alerts and dashboards), without the
    /// `_bucket`/`_sum`/`_count` of histograms.
    fn metric_names(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (i, _) in text.match_indices("drainpipe_") {
            // `_drainpipe_parse_failure` is a tag, not a metric.
            if text[..i].ends_with(|c: char| c == '_' || c.is_ascii_alphanumeric()) {
                continue;
            }
            let name: String =
                text[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            names.insert(base.to_owned());
        }
        names
    }

    /// An alert or a panel on a metric drainpipe does not export never fires and never draws:
    /// every name the shipped alerts and dashboard use is one `/metrics` serves.
    #[test]
    fn the_alerts_and_the_dashboard_use_only_metrics_drainpipe_exports() {
        super::register_all().expect("every metric registers once, none twice");
        // Per-node metrics get their series when a client names its nodes, as `serve` does
        // before anything is scraped.
        let _client = drainpipe_bulk_indexer::Client::new("http://127.0.0.1:9200").expect("a valid URL");
        let exported: BTreeSet<String> = prometheus::gather().iter().map(|f| f.name().to_owned()).collect();
        for process in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(exported.contains(process), "{process} is not exported");
        }
        for (file, text) in [
            ("deploy/prometheus/alerts.yaml", include_str!("../../deploy/prometheus/alerts.yaml")),
            ("deploy/grafana/drainpipe.json", include_str!("../../deploy/grafana/drainpipe.json")),
        ] {
            let used = metric_names(text);
            assert!(used.len() > 5, "{file}: {used:?}");
            let unknown: Vec<_> = used.difference(&exported).collect();
            assert!(unknown.is_empty(), "{file} uses metrics drainpipe does not export: {unknown:?}");
        }
    }
}
