//! Each message of a frame transformed (drainpipe-transform) into its document, written as a
//! `create` bulk item with its id into the chunk being filled; a message the transform panics
//! on becomes a dead letter instead.

use std::sync::Arc;
use std::time::Duration;

use drainpipe_bulk_indexer::DeadLetter;

use drainpipe_bulk_indexer::Countdown;
use drainpipe_ingest::{DrainTokens, Frame, LiveAccess, LogThrottle, Protocol};
use drainpipe_transform::{AppForToken, Context, Dataset, Landmarks, Outcome, StructuredData, Timestamp, Transformer};

use crate::chunker::{Chunker, IndexerGone};
use crate::metrics::{self, TransformTally};
use crate::panic_guard;
use crate::record::MessageIds;
use crate::ruling::{self, LiveRules, Rewrite, RuleSet};
use crate::streams::DataStreams;

/// The transform and what it writes with: the streams of each dataset, and the drain-token
/// list the syslog drains' tokens are looked up in.
#[derive(Debug)]
pub struct Documents {
    transformer: Transformer,
    streams: DataStreams,
    /// Who may send, in force, whose drain tokens the receivers check (Logplex frames arrive
    /// with their app already found; a syslog line's token is looked up here).
    access: LiveAccess,
    /// Operators' rules: those in force, and the set the last frame was transformed under.
    live_rules: LiveRules,
    rules: Option<RuleSet>,
}

/// The receivers' drain-token list, as the transform looks syslog drains' tokens up in it.
#[derive(Debug)]
struct TokenList<'a>(&'a DrainTokens);

impl AppForToken for TokenList<'_> {
    fn app_for_token(&self, token: &str) -> Option<&str> {
        self.0.app(token)
    }
}

impl Documents {
    pub fn new(streams: DataStreams, access: LiveAccess, rules: LiveRules) -> Documents {
        Documents { transformer: Transformer::new(), streams, access, live_rules: rules, rules: None }
    }

    /// Transforms every message of `frame` into its document, written into `chunks` as a
    /// `create` in the stream of its dataset with its id ([`MessageIds`]). `done` runs once
    /// every document is stored, already stored, or dead-lettered.
    pub async fn transform_frame(
        &mut self,
        frame: &Frame,
        chunks: &mut Chunker,
        done: impl FnOnce() + Send + 'static,
    ) -> Result<(), IndexerGone> {
        let ids = MessageIds::of(frame);
        let access = self.access.current();
        let tokens = TokenList(&access.drain_tokens);
        let ctx = frame_context(frame, &self.streams, &tokens);
        let frame_done = Arc::new(Countdown::new(done));
        let mut cuts = frame.cut.iter().peekable();
        let mut tally = TransformTally::default();
        // One set of rules for the whole frame, even if a reload comes meanwhile.
        let mut set = match self.rules.take() {
            Some(set) => set.refreshed(&self.live_rules),
            None => RuleSet::new(self.live_rules.current()),
        };
        let apply_rules = !set.is_empty() && frame_has_logs(frame.protocol);
        for position in 0..frame.messages.len() {
            let raw = frame.message(position);
            let id = ids.id(position, raw);
            let cut_from = cuts.next_if(|(p, _)| *p == position).map(|(_, full)| *full);
            let Some(range) = frame.messages.get(position) else { break };
            let open = chunks.open(&frame_done);
            let (transformer, streams) = (&mut self.transformer, &self.streams);
            let rules = if apply_rules { Some(&mut set) } else { None };
            open.chunk.push_if(id.as_str(), frame.body.slice(range.clone()), |out| {
                let start = out.len();
                let message = Message { raw, id: id.as_str(), cut_from, protocol: frame.protocol };
                let (outcome, stream) = transform_guarded(transformer, &message, &ctx, streams, out);
                tally.record(&outcome);
                let stream = match rules {
                    Some(set) if stream != streams.dead_letters() => {
                        let rewrite = Rewrite { transformer, message: &message, ctx: &ctx, streams, written: &outcome };
                        ruling::apply(set, rewrite, out, start, stream)?
                    }
                    _ => stream,
                };
                let ts = outcome.timestamp;
                open.timestamps.push(ts.unix_seconds() as f64 + f64::from(ts.subsec_nanos()) / 1e9);
                Some(stream)
            });
            if chunks.is_full() {
                chunks.flush().await?;
            }
        }
        frame_done.release();
        self.rules = Some(set);
        Ok(())
    }
}

/// Whether a frame of `protocol` holds log lines, which rules apply to (not OTLP data points
/// or spans).
fn frame_has_logs(protocol: Protocol) -> bool {
    !matches!(protocol, Protocol::OtlpMetrics | Protocol::OtlpTraces)
}

