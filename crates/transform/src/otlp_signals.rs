//! One OTLP data point or span (with its resource and scope, as drainpipe-otlp's
//! `point_records` and `span_records` wrote it) as the document of docs/fields.md, "OTLP
//! metrics" and "OTLP traces": the shapes of Elastic's OTel-native mapping (`metrics.<name>`,
//! `attributes`, `resource.attributes`, `scope`; `trace_id`, `span_id`, `kind`, `duration`), and
//! the resource read into `heroku.*` exactly as for OTLP logs.

use std::borrow::Cow;

use drainpipe_otlp::proto::{self, Data, KeyValue, Number, Span};
use drainpipe_otlp::{PointRecord, SpanRecord};
use serde_json::{json, Map, Value as Json};

use crate::otlp::{self, Named};
use crate::timestamp::Timestamp;
use crate::{Context, Landmarks, Outcome, PARSE_FAILURE_TAG};

/// `data_stream.dataset` of both streams: `metrics-heroku.otel-<ns>`, `traces-heroku.otel-<ns>`.
pub const OTEL_DATASET: &str = "heroku.otel";

/// Appends the document of the spooled data point `raw` to `out`.
pub(crate) fn metric(raw: &[u8], ctx: &Context<'_>, ingested: Option<&[u8]>, out: &mut Vec<u8>) -> Outcome {
    let mut doc = Map::new();
    let Ok(PointRecord { resource, scope, metric: Some(metric) }) = PointRecord::read(raw) else {
        return unreadable(raw, "metrics", "not an OTLP data point", ctx, ingested, out);
    };
    let mut failure = None;
    let mut metrics = Map::new();
    let name = metric.name.as_str();
    let field = field_name(name);
    let Point { kind, times, attributes } = point(metric.data.as_ref(), &field, &mut metrics, &mut doc, &mut failure);
    let metric_fields = doc.entry("metric").or_insert_with(|| json!({}));
    if matches!(kind, "gauge" | "sum") {
        if let Some(v) = value_of(&metrics, &field) {
            set(metric_fields, "value", v);
        }
    }
    set(metric_fields, "name", name);
    set(metric_fields, "type", kind);
    if !metric.description.is_empty() {
        set(metric_fields, "description", metric.description.as_str());
    }
    if !metric.unit.is_empty() {
        doc.insert("unit".into(), metric.unit.as_str().into());
    }
    if !metrics.is_empty() {
        doc.insert("metrics".into(), Json::Object(metrics));
    }
    let (time, start) = times.unwrap_or_default();
    if let Some(start) = nanos(start) {
        doc.insert("start_timestamp".into(), rfc3339(start).into());
    }
    let timestamp = nanos(time).unwrap_or(ctx.received_at);
    common(&mut doc, "metrics", timestamp, ctx, ingested, resource, scope, attributes);
    finish(doc, timestamp, failure, out)
}

/// A data point's type, `(time, start time)` and attributes.
struct Point<'d> {
    kind: &'static str,
    times: Option<(u64, u64)>,
    attributes: Option<&'d [KeyValue]>,
}

