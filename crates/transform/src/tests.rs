//! Whole-document tests: one message in, the JSON document out.

use super::*;
use serde_json::{json, Value};
use std::collections::HashMap;

pub(crate) fn ctx() -> Context<'static> {
    Context {
        app: Some("shop"),
        drain_token: Some("d.f0e1d2c3-b4a5-4697-8877-665544332211"),
        frame_id: Some("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
        labels: &[],
        received_at: Timestamp::from_unix(1_741_944_500, 123_456_000),
        structured_data: StructuredData::Absent,
        app_for_token: None,
        namespace: "default",
    }
}

/// A syslog drain's connection: no app, token or frame id from the sender; tokens map to apps.
fn syslog_drain_ctx(apps: &HashMap<String, String>) -> Context<'_> {
    Context {
        app: None,
        drain_token: None,
        frame_id: None,
        structured_data: StructuredData::Present,
        app_for_token: Some(apps),
        ..ctx()
    }
}

fn transform(raw: &str, ctx: &Context<'_>) -> (Value, Outcome) {
    let mut out = Vec::new();
    let outcome = Transformer::new().transform(raw.as_bytes(), ctx, &mut out);
    let doc = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    assert_keys_unique(&out);
    assert_landmarks(&out, &doc, &outcome.landmarks);
    (doc, outcome)
}

/// Every landmark of the document `json` (parsed: `doc`) is where its field's value is, and
/// only a field the document has is placed.
fn assert_landmarks(json: &[u8], doc: &Value, landmarks: &Landmarks) {
    assert!(landmarks.known());
    for (landmark, path) in Landmark::ALL {
        let value = path.split('.').fold(doc, |v, key| &v[key]);
        let place = landmarks.get(landmark);
        match (value, place) {
            (Value::Null, None) => {}
            (Value::String(text), Some(p)) if p.string => {
                let quoted = [b"\"", &json[p.span()], b"\""].concat();
                assert_eq!(&serde_json::from_slice::<String>(&quoted).unwrap(), text, "{path}");
            }
            (Value::Number(n), Some(p)) if !p.string => assert_eq!(&json[p.span()], n.to_string().as_bytes(), "{path}"),
            (value, place) => panic!("{path}: {value} in the document, placed at {place:?}"),
        }
    }
    match (&doc["labels"], landmarks.labels()) {
        (Value::Null, None) => {}
        (labels, Some(p)) => assert_eq!(&serde_json::from_slice::<Value>(&json[p.span()]).unwrap(), labels),
        (labels, None) => panic!("labels {labels} not placed"),
    }
}

/// Elasticsearch refuses a document whose object names a key twice (`serde_json::Value` would
/// quietly keep the last): every object of `json` names each key once.
fn assert_keys_unique(json: &[u8]) {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    struct Unique;
    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
            d.deserialize_any(UniqueVisitor)
        }
    }
    struct UniqueVisitor;
    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
            while seq.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(A::Error::custom(format!("key {key:?} twice")));
                }
                map.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
    }
    if let Err(e) = serde_json::from_slice::<Unique>(json) {
        panic!("{e}: {}", String::from_utf8_lossy(json));
    }
}

#[test]
fn router_line_has_every_common_field() {
    let raw = "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - at=info method=GET path=\"/\" dyno=web.1 status=200\n";
    let (doc, outcome) = transform(raw, &ctx());
    assert_eq!((outcome.dataset, outcome.failure, outcome.logplex_dropped), (Some(Dataset::Router), None, None));
    assert_eq!(outcome.timestamp, Timestamp::parse_rfc3339(b"2025-03-14T09:26:53.589793Z").unwrap());
    assert_eq!(
        doc,
        json!({
            "@timestamp": "2025-03-14T09:26:53.589793Z",
            "message": "at=info method=GET path=\"/\" dyno=web.1 status=200",
            "event": {
                "ingested": "2025-03-14T09:28:20.123456Z",
                "dataset": "heroku.router",
                "kind": "event",
                "category": "web",
                "type": "access",
                "outcome": "success"
            },
            "data_stream": {"type": "logs", "dataset": "heroku.router", "namespace": "default"},
            "service": {"name": "shop"},
            "log": {
                "level": "info",
                "syslog": {
                    "priority": 158,
                    "facility": {"code": 19, "name": "local3"},
                    "severity": {"code": 6, "name": "informational"},
                    "hostname": "host",
                    "appname": "heroku",
                    "procid": "router"
                }
            },
            "heroku": {
                "app": "shop",
                "source": "heroku",
                "dyno": "web.1",
                "process_type": "web",
                "drain": {
                    "token": "d.f0e1d2c3-b4a5-4697-8877-665544332211",
                    "frame_id": "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
                }
            },
            "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
            "url": {"original": "/", "path": "/"}
        })
    );
}

