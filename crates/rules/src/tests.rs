//! Rules on documents shaped as drainpipe writes them.

use super::*;
use drainpipe_transform::{Context, Landmark, Outcome, StructuredData, Timestamp, Transformer};

fn rules(text: &str) -> Rules {
    Rules::parse(text, &|_| true).unwrap()
}

const ROUTER: &str = r#"{"@timestamp":"2024-05-01T12:00:00.000Z","event":{"dataset":"heroku.router"},"heroku":{"app":"shop"},"log":{"level":"info"},"url":{"path":"/health","query":"token=abc123"},"http":{"request":{"method":"GET"},"response":{"status_code":200}},"message":"at=info method=GET path=\"/health?token=abc123\" status=200"}"#;

fn names<'r>(rules: &[&'r Rule]) -> Vec<&'r str> {
    rules.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn a_drop_ends_the_list_and_matches_need_every_condition() {
    let r = rules(
        r#"
[[rule]]
name = "other-app"
app = "other"
action = "drop"
[[rule]]
name = "health"
dataset = "router"
field = "url.path"
prefix = "/heal"
status = "2xx"
action = "drop"
[[rule]]
name = "after"
action = "label"
labels = { x = "y" }
"#,
    );
    let v = r.judge(ROUTER.as_bytes(), "id", &Landmarks::default(), &mut Scratch::default());
    assert_eq!(v.gone.map(|(rule, sampled)| (rule.name.as_str(), sampled)), Some(("health", false)));
    assert!(v.labels.is_empty(), "nothing after a drop");
    let v = r.judge(ROUTER.replace("200}", "503}").as_bytes(), "id", &Landmarks::default(), &mut Scratch::default());
    assert!(v.gone.is_none());
    assert_eq!(v.labels.len(), 1);
}

#[test]
fn sampling_keeps_one_in_n_by_id_the_same_way_every_time() {
    let r = rules("[[rule]]\nname = \"tenth\"\naction = \"sample\"\nrate = 10\n");
    let mut scratch = Scratch::default();
    let kept = (0..10_000)
        .filter(|n| r.judge(ROUTER.as_bytes(), &format!("id-{n}"), &Landmarks::default(), &mut scratch).gone.is_none())
        .count();
    assert!((900..=1_100).contains(&kept), "{kept}");
    let again = (0..10_000)
        .filter(|n| r.judge(ROUTER.as_bytes(), &format!("id-{n}"), &Landmarks::default(), &mut scratch).gone.is_none())
        .count();
    assert_eq!(kept, again);
}

#[test]
fn routes_labels_and_redactions_are_gathered_in_order() {
    let r = rules(
        r#"
[[rule]]
name = "staging"
field = "heroku.app"
regex = "^sh"
action = "namespace"
namespace = "staging"
[[rule]]
name = "team"
level = "info"
action = "label"
labels = { team = "shop" }
[[rule]]
name = "secrets"
action = "redact"
patterns = ["password-kv"]
[[rule]]
name = "never"
level = "debug"
action = "redact"
fields = ["message"]
"#,
    );
    let v = r.judge(ROUTER.as_bytes(), "id", &Landmarks::default(), &mut Scratch::default());
    assert_eq!(v.namespace.map(|(_, ns)| ns), Some("staging"));
    assert_eq!(v.labels[0].1, [("team".to_owned(), "shop".to_owned())]);
    assert_eq!(names(&v.redactions), ["secrets"]);
    assert!(v.reroutes());
}

#[test]
fn redaction_keeps_field_names_and_types() {
    let r = rules(
        r#"
[[rule]]
name = "r"
action = "redact"
fields = ["url.query", "http.response", "app.card"]
patterns = ["password-kv", "email"]
"#,
    );
    let doc = r#"{"message":"login ann@example.com password=hunter2 ok","url":{"query":"a=1"},"http":{"response":{"status_code":200,"bytes":5}},"app":{"user":{"Password":"x","age":3},"card":{"n":"4111"}},"tags":["ann@example.com"]}"#;
    let mut out = b"prefix".to_vec();
    out.extend_from_slice(doc.as_bytes());
    assert_eq!(r.redact(&[&r.rules[0]], &mut out, 6, &mut Scratch::default(), false, None), [true]);
    assert_eq!(&out[..6], b"prefix");
    let got: serde_json::Value = serde_json::from_slice(&out[6..]).unwrap();
    let want = serde_json::json!({
        "message": "login [REDACTED] password=[REDACTED] ok",
        "url": {"query": "[REDACTED]"},
        "http": {"response": {"status_code": null, "bytes": null}},
        "app": {"user": {"Password": "[REDACTED]", "age": 3}, "card": {"n": "[REDACTED]"}},
        "tags": ["[REDACTED]"],
    });
    assert_eq!(got, want);
    // Nothing left to change: no change.
    let before = out.clone();
    assert_eq!(r.redact(&[&r.rules[0]], &mut out, 6, &mut Scratch::default(), false, None), [false]);
    assert_eq!(out, before);
}

