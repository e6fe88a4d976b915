//! The document of docs/fields.md for one message, borrowed from the raw bytes, written as JSON in a
//! fixed nested order (every object opened once, so no key is ever written twice).

use std::borrow::Cow;

use crate::app::{self, AppFields};
use crate::dataset::Dataset;
use crate::json::JsonWriter;
use crate::landmarks::{Landmark, Landmarks, Place};
use crate::platform::Platform;
use crate::router::Router;
use crate::samples::{Number, Samples};
use crate::syslog;
use crate::timestamp::Timestamp;

/// The tag on every document something could not be parsed in.
pub const PARSE_FAILURE_TAG: &str = "_drainpipe_parse_failure";
/// The tag on documents whose message the receiver cut to its size limit.
pub const TRUNCATED_TAG: &str = "_drainpipe_truncated";
/// The tag on documents whose message had more fields than one message may add (the caps
/// below, [`app::MAX_KEYS`]); `error.message` says which and how many were left out.
pub const FIELDS_CAPPED_TAG: &str = "_drainpipe_fields_capped";
/// Unknown router keys one line may add as `heroku.router.<key>`: each is a mapped field, and
/// Heroku's router writes about fifteen keys.
pub const MAX_ROUTER_KEYS: usize = 100;
/// Metrics one line may add as `heroku.metrics.<name>` (mapped fields too; Heroku's busiest
/// metrics lines, Postgres's, carry about thirty).
pub const MAX_METRICS: usize = 100;

/// What one message becomes. Borrowed fields point into the raw message or the context.
#[derive(Debug, Default)]
pub(crate) struct Document<'a> {
    pub timestamp: Option<Timestamp>,
    /// `event.ingested`, already formatted (the same for every message of a frame).
    pub ingested: Option<&'a [u8]>,
    pub message: &'a str,
    pub dataset: Option<Dataset>,
    pub level: Option<Cow<'a, str>>,
    pub syslog: Option<SyslogFields<'a>>,
    pub heroku_app: Option<&'a str>,
    /// `data_stream.namespace`.
    pub namespace: &'a str,
    pub source: Option<&'a str>,
    pub dyno: Option<&'a str>,
    pub process_type: Option<&'a str>,
    pub drain_token: Option<&'a str>,
    pub frame_id: Option<&'a str>,
    pub labels: &'a [(String, String)],
    pub router: Option<Router<'a>>,
    pub platform: Option<Platform<'a>>,
    pub samples: Option<Samples<'a>>,
    pub app: Option<AppFields<'a>>,
    /// What could not be parsed, and why (the parse-failure tag goes with it).
    pub failure: Option<Cow<'static, str>>,
    /// (kept length, original length) when the receiver cut the message.
    pub cut: Option<(usize, usize)>,
    /// OTLP records: `heroku.app_id`, `heroku.release.version`, `trace.id`, `span.id`, the
    /// resource's other attributes (a validated JSON object) and the scope's name and version.
    pub app_id: Option<&'a str>,
    pub release_version: Option<&'a str>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub otel_resource: Option<&'a [u8]>,
    pub otel_scope: Option<(&'a str, &'a str)>,
}

/// Members that are the same for every message of a frame (or of a dataset within it): the
/// event's constants, `data_stream.*`, `service.name`, `heroku.app`, `heroku.drain.*` and the
/// syslog header's fields. Each block is written once for what it is made of and copied into
/// every document after, which is byte for byte what writing it each time would give.
#[derive(Debug, Default)]
pub(crate) struct Blocks {
    event: Block,
    stream: Block,
    syslog: Block,
    heroku: Block,
}

/// One block: what it was written from, its members and their landmarks.
#[derive(Debug, Default)]
struct Block {
    written: bool,
    /// The parts it was written from, one after the other, and where each ends (`None` for a
    /// part that was absent).
    from: Vec<u8>,
    ends: Vec<Option<usize>>,
    text: Vec<u8>,
    /// The landmarks it places, from its start (`None`: not known).
    landmarks: Option<Vec<(usize, Place)>>,
}