#[test]
fn router_error_level_and_empty_dyno() {
    let raw = "<158>1 2025-03-14T09:26:56.400120+00:00 host heroku router - at=error code=H10 desc=\"App crashed\" dyno= connect= status=503\n";
    let (doc, _) = transform(raw, &ctx());
    assert_eq!(doc["log"]["level"], "error");
    assert_eq!(doc["heroku"].get("dyno"), None);
    assert_eq!(doc["heroku"].get("process_type"), None);
}

/// Router `at=` is Heroku's own judgment and wins; a code sets the level only without `at=`.
#[test]
fn router_at_wins_over_the_error_code() {
    let level = |line: &str| {
        let (doc, _) =
            transform(&format!("<158>1 2025-03-14T09:26:41.324679+00:00 host heroku router - {line}\n"), &ctx());
        (doc["log"]["level"].clone(), doc["error"]["code"].clone())
    };
    let h27 = "code=H27 desc=\"Client Request Interrupted\" method=POST path=\"/upload\" status=499";
    assert_eq!(level(&format!("sock=client at=warning {h27}")), (json!("warning"), json!("H27")));
    assert_eq!(level(&format!("at=info {h27}")), (json!("info"), json!("H27")));
    assert_eq!(level(&format!("at=error {h27}")), (json!("error"), json!("H27")));
    // No `at=` (or an empty one): the code decides.
    assert_eq!(level(h27), (json!("error"), json!("H27")));
    assert_eq!(level(&format!("at= {h27}")), (json!("error"), json!("H27")));
    // A `code=` that is not a Heroku code sets nothing.
    assert_eq!(level("code=Hello method=GET path=\"/\" status=200").0, json!("info"));
}

/// `source.ip` is the client: the first entry of `fwd`, and only when that entry is an address.
#[test]
fn source_ip_only_when_fwd_starts_with_an_address() {
    let router = |fwd: &str| {
        let raw = format!(
            "<158>1 2025-03-14T09:26:37Z host heroku router - at=info method=GET path=\"/\" fwd=\"{fwd}\" status=200\n"
        );
        transform(&raw, &ctx()).0
    };
    let doc = router("unknown, 192.0.2.1");
    assert_eq!(doc.get("source"), None, "192.0.2.1 is a proxy, not the client: {doc}");
    assert_eq!(doc["heroku"]["router"]["fwd"], json!(["192.0.2.1"]));
    assert_eq!(doc["tags"], json!([PARSE_FAILURE_TAG]));
    let doc = router("203.0.113.7,unknown,10.0.0.1");
    assert_eq!(doc["source"]["ip"], "203.0.113.7");
    assert_eq!(doc["heroku"]["router"]["fwd"], json!(["203.0.113.7", "10.0.0.1"]));
    let doc = router("2001:db8::7");
    assert_eq!(doc["source"]["ip"], "2001:db8::7");
}

/// docs/fields.md: `H*`, `R10`, `R15`, `R16`, `R17`, `R99`, `L*` are errors, `R14` a warning;
/// any other code (`R12`, `R13`) keeps the syslog severity.
#[test]
fn platform_error_codes_set_the_level() {
    for (code, level) in [
        ("H10", "error"),
        ("R10", "error"),
        ("R12", "notice"),
        ("R13", "notice"),
        ("R14", "warning"),
        ("R15", "error"),
        ("R16", "error"),
        ("R17", "error"),
        ("R99", "error"),
        ("L10", "error"),
    ] {
        let raw = format!("<45>1 2025-03-14T09:26:17.134623+00:00 host heroku web.1 - Error {code} (Something)\n");
        let (doc, _) = transform(&raw, &ctx());
        assert_eq!(doc["error"]["code"], code);
        assert_eq!(doc["log"]["level"], level, "{code}");
    }
}