#[test]
fn marks_list_the_rules_that_changed_a_document() {
    let mut doc = br#"xx{"a":1}"#.to_vec();
    mark(&mut doc, 2, ["one", "two"]);
    assert_eq!(doc, br#"xx{"a":1,"drainpipe":{"rules":["one","two"]}}"#);
    let mut empty = b"{}".to_vec();
    mark(&mut empty, 0, ["one"]);
    assert_eq!(empty, br#"{"drainpipe":{"rules":["one"]}}"#);
    let mut untouched = b"{}".to_vec();
    mark(&mut untouched, 0, []);
    assert_eq!(untouched, b"{}");
}

#[test]
fn escaped_values_match_as_their_text() {
    let r = rules("[[rule]]\nfield = \"message\"\nequals = 'say \"hi\"'\naction = \"drop\"\n");
    let doc = r#"{"message":"say \"hi\""}"#;
    assert!(r.judge(doc.as_bytes(), "id", &Landmarks::default(), &mut Scratch::default()).gone.is_some());
}

#[test]
fn several_redactions_in_one_pass_each_say_whether_it_changed_something() {
    let r = rules(
        r#"
[[rule]]
name = "emails"
action = "redact"
patterns = ["email"]
[[rule]]
name = "cards"
action = "redact"
patterns = ["credit-card"]
[[rule]]
name = "query"
action = "redact"
fields = ["url.query"]
"#,
    );
    let mut doc = br#"{"message":"to ann@example.com","url":{"path":"/"}}"#.to_vec();
    let all: Vec<&Rule> = r.rules.iter().collect();
    assert_eq!(r.redact(&all, &mut doc, 0, &mut Scratch::default(), false, None), [true, false, false]);
    assert_eq!(doc, br#"{"message":"to [REDACTED]","url":{"path":"/"}}"#);
}

#[test]
fn typed_strings_are_redacted_to_null_and_left_alone_by_patterns() {
    let r = rules("[[rule]]\nname = \"ip\"\naction = \"redact\"\nfields = [\"source.ip\"]\npatterns = [\"credit-card\", \"password-kv\"]\n")
        .with_typed_strings(vec!["source.ip".into(), "@timestamp".into()]);
    let mut doc =
        br#"{"@timestamp":"4111 1111 1111 1111","source":{"ip":"203.0.113.7"},"message":"key: 4111 1111 1111 1111"}"#
            .to_vec();
    assert_eq!(r.redact(&[&r.rules[0]], &mut doc, 0, &mut Scratch::default(), false, None), [true]);
    assert_eq!(doc, br#"{"@timestamp":"4111 1111 1111 1111","source":{"ip":null},"message":"key: [REDACTED]"}"#);
}

#[test]
fn a_line_no_pattern_can_occur_in_has_only_its_named_fields_replaced_without_a_second_reading() {
    let r = rules(
        "[[rule]]\nname = \"r\"\naction = \"redact\"\nfields = [\"url.query\", \"source.ip\"]\npatterns = [\"email\"]\n",
    )
    .with_typed_strings(vec!["source.ip".into()]);
    let doc = br#"{"message":"GET /a?x=1","url":{"path":"/a","query":"x=1"},"source":{"ip":"203.0.113.7"}}"#;
    let mut scratch = Scratch::default();
    let verdict = r.judge(doc, "id", &Landmarks::default(), &mut scratch);
    let (mut fast, mut slow) = (doc.to_vec(), doc.to_vec());
    let line: &[u8] = b"GET /a?x=1 from 203.0.113.7";
    assert_eq!(r.redact(&verdict.redactions, &mut fast, 0, &mut scratch, true, Some(line)), [true]);
    assert_eq!(r.redact(&verdict.redactions, &mut slow, 0, &mut scratch, false, None), [true]);
    assert_eq!(fast, slow);
    assert_eq!(fast, br#"{"message":"GET /a?x=1","url":{"path":"/a","query":"[REDACTED]"},"source":{"ip":null}}"#);
}

#[test]
fn a_field_only_a_rule_that_did_not_match_names_is_left_as_it_is() {
    let r = rules(
        "[[rule]]\nname = \"a\"\naction = \"redact\"\nfields = [\"url.path\"]\n[[rule]]\nname = \"b\"\nlevel = \"debug\"\naction = \"redact\"\nfields = [\"url.query\"]\n",
    );
    let doc = br#"{"log":{"level":"info"},"url":{"path":"/a","query":"x=1"}}"#;
    let mut scratch = Scratch::default();
    let verdict = r.judge(doc, "id", &Landmarks::default(), &mut scratch);
    let mut out = doc.to_vec();
    assert_eq!(r.redact(&verdict.redactions, &mut out, 0, &mut scratch, true, Some(b"x")), [true]);
    assert_eq!(out, br#"{"log":{"level":"info"},"url":{"path":"[REDACTED]","query":"x=1"}}"#);
}

/// Read at the places the transform gave, or found by walking the document: the same values.
#[test]
fn landmarks_and_a_walk_find_the_same_values() {
    let mut text = String::new();
    for (n, (_, path)) in Landmark::ALL.iter().enumerate() {
        text.push_str(&format!("[[rule]]\nname = \"r{n}\"\nfield = \"{path}\"\nregex = \".\"\naction = \"label\"\nlabels = {{ a = \"b\" }}\n"));
    }
    text.push_str(
        "[[rule]]\nstatus = \"2xx\"\naction = \"redact\"\nfields = [\"url.query\", \"message\", \"heroku.dyno\"]\n",
    );
    let r = rules(&text);
    assert!(r.landmarks.is_some(), "every field these rules read is a landmark");
    let lines = [
        "<158>1 2025-03-14T09:26:53Z host heroku router - at=info method=GET path=\"/a?q=\\\"x\\\"&t=1\" host=h.example.com request_id=1 fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=2ms status=200 bytes=3 protocol=https",
        "<190>1 2025-03-14T09:26:53Z host app web.2 - {\"level\":\"warn\",\"msg\":\"tab\\there\"}",
        "<45>1 2025-03-14T09:26:53Z host heroku web.1 - source=web.1 dyno=heroku.1 sample#load_avg_1m=0.5",
        "<13>1 2025-03-14T09:26:53Z host heroku api - Release v2 created by ann@example.com",
        "not syslog at all \u{1}",
    ];
    for line in lines {
        let mut doc = b"prefix".to_vec();
        let outcome = transformed(line.as_bytes(), &[], "default", &mut doc);
        let doc = &doc[6..];
        let (mut marked, mut walked) = (Scratch::default(), Scratch::default());
        r.locate(doc, &outcome.landmarks, &mut marked);
        r.locate(doc, &Landmarks::default(), &mut walked);
        for s in [&mut marked, &mut walked] {
            s.values.sort_by_key(|(at, _, span)| (*at, span.start));
            s.fields.sort_by_key(|(at, _, span)| (*at, span.start));
        }
        // Every document has a message, a dataset, a namespace and (here) an app.
        assert!(walked.values.len() >= 4, "{line}: {:?}", walked.values);
        assert_eq!((marked.values, marked.fields), (walked.values, walked.fields), "{line}");
    }
}

/// A document rerouted in place is the one the transform writes for the new namespace and
/// labels, and a field to redact in it is found where it moved to.
#[test]
fn a_reroute_in_place_writes_what_the_transform_would() {
    let r = rules("[[rule]]\nname = \"q\"\naction = \"redact\"\nfields = [\"url.query\"]\n");
    let line = b"<158>1 2025-03-14T09:26:53Z host heroku router - at=info method=GET path=\"/a?t=\\\"1\\\"\" host=h request_id=1 dyno=web.1 connect=1ms service=2ms status=200 bytes=3";
    let write =
        |labels: &[(String, String)], namespace: &str, out: &mut Vec<u8>| transformed(line, labels, namespace, out);
    let label = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let drain = vec![label("env", "prod"), label("team", "a\"b")];
    let merged = vec![label("env", "prod"), label("team", "x"), label("canary", "yes")];
    for (before, after, namespace) in [
        (vec![], vec![label("canary", "yes")], Some("staging")),
        (vec![], vec![label("canary", "yes")], None),
        (drain.clone(), merged.clone(), None),
        (drain.clone(), vec![], Some("staging")),
    ] {
        let mut doc = b"prefix".to_vec();
        let written = write(&before, "default", &mut doc);
        let mut scratch = Scratch::default();
        let verdict = r.judge(&doc[6..], "id", &written.landmarks, &mut scratch);
        let to = Reroute { namespace, labels: &after };
        assert!(reroute(&mut doc, 6, &written.landmarks, &to, &mut scratch));
        r.redact(&verdict.redactions, &mut doc, 6, &mut scratch, true, Some(b"x"));
        let labels = if after.is_empty() { &before } else { &after };
        let mut want = Vec::new();
        let again = write(labels, namespace.unwrap_or("default"), &mut want);
        r.redact(&verdict.redactions, &mut want, 0, &mut Scratch::default(), false, None);
        let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        assert_eq!(json(&doc[6..]), json(&want), "{namespace:?} {after:?}");
        assert_eq!(json(&doc[6..])["url"]["query"], "[REDACTED]");
        assert!(again.landmarks.known());
    }
    let mut scratch = Scratch::default();
    let to = Reroute { namespace: Some("staging"), labels: &[] };
    assert!(!reroute(&mut b"{}".to_vec(), 0, &Landmarks::default(), &to, &mut scratch), "nothing placed");
}

/// The transform's document for `line` from the app `shop`, with the drain's `labels`, in
/// `namespace`, appended to `out`.
fn transformed(line: &[u8], labels: &[(String, String)], namespace: &str, out: &mut Vec<u8>) -> Outcome {
    let ctx = Context {
        app: Some("shop"),
        drain_token: None,
        frame_id: None,
        labels,
        received_at: Timestamp::from_unix(1_741_944_500, 0),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace,
    };
    Transformer::new().transform(line, &ctx, out)
}