impl Block {
    /// Copies into `w` the members `write` writes from `parts`, writing them again only when
    /// the parts differ from the last call's.
    #[inline]
    fn put(&mut self, w: &mut JsonWriter<'_>, parts: &[Option<&[u8]>], write: impl FnOnce(&mut JsonWriter<'_>)) {
        if !self.made_from(parts) {
            self.from.clear();
            self.ends.clear();
            for part in parts {
                self.from.extend_from_slice(part.unwrap_or_default());
                self.ends.push(part.map(|_| self.from.len()));
            }
            self.text.clear();
            let mut fragment = JsonWriter::fragment(&mut self.text);
            write(&mut fragment);
            self.landmarks = fragment.end_fragment().placed();
            self.written = true;
        }
        w.splice(&self.text, self.landmarks.as_deref());
    }

    /// Whether the block was last written from `parts`.
    #[inline]
    fn made_from(&self, parts: &[Option<&[u8]>]) -> bool {
        if !self.written || parts.len() != self.ends.len() {
            return false;
        }
        let mut start = 0;
        parts.iter().zip(&self.ends).all(|(part, end)| match (part, *end) {
            (None, None) => true,
            (Some(p), Some(end)) => {
                let same = self.from.get(start..end) == Some(*p);
                start = end;
                same
            }
            _ => false,
        })
    }
}

#[derive(Debug)]
pub(crate) struct SyslogFields<'a> {
    pub priority: u8,
    pub hostname: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub procid: Option<&'a str>,
}

