//! One OTLP log record (with its resource and scope, as drainpipe-otlp's `split` wrote it) as
//! the document of docs/fields.md "OTLP logs": the same fields as a Cedar line, so one data
//! view shows Cedar and Fir apps side by side.

use std::borrow::Cow;

use base64::Engine as _;
use drainpipe_otlp::proto::{AnyValue, KeyValue, LogRecord, Value};
use drainpipe_otlp::Record;
use serde_json::{Map, Value as Json};

use crate::app::{self, App, AppFields};
use crate::dataset::{self, Dataset};
use crate::document::{Blocks, Document};
use crate::timestamp::Timestamp;
use crate::{level, Context, FrameParts, Outcome};

/// Resource attributes that become `heroku.*` (first spelling found wins); the others go under
/// `otel.resource`. The app is the token's, `heroku.app.name` or `service.name` (see `transform`).
const APP_ID: &str = "heroku.app.id";
const DYNO: [&str; 2] = ["heroku.dyno.name", "service.instance.id"];
const PROCESS_TYPE: [&str; 2] = ["heroku.dyno.type", "heroku.workload.id"];
const RELEASE: &str = "heroku.release.version";

/// Appends the document for the spooled record `raw` to `out`.
pub(crate) fn transform(raw: &[u8], ctx: &Context<'_>, frame: FrameParts<'_>, out: &mut Vec<u8>) -> Outcome {
    let FrameParts { ingested, blocks } = frame;
    let mut doc = Document {
        ingested,
        namespace: ctx.namespace,
        labels: ctx.labels,
        heroku_app: ctx.app,
        dataset: Some(Dataset::App),
        timestamp: Some(ctx.received_at),
        ..Document::default()
    };
    let Ok(Record { record: Some(record), resource, scope }) = Record::read(raw) else {
        return not_a_record(raw, doc, ctx, blocks, out);
    };
    let (resource, scope) = (resource.unwrap_or_default(), scope.unwrap_or_default());
    let mut named = Named::of(&resource.attributes, ctx.app);
    // Attributes that would not index (too deep, too long) leave `otel.resource` out.
    let resource_text =
        named.others.take().filter(|o| app::check_object(o).is_some()).map(|o| Json::Object(o).to_string());
    doc.otel_resource = resource_text.as_deref().map(str::as_bytes);
    doc.otel_scope = (!scope.name.is_empty()).then_some((scope.name.as_str(), scope.version.as_str()));
    named.describe(&mut doc, &record);
    let message = body_text(record.body.as_ref());
    let message: &str = &message;
    doc.message = message;
    let dataset = dataset_of(&record, named.dyno, message);
    doc.dataset = Some(dataset);
    doc.source = Some(if dataset == Dataset::App { "app" } else { "heroku" });

    let mut failure = crate::typed_fields(&mut doc, dataset, message);
    let fields = app_fields(&record, dataset, message);
    let app_text;
    match fields {
        // A string body alone: exactly as a Cedar app line.
        AppSource::Message => {
            let parsed = App::parse(message);
            doc.level = doc.level.take().or(parsed.level.map(Cow::Borrowed));
            doc.app = parsed.fields;
        }
        AppSource::Built(fields) => match app::check_object(&fields) {
            Some(level) => {
                app_text = Json::Object(fields).to_string();
                doc.level = doc.level.take().or(level.map(Cow::Borrowed));
                doc.app = Some(AppFields::Json(app_text.as_bytes()));
            }
            None => failure = Some("the record's attributes are nested too deep or too long for app.*".to_owned()),
        },
        AppSource::None => {}
    }
    crate::level_from_error_code(&mut doc);
    if let Some(r) = &doc.router {
        if r.dyno.is_some() {
            doc.dyno = r.dyno.as_deref();
            doc.process_type = doc.dyno.and_then(dataset::process_type);
        }
    }
    let failed = failure.is_some();
    doc.failure = failure.map(Cow::Owned);
    crate::written(&doc, dataset, failed, ctx, blocks, out)
}

