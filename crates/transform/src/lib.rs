//! drainpipe-transform turns one Heroku syslog message into the JSON document of docs/fields.md.
//!
//! [`Transformer::transform`] takes the raw bytes of one message and the [`Context`] its frame
//! arrived with, and appends the document's JSON to a buffer. It is pure and synchronous, knows
//! nothing of HTTP, tokio or Elasticsearch, and cannot fail: whatever it cannot parse is still
//! written, with its raw text as `message`, the tag `_drainpipe_parse_failure` and an
//! `error.message` saying what failed ([`Outcome::failure`]).
//!
//! Document ids come from [`FrameSeed`] (HTTPS frames) or [`DocumentId::for_stream`] (syslog
//! streams), so a frame sent twice yields the same ids.

// Input never panics (STYLE.md): every index, slice and unwrap on a message's bytes is checked.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod app;
mod dataset;
mod document;
mod id;
mod json;
mod keys;
mod landmarks;
mod level;
mod logfmt;
mod otlp;
mod otlp_signals;
mod platform;
mod router;
mod samples;
pub mod syslog;
mod timestamp;
mod utf8;

pub use app::{MAX_DEPTH as APP_MAX_DEPTH, MAX_KEYS as APP_MAX_KEYS, MAX_VALUE_BYTES as APP_MAX_VALUE_BYTES};
pub use dataset::Dataset;
pub use document::{FIELDS_CAPPED_TAG, MAX_METRICS, MAX_ROUTER_KEYS, PARSE_FAILURE_TAG, TRUNCATED_TAG};
pub use id::{DocumentId, FrameKey, FrameSeed};
pub use json::{write_labels, write_text};
pub use landmarks::{Landmark, Landmarks, Place};
pub use otlp_signals::OTEL_DATASET;
pub use syslog::StructuredData;
pub use timestamp::{civil_from_days, days_from_civil, Timestamp};

use std::borrow::Cow;

use app::App;
use document::{Blocks, Document, SyslogFields};
use platform::Platform;
use router::Router;
use samples::Samples;

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
    /// The app a drain token belongs to, for messages whose frame named no app: the same
    /// lookup the receiver uses for HTTPS drains, so there is one token list.
    pub app_for_token: Option<&'a dyn AppForToken>,
    /// The data stream namespace (`data_stream.namespace`).
    pub namespace: &'a str,
}

/// What is wrong with `ns` as a data stream namespace (`data_stream.namespace`, the last part
/// of every stream name), if anything: 1 to 100 of lowercase letters, digits, `_` and `.` (no
/// `-`, which splits a stream's name into its parts). The one rule for `--namespace` and for a
/// rule's `namespace`.
pub fn namespace_problem(ns: &str) -> Option<String> {
    if ns.is_empty() || ns.len() > 100 {
        return Some(format!("must be 1 to 100 characters, got {ns:?}"));
    }
    if !ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.') {
        return Some(format!("{ns:?} may only hold lowercase letters, digits, '_' and '.'"));
    }
    None
}

/// The drain-token list: the app a token belongs to. The binary hands in the list the HTTPS
/// receiver checks, so there is one list, looked up one way.
pub trait AppForToken: std::fmt::Debug + Sync {
    fn app_for_token(&self, token: &str) -> Option<&str>;
}

impl AppForToken for std::collections::HashMap<String, String> {
    fn app_for_token(&self, token: &str) -> Option<&str> {
        self.get(token).map(String::as_str)
    }
}

/// What the transform saw in one message, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when the message was not syslog at all.
    pub dataset: Option<Dataset>,
    /// Why the document carries the parse-failure tag, if it does.
    pub failure: Option<&'static str>,
    /// The document's `@timestamp`.
    pub timestamp: Timestamp,
    /// Messages Logplex reported dropped upstream (an L10 line's count).
    pub logplex_dropped: Option<u64>,
    /// Where some fields' values are in the document (for rules to read them there).
    pub landmarks: Landmarks,
}

/// Turns messages into documents, keeping what can be reused from one message to the next.
#[derive(Debug, Default)]
pub struct Transformer {
    /// `event.ingested` of the last frame, formatted: every message of a frame shares it.
    ingested: Option<(Timestamp, Vec<u8>)>,
    /// The members every message of a frame shares, written once.
    blocks: Blocks,
}

