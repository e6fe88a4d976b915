//! The document of FIELDS.md for one message, borrowed from the raw bytes, written as JSON in a
//! fixed nested order.

use crate::dataset::Dataset;
use crate::json::JsonWriter;
use crate::syslog;
use crate::timestamp::Timestamp;

/// The tag on every document something could not be parsed in.
pub const PARSE_FAILURE_TAG: &str = "_drainpipe_parse_failure";
/// The tag on documents whose message the receiver cut to its size limit.
pub const TRUNCATED_TAG: &str = "_drainpipe_truncated";

/// What one message becomes. Every borrowed field points into the raw message or the context.
#[derive(Debug, Default)]
pub(crate) struct Document<'a> {
    pub timestamp: Option<Timestamp>,
    pub ingested: Option<Timestamp>,
    pub message: &'a [u8],
    pub dataset: Option<Dataset>,
    pub level: Option<&'a str>,
    pub syslog: Option<SyslogFields<'a>>,
    pub heroku_app: Option<&'a str>,
    pub source: Option<&'a str>,
    pub dyno: Option<&'a str>,
    pub process_type: Option<&'a str>,
    pub drain_token: Option<&'a str>,
    pub frame_id: Option<&'a str>,
    pub labels: &'a [(String, String)],
    pub error_message: Option<&'static str>,
    /// (kept length, original length) when the receiver cut the message.
    pub cut: Option<(usize, usize)>,
}

#[derive(Debug)]
pub(crate) struct SyslogFields<'a> {
    pub priority: u8,
    pub hostname: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub procid: Option<&'a str>,
}

impl Document<'_> {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut w = JsonWriter::new(out);
        if let Some(ts) = self.timestamp {
            w.quoted_with("@timestamp", |o| ts.write_rfc3339(o));
        }
        w.bytes("message", self.message);

        w.open("event");
        if let Some(ts) = self.ingested {
            w.quoted_with("ingested", |o| ts.write_rfc3339(o));
        }
        w.opt_str("dataset", self.dataset.map(Dataset::as_str));
        w.close();

        if self.level.is_some() || self.syslog.is_some() {
            w.open("log");
            w.opt_str("level", self.level);
            if let Some(s) = &self.syslog {
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
            w.close();
        }

        w.open("heroku");
        w.opt_str("app", self.heroku_app);
        w.opt_str("source", self.source);
        w.opt_str("dyno", self.dyno);
        w.opt_str("process_type", self.process_type);
        if self.drain_token.is_some() || self.frame_id.is_some() {
            w.open("drain");
            w.opt_str("token", self.drain_token);
            w.opt_str("frame_id", self.frame_id);
            w.close();
        }
        w.close();

        if !self.labels.is_empty() {
            w.open("labels");
            for (k, v) in self.labels {
                w.str(k, v);
            }
            w.close();
        }
        match (self.error_message, self.cut) {
            (None, None) => {}
            (Some(reason), None) => {
                w.str_array("tags", [PARSE_FAILURE_TAG]);
                w.open("error");
                w.str("message", reason);
                w.close();
            }
            (reason, Some((kept, full))) => {
                let tags: &[&str] =
                    if reason.is_some() { &[PARSE_FAILURE_TAG, TRUNCATED_TAG] } else { &[TRUNCATED_TAG] };
                w.str_array("tags", tags.iter().copied());
                let mut text = format!("message cut to {kept} of {full} bytes (size limit)");
                if let Some(reason) = reason {
                    text = format!("{reason}; {text}");
                }
                w.open("error");
                w.str("message", &text);
                w.close();
            }
        }
        w.finish();
    }
}
