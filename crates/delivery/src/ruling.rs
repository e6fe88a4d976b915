//! Operators' rules (drainpipe-rules) applied to each log document as it is written into its
//! chunk: after the spool, so frames spooled before a reload get the rules in force when they
//! are transformed. A frame is transformed under one set of rules from its first message to its
//! last: [`LiveRules`] is read once per frame.

use std::sync::Arc;

use drainpipe_ingest::Protocol;
use drainpipe_rules::{mark, reroute, Reroute, Rule, Rules, Scratch, Verdict};
use drainpipe_transform::{Context, Outcome, Transformer};
use prometheus::IntCounter;
use tokio::sync::watch;

use crate::documents::{transform_guarded, Message};
use crate::metrics::RULE_DOCUMENTS;
use crate::panic_guard;
use crate::streams::DataStreams;

/// The rules in force; a reload replaces them between frames.
#[derive(Clone, Debug)]
pub struct LiveRules(watch::Receiver<Arc<Rules>>);

impl LiveRules {
    /// Rules that a reload can replace through the sender.
    pub fn channel(rules: Rules) -> (watch::Sender<Arc<Rules>>, LiveRules) {
        let (tx, rx) = watch::channel(Arc::new(rules));
        (tx, LiveRules(rx))
    }

    /// Rules no reload replaces (a replay's, a test's).
    pub fn fixed(rules: Rules) -> LiveRules {
        LiveRules::channel(rules).1
    }

    pub(crate) fn current(&self) -> Arc<Rules> {
        self.0.borrow().clone()
    }
}

impl Default for LiveRules {
    fn default() -> LiveRules {
        LiveRules::fixed(Rules::default())
    }
}

/// One rule's counters, found once per set of rules, not per document.
#[derive(Debug)]
struct Counters {
    dropped: IntCounter,
    sampled_out: IntCounter,
    changed: IntCounter,
    failed: IntCounter,
}

/// The rules a frame is transformed under, with what applying them needs: the streams of each
/// namespace they route to, their counters, and reused scratch space.
#[derive(Debug)]
pub(crate) struct RuleSet {
    rules: Arc<Rules>,
    namespaces: Vec<(String, DataStreams)>,
    counters: Vec<Counters>,
    scratch: Scratch,
}

impl RuleSet {
    pub(crate) fn new(rules: Arc<Rules>) -> RuleSet {
        let mut namespaces: Vec<(String, DataStreams)> = Vec::new();
        for rule in rules.rules() {
            if let drainpipe_rules::Action::Namespace(ns) = &rule.action {
                if !namespaces.iter().any(|(n, _)| n == ns) {
                    namespaces.push((ns.clone(), DataStreams::new(ns)));
                }
            }
        }
        let counters = rules
            .rules()
            .iter()
            .map(|r| {
                let counter = |outcome: &str| RULE_DOCUMENTS.with_label_values(&[r.name.as_str(), outcome]);
                Counters {
                    dropped: counter("dropped"),
                    sampled_out: counter("sampled_out"),
                    changed: counter("changed"),
                    failed: counter("failed"),
                }
            })
            .collect();
        RuleSet { rules, namespaces, counters, scratch: Scratch::default() }
    }