/// An RFC 3164 date names no year: it is read in the year up to a day after receipt. `Feb 29`
/// with no 29 February in that year is not guessed into an older year: the receive time stands
/// and the document says why; the rest of the header is still read.
#[test]
fn rfc3164_feb_29_outside_a_leap_year_uses_the_receive_time() {
    let apps = HashMap::new();
    let c = syslog_drain_ctx(&apps);
    let (doc, outcome) = transform("<13>Feb 29 09:26:53 host app: not a leap year in 2025", &c);
    assert_eq!(doc["@timestamp"], "2025-03-14T09:28:20.123456Z", "{doc}");
    assert_eq!(outcome.timestamp, c.received_at);
    assert_eq!(doc["tags"], json!([PARSE_FAILURE_TAG]));
    assert_eq!(
        doc["error"]["message"],
        "RFC 3164 TIMESTAMP names no day in the year before it was received (Feb 29 outside a leap year)"
    );
    assert_eq!(doc["message"], "not a leap year in 2025");
    assert_eq!((&doc["log"]["syslog"]["hostname"], &doc["log"]["syslog"]["appname"]), (&json!("host"), &json!("app")));
    // Within that year, 29 February is read as usual.
    let jan = Context { received_at: Timestamp::parse_rfc3339(b"2025-01-10T00:00:00Z").unwrap(), ..c.clone() };
    let (doc, _) = transform("<13>Feb 29 09:26:53 host app: last year's leap day", &jan);
    assert_eq!(doc["@timestamp"], "2024-02-29T09:26:53Z");
    assert_eq!(doc.get("tags"), None);
    let leap = Context { received_at: Timestamp::parse_rfc3339(b"2028-02-28T23:30:00Z").unwrap(), ..c };
    let (doc, _) = transform("<13>Feb 29 00:10:00 host app: a sender's clock a little ahead", &leap);
    assert_eq!(doc["@timestamp"], "2028-02-29T00:10:00Z");
}

#[test]
fn app_line_takes_dyno_from_procid() {
    let raw = "<190>1 2025-03-14T10:26:53.000001+01:00 host app worker.3 - Processing job 42\n";
    let (doc, outcome) = transform(raw, &ctx());
    assert_eq!(outcome.dataset, Some(Dataset::App));
    assert_eq!(doc["@timestamp"], "2025-03-14T09:26:53.000001Z");
    assert_eq!(doc["message"], "Processing job 42");
    assert_eq!(doc["heroku"]["dyno"], "worker.3");
    assert_eq!(doc["heroku"]["process_type"], "worker");
    assert_eq!(doc["heroku"]["source"], "app");
    assert_eq!(doc["log"]["level"], "info");
}

#[test]
fn platform_line_without_dyno_procid() {
    let raw = "<172>1 2025-03-14T09:30:00+00:00 host heroku api - Release v42 created by user@example.com\n";
    let (doc, outcome) = transform(raw, &ctx());
    assert_eq!(outcome.dataset, Some(Dataset::Platform));
    assert_eq!(doc["log"]["level"], "warning");
    assert_eq!(doc["log"]["syslog"]["procid"], "api");
    assert_eq!(doc["heroku"].get("dyno"), None);
}

#[test]
fn garbage_is_indexed_raw_and_tagged() {
    let (doc, outcome) = transform("this is not syslog\n", &ctx());
    assert_eq!(outcome.dataset, None);
    assert!(outcome.failure.is_some());
    assert_eq!(doc["message"], "this is not syslog");
    assert_eq!(doc["tags"], json!([PARSE_FAILURE_TAG]));
    assert_eq!(doc["error"]["message"], "not syslog: missing or invalid <PRI>");
    assert_eq!(doc["@timestamp"], "2025-03-14T09:28:20.123456Z");
    assert_eq!(doc["heroku"]["app"], "shop");
}

#[test]
fn labels_and_missing_context() {
    let labels = vec![("env".to_owned(), "staging".to_owned())];
    let c = Context { app: None, drain_token: None, frame_id: None, labels: &labels, ..ctx() };
    let (doc, _) = transform("<14>1 2025-03-14T09:26:53Z host app web.1 - hi", &c);
    assert_eq!(doc["labels"], json!({"env": "staging"}));
    assert_eq!(doc["heroku"].get("app"), None);
    assert_eq!(doc["heroku"].get("drain"), None);
}