/// What a data point's metric type makes of it: its values under `metrics.<name>`, the type's
/// own fields under `metric` in `doc`, and its type, times and attributes.
fn point<'d>(
    data: Option<&'d Data>,
    name: &str,
    metrics: &mut Map<String, Json>,
    doc: &mut Map<String, Json>,
    failure: &mut Option<String>,
) -> Point<'d> {
    match data {
        Some(Data::Gauge(g)) => {
            let p = g.data_points.first();
            put_number(metrics, name, p.and_then(|p| p.value), failure);
            Point {
                kind: "gauge",
                times: p.map(|p| (p.time_unix_nano, p.start_time_unix_nano)),
                attributes: p.map(|p| p.attributes.as_slice()),
            }
        }
        Some(Data::Sum(s)) => {
            let p = s.data_points.first();
            put_number(metrics, name, p.and_then(|p| p.value), failure);
            doc.insert(
                "metric".into(),
                json!({"temporality": temporality(s.aggregation_temporality), "monotonic": s.is_monotonic}),
            );
            Point {
                kind: "sum",
                times: p.map(|p| (p.time_unix_nano, p.start_time_unix_nano)),
                attributes: p.map(|p| p.attributes.as_slice()),
            }
        }
        Some(Data::Histogram(h)) => {
            let p = h.data_points.first();
            if let Some(p) = p {
                histogram(p, name, metrics, failure);
            }
            doc.insert("metric".into(), json!({"temporality": temporality(h.aggregation_temporality)}));
            Point {
                kind: "histogram",
                times: p.map(|p| (p.time_unix_nano, p.start_time_unix_nano)),
                attributes: p.map(|p| p.attributes.as_slice()),
            }
        }
        Some(Data::Summary(s)) => {
            let p = s.data_points.first();
            if let Some(p) = p {
                summary(p, name, metrics, failure);
            }
            Point {
                kind: "summary",
                times: p.map(|p| (p.time_unix_nano, p.start_time_unix_nano)),
                attributes: p.map(|p| p.attributes.as_slice()),
            }
        }
        // Never spooled (the receiver refuses them), but a record is a record.
        Some(Data::ExponentialHistogram(_)) | None => {
            *failure = Some("a metric type drainpipe does not store".to_owned());
            Point { kind: "unknown", times: None, attributes: None }
        }
    }
}

/// Appends the document of the spooled span `raw` to `out`.
pub(crate) fn span(raw: &[u8], ctx: &Context<'_>, ingested: Option<&[u8]>, out: &mut Vec<u8>) -> Outcome {
    let Ok(SpanRecord { resource, scope, span: Some(span) }) = SpanRecord::read(raw) else {
        return unreadable(raw, "traces", "not an OTLP span", ctx, ingested, out);
    };
    let Span { trace_id, span_id, parent_span_id, name, kind, status, .. } = &span;
    let mut doc = Map::new();
    doc.insert("trace_id".into(), otlp::hex(trace_id).into());
    doc.insert("span_id".into(), otlp::hex(span_id).into());
    if !parent_span_id.is_empty() {
        doc.insert("parent_span_id".into(), otlp::hex(parent_span_id).into());
    }
    if !span.trace_state.is_empty() {
        doc.insert("trace_state".into(), span.trace_state.as_str().into());
    }
    doc.insert("name".into(), name.as_str().into());
    doc.insert("kind".into(), span_kind(*kind).into());
    let start = nanos(span.start_time_unix_nano);
    let end = nanos(span.end_time_unix_nano);
    if let Some(end) = end {
        doc.insert("end_timestamp".into(), rfc3339(end).into());
    }
    if let (Some(_), Some(_)) = (start, end) {
        doc.insert("duration".into(), span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano).into());
    }
    let status = status.clone().unwrap_or_default();
    let mut status_fields = json!({"code": status_code(status.code)});
    if !status.message.is_empty() {
        set(&mut status_fields, "message", status.message);
    }
    doc.insert("status".into(), status_fields);
    events_and_links(&span, &mut doc);
    let dropped = [
        ("dropped_attributes_count", span.dropped_attributes_count),
        ("dropped_events_count", span.dropped_events_count),
        ("dropped_links_count", span.dropped_links_count),
    ];
    for (key, n) in dropped.into_iter().filter(|(_, n)| *n > 0) {
        doc.insert(key.into(), n.into());
    }
    let timestamp = start.unwrap_or(ctx.received_at);
    common(&mut doc, "traces", timestamp, ctx, ingested, resource, scope, Some(&span.attributes));
    finish(doc, timestamp, None, out)
}

