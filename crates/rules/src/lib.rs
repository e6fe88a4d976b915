//! Operator rules on documents, the `[[rule]]` tables of the configuration file, in order: each
//! matches on a document's dataset, app, level, router status or any field's value, and does
//! one thing: `drop` it, `sample` it (keep 1 in N, decided by the document id, so that replicas
//! agree), `redact` fields or secret-shaped text, route it to another `namespace`, or add
//! `labels`.
//!
//! Every rule's match sees the document as the transform wrote it, before any rule changed it,
//! so the order of rules matters only for `drop` and `sample`, which end the list. The crate is
//! pure: it reads and rewrites document bytes ([`Rules::judge`], [`Rules::redact`], [`mark`]);
//! routing and labels are the caller's to apply (by transforming again with them), and so is
//! counting. A rule that would panic costs only itself: the caller keeps the document as it was.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod patterns;
mod reroute;
mod scan;
mod spec;

use std::num::NonZeroU64;
use std::ops::Range;

use drainpipe_transform::{Landmark, Landmarks, Place};

pub use patterns::{Pattern, REDACTED};
pub use reroute::{reroute, Reroute};
pub use spec::{KnownField, RuleError};

use patterns::PatternSet;
use scan::Kind;

/// The rules of one configuration, checked ([`Rules::parse`]), ready to apply.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    /// Every field some rule matches on, once: conditions refer to it by position.
    paths: Vec<String>,
    /// Every field some redaction names, once.
    fields: Vec<String>,
    /// Every field rules read (`paths` and `fields`) and every object on the way to one
    /// (`http`, `http.response`): what judging walks into.
    on_the_way: Vec<String>,
    /// Fields whose string values are typed (dates, IP addresses): a redaction replaces them
    /// with `null` (`[REDACTED]` is no date or address), and no pattern looks into them.
    typed: Vec<String>,
    /// Fields (and objects) the configuration writes, not the line (the app's name, labels,
    /// the drain token): no pattern looks into them.
    configured: Vec<String>,
    /// The landmarks of `paths` and of `fields`, in order, when every one is a landmark: then
    /// a document the transform placed them in is read at those places, not walked.
    landmarks: Option<(Vec<Landmark>, Vec<Landmark>)>,
}

/// One rule: its name (in `drainpipe.rules` and the metrics), where it is in the file, what it
/// matches (all of it), and what it does.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub line: usize,
    conditions: Vec<Condition>,
    pub action: Action,
}

/// A field's value, tested. A field with several values (an array) matches when one does; a
/// document without the field does not match.
#[derive(Debug)]
struct Condition {
    path: String,
    test: Test,
    /// Where `path` is in [`Rules`]' `paths`.
    at: usize,
}

#[derive(Debug)]
enum Test {
    Equals(String),
    Prefix(String),
    Regex(regex::Regex),
    /// An integer within the range, both ends in.
    Range(u16, u16),
}

impl Condition {
    /// The same test of the same field.
    fn same_as(&self, other: &Condition) -> bool {
        self.path == other.path
            && match (&self.test, &other.test) {
                (Test::Equals(a), Test::Equals(b)) | (Test::Prefix(a), Test::Prefix(b)) => a == b,
                (Test::Regex(a), Test::Regex(b)) => a.as_str() == b.as_str(),
                (Test::Range(a, b), Test::Range(c, d)) => (a, b) == (c, d),
                _ => false,
            }
    }

    fn matches(&self, kind: Kind, value: &[u8]) -> bool {
        match &self.test {
            Test::Range(low, high) => {
                kind == Kind::Literal && integer(value).is_some_and(|s| (*low..=*high).contains(&s))
            }
            // Without an escape, a value's text is its bytes (a document is UTF-8).
            Test::Equals(wanted) if !value.contains(&b'\\') => value == wanted.as_bytes(),
            Test::Prefix(prefix) if !value.contains(&b'\\') => value.starts_with(prefix.as_bytes()),
            test => {
                let text = scan::unescaped(value);
                match test {
                    Test::Equals(wanted) => text == wanted.as_str(),
                    Test::Prefix(prefix) => text.starts_with(prefix.as_str()),
                    Test::Regex(re) => re.is_match(&text),
                    Test::Range(..) => false,
                }
            }
        }
    }
}