/// Bytes that are not a record drainpipe-otlp wrote: the message, lossily, with a failure.
fn not_a_record(raw: &[u8], doc: Document<'_>, ctx: &Context<'_>, blocks: &mut Blocks, out: &mut Vec<u8>) -> Outcome {
    const NOT_A_RECORD: &str = "not an OTLP log record";
    let lossy = crate::utf8::lossy(raw);
    let landmarks = Document { message: &lossy, failure: Some(Cow::Borrowed(NOT_A_RECORD)), ..doc }.write(out, blocks);
    Outcome { dataset: None, failure: Some(NOT_A_RECORD), timestamp: ctx.received_at, logplex_dropped: None, landmarks }
}

/// What the resource attributes name, and the attributes left for `otel.resource`.
pub(crate) struct Named<'a> {
    pub(crate) app: Option<&'a str>,
    pub(crate) app_id: Option<&'a str>,
    pub(crate) dyno: Option<&'a str>,
    pub(crate) process_type: Option<&'a str>,
    pub(crate) release: Option<&'a str>,
    /// The attributes not used above, if any.
    pub(crate) others: Option<Map<String, Json>>,
}

impl<'a> Named<'a> {
    pub(crate) fn of(attributes: &'a [KeyValue], token_app: Option<&'a str>) -> Named<'a> {
        // The first spelling found wins; the spellings not used stay under `otel.resource`.
        let mut used: Vec<&str> = Vec::new();
        let mut attribute = |keys: &[&'static str]| {
            let found = keys.iter().find_map(|k| text_attribute(attributes, k).map(|v| (*k, v)));
            used.extend(found.map(|(k, _)| k));
            found.map(|(_, v)| v)
        };
        let named_app = attribute(&["heroku.app.name"]);
        let (app_id, dyno) = (attribute(&[APP_ID]), attribute(&DYNO));
        let (process_type, release) = (attribute(&PROCESS_TYPE), attribute(&[RELEASE]));
        // The app: the one the sender's token maps to (a credential binds its app: a sender
        // cannot write into another app by naming it), else heroku.app.name, else service.name
        // (SDKs set `unknown_service:<process>` when nobody named one). A heroku.app.name
        // overruled by the token's app stays under `otel.resource`.
        let service = text_attribute(attributes, "service.name").filter(|s| !s.starts_with("unknown_service"));
        let app = token_app.or(named_app).or(service);
        if token_app.is_some() && named_app.is_some() && named_app != token_app {
            used.retain(|k| *k != "heroku.app.name");
        }
        if app.is_some() && app == service && named_app.is_none() && token_app.is_none() {
            used.push("service.name");
        }
        let others: Map<String, Json> = attributes
            .iter()
            .filter(|kv| !used.contains(&kv.key.as_str()))
            .map(|kv| (kv.key.clone(), json(kv.value.as_ref())))
            .collect();
        Named { app, app_id, dyno, process_type, release, others: (!others.is_empty()).then_some(others) }
    }

    /// The record's time, names, ids and severity into `doc`.
    fn describe(&self, doc: &mut Document<'a>, record: &LogRecord) {
        let nanos = [record.time_unix_nano, record.observed_time_unix_nano].into_iter().find(|&n| n > 0);
        if let Some(n) = nanos.and_then(|n| i64::try_from(n).ok()) {
            doc.timestamp = Some(Timestamp::from_unix_nanos(n));
        }
        doc.heroku_app = self.app;
        doc.app_id = self.app_id;
        doc.release_version = self.release;
        doc.dyno = self.dyno;
        doc.process_type = self.process_type.or_else(|| self.dyno.and_then(dataset::process_type));
        doc.trace_id = (!record.trace_id.is_empty()).then(|| hex(&record.trace_id));
        doc.span_id = (!record.span_id.is_empty()).then(|| hex(&record.span_id));
        doc.level = severity(&record.severity_text, record.severity_number).map(Cow::Borrowed);
    }
}

/// The body as text: a string as it is, a map (or anything else) as its JSON.
fn body_text(body: Option<&AnyValue>) -> Cow<'_, str> {
    match body.and_then(|b| b.value.as_ref()) {
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        None => Cow::Borrowed(""),
        Some(Value::KvList(_) | Value::Array(_)) => Cow::Owned(json(body).to_string()),
        Some(other) => Cow::Owned(scalar_text(other)),
    }
}

