//! Operators' rules on documents the transform wrote from any message: judging and redacting
//! never panic, and a redacted document, nulls aside (Elasticsearch takes `null` for any
//! field), is still of the template's types, marked with the rules that changed it.
#![no_main]

use std::sync::LazyLock;

use drainpipe_fuzz::input::{Body, Ctx, End, Header};
use drainpipe_rules::{mark, Rule, Rules, Scratch};
use drainpipe_transform::{Landmarks, Transformer};
use libfuzzer_sys::fuzz_target;

/// Every pattern, a field redaction of typed and untyped fields, and matches on each kind.
const RULES: &str = r#"
[[rule]]
name = "health"
dataset = "router"
field = "url.path"
prefix = "/health"
action = "drop"

[[rule]]
name = "sampled"
status = "5xx"
action = "sample"
rate = 3

[[rule]]
name = "secrets"
action = "redact"
patterns = ["bearer-token", "password-kv", "credit-card", "email"]

[[rule]]
name = "fields"
field = "message"
regex = "[0-9]"
action = "redact"
fields = ["source.ip", "http", "app.user", "heroku.router.fwd", "event.ingested"]
"#;

/// Rules that read only fields the transform places (landmarks): judged at those places and
/// by walking the document, the same.
const LANDMARKED: &str = r#"
[[rule]]
name = "web"
field = "heroku.dyno"
prefix = "web."
action = "label"
labels = { web = "yes" }

[[rule]]
name = "errors"
level = "error"
action = "namespace"
namespace = "errors"

[[rule]]
name = "queries"
field = "url.query"
regex = "="
action = "redact"
fields = ["url.query", "message", "http.request.method"]

[[rule]]
name = "fours"
status = "4xx"
action = "sample"
rate = 2
"#;

static PARSED: LazyLock<Rules> = LazyLock::new(|| {
    let typed = ["@timestamp", "event.ingested", "heroku.router.fwd", "source.ip"];
    let configured = ["heroku.app", "service.name", "heroku.drain", "labels"];
    Rules::parse(RULES, &|_| true)
        .expect("the target's rules read")
        .with_typed_strings(typed.map(String::from).to_vec())
        .with_configured_fields(configured.map(String::from).to_vec())
});

fuzz_target!(init: drainpipe_fuzz::oracle::self_check(), |input: (Ctx, Header, Body, End)| {
    let (ctx, header, body, end) = input;
    let ctx = ctx.owned();
    let mut raw = Vec::new();
    header.push(&mut raw);
    body.push(&mut raw);
    end.push(&mut raw);
    let mut out = b"prefix".to_vec();
    let outcome = Transformer::new().transform(&raw, &ctx.context(), &mut out);
    drainpipe_fuzz::with_input(&raw, || {
        landmarks_agree(&out, &outcome.landmarks, &raw);
        let rules = &*PARSED;
        let mut scratch = Scratch::default();
        let verdict = rules.judge(&out[6..], "an id", &outcome.landmarks, &mut scratch);
        if verdict.gone.is_some() {
            return;
        }
        // Judged once: redacted the way delivery does (fields only, unless a pattern may occur
        // in the line), and the whole-document way, which must agree.
        let mut read = out.clone();
        let changed = rules.redact(&verdict.redactions, &mut out, 6, &mut scratch, true, Some(&raw)).to_vec();
        let changed_read = rules.redact(&verdict.redactions, &mut read, 6, &mut scratch, false, None).to_vec();
        assert_eq!((&changed, &out), (&changed_read, &read), "fields-only and whole-document redaction differ");
        let names: Vec<&str> =
            verdict.redactions.iter().zip(&changed).filter(|(_, c)| **c).map(|(r, _)| r.name.as_str()).collect();
        mark(&mut out, 6, names.iter().copied());
        assert_eq!(&out[..6], b"prefix");
        let mut doc: serde_json::Value = serde_json::from_slice(&out[6..]).expect("a redacted document is JSON");
        if !names.is_empty() {
            assert_eq!(doc["drainpipe"]["rules"], serde_json::json!(names));
        }
        drop_nulls(&mut doc);
        drainpipe_fuzz::assert_document(doc.to_string().as_bytes());
    });
});

/// [`LANDMARKED`] on the document `out[6..]` of `raw`, judged at its `landmarks` and by
/// walking it: the same verdict, and the same document once redacted.
fn landmarks_agree(out: &[u8], landmarks: &Landmarks, raw: &[u8]) {
    static RULES: LazyLock<Rules> =
        LazyLock::new(|| Rules::parse(LANDMARKED, &|_| true).expect("the target's landmarked rules read"));
    let judged = |landmarks: &Landmarks| {
        let mut scratch = Scratch::default();
        let verdict = RULES.judge(&out[6..], "an id", landmarks, &mut scratch);
        let mut doc = out.to_vec();
        let changed = RULES.redact(&verdict.redactions, &mut doc, 6, &mut scratch, true, Some(raw)).to_vec();
        let names = |rules: &[&Rule]| rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let labels: Vec<&Rule> = verdict.labels.iter().map(|(r, _)| *r).collect();
        let said = (verdict.gone.map(|(r, s)| (r.name.clone(), s)), verdict.namespace.map(|(r, _)| r.name.clone()));
        (said, names(&labels), names(&verdict.redactions), changed, doc)
    };
    assert_eq!(judged(landmarks), judged(&Landmarks::default()), "landmarks and a walk judge differently");
}

/// `doc` without its `null` values (and objects left empty by that).
fn drop_nulls(doc: &mut serde_json::Value) {
    match doc {
        serde_json::Value::Object(map) => {
            map.values_mut().for_each(drop_nulls);
            map.retain(|_, v| !v.is_null() && !v.as_object().is_some_and(|o| o.is_empty()));
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(drop_nulls);
            items.retain(|v| !v.is_null());
        }
        _ => {}
    }
}