#[test]
fn invalid_utf8_still_makes_valid_json() {
    let mut out = Vec::new();
    Transformer::new().transform(b"<14>1 2025-03-14T09:26:53Z host app web.1 - caf\xe9\n", &ctx(), &mut out);
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["message"], "caf\u{fffd}");
}

#[test]
fn syslog_drain_hostname_is_the_drain_token_and_maps_to_an_app() {
    let apps: HashMap<String, String> = [("d.0b7a".to_owned(), "shop".to_owned())].into();
    let c = syslog_drain_ctx(&apps);
    let (doc, _) = transform("<190>1 2025-03-14T09:26:53Z d.0b7a app web.1 - - hello", &c);
    assert_eq!(doc["message"], "hello");
    assert_eq!(doc["heroku"]["drain"]["token"], "d.0b7a");
    assert_eq!(doc["heroku"]["app"], "shop");
    // A relay's hostname is not a drain token.
    let (doc, _) = transform("<13>Mar 14 09:26:53 web-01 nginx[4711]: GET /", &c);
    assert_eq!(doc["heroku"].get("drain"), None);
    assert_eq!(doc["log"]["syslog"]["hostname"], "web-01");
    assert_eq!(doc["log"]["syslog"]["procid"], "4711");
}

#[test]
fn cut_messages_are_tagged() {
    let mut out = Vec::new();
    Transformer::new().transform_cut(b"<14>1 2025-03-14T09:26:53Z host app web.1 - abc", 70_000, &ctx(), &mut out);
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["tags"], json!([TRUNCATED_TAG]));
    assert_eq!(doc["error"]["message"], "message cut to 47 of 70000 bytes (size limit)");
    out.clear();
    Transformer::new().transform_cut(b"garbage", 70_000, &ctx(), &mut out);
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["tags"], json!([PARSE_FAILURE_TAG, TRUNCATED_TAG]));
}

/// Lines that once panicked the transform (issue 25): each must give a valid document.
#[test]
fn hostile_lines_make_valid_documents() {
    let lines = [
        // `first_word` skips Unicode whitespace (U+0085 is two bytes), then the code's length was
        // used to slice the text after "Error ": inside a character.
        "<190>1 2025-01-01T00:00:00Z host heroku web.1 - Error \u{85}\u{85}R14",
        "<190>1 2025-01-01T00:00:00Z host heroku web.1 - Error \u{3000}R14 (Memory quota exceeded)",
        // A finite number of seconds is not always a finite number of milliseconds (`inf`).
        "<45>1 2025-01-01T00:00:00Z host heroku web.1 - source=web.1 dyno=heroku.1 sample#load_avg_1m=1e307s",
        // An unknown router key renamed away from a typed field must not meet one of that name.
        "<158>1 2025-01-01T00:00:00Z host heroku router - at=info connect_ms=1 connect_ms_text=2 status=200",
    ];
    for line in lines {
        let (doc, _) = transform(line, &ctx());
        assert!(doc["message"].is_string(), "{line:?}: {doc}");
    }
}

