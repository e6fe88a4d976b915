//! Metrics of the binary's own stages, the registration of every crate's ([`register_all`]),
//! and their `/metrics` exposition.

use std::sync::LazyLock;

use std::time::{SystemTime, UNIX_EPOCH};

use drainpipe_transform::{Dataset, Outcome};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, TextEncoder,
};

/// Documents built, by dataset (`none` for messages that were not syslog).
static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new("drainpipe_transform_documents_total", "Documents built from messages, by dataset");
    every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"))
});

/// Documents tagged `_drainpipe_parse_failure`, by dataset.
static PARSE_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_transform_parse_failures_total",
        "Messages indexed raw with a parse-failure tag, by dataset",
    );
    every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"))
});

/// Messages the transform panicked on: each was dead-lettered raw and the pipeline went on.
pub static TRANSFORM_PANICS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "drainpipe_transform_panics_total",
        "Messages the transform failed on with a panic (a bug): each is dead-lettered with its raw line",
    )
    .expect("valid metric")
});

/// Long-lived tasks that ended while the process was running (it then stops, non-zero).
pub static TASK_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "drainpipe_task_failures_total",
        "Long-lived tasks that ended or panicked while drainpipe was running, by task",
    );
    IntCounterVec::new(opts, &["task"]).expect("valid metric")
});

/// Messages Logplex says it dropped before they reached drainpipe (the counts in L10 notices).
static LOGPLEX_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "drainpipe_logplex_dropped_messages_total",
        "Messages Logplex reported dropped upstream (L10 output buffer overflow)",
    )
    .expect("valid metric")
});

/// From a line's `@timestamp` to Elasticsearch confirming its document.
static INDEXING_LAG: LazyLock<Histogram> = LazyLock::new(|| {
    let opts =
        HistogramOpts::new("drainpipe_indexing_lag_seconds", "Time from a line's @timestamp until it is indexed")
            .buckets(vec![0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0]);
    Histogram::with_opts(opts).expect("valid metric")
});

/// Without a spool: frames accepted (answered 2xx) and not yet delivered, which a crash loses.
pub static MEMORY_BACKLOG_FRAMES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new(
        "drainpipe_memory_backlog_frames",
        "Frames accepted into memory (no spool) and not yet delivered; a crash loses them",
    )
    .expect("valid metric")
});

/// The messages of [`MEMORY_BACKLOG_FRAMES`].
pub static MEMORY_BACKLOG_MESSAGES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new(
        "drainpipe_memory_backlog_messages",
        "Messages accepted into memory (no spool) and not yet delivered; a crash loses them",
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

/// Starts every dataset (and `none`, for lines that are not syslog) at zero.
fn every_dataset(c: IntCounterVec) -> IntCounterVec {
    for d in Dataset::ALL.iter().map(|d| d.as_str()).chain(["none"]) {
        let _ = c.with_label_values(&[d]);
    }
    c
}

/// The transform's outcomes of one frame, counted locally and added to the counters when
/// dropped: a labelled counter's lookup per document is a hash of its label.
#[derive(Debug, Default)]
pub struct TransformTally {
    /// Per dataset in the order of `Dataset::ALL`, then `none`.
    documents: [u64; Dataset::ALL.len() + 1],
    failures: [u64; Dataset::ALL.len() + 1],
    dropped: u64,
}

impl TransformTally {
    pub fn record(&mut self, outcome: &Outcome) {
        let i = outcome.dataset.map_or(Dataset::ALL.len(), Dataset::index);
        self.documents[i] += 1;
        self.failures[i] += u64::from(outcome.failure.is_some());
        self.dropped += outcome.logplex_dropped.unwrap_or(0);
    }
}

impl Drop for TransformTally {
    fn drop(&mut self) {
        let names = Dataset::ALL.iter().map(|d| d.as_str()).chain(["none"]);
        for ((name, docs), failures) in names.zip(self.documents).zip(self.failures) {
            if docs > 0 {
                DOCUMENTS.with_label_values(&[name]).inc_by(docs);
            }
            if failures > 0 {
                PARSE_FAILURES.with_label_values(&[name]).inc_by(failures);
            }
        }
        if self.dropped > 0 {
            LOGPLEX_DROPPED.inc_by(self.dropped);
        }
    }
}

/// Observes the indexing lag of documents whose `@timestamp`s (Unix seconds) are given.
pub fn observe_lag(timestamps: &[f64]) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    for ts in timestamps {
        INDEXING_LAG.observe((now - ts).max(0.0));
    }
}

/// Puts every crate's metrics, and the binary's own, in the registry `/metrics` serves; each
/// starts at zero, so rates and alerts work from the first scrape. Once per process.
pub fn register_all() -> prometheus::Result<()> {
    let registry = prometheus::default_registry();
    let own: [Box<dyn prometheus::core::Collector>; 9] = [
        Box::new(DOCUMENTS.clone()),
        Box::new(TRANSFORM_PANICS.clone()),
        Box::new(TASK_FAILURES.clone()),
        Box::new(PARSE_FAILURES.clone()),
        Box::new(LOGPLEX_DROPPED.clone()),
        Box::new(INDEXING_LAG.clone()),
        Box::new(MEMORY_BACKLOG_FRAMES.clone()),
        Box::new(MEMORY_BACKLOG_MESSAGES.clone()),
        Box::new(BUILD_INFO.clone()),
    ];
    own.into_iter()
        .try_for_each(|c| registry.register(c))
        .and_then(|()| drainpipe_ingest::metrics::register(registry))
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