impl Transformer {
    pub fn new() -> Transformer {
        Transformer::default()
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

    /// Appends the JSON document for one OTLP log record, as drainpipe-otlp's `split` encoded
    /// it with its resource and scope (docs/fields.md, "OTLP logs").
    pub fn transform_otlp(&mut self, raw: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        otlp::transform(raw, ctx, self.frame_parts(ctx), out)
    }

    /// Appends the JSON document for one OTLP data point, as drainpipe-otlp's `point_records`
    /// made it (docs/fields.md, "OTLP metrics").
    pub fn transform_otlp_metric(&mut self, raw: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        let ingested = self.frame_parts(ctx).ingested;
        otlp_signals::metric(raw, ctx, ingested, out)
    }

    /// Appends the JSON document for one OTLP span, as drainpipe-otlp's `span_records` made it
    /// (docs/fields.md, "OTLP traces").
    pub fn transform_otlp_span(&mut self, raw: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        let ingested = self.frame_parts(ctx).ingested;
        otlp_signals::span(raw, ctx, ingested, out)
    }

    /// The document of a message kept as received, parsing nothing: its text as `message`, the
    /// app's dataset, the receive time, the parse-failure tag and `reason`. For a message the
    /// transform itself failed on (the binary's panic guard), so that it can still be stored.
    pub fn transform_raw(&mut self, raw: &[u8], reason: &str, ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        let FrameParts { ingested, blocks } = self.frame_parts(ctx);
        let landmarks = write_unparsed(framed(ctx, ingested), raw, Cow::Owned(reason.to_owned()), ctx, blocks, out);
        Outcome {
            dataset: Some(Dataset::App),
            failure: Some("the transform failed"),
            timestamp: ctx.received_at,
            logplex_dropped: None,
            landmarks,
        }
    }

    /// `event.ingested`, formatted once per frame, and the blocks documents are written with.
    fn frame_parts(&mut self, ctx: &Context<'_>) -> FrameParts<'_> {
        if self.ingested.as_ref().map(|(t, _)| *t) != Some(ctx.received_at) {
            let mut formatted = Vec::with_capacity(32);
            ctx.received_at.write_rfc3339(&mut formatted);
            self.ingested = Some((ctx.received_at, formatted));
        }
        FrameParts { ingested: self.ingested.as_ref().map(|(_, f)| f.as_slice()), blocks: &mut self.blocks }
    }

    fn build(&mut self, raw: &[u8], cut_from: Option<usize>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Outcome {
        let FrameParts { ingested, blocks } = self.frame_parts(ctx);
        let mut doc = Document { cut: cut_from.map(|full| (raw.len(), full)), ..framed(ctx, ingested) };
        let header = match syslog::parse(raw, ctx.structured_data, ctx.received_at) {
            Ok(h) => h,
            Err(e) => {
                let landmarks = write_unparsed(doc, raw, Cow::Borrowed(e.describe()), ctx, blocks, out);
                return Outcome {
                    dataset: None,
                    failure: Some(e.describe()),
                    timestamp: ctx.received_at,
                    logplex_dropped: None,
                    landmarks,
                };
            }
        };

        let dataset = Dataset::classify(header.appname, header.procid, header.msg);
        let msg = match std::str::from_utf8(header.msg) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => utf8::lossy(header.msg),
        };
        let msg: &str = &msg;
        doc.message = msg;
        describe_header(&mut doc, &header, dataset, ctx);

        let failure = typed_fields(&mut doc, dataset, msg);
        if dataset == Dataset::App {
            let app = App::parse(msg);
            if let Some(level) = app.level {
                doc.level = Some(Cow::Borrowed(level));
            }
            doc.app = app.fields;
        }
        level_from_error_code(&mut doc);
        // The router names the dyno that served the request; an empty `dyno=` names none.
        if let Some(r) = &doc.router {
            doc.dyno = r.dyno.as_deref();
        }
        doc.process_type = doc.dyno.and_then(dataset::process_type);
        // The header's own failure (an RFC 3164 date it could not place) is named first, as it
        // comes first in the line.
        let failure = header.failure.map(Cow::Borrowed).or(failure.map(Cow::Owned));
        let failed = failure.is_some();
        doc.failure = failure;
        written(&doc, dataset, failed, ctx, blocks, out)
    }
}

/// What a transformer keeps for the documents of a frame: `event.ingested`, formatted, and
/// the blocks of members they share.
pub(crate) struct FrameParts<'t> {
    pub ingested: Option<&'t [u8]>,
    pub blocks: &'t mut Blocks,
}

/// A document holding what the frame gives each of its messages.
fn framed<'a>(ctx: &Context<'a>, ingested: Option<&'a [u8]>) -> Document<'a> {
    Document {
        ingested,
        heroku_app: ctx.app,
        namespace: ctx.namespace,
        drain_token: ctx.drain_token,
        frame_id: ctx.frame_id,
        labels: ctx.labels,
        ..Document::default()
    }
}

/// Writes `raw` unparsed, as the app's line received now, tagged with `reason`: a line that is
/// not syslog is the app's output as far as anyone can tell, and every document has a dataset.
fn write_unparsed(
    doc: Document<'_>,
    raw: &[u8],
    reason: Cow<'static, str>,
    ctx: &Context<'_>,
    blocks: &mut Blocks,
    out: &mut Vec<u8>,
) -> Landmarks {
    // Invalid bytes become U+FFFD.
    let message = utf8::lossy(syslog::trim_newline(raw));
    let doc = Document {
        dataset: Some(Dataset::App),
        timestamp: Some(ctx.received_at),
        message: &message,
        failure: Some(reason),
        ..doc
    };
    doc.write(out, blocks)
}

/// What the syslog header says, into `doc`: time, level, names, dyno and the drain token.
fn describe_header<'a>(doc: &mut Document<'a>, header: &syslog::Header<'a>, dataset: Dataset, ctx: &Context<'a>) {
    doc.timestamp = Some(header.timestamp.unwrap_or(ctx.received_at));
    doc.dataset = Some(dataset);
    doc.level = Some(Cow::Borrowed(syslog::severity_level(header.severity())));
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
        doc.heroku_app = doc.drain_token.and_then(|t| ctx.app_for_token?.app_for_token(t));
    }
}