/// A router or runtime-metrics line forwarded over OTLP reads as it does on Cedar; other
/// platform output only when the record says it is the platform's (`heroku.source`), as nothing
/// else (no Logplex APP-NAME) tells it from the app's own.
fn dataset_of(record: &LogRecord, dyno: Option<&str>, message: &str) -> Dataset {
    if dyno == Some("router") || is_router_line(message) {
        Dataset::Router
    } else if dataset::is_runtime_metrics(message.as_bytes()) {
        Dataset::RuntimeMetrics
    } else if text_attribute(&record.attributes, "heroku.source") == Some("heroku") {
        Dataset::Platform
    } else {
        Dataset::App
    }
}

/// Where `app.*` comes from.
enum AppSource {
    /// The message, parsed as a Cedar app line's is.
    Message,
    /// Fields built from the record.
    Built(Map<String, Json>),
    None,
}

/// `app.*`: a map body's keys (or the JSON or logfmt of a string body, as on Cedar), then the
/// record's attributes under keys the body did not use.
fn app_fields(record: &LogRecord, dataset: Dataset, message: &str) -> AppSource {
    let mut fields: Map<String, Json> = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::KvList(kv)) => kv.values.iter().map(|kv| (kv.key.clone(), json(kv.value.as_ref()))).collect(),
        _ => Map::new(),
    };
    let attributes = || record.attributes.iter().filter(|kv| kv.key != "heroku.source");
    if dataset == Dataset::App && fields.is_empty() {
        if attributes().next().is_none() {
            return AppSource::Message;
        }
        // A string body's own JSON or logfmt fields come first, as on Cedar.
        match App::parse(message).fields {
            Some(AppFields::Json(object)) => {
                // From text, not `from_slice`: a second slice-reading JSON deserializer in this
                // crate made LLVM stop inlining the one `App::parse` runs for every Cedar app
                // line (app JSON lines fell from ~800 k to ~460 k per second in the bench).
                fields =
                    std::str::from_utf8(object).ok().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
            }
            Some(AppFields::Logfmt(pairs)) => {
                fields = pairs.into_iter().map(|(k, v)| (k.to_owned(), Json::String(v.into_owned()))).collect();
            }
            None => {}
        }
    }
    for kv in attributes() {
        fields.entry(kv.key.clone()).or_insert_with(|| json(kv.value.as_ref()));
    }
    if fields.is_empty() {
        AppSource::None
    } else {
        AppSource::Built(fields)
    }
}

fn text_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::String(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// `at=info method=GET path=… status=200 …`: the router's line, whoever forwarded it.
fn is_router_line(message: &str) -> bool {
    message.starts_with("at=") && message.contains(" method=") && message.contains(" status=")
}

/// `severityText` in the one vocabulary, else `severityNumber` (1–4 trace, 5–8 debug, 9–12
/// info, 13–16 warning, 17–20 error, 21–24 critical).
fn severity(text: &str, number: i32) -> Option<&'static str> {
    level::normalise(text).or(match number {
        1..=4 => Some("trace"),
        5..=8 => Some("debug"),
        9..=12 => Some("info"),
        13..=16 => Some("warning"),
        17..=20 => Some("error"),
        21..=24 => Some("critical"),
        _ => None,
    })
}

/// An OTLP value as JSON: bytes as base64, a map as an object.
pub(crate) fn json(value: Option<&AnyValue>) -> Json {
    match value.and_then(|v| v.value.as_ref()) {
        None => Json::Null,
        Some(Value::String(s)) => Json::String(s.clone()),
        Some(Value::Bool(b)) => Json::Bool(*b),
        Some(Value::Int(n)) => Json::from(*n),
        Some(Value::Double(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| Json::String(d.to_string()), Json::Number)
        }
        Some(Value::Bytes(b)) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(Value::Array(a)) => Json::Array(a.values.iter().map(|v| json(Some(v))).collect()),
        Some(Value::KvList(kv)) => {
            Json::Object(kv.values.iter().map(|kv| (kv.key.clone(), json(kv.value.as_ref()))).collect())
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::KvList(_) => String::new(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
