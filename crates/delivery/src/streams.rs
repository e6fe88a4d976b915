//! The one home of data-stream names: every stream, pattern and dead-letter stream drainpipe
//! writes or reads is formatted here (docs/fields.md names them).

use drainpipe_transform::Dataset;

/// The data streams of one namespace (`data_stream.namespace`): one per dataset,
/// `logs-heroku.<dataset>-<namespace>`, and the dead letters, `logs-heroku.deadletter-<namespace>`.
#[derive(Clone, Debug)]
pub struct DataStreams {
    namespace: String,
    /// In the order of `Dataset::ALL`.
    streams: Vec<String>,
    dead_letters: String,
    /// OTLP metrics and spans: `metrics-heroku.otel-<namespace>`, `traces-heroku.otel-<namespace>`.
    metrics: String,
    traces: String,
}

impl DataStreams {
    /// Every stream drainpipe writes, in every namespace (what its Elasticsearch role needs).
    pub const EVERY: &'static str = "logs-heroku.*";
    /// Every stream drainpipe writes: the logs' above, and OTLP metrics' and traces'.
    pub const EVERY_SIGNAL: [&'static str; 3] = ["logs-heroku.*", "metrics-heroku.*", "traces-heroku.*"];
    /// [`DataStreams::EVERY_SIGNAL`] as one target (`GET _data_stream/<these>`).
    pub const EVERY_SIGNAL_TARGET: &'static str = "logs-heroku.*,metrics-heroku.*,traces-heroku.*";
    /// Every dead-letter stream, in every namespace.
    pub const EVERY_DEAD_LETTERS: &'static str = "logs-heroku.deadletter-*";

    pub fn new(namespace: &str) -> DataStreams {
        DataStreams {
            namespace: namespace.to_owned(),
            streams: Dataset::ALL.iter().map(|d| format!("logs-{}-{namespace}", d.as_str())).collect(),
            dead_letters: format!("logs-heroku.deadletter-{namespace}"),
            metrics: format!("metrics-{}-{namespace}", drainpipe_transform::OTEL_DATASET),
            traces: format!("traces-{}-{namespace}", drainpipe_transform::OTEL_DATASET),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a document of `dataset` goes (a message that was not syslog is the app's).
    pub fn of(&self, dataset: Option<Dataset>) -> &str {
        self.streams.get(dataset.unwrap_or(Dataset::App).index()).map_or("", String::as_str)
    }

    /// The stream of the dataset named `dataset` (`router`, `app`, …) in this namespace.
    pub fn named(&self, dataset: &str) -> String {
        format!("logs-heroku.{dataset}-{}", self.namespace)
    }

    /// Where OTLP data points go.
    pub fn metrics(&self) -> &str {
        &self.metrics
    }

    /// Where OTLP spans go.
    pub fn traces(&self) -> &str {
        &self.traces
    }

    /// Where this namespace's dead letters go.
    pub fn dead_letters(&self) -> &str {
        &self.dead_letters
    }

    /// Every stream of this namespace, dead letters included.
    pub fn pattern(&self) -> String {
        format!("logs-heroku.*-{}", self.namespace)
    }

    /// Every stream of this namespace that holds log lines: the pattern without dead letters,
    /// excluded by a wildcard (OpenSearch refuses to exclude a name that does not exist).
    pub fn lines_pattern(&self) -> String {
        format!("{},-{}", self.pattern(), Self::EVERY_DEAD_LETTERS)
    }

    /// The streams of `dataset` in every namespace (an index template's `index_patterns`).
    pub fn every_of(dataset: &str) -> String {
        format!("logs-heroku.{dataset}-*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_field_contract() {
        let s = DataStreams::new("prod");
        assert_eq!(s.of(Some(Dataset::Router)), "logs-heroku.router-prod");
        assert_eq!(s.of(None), "logs-heroku.app-prod");
        assert_eq!(s.named("router"), "logs-heroku.router-prod");
        assert_eq!(s.dead_letters(), "logs-heroku.deadletter-prod");
        assert_eq!(s.pattern(), "logs-heroku.*-prod");
        assert_eq!(s.lines_pattern(), "logs-heroku.*-prod,-logs-heroku.deadletter-*");
        assert_eq!(DataStreams::every_of("app"), "logs-heroku.app-*");
        assert_eq!(s.metrics(), "metrics-heroku.otel-prod");
        assert_eq!(s.traces(), "traces-heroku.otel-prod");
        for d in Dataset::ALL {
            assert!(s.of(Some(d)).starts_with("logs-heroku."), "{d:?}");
        }
    }
}