/// One message adds at most `APP_MAX_KEYS` app keys, `MAX_ROUTER_KEYS` router keys and
/// `MAX_METRICS` metrics: the first ones are kept, `message` keeps all, and the document says so.
#[test]
fn what_one_message_may_add_is_capped() {
    let line = |procid: &str, msg: &str| format!("<190>1 2025-03-14T09:26:53Z host app {procid} - {msg}");
    let capped = |doc: &Value, note: &str| {
        assert_eq!(doc["tags"], json!([FIELDS_CAPPED_TAG]));
        assert_eq!(doc["error"]["message"], note);
    };
    // App JSON: the first keys, as written; nested objects' keys do not count.
    let members: Vec<String> = (0..APP_MAX_KEYS + 500).map(|i| format!("\"k{i}\":{i}")).collect();
    let msg = format!("{{{}}}", members.join(","));
    let (doc, outcome) = transform(&line("web.1", &msg), &ctx());
    let app = doc["app"].as_object().unwrap();
    assert_eq!((app.len(), &app["k0"], &app["k999"], app.get("k1000")), (APP_MAX_KEYS, &json!(0), &json!(999), None));
    assert_eq!(doc["message"], msg);
    assert_eq!(outcome.failure, None, "a cap is not a parse failure");
    capped(&doc, "app: 500 keys past the first 1000 left out");
    let exactly = format!("{{{}}}", members[..APP_MAX_KEYS].join(","));
    let (doc, _) = transform(&line("web.1", &exactly), &ctx());
    assert_eq!((doc["app"].as_object().unwrap().len(), doc.get("tags")), (APP_MAX_KEYS, None));
    let nested = format!("{{\"a\":{{{}}},\"b\":[{}]}}", members.join(","), "1,".repeat(5000) + "1");
    let (doc, _) = transform(&line("web.1", &nested), &ctx());
    assert_eq!((doc["app"]["a"].as_object().unwrap().len(), doc.get("tags")), (APP_MAX_KEYS + 500, None));
    // App logfmt: the first keys; a key seen again keeps its place and takes the last value.
    let pairs: Vec<String> = (0..APP_MAX_KEYS + 20).map(|i| format!("k{i}={i}")).collect();
    let (doc, _) = transform(&line("web.1", &format!("{} k5=last", pairs.join(" "))), &ctx());
    let app = doc["app"].as_object().unwrap();
    assert_eq!((app.len(), &app["k5"], app.get("k1000")), (APP_MAX_KEYS, &json!("last"), None));
    capped(&doc, "app: 20 keys past the first 1000 left out");
    // Router keys it does not know.
    let other: Vec<String> = (0..MAX_ROUTER_KEYS + 1).map(|i| format!("x{i}=v")).collect();
    let raw = format!("<158>1 2025-03-14T09:26:53Z host heroku router - at=info status=200 {}", other.join(" "));
    let (doc, _) = transform(&raw, &ctx());
    assert_eq!(doc["heroku"]["router"].as_object().unwrap().len(), MAX_ROUTER_KEYS);
    assert_eq!(doc["http"]["response"]["status_code"], 200);
    capped(&doc, "heroku.router: 1 keys past the first 100 left out");
    // Metrics.
    let samples: Vec<String> = (0..MAX_METRICS + 3).map(|i| format!("sample#m{i}=1")).collect();
    let raw = format!("<45>1 2025-03-14T09:26:53Z host heroku web.1 - source=web.1 {}", samples.join(" "));
    let (doc, _) = transform(&raw, &ctx());
    assert_eq!(doc["heroku"]["metrics"].as_object().unwrap().len(), MAX_METRICS + 1, "and source");
    capped(&doc, "heroku.metrics: 3 metrics past the first 100 left out");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn check_valid_json(raw: &[u8], sd: StructuredData) -> Result<(), TestCaseError> {
        let c = Context { structured_data: sd, ..ctx() };
        let mut out = Vec::new();
        let outcome = Transformer::new().transform(raw, &c, &mut out);
        let doc: Value = serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(doc["@timestamp"].is_string());
        prop_assert!(doc["message"].is_string());
        prop_assert_eq!(outcome.failure.is_some(), doc.get("tags").is_some());
        Ok(())
    }

    proptest! {
        #[test]
        fn any_bytes_make_a_valid_document(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_valid_json(&raw, StructuredData::Absent)?;
            check_valid_json(&raw, StructuredData::Present)?;
        }

        #[test]
        fn syslog_shaped_noise_makes_a_valid_document(
            pri in 0u16..300,
            ts in "[0-9TZ:.+-]{0,40}|2025-03-14T09:26:53(\\.[0-9]{1,12})?([+-][0-9]{2}:[0-9]{2}|Z)",
            fields in proptest::collection::vec("[ -~]{0,12}", 0..6),
            msg in "\\PC{0,60}",
        ) {
            let raw = format!("<{pri}>1 {ts} {} {msg}", fields.join(" "));
            check_valid_json(raw.as_bytes(), StructuredData::Absent)?;
            check_valid_json(raw.as_bytes(), StructuredData::Present)?;
            let rfc3164 = format!("<{pri}>Mar 14 09:26:53 {} {msg}", fields.join(" "));
            check_valid_json(rfc3164.as_bytes(), StructuredData::Present)?;
        }
    }
}