/// The typed fields of a router, metrics or platform line (the app's own output is its
/// caller's: a Cedar line and an OTLP record read it differently); what could not be parsed.
fn typed_fields<'a>(doc: &mut Document<'a>, dataset: Dataset, msg: &'a str) -> Option<String> {
    match dataset {
        Dataset::Router => {
            let router = Router::parse(msg);
            if let Some(at) = router.at.as_deref().and_then(level::normalise) {
                doc.level = Some(Cow::Borrowed(at));
            }
            let failure = router.failure.clone();
            doc.router = Some(router);
            failure
        }
        Dataset::RuntimeMetrics | Dataset::Postgres | Dataset::Redis => {
            let samples = Samples::parse(msg);
            let failure = samples.failure.clone();
            doc.samples = Some(samples);
            failure
        }
        Dataset::Platform | Dataset::Logplex => {
            doc.platform = Some(Platform::parse(msg));
            None
        }
        Dataset::App => None,
    }
}

/// An error code (router `code=`, platform `Error R14`) sets the level. On a router line `at=`
/// is Heroku's own judgment and wins (`at=warning code=H27` is a client that hung up, not an
/// error): there the code decides only when the line has no `at=`.
fn level_from_error_code(doc: &mut Document<'_>) {
    let code = match (&doc.router, &doc.platform) {
        (Some(r), _) if r.at.is_some() => return,
        (Some(r), _) => r.code.as_deref(),
        (None, Some(p)) => p.error_code,
        (None, None) => None,
    };
    if let Some(level) = code.and_then(level::for_error_code) {
        doc.level = Some(Cow::Borrowed(level));
    }
}

/// Writes the finished document; what the transform saw, for metrics.
fn written(
    doc: &Document<'_>,
    dataset: Dataset,
    failed: bool,
    ctx: &Context<'_>,
    blocks: &mut Blocks,
    out: &mut Vec<u8>,
) -> Outcome {
    let landmarks = doc.write(out, blocks);
    Outcome {
        dataset: Some(dataset),
        failure: failed.then_some("a field could not be parsed"),
        timestamp: doc.timestamp.unwrap_or(ctx.received_at),
        logplex_dropped: doc.platform.as_ref().and_then(|p| p.dropped),
        landmarks,
    }
}

#[cfg(test)]
mod tests;