    /// The set for the rules in force now: this one, unless a reload replaced them.
    pub(crate) fn refreshed(self, live: &LiveRules) -> RuleSet {
        let current = live.current();
        if Arc::ptr_eq(&current, &self.rules) {
            self
        } else {
            RuleSet::new(current)
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// What applying the rules needs besides them: the transform (to write a rerouted document
/// again), the message and its frame's context, the streams of the frame's namespace, and what
/// the transform said of the document (its dataset, where its fields are).
pub(crate) struct Rewrite<'a, 's> {
    pub transformer: &'a mut Transformer,
    pub message: &'a Message<'a>,
    pub ctx: &'a Context<'a>,
    pub streams: &'s DataStreams,
    pub written: &'a Outcome,
}

/// Applies `set` to the document in `out[start..]`, bound for `stream`: `None` when a rule
/// dropped it (it is taken out of `out`), else the stream it goes to now. A rule that fails
/// (panics) leaves the document as the transform wrote it, and is counted.
pub(crate) fn apply<'s>(
    set: &'s mut RuleSet,
    mut rewrite: Rewrite<'_, 's>,
    out: &mut Vec<u8>,
    start: usize,
    stream: &'s str,
) -> Option<&'s str> {
    let RuleSet { rules, namespaces, counters, scratch } = set;
    let (rules, namespaces, counters): (&'s Rules, &'s [(String, DataStreams)], &'s [Counters]) =
        (rules, namespaces, counters);
    let mut applying: Option<&'s Rule> = None;
    let result = panic_guard::guarded(|| {
        let verdict =
            rules.judge(out.get(start..).unwrap_or_default(), rewrite.message.id, &rewrite.written.landmarks, scratch);
        if let Some((rule, sampled)) = verdict.gone {
            if let Some(c) = count_of(rules, counters, rule) {
                if sampled { &c.sampled_out } else { &c.dropped }.inc();
            }
            out.truncate(start);
            return None;
        }
        if !verdict.reroutes() && verdict.redactions.is_empty() {
            return Some(stream);
        }
        Some(changed(verdict, rules, namespaces, counters, scratch, &mut rewrite, out, start, stream, &mut applying))
    });
    match result {
        Ok(stream) => stream,
        Err(caught) => {
            // The document as the transform wrote it, written again (not kept aside in case:
            // a copy of every document a rule touches would cost more than this, which is rare).
            out.truncate(start);
            let (_, stream) =
                transform_guarded(rewrite.transformer, rewrite.message, rewrite.ctx, rewrite.streams, out);
            let rule = applying.map_or("?", |r| r.name.as_str());
            if let Some(c) = applying.and_then(|r| count_of(rules, counters, r)) {
                c.failed.inc();
            }
            tracing::error!(rule, error = %caught, "a rule failed on a document (a bug: please report it); the document is stored as it was");
            Some(stream)
        }
    }
}

/// Writes the document in `out[start..]` in the namespace and with the labels `verdict` says,
/// noting the rules that did so in `by`; the stream it goes to now.
#[allow(clippy::too_many_arguments)]
fn rerouted<'s>(
    verdict: &Verdict<'s>,
    rules: &'s Rules,
    namespaces: &'s [(String, DataStreams)],
    scratch: &mut Scratch,
    rewrite: &mut Rewrite<'_, 's>,
    out: &mut Vec<u8>,
    start: usize,
    by: &mut Vec<&'s Rule>,
    applying: &mut Option<&'s Rule>,
) -> &'s str {
    let mut labels = rewrite.ctx.labels.to_vec();
    for (rule, added) in &verdict.labels {
        *applying = Some(rule);
        for (key, value) in added.iter() {
            match labels.iter_mut().find(|(k, _)| k == key) {
                Some(l) => l.1.clone_from(value),
                None => labels.push((key.clone(), value.clone())),
            }
        }
        by.push(rule);
    }
    let routed = verdict.namespace.and_then(|(rule, ns)| {
        *applying = Some(rule);
        by.push(rule);
        namespaces.iter().find(|(n, _)| n == ns).map(|(_, s)| s)
    });
    let streams = routed.unwrap_or(rewrite.streams);
    let to = Reroute {
        namespace: routed.map(DataStreams::namespace),
        labels: if verdict.labels.is_empty() { &[] } else { &labels },
    };
    // In place where the transform's landmarks allow; else the line is transformed again.
    if reroute(out, start, &rewrite.written.landmarks, &to, scratch) {
        return streams.of(rewrite.written.dataset);
    }
    let ctx = Context { labels: &labels, namespace: streams.namespace(), ..*rewrite.ctx };
    out.truncate(start);
    let (outcome, stream) = transform_guarded(rewrite.transformer, rewrite.message, &ctx, streams, out);
    // Where the named fields are in the document as written again.
    rules.locate(out.get(start..).unwrap_or_default(), &outcome.landmarks, scratch);
    stream
}

fn count_of<'c>(rules: &Rules, counters: &'c [Counters], rule: &Rule) -> Option<&'c Counters> {
    let at = rules.rules().iter().position(|r| std::ptr::eq(r, rule))?;
    counters.get(at)
}

/// Applies what `verdict` says changes the document: written again in its new namespace and
/// with its new labels, then redacted, then marked with the rules that changed it.
#[allow(clippy::too_many_arguments)]
fn changed<'s>(
    verdict: Verdict<'s>,
    rules: &'s Rules,
    namespaces: &'s [(String, DataStreams)],
    counters: &[Counters],
    scratch: &mut Scratch,
    rewrite: &mut Rewrite<'_, 's>,
    out: &mut Vec<u8>,
    start: usize,
    stream: &'s str,
    applying: &mut Option<&'s Rule>,
) -> &'s str {
    // A Logplex or syslog line is what every string of its document that patterns read was
    // made from (what the configuration writes, they leave alone).
    let logs = matches!(rewrite.message.protocol, Protocol::Logplex | Protocol::Syslog);
    let source = logs.then_some(rewrite.message.raw);

    let mut by: Vec<&'s Rule> = Vec::new();
    let mut stream = stream;
    if verdict.reroutes() {
        stream = rerouted(&verdict, rules, namespaces, scratch, rewrite, out, start, &mut by, applying);
    }
    if !verdict.redactions.is_empty() {
        *applying = verdict.redactions.first().copied();
        let changed = rules.redact(&verdict.redactions, out, start, scratch, true, source);
        by.extend(verdict.redactions.iter().zip(changed).filter(|(_, c)| **c).map(|(r, _)| *r));
    }
    by.sort_by_key(|r| r.line);
    by.dedup_by_key(|r| r.line);
    mark(out, start, by.iter().map(|r| r.name.as_str()));
    for rule in by {
        if let Some(c) = count_of(rules, counters, rule) {
            c.changed.inc();
        }
    }
    stream
}