/// A literal of at most five digits as a number (a status code), else `None`.
fn integer(literal: &[u8]) -> Option<u16> {
    if literal.is_empty() || literal.len() > 5 {
        return None;
    }
    let n = literal.iter().try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))?;
    u16::try_from(n).ok()
}

/// What a rule does to a document it matches.
#[derive(Debug)]
pub enum Action {
    Drop,
    /// Keep 1 in N.
    Sample(NonZeroU64),
    /// Replace the values of `fields` (a field naming an object: every value inside it), and
    /// whatever `patterns` find in any string value.
    Redact {
        fields: Vec<String>,
        patterns: Vec<Pattern>,
    },
    Namespace(String),
    Label(Vec<(String, String)>),
}

/// What the rules make of one document.
#[derive(Debug, Default)]
pub struct Verdict<'r> {
    /// Not stored: the rule that dropped it, or sampled it out (`true`).
    pub gone: Option<(&'r Rule, bool)>,
    /// The namespace it goes to instead, and the rule that says so (the last that matched).
    pub namespace: Option<(&'r Rule, &'r str)>,
    /// Labels to add, with the rules that add them, in rule order.
    pub labels: Vec<(&'r Rule, &'r [(String, String)])>,
    /// Redaction rules that matched, in order.
    pub redactions: Vec<&'r Rule>,
}

impl Verdict<'_> {
    /// Whether the document must be written again (another namespace, labels).
    pub fn reroutes(&self) -> bool {
        self.namespace.is_some() || !self.labels.is_empty()
    }
}

/// Reused between documents: the matched fields' values of the last one.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Vec<(usize, Kind, Range<usize>)>,
    /// The values of the fields redactions name, by their position in [`Rules`]' `fields`,
    /// as the document judged holds them (a typed string's span with its quotes, as a literal).
    fields: Vec<(usize, Kind, Range<usize>)>,
    /// What [`Rules::redact`] found: whether each rule changed the document, and the values
    /// it replaces whole.
    changed: Vec<bool>,
    edits: Vec<(Range<usize>, &'static [u8])>,
}

impl Rules {
    fn new(mut rules: Vec<Rule>) -> Rules {
        let mut paths: Vec<String> = Vec::new();
        for c in rules.iter_mut().flat_map(|r| &mut r.conditions) {
            c.at = paths.iter().position(|p| *p == c.path).unwrap_or_else(|| {
                paths.push(c.path.clone());
                paths.len() - 1
            });
        }
        let mut fields: Vec<String> = Vec::new();
        for rule in &rules {
            if let Action::Redact { fields: named, .. } = &rule.action {
                for f in named {
                    if !fields.contains(f) {
                        fields.push(f.clone());
                    }
                }
            }
        }
        let mut on_the_way: Vec<String> = Vec::new();
        for path in paths.iter().chain(&fields) {
            let ends = path.match_indices('.').map(|(i, _)| i).chain([path.len()]);
            for prefix in ends.filter_map(|end| path.get(..end)) {
                if !on_the_way.iter().any(|p| p == prefix) {
                    on_the_way.push(prefix.to_owned());
                }
            }
        }
        let marks = |paths: &[String]| paths.iter().map(|p| Landmark::of_path(p)).collect::<Option<Vec<_>>>();
        let landmarks = marks(&paths).zip(marks(&fields));
        Rules { rules, paths, fields, on_the_way, typed: Vec::new(), configured: Vec::new(), landmarks }
    }

    /// The same rules, told which fields hold typed strings (dates, IP addresses: the index
    /// template's), which redaction then replaces with `null` and patterns leave alone.
    pub fn with_typed_strings(mut self, paths: Vec<String>) -> Rules {
        self.typed = paths;
        self
    }