/// The data-driven cases: every line of `testdata/<name>.log` against the document on the same
/// line of `testdata/<name>.expected.jsonl`. The cases are always compared with the committed
/// expectations. `DRAINPIPE_BLESS=1` also rewrites the files that differ, and the run still
/// fails: review the diff, then run again without it. A run with it set never passes a
/// mismatch.
#[test]
fn testdata() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let bless = std::env::var_os("DRAINPIPE_BLESS").is_some();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".log").map(str::to_owned))
        .collect();
    names.sort();
    let (mut cases, mut failures, mut rewritten) = (0, Vec::new(), Vec::new());
    for name in names {
        let input = std::fs::read(dir.join(format!("{name}.log"))).unwrap();
        let expected_path = dir.join(format!("{name}.expected.jsonl"));
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(text) => text,
            Err(e) if bless && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("{}: {e}", expected_path.display()),
        };
        let mut expected = expected.lines();
        let mut blessed = String::new();
        let failed_before = failures.len();
        for (n, line) in input.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
            cases += 1;
            let got = check(&name, line);
            blessed.push_str(&serde_json::to_string(&got).unwrap());
            blessed.push('\n');
            // A missing or unreadable expectation is a mismatch (and blessing replaces it).
            let want: Value = serde_json::from_str(expected.next().unwrap_or("null")).unwrap_or(Value::Null);
            if got != want {
                failures.push(format!("{name}.log:{}\n  got:  {got}\n  want: {want}", n + 1));
            }
        }
        // An expectation without its case would never be compared: that is a failure too.
        let extra = expected.filter(|l| !l.trim().is_empty()).count();
        if extra > 0 {
            failures.push(format!("{name}.expected.jsonl has {extra} line(s) more than {name}.log has cases"));
        }
        if bless && failures.len() > failed_before {
            std::fs::write(&expected_path, blessed).unwrap();
            rewritten.push(format!("{name}.expected.jsonl"));
        }
    }
    assert!(cases >= 100, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}{}",
        failures.len(),
        failures.join("\n"),
        if rewritten.is_empty() {
            String::new()
        } else {
            format!(
                "\nDRAINPIPE_BLESS rewrote {}: review the diff, then run again without DRAINPIPE_BLESS",
                rewritten.join(", ")
            )
        }
    );
}

/// The blocks a transformer keeps from one message to the next (document.rs `Blocks`) give
/// the bytes and landmarks a new transformer gives: one transformer takes every testdata line
/// under contexts that change between lines (app, token, frame, namespace, receive time, none).
#[test]
fn a_reused_transformer_writes_what_a_new_one_writes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let apps: HashMap<String, String> =
        [("d.0b7a3c2e-5d4f-4e6a-9b8c-7d6e5f4a3b2c".to_owned(), "shop".to_owned())].into();
    let base = ctx();
    let contexts = [
        base.clone(),
        Context { app: Some("other"), ..base.clone() },
        Context { frame_id: Some("1F1E2D3C4B5A69788796A5B4C3D2E1F0"), ..base.clone() },
        Context { namespace: "prod", received_at: Timestamp::from_unix(1_741_944_501, 0), ..base.clone() },
        syslog_drain_ctx(&apps),
        Context { app: None, drain_token: None, frame_id: None, ..base.clone() },
    ];
    let mut reused = Transformer::new();
    let mut lines = 0;
    for name in ["router", "app", "edge", "metrics", "platform", "syslog-drain"] {
        let input = std::fs::read(dir.join(format!("{name}.log"))).unwrap();
        for (n, line) in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            // Two lines under each context in turn, so blocks are both kept and replaced.
            let c = &contexts[(n / 2) % contexts.len()];
            let (mut fresh, mut again) = (Vec::new(), Vec::new());
            let want = Transformer::new().transform(line, c, &mut fresh);
            let got = reused.transform(line, c, &mut again);
            assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&fresh), "{name}.log:{}", n + 1);
            assert_eq!(got, want, "{name}.log:{}", n + 1);
            lines += 1;
        }
    }
    assert!(lines > 100, "{lines} lines");
}

