//! drainpipe-transform turns one Heroku syslog message into the JSON document of FIELDS.md.
//!
//! [`Transformer::transform`] takes the raw bytes of one message and the [`Context`] its frame
//! arrived with, and appends the document's JSON to a buffer. It is pure and synchronous, knows
//! nothing of HTTP, tokio or Elasticsearch, and cannot fail: whatever it cannot parse is still
//! written, with its raw text as `message`, the tag `_drainpipe_parse_failure` and an
//! `error.message` saying what failed ([`Outcome::failure`]).
//!
//! Document ids come from [`FrameSeed`] (HTTPS frames) or [`DocumentId::for_stream`] (syslog
//! streams), so a frame sent twice yields the same ids.

mod dataset;
mod document;
mod id;
mod json;
mod logfmt;
pub mod syslog;
mod timestamp;

pub use dataset::Dataset;
pub use document::{PARSE_FAILURE_TAG, TRUNCATED_TAG};
pub use id::{DocumentId, FrameSeed};
pub use syslog::StructuredData;
pub use timestamp::Timestamp;

use std::collections::HashMap;

use document::{Document, SyslogFields};

/// What the receiver knows about the frame a message arrived in.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The Heroku app's name, from the drain URL's `app=` or a drain-token map.
    pub app: Option<&'a str>,
    /// `Logplex-Drain-Token` on HTTPS drains; HOSTNAME on syslog drains.
    pub drain_token: Option<&'a str>,
    /// `Logplex-Frame-Id`.
    pub frame_id: Option<&'a str>,
    /// Extra query parameters of the drain URL, written as `labels.<key>`.
    pub labels: &'a [(String, String)],
    /// When drainpipe received the frame (`event.ingested`, and `@timestamp` as a last resort).
    pub received_at: Timestamp,
    /// Whether messages carry an RFC 5424 STRUCTURED-DATA field (syslog drains) or not (HTTPS).
    /// With `Present`, a HOSTNAME shaped like a Logplex drain token (`d.…`) is the drain token.
    pub structured_data: StructuredData,
    /// Drain token to app name, for messages whose frame named no app.
    pub token_apps: Option<&'a HashMap<String, String>>,
}

/// What the transform saw in one message, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when the message was not syslog at all.
    pub dataset: Option<Dataset>,
    /// Why the document carries the parse-failure tag, if it does.
    pub failure: Option<&'static str>,
}

/// Turns messages into documents. Holds no state between messages today; it exists so that
/// scratch buffers can be reused on the hot path without changing callers.
#[derive(Debug, Default)]
pub struct Transformer {}

impl Transformer {
    pub fn new() -> Transformer {
        Transformer {}
    }

    /// Appends the JSON document for `raw` (one message, as framed) to `out`.
    pub fn transform(&mut self, raw: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        self.build(raw, None, ctx, out)
    }

    /// Like [`Transformer::transform`] for a message the receiver cut to its size limit from
    /// `original_len` bytes: the document is tagged `_drainpipe_truncated`.
    pub fn transform_cut(&mut self, raw: &[u8], original_len: usize, ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        self.build(raw, Some(original_len), ctx, out)
    }

    fn build(&mut self, raw: &[u8], cut_from: Option<usize>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        let mut doc = Document {
            cut: cut_from.map(|full| (raw.len(), full)),
            ingested: Some(ctx.received_at),
            heroku_app: ctx.app,
            drain_token: ctx.drain_token,
            frame_id: ctx.frame_id,
            labels: ctx.labels,
            ..Document::default()
        };
        let header = match syslog::parse(raw, ctx.structured_data, ctx.received_at) {
            Ok(h) => h,
            Err(e) => {
                doc.timestamp = Some(ctx.received_at);
                doc.message = syslog::trim_newline(raw);
                doc.error_message = Some(e.describe());
                doc.write(out);
                return Outcome { dataset: None, failure: doc.error_message };
            }
        };

        let dataset = Dataset::classify(header.appname, header.procid, header.msg);
        doc.timestamp = Some(header.timestamp.unwrap_or(ctx.received_at));
        doc.message = header.msg;
        doc.dataset = Some(dataset);
        doc.level = Some(syslog::severity_level(header.severity()));
        doc.source = header.appname;
        doc.syslog = Some(SyslogFields {
            priority: header.priority,
            hostname: header.hostname,
            appname: header.appname,
            procid: header.procid,
        });
        doc.dyno = header.procid.filter(|p| dataset::process_type(p).is_some());
        // On Heroku's syslog drains HOSTNAME is the drain token.
        if ctx.structured_data == StructuredData::Present && doc.drain_token.is_none() {
            doc.drain_token = header.hostname.filter(|h| h.starts_with("d."));
        }
        if doc.heroku_app.is_none() {
            doc.heroku_app = doc.drain_token.and_then(|t| ctx.token_apps?.get(t)).map(String::as_str);
        }

        // Router lines name the dyno that served the request, and their level, in the message.
        let router_fields;
        if dataset == Dataset::Router {
            router_fields = RouterBasics::read(header.msg);
            doc.dyno = router_fields.dyno.as_deref().filter(|d| !d.is_empty());
            if let Some(at) = router_fields.at.as_deref().filter(|a| !a.is_empty()) {
                doc.level = Some(at);
            }
        }
        doc.process_type = doc.dyno.and_then(dataset::process_type);
        doc.write(out);
        Outcome { dataset: Some(dataset), failure: None }
    }
}

/// The two router keys every document needs (`at=`, `dyno=`).
#[derive(Default)]
struct RouterBasics<'a> {
    at: Option<std::borrow::Cow<'a, str>>,
    dyno: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> RouterBasics<'a> {
    fn read(msg: &'a [u8]) -> RouterBasics<'a> {
        let mut r = RouterBasics::default();
        for pair in logfmt::pairs(msg) {
            match pair.key {
                "at" => r.at = Some(pair.value),
                "dyno" => r.dyno = Some(pair.value),
                _ => continue,
            }
            if r.at.is_some() && r.dyno.is_some() {
                break;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests;