impl Document<'_> {
    /// Writes the document; where its landmark fields' values are. The members that are the
    /// same for every message of a frame come from `blocks`, written once and copied after.
    pub(crate) fn write(&self, out: &mut Vec<u8>, blocks: &mut Blocks) -> Landmarks {
        let mut w = JsonWriter::new(out);
        let router = self.router.as_ref();
        let platform = self.platform.as_ref();
        let dataset = self.dataset.unwrap_or(Dataset::App).as_str();

        w.open("event");
        let is_router = if router.is_some() { &b"r"[..] } else { b"" };
        blocks.event.put(&mut w, &[self.ingested, Some(dataset.as_bytes()), Some(is_router)], |w| {
            if let Some(formatted) = self.ingested {
                w.quoted_with("ingested", |o| o.extend_from_slice(formatted));
            }
            w.str_at(Landmark::EventDataset, "dataset", dataset);
            w.str("kind", "event");
            if router.is_some() {
                w.str("category", "web");
                w.str("type", "access");
            }
        });
        if let Some(r) = router {
            // Nanoseconds; left out when they would not fit Elasticsearch's `long`.
            if let Some(ns) = r.service_ms.and_then(|ms| ms.checked_mul(1_000_000)).filter(|&ns| ns <= i64::MAX as u64)
            {
                w.u64("duration", ns);
            }
            if let Some(status) = r.status {
                w.str("outcome", if status < 400 { "success" } else { "failure" });
            }
        }
        w.close();

        let app = self.heroku_app.map(str::as_bytes);
        blocks.stream.put(&mut w, &[Some(dataset.as_bytes()), Some(self.namespace.as_bytes()), app], |w| {
            w.open("data_stream");
            w.str("type", "logs");
            w.str("dataset", dataset);
            w.str_at(Landmark::DataStreamNamespace, "namespace", self.namespace);
            w.close();
            if let Some(app) = self.heroku_app {
                w.object_str("service", "name", app);
            }
        });

        if let Some(ts) = self.timestamp {
            w.quoted_with("@timestamp", |o| ts.write_rfc3339(o));
        }
        w.str_at(Landmark::Message, "message", self.message);

        if self.level.is_some() || self.syslog.is_some() {
            w.open("log");
            w.opt_str_at(Landmark::LogLevel, "level", self.level.as_deref());
            if let Some(s) = &self.syslog {
                let priority = [s.priority];
                let (host, name, proc) = (s.hostname, s.appname, s.procid);
                let parts =
                    [Some(&priority[..]), host.map(str::as_bytes), name.map(str::as_bytes), proc.map(str::as_bytes)];
                blocks.syslog.put(&mut w, &parts, |w| write_syslog(w, s));
            }
            w.close();
        }

        // What was left out past a cap: (field, what, cap, how many more).
        let mut capped: Vec<(&str, &str, usize, usize)> = Vec::new();
        self.write_heroku(&mut w, blocks, &mut capped);
        if let Some(id) = &self.trace_id {
            w.object_str("trace", "id", id);
        }
        if let Some(id) = &self.span_id {
            w.object_str("span", "id", id);
        }
        if self.otel_resource.is_some() || self.otel_scope.is_some() {
            w.open("otel");
            if let Some(object) = self.otel_resource {
                let mut more = 0;
                w.raw("resource", |o| more = app::write_json_object(o, object));
                capped.push(("otel.resource", "attributes", app::MAX_KEYS, more));
            }
            if let Some((name, version)) = self.otel_scope {
                w.open("scope");
                w.str("name", name);
                if !version.is_empty() {
                    w.str("version", version);
                }
                w.close();
            }
            w.close();
        }

        if let Some(r) = router {
            let has_request = r.method.is_some() || r.request_id.is_some();
            let has_response = r.status.is_some() || r.bytes.is_some();
            if has_request || has_response {
                w.open("http");
                if has_request {
                    w.open("request");
                    w.opt_str_at(Landmark::HttpRequestMethod, "method", r.method.as_deref());
                    w.opt_str("id", r.request_id.as_deref());
                    w.close();
                }
                if has_response {
                    w.open("response");
                    if let Some(s) = r.status {
                        w.u64_at(Landmark::HttpResponseStatusCode, "status_code", s);
                    }
                    if let Some(b) = r.bytes {
                        w.u64("bytes", b);
                    }
                    w.close();
                }
                w.close();
            }
            let (path, query) = r.url_parts();
            if r.path.is_some() || r.host.is_some() || r.protocol.is_some() {
                w.open("url");
                w.opt_str_at(Landmark::UrlOriginal, "original", r.path.as_deref());
                w.opt_str_at(Landmark::UrlPath, "path", path);
                w.opt_str_at(Landmark::UrlQuery, "query", query);
                w.opt_str_at(Landmark::UrlDomain, "domain", r.host.as_deref());
                w.opt_str("scheme", r.protocol.as_deref());
                w.close();
            }
            if let Some(client) = r.client() {
                w.object_str("source", "ip", client);
            }
        }
        if let Some(p) = platform {
            if p.exit_code.is_some() || p.command_line.is_some() {
                w.open("process");
                if let Some(code) = p.exit_code {
                    w.i64("exit_code", code);
                }
                w.opt_str("command_line", p.command_line);
                w.close();
            }
            if let Some(email) = p.user_email {
                w.object_str("user", "email", email);
            }
        }
        match &self.app {
            Some(AppFields::Json(object)) => {
                let mut more = 0;
                w.raw("app", |o| more = app::write_json_object(o, object));
                capped.push(("app", "keys", app::MAX_KEYS, more));
            }
            Some(AppFields::Logfmt(pairs)) => {
                w.open("app");
                for (k, v) in pairs {
                    w.foreign_str(k, v);
                }
                w.close();
                capped.push(("app", "keys", app::MAX_KEYS, pairs.left_out()));
            }
            None => {}
        }
        if !self.labels.is_empty() {
            w.labels(self.labels);
        }
        capped.retain(|&(.., more)| more > 0);
        self.write_tags_and_error(&mut w, &capped);
        w.finish()
    }

    fn write_heroku(&self, w: &mut JsonWriter<'_>, blocks: &mut Blocks, capped: &mut Vec<(&str, &str, usize, usize)>) {
        w.open("heroku");
        let parts = [self.heroku_app, self.source, self.drain_token, self.frame_id].map(|p| p.map(str::as_bytes));
        blocks.heroku.put(w, &parts, |w| {
            w.opt_str_at(Landmark::HerokuApp, "app", self.heroku_app);
            w.opt_str_at(Landmark::HerokuSource, "source", self.source);
            if self.drain_token.is_some() || self.frame_id.is_some() {
                w.open("drain");
                w.opt_str("token", self.drain_token);
                w.opt_str("frame_id", self.frame_id);
                w.close();
            }
        });
        w.opt_str("app_id", self.app_id);
        w.opt_str_at(Landmark::HerokuDyno, "dyno", self.dyno);
        let samples = self.samples.as_ref();
        w.opt_str("dyno_id", samples.and_then(|s| s.dyno_id.as_deref()));
        w.opt_str_at(Landmark::HerokuProcessType, "process_type", self.process_type);
        w.opt_str("addon", samples.and_then(|s| s.addon.as_deref()));
        if let Some(r) = &self.router {
            write_router(w, r, capped);
        }
        if let Some(v) = self.release_version.or(self.platform.as_ref().and_then(|p| p.release_version)) {
            w.object_str("release", "version", v);
        }
        if let Some(p) = &self.platform {
            if p.state_from.is_some() || p.state_to.is_some() {
                w.open("state");
                w.opt_str("from", p.state_from);
                w.opt_str("to", p.state_to);
                w.close();
            }

            if let Some(n) = p.dropped {
                w.open("logplex");
                w.u64("dropped", n);
                w.close();
            }
        }
        if let Some(s) = samples {
            write_metrics(w, s, capped);
        }
        w.close();
    }

    fn write_tags_and_error(&self, w: &mut JsonWriter<'_>, capped: &[(&str, &str, usize, usize)]) {
        let code =
            self.router.as_ref().and_then(|r| r.code.as_deref()).or(self.platform.as_ref().and_then(|p| p.error_code));
        let described = self
            .router
            .as_ref()
            .and_then(|r| r.desc.as_deref())
            .or(self.platform.as_ref().and_then(|p| p.error_message));
        let cut_note = self.cut.map(|(kept, full)| format!("message cut to {kept} of {full} bytes (size limit)"));
        let tags = [
            (self.failure.is_some(), PARSE_FAILURE_TAG),
            (cut_note.is_some(), TRUNCATED_TAG),
            (!capped.is_empty(), FIELDS_CAPPED_TAG),
        ];
        if tags.iter().any(|&(on, _)| on) {
            w.str_array("tags", tags.iter().filter(|&&(on, _)| on).map(|&(_, tag)| tag));
        }
        let capped_notes: Vec<String> = capped
            .iter()
            .map(|(field, what, cap, more)| format!("{field}: {more} {what} past the first {cap} left out"))
            .collect();
        let parts: Vec<&str> = [described, self.failure.as_deref(), cut_note.as_deref()]
            .into_iter()
            .flatten()
            .chain(capped_notes.iter().map(String::as_str))
            .collect();
        if code.is_none() && parts.is_empty() {
            return;
        }
        w.open("error");
        w.opt_str("code", code);
        match parts.as_slice() {
            [] => {}
            [one] => w.str("message", one),
            many => w.str("message", &many.join("; ")),
        }
        w.close();
    }
}