/// One line of testdata through the transform. `syslog-drain` files arrive as syslog drains;
/// each line of `otlp` files is an OTLP JSON logs export of one record.
fn check(file: &str, line: &[u8]) -> Value {
    let apps: HashMap<String, String> =
        [("d.0b7a3c2e-5d4f-4e6a-9b8c-7d6e5f4a3b2c".to_owned(), "shop".to_owned())].into();
    let c = if file.starts_with("syslog-drain") { syslog_drain_ctx(&apps) } else { ctx() };
    let mut out = Vec::new();
    let outcome = if file.starts_with("otlp") {
        let request = drainpipe_otlp::decode_logs(line, drainpipe_otlp::Encoding::Json).unwrap();
        let records = drainpipe_otlp::split(request);
        assert_eq!(records.len(), 1, "one record per line");
        let c = Context { app: None, drain_token: None, frame_id: None, ..c };
        Transformer::new().transform_otlp(&records[0], &c, &mut out)
    } else {
        Transformer::new().transform(line, &c, &mut out)
    };
    assert!(!out.contains(&b'\n'), "a document is one NDJSON line");
    let doc = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    assert_landmarks(&out, &doc, &outcome.landmarks);
    doc
}

mod otlp {
    use super::*;
    use drainpipe_otlp::proto::{
        AnyValue, InstrumentationScope, KeyValue, KeyValueList, LogRecord, Resource, Value as V,
    };
    use drainpipe_otlp::Record;
    use prost::Message as _;

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(V::String(value.to_owned())) }) }
    }

    fn fir_resource() -> Resource {
        Resource {
            attributes: vec![
                text("service.name", "shop"),
                text("heroku.app.id", "1f0e2d3c-0000-4000-8000-000000000001"),
                text("heroku.dyno.name", "web.1"),
                text("heroku.dyno.type", "web"),
                text("heroku.release.version", "v42"),
                text("cloud.region", "virginia"),
            ],
        }
    }

    fn transform_record(record: LogRecord, resource: Resource) -> (Value, Outcome) {
        let scope = InstrumentationScope { name: "rails".to_owned(), version: "7.2".to_owned(), attributes: vec![] };
        let raw = Record { resource: Some(resource), scope: Some(scope), record: Some(record) }.encode_to_vec();
        let mut out = Vec::new();
        let c = Context { app: None, drain_token: None, frame_id: None, ..ctx() };
        let outcome = Transformer::new().transform_otlp(&raw, &c, &mut out);
        let doc = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
        (doc, outcome)
    }

    #[test]
    fn a_fir_record_has_the_fields_a_cedar_line_has() {
        let record = LogRecord {
            time_unix_nano: 1_732_442_400_123_456_789,
            severity_text: "WARN".to_owned(),
            body: Some(AnyValue { value: Some(V::String("payment retried".to_owned())) }),
            attributes: vec![KeyValue { key: "order".to_owned(), value: Some(AnyValue { value: Some(V::Int(7)) }) }],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..LogRecord::default()
        };
        let (doc, outcome) = transform_record(record, fir_resource());
        assert_eq!(outcome.dataset, Some(Dataset::App));
        assert_eq!(doc["@timestamp"], "2024-11-24T10:00:00.123456789Z", "the nanoseconds the record came with");
        assert_eq!(doc["message"], "payment retried");
        assert_eq!(doc["log"]["level"], "warning");
        assert_eq!(doc["service"]["name"], "shop");
        assert_eq!(doc["event"]["dataset"], "heroku.app");
        assert_eq!(doc["data_stream"]["dataset"], "heroku.app");
        let heroku = &doc["heroku"];
        assert_eq!(
            (
                &heroku["app"],
                &heroku["app_id"],
                &heroku["dyno"],
                &heroku["process_type"],
                &heroku["release"]["version"]
            ),
            (
                &json!("shop"),
                &json!("1f0e2d3c-0000-4000-8000-000000000001"),
                &json!("web.1"),
                &json!("web"),
                &json!("v42")
            )
        );
        assert_eq!(heroku["source"], "app");
        assert_eq!(doc["trace"]["id"], "ab".repeat(16));
        assert_eq!(doc["span"]["id"], "cd".repeat(8));
        assert_eq!(doc["app"], json!({"order": 7}));
        assert_eq!(
            doc["otel"],
            json!({"resource": {"cloud.region": "virginia"}, "scope": {"name": "rails", "version": "7.2"}})
        );
        assert!(doc.get("tags").is_none(), "{doc}");
    }

    #[test]
    fn a_router_line_over_otlp_is_a_router_document() {
        let line = "at=error code=H12 desc=\"Request timeout\" method=POST path=\"/checkout\" host=shop.example.com request_id=abc fwd=\"203.0.113.7\" dyno=web.2 connect=1ms service=30000ms status=503 bytes=0 protocol=https";
        let record = LogRecord {
            observed_time_unix_nano: 1_732_442_400_000_000_000,
            body: Some(AnyValue { value: Some(V::String(line.to_owned())) }),
            ..LogRecord::default()
        };
        let (doc, outcome) = transform_record(record, Resource { attributes: vec![text("heroku.app.name", "shop")] });
        assert_eq!(outcome.dataset, Some(Dataset::Router));
        assert_eq!(doc["@timestamp"], "2024-11-24T10:00:00.000000000Z", "observed time when there is no time");
        assert_eq!(doc["http"]["response"]["status_code"], 503);
        assert_eq!(doc["log"]["level"], "error");
        assert_eq!(doc["heroku"]["dyno"], "web.2");
        assert_eq!(doc["heroku"]["source"], "heroku");
        assert_eq!(doc["error"]["code"], "H12");
    }

    /// A token mapped to an app (`--otlp-token TOKEN=APP`) binds that app: a resource naming
    /// another cannot write into it, and keeps its claim under `otel.resource`.
    #[test]
    fn the_bearer_tokens_app_wins_over_the_resources() {
        let resource = Resource { attributes: vec![text("heroku.app.name", "other"), text("service.name", "svc")] };
        let raw = Record { resource: Some(resource), scope: None, record: Some(LogRecord::default()) }.encode_to_vec();
        let app_of = |app: Option<&str>| {
            let mut out = Vec::new();
            let c = Context { app, drain_token: None, frame_id: None, ..ctx() };
            Transformer::new().transform_otlp(&raw, &c, &mut out);
            serde_json::from_slice::<Value>(&out).unwrap()
        };
        let doc = app_of(Some("shop"));
        assert_eq!((&doc["heroku"]["app"], &doc["service"]["name"]), (&json!("shop"), &json!("shop")));
        assert_eq!(doc["otel"]["resource"]["heroku.app.name"], "other", "the overruled claim is kept");
        // A token that names no app leaves it to the resource.
        assert_eq!(app_of(None)["heroku"]["app"], "other");
    }

    #[test]
    fn a_map_body_goes_under_app_and_message_holds_its_json() {
        let body = KeyValueList { values: vec![text("msg", "hi"), text("level", "error")] };
        let record = LogRecord {
            severity_number: 9,
            body: Some(AnyValue { value: Some(V::KvList(body)) }),
            attributes: vec![text("msg", "not this one"), text("extra", "x")],
            ..LogRecord::default()
        };
        let (doc, _) = transform_record(record, fir_resource());
        assert_eq!(doc["app"], json!({"msg": "hi", "level": "error", "extra": "x"}), "the body's keys win");
        let message: Value = serde_json::from_str(doc["message"].as_str().unwrap()).unwrap();
        assert_eq!(message, json!({"msg": "hi", "level": "error"}));
        assert_eq!(doc["log"]["level"], "info", "severityNumber 9 before the body's level");
        assert_eq!(doc["@timestamp"], "2025-03-14T09:28:20.123456Z", "the receive time when the record has none");
    }

    proptest::proptest! {
        /// Whatever a sender posts, decoding does not panic and every record is a document.
        #[test]
        fn any_export_body_decodes_or_is_refused_and_every_record_is_a_document(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            json in "[\\[\\]{}:,\"a-zA-Z0-9 .]{0,200}",
        ) {
            for (body, encoding) in [(&raw[..], drainpipe_otlp::Encoding::Protobuf), (json.as_bytes(), drainpipe_otlp::Encoding::Json)] {
                if let Ok(request) = drainpipe_otlp::decode_logs(body, encoding) {
                    for record in drainpipe_otlp::split(request) {
                        let mut out = Vec::new();
                        Transformer::new().transform_otlp(&record, &ctx(), &mut out);
                        proptest::prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
                    }
                }
            }
        }
    }

    #[test]
    fn what_is_not_a_record_is_still_indexed_raw() {
        let mut out = Vec::new();
        let outcome = Transformer::new().transform_otlp(b"\xff\xfe not protobuf", &ctx(), &mut out);
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(outcome.failure, Some("not an OTLP log record"));
        assert_eq!(doc["tags"], json!(["_drainpipe_parse_failure"]));
    }
}