    /// The same rules, told which fields (or objects) the configuration writes rather than the
    /// line (`heroku.app`, `labels`): patterns leave them alone, so that what a line's document
    /// holds of its line is all they read (and a line none can occur in needs no second look).
    pub fn with_configured_fields(mut self, paths: Vec<String>) -> Rules {
        self.configured = paths;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What the rules make of the document `doc` (its JSON), whose id is `id`, and where the
    /// transform placed its `landmarks` (unknown: [`Landmarks::default`]).
    pub fn judge<'r>(&'r self, doc: &[u8], id: &str, landmarks: &Landmarks, scratch: &mut Scratch) -> Verdict<'r> {
        self.locate(doc, landmarks, scratch);
        self.verdict(doc, id, scratch)
    }

    /// Reads into `scratch` the values of the fields rules test and redactions name, from the
    /// document `doc` (again, after it was written again: see [`Rules::redact`]'s `judged`):
    /// at its `landmarks` when they place every such field, else by walking it.
    pub fn locate(&self, doc: &[u8], landmarks: &Landmarks, scratch: &mut Scratch) {
        scratch.values.clear();
        scratch.fields.clear();
        if let (Some((paths, fields)), true) = (&self.landmarks, landmarks.known()) {
            let kind = |place: Place| if place.string { Kind::String } else { Kind::Literal };
            for (at, landmark) in paths.iter().enumerate() {
                if let Some(place) = landmarks.get(*landmark) {
                    scratch.values.push((at, kind(place), place.span()));
                }
            }
            for (at, landmark) in fields.iter().enumerate() {
                if let Some(place) = landmarks.get(*landmark) {
                    let (kind, span) = self.typed_as_literal(landmark.path().as_bytes(), kind(place), place.span());
                    scratch.fields.push((at, kind, span));
                }
            }
        } else if !self.paths.is_empty() || !self.fields.is_empty() {
            // Only into what some rule reads: the fields conditions test, and those redactions name.
            // A field on the way to one read, or inside a field a redaction names (lengths first:
            // most keys differ from every one in length).
            let keep = |path: &[u8]| {
                self.on_the_way.iter().any(|p| p.len() == path.len() && p.as_bytes() == path)
                    || self.fields.iter().any(|f| path.len() > f.len() && on_path(path, f.as_bytes()))
            };
            scan::walk_some(doc, keep, |path, kind, span| {
                if kind == Kind::Object {
                    return;
                }
                if let Some(at) = self.paths.iter().position(|p| p.as_bytes() == path) {
                    scratch.values.push((at, kind, span.clone()));
                }
                let (kind, span) = self.typed_as_literal(path, kind, span);
                for (at, field) in self.fields.iter().enumerate() {
                    if on_path(path, field.as_bytes()) {
                        scratch.fields.push((at, kind, span.clone()));
                    }
                }
            });
        }
    }

    fn verdict<'r>(&'r self, doc: &[u8], id: &str, scratch: &Scratch) -> Verdict<'r> {
        let mut verdict = Verdict::default();
        for rule in &self.rules {
            let matched = rule.conditions.iter().all(|c| {
                scratch
                    .values
                    .iter()
                    .any(|(at, kind, span)| *at == c.at && c.matches(*kind, doc.get(span.clone()).unwrap_or_default()))
            });
            if !matched {
                continue;
            }
            match &rule.action {
                Action::Drop => {
                    verdict.gone = Some((rule, false));
                    return verdict;
                }
                Action::Sample(rate) => {
                    if !xxhash_rust::xxh3::xxh3_64(id.as_bytes()).is_multiple_of(rate.get()) {
                        verdict.gone = Some((rule, true));
                        return verdict;
                    }
                }
                Action::Redact { .. } => verdict.redactions.push(rule),
                Action::Namespace(ns) => verdict.namespace = Some((rule, ns)),
                Action::Label(labels) => verdict.labels.push((rule, labels)),
            }
        }
        verdict
    }

    /// A typed string (a date, an IP address) as a literal, quotes and all: a redaction
    /// replaces it whole, with `null`.
    fn typed_as_literal(&self, path: &[u8], kind: Kind, span: Range<usize>) -> (Kind, Range<usize>) {
        match kind {
            Kind::String if self.typed.iter().any(|t| t.as_bytes() == path) => {
                (Kind::Literal, span.start.saturating_sub(1)..span.end + 1)
            }
            kind => (kind, span),
        }
    }

    /// Applies the redaction `rules` to the document in `doc[start..]`; for each rule, whether
    /// it changed something. `judged`: the document is the one [`Rules::judge`] read into
    /// `scratch` (not written again since). `source`: what every string of the document that
    /// patterns read was made from, when that is known (a Logplex or syslog line; not an OTLP
    /// record, whose attributes are not in its body). With both, a line no pattern can occur
    /// in costs no second reading of the document: only the named fields judging found are
    /// replaced.
    pub fn redact<'s>(
        &self,
        rules: &[&Rule],
        doc: &mut Vec<u8>,
        start: usize,
        scratch: &'s mut Scratch,
        judged: bool,
        source: Option<&[u8]>,
    ) -> &'s [bool] {
        let patterns: PatternSet = rules
            .iter()
            .flat_map(|r| match &r.action {
                Action::Redact { patterns, .. } => patterns.as_slice(),
                _ => &[],
            })
            .copied()
            .collect();
        let patterns_may_occur = source.map_or(patterns != PatternSet::default(), |raw| patterns.may_occur_in(raw));
        let Scratch { fields: located, changed, edits, .. } = scratch;
        changed.clear();
        if patterns_may_occur || !judged {
            *changed = self.redact_reading(rules, doc, start);
            return changed;
        }
        changed.resize(rules.len(), false);
        edits.clear();
        let body = doc.get(start..).unwrap_or_default();
        for (at, kind, span) in located.iter() {
            let Some(field) = self.fields.get(*at) else { continue };
            let value = body.get(span.clone()).unwrap_or_default();
            let whole: &'static [u8] = if *kind == Kind::String { REDACTED.as_bytes() } else { b"null" };
            let mut named = false;
            for (rule, changed) in rules.iter().zip(changed.iter_mut()) {
                if matches!(&rule.action, Action::Redact { fields, .. } if fields.contains(field)) {
                    named = true;
                    *changed |= value != whole;
                }
            }
            // Judging found the fields every rule names; only the ones applying here change.
            if named && value != whole && !edits.iter().any(|(s, _)| s.start == span.start) {
                edits.push((span.clone(), whole));
            }
        }
        edits.sort_by_key(|(s, _)| s.start);
        apply_edits(doc, start, edits);
        changed
    }

    /// [`Rules::redact`] reading the whole document: every string value is looked into.
    fn redact_reading(&self, rules: &[&Rule], doc: &mut Vec<u8>, start: usize) -> Vec<bool> {
        let mut changed = vec![false; rules.len()];
        let redactions: Vec<(&[String], &[Pattern])> = rules
            .iter()
            .filter_map(|r| match &r.action {
                Action::Redact { fields, patterns } => Some((fields.as_slice(), patterns.as_slice())),
                _ => None,
            })
            .collect();
        if redactions.len() != rules.len() {
            return changed;
        }
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        let mut scratch = (Vec::new(), Vec::new());
        let body = doc.get(start..).unwrap_or_default();
        scan::walk(body, |path, kind, span| {
            let (kind, span) = self.typed_as_literal(path, kind, span);
            let value = body.get(span.clone()).unwrap_or_default();
            let scanned = !self.configured.iter().any(|c| on_path(path, c.as_bytes()));
            let value = Value { path, kind, text: value, scanned };
            if let Some(text) = redacted(&redactions, &value, &mut changed, &mut scratch) {
                edits.push((span, text));
            }
        });
        apply_edits(doc, start, &edits);
        changed
    }
}