/// `name` as a field name Elasticsearch takes under `metrics`: an empty or blank segment (`a..b`,
/// a leading or trailing dot, a name of spaces) becomes `_`. `metric.name` keeps the name as sent.
fn field_name(name: &str) -> Cow<'_, str> {
    if !name.split('.').any(crate::json::is_blank_name) {
        return Cow::Borrowed(name);
    }
    let parts: Vec<&str> = name.split('.').map(|s| if crate::json::is_blank_name(s) { "_" } else { s }).collect();
    Cow::Owned(parts.join("."))
}

/// A histogram point, as plain fields (the test distributions have no `histogram` type):
/// `<name>.count`, `.sum`, `.min`, `.max`, `.bucket_counts` and `.explicit_bounds`.
fn histogram(p: &proto::HistogramDataPoint, name: &str, metrics: &mut Map<String, Json>, failure: &mut Option<String>) {
    put(metrics, &format!("{name}.count"), p.count as f64, failure);
    let optional = [("sum", p.sum), ("min", p.min), ("max", p.max)];
    for (key, v) in optional.into_iter().filter_map(|(k, v)| Some((k, v?))) {
        put(metrics, &format!("{name}.{key}"), v, failure);
    }
    metrics.insert(format!("{name}.bucket_counts"), p.bucket_counts.iter().map(|&c| c as f64).collect());
    let bounds: Vec<Json> = p.explicit_bounds.iter().filter_map(|&b| finite(b)).collect();
    metrics.insert(format!("{name}.explicit_bounds"), Json::Array(bounds));
}

/// A summary point: `<name>.count`, `.sum` and one field per quantile (`.p50`, `.p99_9`, …).
fn summary(p: &proto::SummaryDataPoint, name: &str, metrics: &mut Map<String, Json>, failure: &mut Option<String>) {
    put(metrics, &format!("{name}.count"), p.count as f64, failure);
    put(metrics, &format!("{name}.sum"), p.sum, failure);
    for q in &p.quantile_values {
        put(metrics, &format!("{name}.{}", quantile_key(q.quantile)), q.value, failure);
    }
}

/// A span's events and links, each with its attributes, under `events` and `links`.
fn events_and_links(span: &Span, doc: &mut Map<String, Json>) {
    let events: Vec<Json> = span
        .events
        .iter()
        .map(|e| {
            let mut event = json!({"name": e.name});
            if let Some(t) = nanos(e.time_unix_nano) {
                set(&mut event, "time", rfc3339(t));
            }
            if !e.attributes.is_empty() {
                set(&mut event, "attributes", attribute_texts(&e.attributes));
            }
            event
        })
        .collect();
    if !events.is_empty() {
        doc.insert("events".into(), events.into());
    }
    let links: Vec<Json> = span
        .links
        .iter()
        .map(|l| {
            let mut link = json!({"trace_id": otlp::hex(&l.trace_id), "span_id": otlp::hex(&l.span_id)});
            if !l.trace_state.is_empty() {
                set(&mut link, "trace_state", l.trace_state.as_str());
            }
            if !l.attributes.is_empty() {
                set(&mut link, "attributes", attribute_texts(&l.attributes));
            }
            link
        })
        .collect();
    if !links.is_empty() {
        doc.insert("links".into(), links.into());
    }
}

