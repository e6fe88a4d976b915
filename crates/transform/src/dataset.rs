//! Which kind of line a message is (`event.dataset`), from APP-NAME and PROCID, and for
//! `heroku` lines the message too (runtime metrics are told from other platform lines by it).

/// The datasets of docs/fields.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dataset {
    Router,
    RuntimeMetrics,
    Platform,
    Logplex,
    Postgres,
    Redis,
    App,
}

impl Dataset {
    pub const ALL: [Dataset; 7] = [
        Dataset::Router,
        Dataset::RuntimeMetrics,
        Dataset::Platform,
        Dataset::Logplex,
        Dataset::Postgres,
        Dataset::Redis,
        Dataset::App,
    ];

    /// Where this dataset is in [`Dataset::ALL`]: an index for per-dataset tables.
    pub fn index(self) -> usize {
        Dataset::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Router => "heroku.router",
            Dataset::RuntimeMetrics => "heroku.runtime_metrics",
            Dataset::Platform => "heroku.platform",
            Dataset::Logplex => "heroku.logplex",
            Dataset::Postgres => "heroku.postgres",
            Dataset::Redis => "heroku.redis",
            Dataset::App => "heroku.app",
        }
    }

    /// Lines from APP-NAME `heroku` are the platform's; everything else (`app`, and whatever a
    /// relay sends) is the app's own output unless PROCID names a data add-on.
    pub fn classify(appname: Option<&str>, procid: Option<&str>, msg: &[u8]) -> Dataset {
        match (appname, procid) {
            (Some("heroku"), Some("router")) => Dataset::Router,
            (Some("heroku"), Some("logplex")) => Dataset::Logplex,
            (Some("heroku"), _) if is_runtime_metrics(msg) => Dataset::RuntimeMetrics,
            (Some("heroku"), _) => Dataset::Platform,
            (_, Some("heroku-postgres")) => Dataset::Postgres,
            (_, Some("heroku-redis")) => Dataset::Redis,
            _ => Dataset::App,
        }
    }
}

/// log-runtime-metrics lines start `source=web.1 dyno=heroku.… sample#…`.
pub(crate) fn is_runtime_metrics(msg: &[u8]) -> bool {
    msg.starts_with(b"source=") && msg.windows(7).any(|w| w == b"sample#")
}

/// `web.1` → `web`: a PROCID is a dyno name when it is `<process type>.<number>`.
pub fn process_type(dyno: &str) -> Option<&str> {
    let (kind, n) = dyno.rsplit_once('.')?;
    (!kind.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_is_indexed_by_its_place_in_all() {
        for (i, d) in Dataset::ALL.into_iter().enumerate() {
            assert_eq!(d.index(), i, "{d:?}");
        }
    }

    #[test]
    fn classifies_by_appname_and_procid() {
        let cases = [
            ("heroku", "router", "at=info", Dataset::Router),
            ("heroku", "logplex", "Error L10", Dataset::Logplex),
            ("heroku", "web.1", "source=web.1 dyno=heroku.1.x sample#load_avg_1m=0.1", Dataset::RuntimeMetrics),
            ("heroku", "web.1", "State changed from starting to up", Dataset::Platform),
            ("heroku", "api", "Release v42 created by a@b.c", Dataset::Platform),
            ("app", "heroku-postgres", "source=DATABASE sample#db_size=1bytes", Dataset::Postgres),
            ("app", "heroku-redis", "source=REDIS sample#hit-rate=0.7", Dataset::Redis),
            ("app", "web.1", "hello", Dataset::App),
        ];
        for (appname, procid, msg, want) in cases {
            assert_eq!(Dataset::classify(Some(appname), Some(procid), msg.as_bytes()), want, "{appname} {procid}");
        }
    }

    #[test]
    fn process_type_needs_a_dyno_number() {
        assert_eq!(process_type("web.1"), Some("web"));
        assert_eq!(process_type("scheduler.4821"), Some("scheduler"));
        assert_eq!(process_type("my.worker.12"), Some("my.worker"));
        for not_dyno in ["router", "api", "heroku-postgres", "web.", ".1", "web.x"] {
            assert_eq!(process_type(not_dyno), None, "{not_dyno}");
        }
    }
}