/// The document in `doc[start..]` with each span of `edits` (in order, apart) replaced, in
/// place: the last first, so that the spans before it stay where they are.
fn apply_edits<T: AsRef<[u8]>>(doc: &mut Vec<u8>, start: usize, edits: &[(Range<usize>, T)]) {
    let mut before = doc.len();
    for (span, text) in edits.iter().rev() {
        let (from, to) = (start + span.start, start + span.end);
        // Spans come from this document, in order and apart; one that is not is left alone.
        if from <= to && to <= before {
            doc.splice(from..to, text.as_ref().iter().copied());
            before = from;
        }
    }
}

/// Whether `path` is `prefix` or inside it (`http.response` is on `http`).
fn on_path(path: &[u8], prefix: &[u8]) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"."))
}

/// What the `redactions` make of the value at `path`: its new text when it changes, with each
/// redaction that changed it marked in `changed`. `scratch` holds finds between values.
/// One value of a document, as redaction sees it: its path, kind and text, and whether
/// patterns look into it.
struct Value<'a> {
    path: &'a [u8],
    kind: Kind,
    text: &'a [u8],
    scanned: bool,
}

fn redacted(
    redactions: &[(&[String], &[Pattern])],
    value: &Value<'_>,
    changed: &mut [bool],
    (found, all): &mut (Vec<Range<usize>>, Vec<Range<usize>>),
) -> Option<Vec<u8>> {
    let Value { path, kind, text: value, scanned } = *value;
    if kind == Kind::Object {
        return None;
    }
    let whole: &[u8] = if kind == Kind::String { REDACTED.as_bytes() } else { b"null" };
    let mut replaced_whole = false;
    for ((fields, patterns), changed) in redactions.iter().zip(changed.iter_mut()) {
        if names_field(fields, patterns, path) {
            replaced_whole = true;
            *changed |= value != whole;
        }
    }
    if replaced_whole {
        return (value != whole).then(|| whole.to_vec());
    }
    if kind != Kind::String || !scanned {
        return None;
    }
    all.clear();
    for ((_, patterns), changed) in redactions.iter().zip(changed.iter_mut()) {
        found.clear();
        for p in patterns.iter() {
            p.find(value, found);
        }
        // A value redacted before reads the same redacted again: no change.
        *changed |= found.iter().any(|f| value.get(f.clone()) != Some(REDACTED.as_bytes()));
        all.extend_from_slice(found);
    }
    patterns::replaced(value, all).filter(|t| t != value)
}