/// One message of a frame, as the transform takes it.
pub(crate) struct Message<'a> {
    pub raw: &'a [u8],
    pub id: &'a str,
    /// Its length before the syslog receiver cut it to the size limit.
    cut_from: Option<usize>,
    pub protocol: Protocol,
}

/// The message's document appended to `out` and the stream it goes to; a panic in the
/// transform leaves a dead letter in `out` instead.
pub(crate) fn transform_guarded<'s>(
    transformer: &mut Transformer,
    message: &Message<'_>,
    ctx: &Context<'_>,
    streams: &'s DataStreams,
    out: &mut Vec<u8>,
) -> (Outcome, &'s str) {
    let start = out.len();
    #[cfg(debug_assertions)]
    panic_guard::injected_fault(message.raw, false);
    let transformed = panic_guard::guarded(|| {
        #[cfg(debug_assertions)]
        panic_guard::injected_fault(message.raw, true);
        match (message.protocol, message.cut_from) {
            (Protocol::Otlp, _) => transformer.transform_otlp(message.raw, ctx, out),
            (Protocol::OtlpMetrics, _) => transformer.transform_otlp_metric(message.raw, ctx, out),
            (Protocol::OtlpTraces, _) => transformer.transform_otlp_span(message.raw, ctx, out),
            (_, None) => transformer.transform(message.raw, ctx, out),
            (_, Some(full)) => transformer.transform_cut(message.raw, full, ctx, out),
        }
    });
    match transformed {
        Ok(outcome) => match message.protocol {
            Protocol::OtlpMetrics => (outcome, streams.metrics()),
            Protocol::OtlpTraces => (outcome, streams.traces()),
            _ => (outcome, streams.of(outcome.dataset)),
        },
        Err(caught) => {
            out.truncate(start);
            let outcome = dead_letter_panic(transformer, message, &caught, ctx, streams, out);
            (outcome, streams.dead_letters())
        }
    }
}

/// Logs a caught transform panic at most this often (each is counted and dead-lettered).
static PANIC_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// A message the transform panicked on, as a dead letter in `out`: its raw line, the panic as
/// the reason, and the document it is stored as by `deadletter replay` (the line kept raw,
/// tagged). Delivery goes on with the next message. Returns the outcome to count.
fn dead_letter_panic(
    transformer: &mut Transformer,
    message: &Message<'_>,
    caught: &panic_guard::Caught,
    ctx: &Context<'_>,
    streams: &DataStreams,
    out: &mut Vec<u8>,
) -> Outcome {
    let (raw, id) = (message.raw, message.id);
    metrics::TRANSFORM_PANICS.inc();
    if let Some(held_back) = PANIC_LOG.allow() {
        tracing::error!(
            panic = %caught,
            id,
            bytes = raw.len(),
            held_back,
            "the transform panicked on a message (a bug: please report it); the message is dead-lettered raw and delivery goes on"
        );
    }
    let reason = format!("the transform panicked: {caught}");
    let mut source = Vec::new();
    // The raw document writes no parsed field; should even it fail, the entry keeps the line.
    let outcome =
        panic_guard::guarded(|| transformer.transform_raw(raw, &reason, ctx, &mut source)).unwrap_or_else(|_| {
            source.clear();
            Outcome {
                dataset: Some(Dataset::App),
                failure: Some("the transform failed"),
                timestamp: ctx.received_at,
                logplex_dropped: None,
                landmarks: Landmarks::default(),
            }
        });
    let letter = DeadLetter {
        index: streams.of(Some(Dataset::App)).to_owned(),
        id: id.to_owned(),
        source,
        original: raw.to_vec(),
        status: 0,
        kind: "transform_panic".to_owned(),
        reason,
        attempts: 0,
    };
    out.extend_from_slice(letter.document().to_string().as_bytes());
    outcome
}

/// What the transform needs to know of the frame a message came in.
fn frame_context<'a>(frame: &'a Frame, streams: &'a DataStreams, tokens: &'a TokenList<'a>) -> Context<'a> {
    Context {
        app: frame.app.as_deref(),
        drain_token: frame.drain_token.as_deref(),
        frame_id: frame.frame_id.as_deref(),
        labels: &frame.labels,
        received_at: Timestamp::from_system_time(frame.received_at),
        structured_data: match frame.protocol {
            Protocol::Logplex | Protocol::Otlp | Protocol::OtlpMetrics | Protocol::OtlpTraces => StructuredData::Absent,
            Protocol::Syslog => StructuredData::Present,
        },
        app_for_token: Some(tokens),
        namespace: streams.namespace(),
    }
}