/// What every metric and span document has: times, stream, the resource read into `heroku.*`
/// and `service.name` (the rest under `resource.attributes`), scope, attributes and labels.
#[allow(clippy::too_many_arguments)]
fn common(
    doc: &mut Map<String, Json>,
    kind: &str,
    timestamp: Timestamp,
    ctx: &Context<'_>,
    ingested: Option<&[u8]>,
    resource: Option<proto::Resource>,
    scope: Option<proto::InstrumentationScope>,
    attributes: Option<&[KeyValue]>,
) {
    doc.insert("@timestamp".into(), rfc3339(timestamp).into());
    doc.insert("data_stream".into(), json!({"type": kind, "dataset": OTEL_DATASET, "namespace": ctx.namespace}));
    let mut event = json!({"dataset": OTEL_DATASET});
    if let Some(ingested) = ingested.and_then(|i| std::str::from_utf8(i).ok()) {
        set(&mut event, "ingested", ingested);
    }
    doc.insert("event".into(), event);
    let resource = resource.unwrap_or_default();
    let named = Named::of(&resource.attributes, ctx.app);
    let mut heroku = Map::new();
    let fields = [
        ("app", named.app),
        ("app_id", named.app_id),
        ("dyno", named.dyno),
        ("process_type", named.process_type.or_else(|| named.dyno.and_then(crate::dataset::process_type))),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            heroku.insert(key.into(), v.into());
        }
    }
    if let Some(release) = named.release {
        heroku.insert("release".into(), json!({"version": release}));
    }
    if !heroku.is_empty() {
        doc.insert("heroku".into(), Json::Object(heroku));
    }
    if let Some(app) = named.app {
        doc.insert("service".into(), json!({"name": app}));
    }
    if let Some(others) = named.others {
        let texts: Map<String, Json> = others.into_iter().map(|(k, v)| (k, text_of(v))).collect();
        doc.insert("resource".into(), json!({"attributes": texts}));
    }
    let scope = scope.unwrap_or_default();
    if !scope.name.is_empty() {
        let mut s = json!({"name": scope.name});
        if !scope.version.is_empty() {
            set(&mut s, "version", scope.version);
        }
        doc.insert("scope".into(), s);
    }
    if let Some(attributes) = attributes.filter(|a| !a.is_empty()) {
        doc.insert("attributes".into(), attribute_texts(attributes).into());
    }
    if !ctx.labels.is_empty() {
        let labels: Map<String, Json> = ctx.labels.iter().map(|(k, v)| (k.clone(), v.as_str().into())).collect();
        doc.insert("labels".into(), labels.into());
    }
}

/// `object[key] = value` for an object built here (what is no object is left as it is).
fn set(object: &mut Json, key: &str, value: impl Into<Json>) {
    if let Json::Object(map) = object {
        map.insert(key.to_owned(), value.into());
    }
}

fn finish(mut doc: Map<String, Json>, timestamp: Timestamp, failure: Option<String>, out: &mut Vec<u8>) -> Outcome {
    let failed = failure.is_some();
    if let Some(why) = failure {
        doc.insert("tags".into(), json!([PARSE_FAILURE_TAG]));
        set(doc.entry("error").or_insert_with(|| json!({})), "message", why);
    }
    out.extend_from_slice(Json::Object(doc).to_string().as_bytes());
    Outcome {
        dataset: None,
        failure: failed.then_some("a value could not be stored"),
        timestamp,
        logplex_dropped: None,
        // Written as a whole object: nothing placed.
        landmarks: Landmarks::default(),
    }
}