/// Whether a redaction of `fields` and `patterns` replaces the value at `path` whole: a field
/// it names (or one inside it), or an `app.*` field named like a secret (`password-kv`).
fn names_field(fields: &[String], patterns: &[Pattern], path: &[u8]) -> bool {
    let named = fields.iter().any(|f| on_path(path, f.as_bytes()));
    named || {
        let key = path.rsplit(|b| *b == b'.').next().unwrap_or_default();
        path.starts_with(b"app.") && patterns.iter().any(|p| p.redacts_field_named(key))
    }
}

/// Adds `drainpipe.rules` (the names of the rules that changed it) to the document in
/// `doc[start..]`, which must be a JSON object.
pub fn mark<'a>(doc: &mut Vec<u8>, start: usize, names: impl IntoIterator<Item = &'a str>) {
    let mut names = names.into_iter().peekable();
    if names.peek().is_none() || doc.len() <= start + 1 || doc.last() != Some(&b'}') {
        return;
    }
    doc.pop();
    let empty = doc.len() == start + 1;
    doc.extend_from_slice(if empty { b"\"drainpipe\":{\"rules\":[" } else { b",\"drainpipe\":{\"rules\":[" });
    for (i, name) in names.enumerate() {
        if i > 0 {
            doc.push(b',');
        }
        // Rule names are checked to need no escaping.
        doc.push(b'"');
        doc.extend_from_slice(name.as_bytes());
        doc.push(b'"');
    }
    doc.extend_from_slice(b"]}}");
}

#[cfg(test)]
mod tests;