/// `log.syslog`: the header's priority, its parts and names, and the header's fields.
fn write_syslog(w: &mut JsonWriter<'_>, s: &SyslogFields<'_>) {
    w.open("syslog");
    w.u64("priority", u64::from(s.priority));
    let (facility, severity) = (s.priority >> 3, s.priority & 7);
    w.open("facility");
    w.u64("code", u64::from(facility));
    w.str("name", syslog::facility_name(facility));
    w.close();
    w.open("severity");
    w.u64("code", u64::from(severity));
    w.str("name", syslog::severity_name(severity));
    w.close();
    w.opt_str("hostname", s.hostname);
    w.opt_str("appname", s.appname);
    w.opt_str("procid", s.procid);
    w.close();
}

/// `heroku.router.*`: what the router line has beyond the typed `http.*`/`url.*` fields.
fn write_router(w: &mut JsonWriter<'_>, r: &Router<'_>, capped: &mut Vec<(&str, &str, usize, usize)>) {
    if !r.fwd.is_empty() || r.connect_ms.is_some() || r.service_ms.is_some() || !r.other.is_empty() {
        w.open("router");
        if !r.fwd.is_empty() {
            w.str_array("fwd", r.fwd.iter().map(|a| a.as_ref()));
        }
        if let Some(ms) = r.connect_ms {
            w.u64("connect_ms", ms);
        }
        if let Some(ms) = r.service_ms {
            w.u64("service_ms", ms);
        }
        for (k, v) in &r.other {
            w.foreign_str(k, v);
        }
        capped.push(("heroku.router", "keys", MAX_ROUTER_KEYS, r.other.left_out()));
        w.close();
    }
}

/// `heroku.metrics.*`: a runtime-metrics line's samples.
fn write_metrics(w: &mut JsonWriter<'_>, s: &Samples<'_>, capped: &mut Vec<(&str, &str, usize, usize)>) {
    if s.source.is_some() || !s.values.is_empty() {
        w.open("metrics");
        w.opt_str("source", s.source.as_deref());
        capped.push(("heroku.metrics", "metrics", MAX_METRICS, s.values.left_out()));
        for (name, value) in &s.values {
            match value {
                Number::Text(t) => w.foreign_raw(name, |o| o.extend_from_slice(t.as_bytes())),
                Number::Float(f) => w.foreign_f64(name, *f),
            }
        }
        w.close();
    }
}
