//! Delivery's metrics: what the transform made of messages, what it panicked on, the indexing
//! lag, and the memory backlog. [`register`] puts them in a registry.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use drainpipe_transform::{Dataset, Outcome};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

// A metric's definition is checked by the tests; one that does not build is a bug at start-up.
#[allow(clippy::expect_used)]
mod defined {
    use super::*;

    /// Documents built, by dataset (`none` for messages that were not syslog).
    pub static DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        let opts = Opts::new("drainpipe_transform_documents_total", "Documents built from messages, by dataset");
        every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"))
    });

    /// Documents tagged `_drainpipe_parse_failure`, by dataset.
    pub static PARSE_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
        let opts = Opts::new(
            "drainpipe_transform_parse_failures_total",
            "Messages indexed raw with a parse-failure tag, by dataset",
        );
        every_dataset(IntCounterVec::new(opts, &["dataset"]).expect("valid metric"))
    });

    /// Messages the transform panicked on: each was dead-lettered raw and delivery went on.
    pub static TRANSFORM_PANICS: LazyLock<IntCounter> = LazyLock::new(|| {
        IntCounter::new(
            "drainpipe_transform_panics_total",
            "Messages the transform failed on with a panic (a bug): each is dead-lettered with its raw line",
        )
        .expect("valid metric")
    });

    /// Messages Logplex says it dropped before they reached drainpipe (the counts in L10 notices).
    pub static LOGPLEX_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
        IntCounter::new(
            "drainpipe_logplex_dropped_messages_total",
            "Messages Logplex reported dropped upstream (L10 output buffer overflow)",
        )
        .expect("valid metric")
    });

    /// From a line's `@timestamp` to Elasticsearch confirming its document.
    pub static INDEXING_LAG: LazyLock<Histogram> = LazyLock::new(|| {
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

    /// What operators' rules did, by rule and outcome (`dropped`, `sampled_out`, `changed`,
    /// `failed`: a rule that failed on a line left it as it was).
    pub static RULE_DOCUMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
        let opts = Opts::new(
            "drainpipe_rule_documents_total",
            "Documents an operator's rule dropped, sampled out, changed, or failed on (and left as they were), by rule",
        );
        IntCounterVec::new(opts, &["rule", "outcome"]).expect("valid metric")
    });

    /// The messages of [`MEMORY_BACKLOG_FRAMES`].
    pub static MEMORY_BACKLOG_MESSAGES: LazyLock<IntGauge> = LazyLock::new(|| {
        IntGauge::new(
            "drainpipe_memory_backlog_messages",
            "Messages accepted into memory (no spool) and not yet delivered; a crash loses them",
        )
        .expect("valid metric")
    });
}

use defined::{
    DOCUMENTS, INDEXING_LAG, LOGPLEX_DROPPED, MEMORY_BACKLOG_FRAMES, MEMORY_BACKLOG_MESSAGES, PARSE_FAILURES,
};
pub use defined::{RULE_DOCUMENTS, TRANSFORM_PANICS};

/// Registers every metric of this crate; each starts at zero.
pub fn register(registry: &prometheus::Registry) -> prometheus::Result<()> {
    registry.register(Box::new(DOCUMENTS.clone()))?;
    registry.register(Box::new(PARSE_FAILURES.clone()))?;
    registry.register(Box::new(TRANSFORM_PANICS.clone()))?;
    registry.register(Box::new(LOGPLEX_DROPPED.clone()))?;
    registry.register(Box::new(INDEXING_LAG.clone()))?;
    registry.register(Box::new(MEMORY_BACKLOG_FRAMES.clone()))?;
    registry.register(Box::new(MEMORY_BACKLOG_MESSAGES.clone()))?;
    registry.register(Box::new(RULE_DOCUMENTS.clone()))?;
    Ok(())
}

/// Starts every dataset (and `none`, for lines that are not syslog) at zero.
fn every_dataset(c: IntCounterVec) -> IntCounterVec {
    for d in Dataset::ALL.iter().map(|d| d.as_str()).chain(["none"]) {
        let _ = c.with_label_values(&[d]);
    }
    c
}

/// The memory backlog's gauges follow frames in and out of the memory queue.
pub(crate) fn backlog_changed(frames: i64, messages: i64) {
    MEMORY_BACKLOG_FRAMES.add(frames);
    MEMORY_BACKLOG_MESSAGES.add(messages);
}

/// The transform's outcomes of one frame, counted locally and added to the counters when
/// dropped: a labelled counter's lookup per document is a hash of its label.
#[derive(Debug, Default)]
pub(crate) struct TransformTally {
    /// Per dataset in the order of `Dataset::ALL`, then `none`.
    documents: [u64; Dataset::ALL.len() + 1],
    failures: [u64; Dataset::ALL.len() + 1],
    dropped: u64,
}

impl TransformTally {
    pub(crate) fn record(&mut self, outcome: &Outcome) {
        let i = outcome.dataset.map_or(Dataset::ALL.len(), Dataset::index);
        if let (Some(docs), Some(failures)) = (self.documents.get_mut(i), self.failures.get_mut(i)) {
            *docs += 1;
            *failures += u64::from(outcome.failure.is_some());
        }
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
pub(crate) fn observe_lag(timestamps: &[f64]) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    for ts in timestamps {
        INDEXING_LAG.observe((now - ts).max(0.0));
    }
}