/// Bytes that are not a record drainpipe-otlp wrote: kept, as base64, with a failure.
fn unreadable(
    raw: &[u8],
    kind: &str,
    why: &'static str,
    ctx: &Context<'_>,
    ingested: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Outcome {
    use base64::Engine as _;
    let mut doc = Map::new();
    doc.insert("message".into(), base64::engine::general_purpose::STANDARD.encode(raw).into());
    common(&mut doc, kind, ctx.received_at, ctx, ingested, None, None, None);
    if kind == "metrics" {
        // A time series index tells points apart by their dimensions, of which this document
        // has no other: two unreadable records received together would be taken for one.
        doc.insert("error".into(), json!({"id": format!("{:032x}", xxhash_rust::xxh3::xxh3_128(raw))}));
    }
    let outcome = finish(doc, ctx.received_at, Some(why.to_owned()), out);
    Outcome { failure: Some(why), ..outcome }
}

/// Attributes as `key: text`: every value a string (numbers and booleans as written, arrays
/// and maps as their JSON), so that no attribute can conflict with another's type.
fn attribute_texts(attributes: &[KeyValue]) -> Map<String, Json> {
    attributes.iter().map(|kv| (kv.key.clone(), text_of(otlp::json(kv.value.as_ref())))).collect()
}

fn text_of(value: Json) -> Json {
    match value {
        Json::String(_) => value,
        Json::Null => Json::String(String::new()),
        other => Json::String(other.to_string()),
    }
}

/// A gauge's or sum's value, as `metrics.<name>` and as `metric.value` (one field whatever the
/// name, for views over metrics whose names vary, such as a dashboard's "memory by dyno").
fn put_number(metrics: &mut Map<String, Json>, name: &str, value: Option<Number>, failure: &mut Option<String>) {
    match value {
        Some(Number::AsDouble(d)) => put(metrics, name, d, failure),
        Some(Number::AsInt(n)) => {
            metrics.insert(name.to_owned(), n.into());
        }
        None => *failure = Some(format!("data point of {name} has no value")),
    }
}

/// The number [`put_number`] stored, if it did.
fn value_of(metrics: &Map<String, Json>, name: &str) -> Option<Json> {
    metrics.get(name).filter(|v| v.is_number()).cloned()
}

/// `metrics.<key>`; a NaN or infinite value is left out and said (JSON has no such number).
fn put(metrics: &mut Map<String, Json>, key: &str, value: f64, failure: &mut Option<String>) {
    match finite(value) {
        Some(v) => {
            metrics.insert(key.to_owned(), v);
        }
        None => *failure = Some(format!("{key} is {value}: not stored")),
    }
}

fn finite(value: f64) -> Option<Json> {
    serde_json::Number::from_f64(value).map(Json::Number)
}

/// A summary's quantile as a key: 0.5 → `p50`, 0.999 → `p99_9`, 0 → `p0` (min), 1 → `p100`.
fn quantile_key(q: f64) -> String {
    let percent = format!("{}", (q * 100_000.0).round() / 1000.0);
    format!("p{}", percent.replace('.', "_"))
}

/// OTLP's unix nanoseconds, where set.
fn nanos(n: u64) -> Option<Timestamp> {
    i64::try_from(n).ok().filter(|&n| n > 0).map(Timestamp::from_unix_nanos)
}

fn rfc3339(t: Timestamp) -> String {
    let mut out = Vec::with_capacity(32);
    t.write_rfc3339(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "delta",
        2 => "cumulative",
        _ => "unspecified",
    }
}

/// `SpanKind` as Elastic's OTel mapping writes it.
fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "Unspecified",
    }
}

fn status_code(code: i32) -> &'static str {
    match code {
        1 => "Ok",
        2 => "Error",
        _ => "Unset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_name_elasticsearch_refuses_as_a_field_gets_underscores_for_its_blank_segments() {
        assert!(matches!(field_name("process.memory.usage"), Cow::Borrowed("process.memory.usage")));
        assert_eq!(field_name("a..b. "), "a._.b._");
        assert_eq!(field_name(".x."), "_.x._");
        assert_eq!(field_name(""), "_");
        assert_eq!(field_name("\u{1c}"), "_");
    }

    #[test]
    fn unreadable_metric_records_differ_in_error_id_which_a_time_series_index_tells_them_apart_by() {
        let ctx = crate::tests::ctx();
        let doc = |raw: &[u8]| {
            let mut out = Vec::new();
            let outcome = metric(raw, &ctx, None, &mut out);
            assert_eq!(outcome.failure, Some("not an OTLP data point"));
            serde_json::from_slice::<Json>(&out).unwrap()
        };
        let (a, b) = (doc(b"\xff\xfe one"), doc(b"\xff\xfe two"));
        assert_eq!(a["tags"], json!([PARSE_FAILURE_TAG]));
        assert!(a["error"]["message"].is_string() && a["error"]["id"].is_string());
        assert_ne!(a["error"]["id"], b["error"]["id"]);
    }

    #[test]
    fn quantiles_are_named_by_their_percent() {
        assert_eq!(quantile_key(0.5), "p50");
        assert_eq!(quantile_key(0.999), "p99_9");
        assert_eq!(quantile_key(0.0), "p0");
        assert_eq!(quantile_key(1.0), "p100");
    }
}
