//! What Elasticsearch needs before the first document: the index template for
//! `logs-heroku.*-*` (one data stream per dataset) and the one for dead letters. Installing is
//! idempotent (a template already up to date is left alone).

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, Error, RequestDecision, RetryPolicy};
use drainpipe_delivery::DataStreams;

use crate::config::SetupArgs;

mod ism;
mod time_series;
use crate::config::{Retention, RetentionRule};

/// The index templates, shipped inside the binary: the documents, and their dead letters. Their
/// names are template names, not data streams (their patterns are DataStreams', as a test checks).
const TEMPLATE: &str = include_str!("../templates/logs-heroku.json");
/// Not `logs-heroku`, the name of the single-stream layout's template: Elasticsearch refuses to change
/// that one's pattern while streams it made still exist (docs/upgrading.md).
pub const TEMPLATE_NAME: &str = "logs-heroku-by-dataset";
const DEAD_LETTER_TEMPLATE: &str = include_str!("../templates/logs-heroku-deadletter.json");
pub const DEAD_LETTER_TEMPLATE_NAME: &str = "logs-heroku-deadletter";

/// OTLP data points and spans: one template each (`metrics-heroku.otel-*`, `traces-heroku.otel-*`).
const SIGNAL_TEMPLATES: [(&str, &str); 2] = [
    ("metrics-heroku.otel", include_str!("../templates/metrics-heroku.otel.json")),
    ("traces-heroku.otel", include_str!("../templates/traces-heroku.otel.json")),
];

const METRICS_TEMPLATE_NAME: &str = "metrics-heroku.otel";

/// The OTLP metrics and traces templates, by name.
pub fn signal_templates() -> Vec<(&'static str, serde_json::Value)> {
    SIGNAL_TEMPLATES
        .iter()
        .map(|(name, text)| (*name, serde_json::from_str(text).expect("the shipped template is valid JSON")))
        .collect()
}

pub fn template() -> serde_json::Value {
    serde_json::from_str(TEMPLATE).expect("the shipped template is valid JSON")
}

pub fn dead_letter_template() -> serde_json::Value {
    serde_json::from_str(DEAD_LETTER_TEMPLATE).expect("the shipped template is valid JSON")
}

/// What `setup` did to one thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Updated(String),
    Unchanged(String),
    Deleted(String),
    Skipped(String, String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Created(what) => write!(f, "created   {what}"),
            Change::Updated(what) => write!(f, "updated   {what}"),
            Change::Unchanged(what) => write!(f, "unchanged {what}"),
            Change::Deleted(what) => write!(f, "deleted   {what}"),
            Change::Skipped(what, why) => write!(f, "skipped   {what}: {why}"),
        }
    }
}

/// Installs both index templates (idempotently: an identical one is left alone), falling back
/// to ones without `data_stream` when the server does not know data streams. `retention` sets
/// the data streams' lifecycle where the server supports it; `None` keeps the lifecycle the
/// installed template has, so `serve` never undoes what `setup --retention` did.
pub async fn install(client: &Client, retention: &[RetentionRule]) -> Result<Vec<Change>, Error> {
    install_or_plan(client, retention, Write::Yes).await
}

/// What [`install`] would change, changing nothing (`check-config --online`).
pub async fn plan(client: &Client, retention: &[RetentionRule]) -> Result<Vec<Change>, Error> {
    install_or_plan(client, retention, Write::No).await
}

/// Whether setup writes, or only says what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Yes,
    No,
}

async fn install_or_plan(client: &Client, retention: &[RetentionRule], write: Write) -> Result<Vec<Change>, Error> {
    let server = client.server().await?;
    let mut plan = Plan {
        write,
        lifecycles: !server.opensearch,
        ism: server.opensearch,
        changes: Vec::new(),
        lifecycle_of: Vec::new(),
        policies: Vec::new(),
    };
    let mut main = template();
    if server.opensearch {
        for_opensearch(&mut main, &mut plan.changes);
    }
    // The last entry without a dataset; none keeps what is installed.
    let default = retention.iter().rev().find(|r| r.dataset.is_none()).map(|r| &r.retention);
    // Dead letters first: their template must outrank the main one, whose pattern covers
    // their stream's name too, before the main one is written.
    install_one(client, DEAD_LETTER_TEMPLATE_NAME, dead_letter_template(), default, &mut plan).await?;
    let main_retention = install_one(client, TEMPLATE_NAME, main.clone(), default, &mut plan).await?;
    let main_retention = main_retention.map_or(Retention::Forever, Retention::Age);
    install_dataset_overrides(client, &main, &main_retention, retention, &mut plan).await?;
    for (name, mut signal) in signal_templates() {
        if server.opensearch {
            for_opensearch(&mut signal, &mut Vec::new());
            if name == METRICS_TEMPLATE_NAME {
                plan.changes.push(Change::Skipped(
                    format!("time series (TSDB) for {name}"),
                    "OpenSearch has no time series indices; a plain data stream".into(),
                ));
            }
        } else if name == METRICS_TEMPLATE_NAME {
            // Tried first; put_with_fallbacks falls back to the plain form where refused.
            signal = time_series::of(&signal);
        }
        install_one(client, name, signal, default, &mut plan).await?;
    }
    if plan.lifecycles {
        attach_lifecycles(client, !retention.is_empty(), &mut plan).await;
    }
    if plan.ism {
        ism::install_policies(client, &mut plan).await;
    }
    Ok(plan.changes)
}

/// What one setup run does and has done: whether it writes, whether the server has data stream
/// lifecycles or (OpenSearch) Index State Management instead, the changes so far, and the
/// lifecycle or ISM policy each template it installed gives.
struct Plan {
    write: Write,
    lifecycles: bool,
    ism: bool,
    changes: Vec<Change>,
    lifecycle_of: Vec<(String, serde_json::Value)>,
    policies: Vec<ism::Policy>,
}

/// A template's lifecycle reaches only the streams made after it. An existing stream without
/// one (made before lifecycles were on by default, or with it removed) gets its template's,
/// and with `--retention` given (`explicit`) every stream whose retention differs gets its
/// template's, so that the policy holds for old streams too. A failure here (a role without
/// `manage_data_stream_lifecycle`) costs only this step: it is said, and setup goes on.
async fn attach_lifecycles(client: &Client, explicit: bool, plan: &mut Plan) {
    let streams = match client.data_streams(DataStreams::EVERY_SIGNAL_TARGET).await {
        Ok(streams) => streams,
        Err(e) => {
            let why = match &e {
                Error::Status { body, .. } if body.contains("no handler found") => {
                    "the server has no _data_stream API (Elasticsearch's data-streams module); existing streams keep \
                     the lifecycle they have"
                        .to_owned()
                }
                e => e.to_string(),
            };
            plan.changes.push(Change::Skipped("lifecycles of existing data streams".into(), why));
            return;
        }
    };
    for stream in streams {
        let Some((_, wanted)) = plan.lifecycle_of.iter().find(|(t, _)| *t == stream.template) else { continue };
        if !needs_lifecycle(stream.lifecycle.as_ref(), wanted, explicit) {
            continue;
        }
        let what = format!("lifecycle of data stream {}", stream.name);
        if plan.write == Write::Yes {
            if let Err(e) = client.put_data_stream_lifecycle(&stream.name, wanted).await {
                plan.changes.push(Change::Skipped(what, e.to_string()));
                continue;
            }
        }
        plan.changes.push(Change::Updated(what));
    }
}

/// Whether a stream whose lifecycle is `current` is given `wanted`: when it has none (or a
/// disabled one), or, with `--retention` given (`explicit`), when its retention differs.
fn needs_lifecycle(current: Option<&serde_json::Value>, wanted: &serde_json::Value, explicit: bool) -> bool {
    let enabled = current.is_some_and(|l| l["enabled"] != false);
    let same_retention = current.is_some_and(|l| l["data_retention"] == wanted["data_retention"]);
    !enabled || (explicit && !same_retention)
}

/// Whether documents of the template with `mappings` can have the field `path`: mapped
/// explicitly, inside a `flattened` field, or where an object maps new keys dynamically (its
/// dynamic templates then type them).
pub fn is_mapped(mappings: &serde_json::Value, path: &str) -> bool {
    let mut node = mappings;
    for part in path.split('.') {
        let Some(next) = node["properties"].get(part) else {
            return node["dynamic"] == true;
        };
        if next["type"] == "flattened" {
            return true;
        }
        node = next;
    }
    node.get("type").is_some()
}

/// Priority of a dataset's own template: above the one for every dataset (200), below the
/// dead letters' (210), whose pattern no dataset's overlaps.
const DATASET_PRIORITY: u64 = 205;

/// A retention of its own for some datasets: the main template again, for that dataset's
/// streams only (`logs-heroku-by-dataset-router` for `logs-heroku.router-*`), with its own
/// lifecycle. Given any `--retention`, the overrides are exactly its `DATASET=AGE` entries
/// (others are removed); given none, the installed ones are brought up to date and keep their
/// retention.
async fn install_dataset_overrides(
    client: &Client,
    main: &serde_json::Value,
    main_retention: &Retention,
    retention: &[RetentionRule],
    plan: &mut Plan,
) -> Result<(), Error> {
    let prefix = format!("{TEMPLATE_NAME}-");
    let installed: Vec<String> =
        client.index_templates(&format!("{prefix}*")).await?.into_iter().map(|(name, _)| name).collect();
    let wanted: Vec<(String, Option<&Retention>)> = if retention.is_empty() {
        installed.iter().map(|n| (n[prefix.len()..].to_owned(), None)).collect()
    } else {
        let mut rules: Vec<(String, Option<&Retention>)> = Vec::new();
        for r in retention {
            if let Some(d) = &r.dataset {
                rules.retain(|(x, _)| x != d);
                rules.push((d.clone(), Some(&r.retention)));
            }
        }
        rules
    };
    for (dataset, age) in &wanted {
        install_one(client, &format!("{prefix}{dataset}"), dataset_template(main, dataset), *age, plan).await?;
    }
    for name in installed.iter().filter(|n| !wanted.iter().any(|(d, _)| n[prefix.len()..] == **d)) {
        if plan.write == Write::Yes {
            match client.delete_index_template(name).await {
                Ok(()) => {}
                // OpenSearch keeps a template while data streams use it (Elasticsearch lets the
                // main one take over): it stays, giving what the main template gives.
                Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("in use by") => {
                    let t = dataset_template(main, &name[prefix.len()..]);
                    install_one(client, name, t, Some(main_retention), plan).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        plan.changes.push(Change::Deleted(format!("index template {name}")));
    }
    Ok(())
}

/// The main template for one dataset's streams only, above the main one.
fn dataset_template(main: &serde_json::Value, dataset: &str) -> serde_json::Value {
    let mut t = main.clone();
    t["index_patterns"] = serde_json::json!([DataStreams::every_of(dataset)]);
    t["priority"] = DATASET_PRIORITY.into();
    t
}

/// Fields per index on OpenSearch, which cannot ignore dynamic fields past the limit: room for
/// thousands of label names before a document would be refused (and dead-lettered).
const OPENSEARCH_FIELD_LIMIT: u64 = 10_000;

/// OpenSearch has `flat_object` where Elasticsearch has `flattened` (without its parameters,
/// and without aggregations: `labels` stay keywords), a `constant_keyword` that needs its value
/// in the mapping (`keyword` here, as one template serves every dataset), and no way to ignore
/// dynamic fields past the field limit (a higher limit instead).
fn for_opensearch(template: &mut serde_json::Value, changes: &mut Vec<Change>) {
    if let Some(settings) = template["template"]["settings"].as_object_mut() {
        settings.remove("index.mapping.total_fields.ignore_dynamic_beyond_limit");
        settings.insert("index.mapping.total_fields.limit".into(), OPENSEARCH_FIELD_LIMIT.into());
    }
    let mappings = &mut template["template"]["mappings"];
    replace_type(mappings, "constant_keyword", "keyword");
    flattened_to_flat_object(mappings);
    // `metrics.*` (names with dots) as objects: a metric named like another's prefix is refused
    // there, and dead-lettered (docs/fields.md).
    remove_key(mappings, "subobjects");
    changes.push(Change::Skipped(
        "flattened app.* and otel.resource.*, constant_keyword data_stream.*".into(),
        format!(
            "OpenSearch has neither; mapped as flat_object and keyword; field limit {OPENSEARCH_FIELD_LIMIT} (labels past it are refused and dead-lettered)"
        ),
    ));
}

/// Installs one template (unless it is installed as it would be). Where the server has data
/// stream lifecycles, the template has one, enabled: its streams roll over by the cluster's
/// default rollover (as Elastic's own `logs-*-*` do), and keep their documents for the
/// retention, or for ever. Returns that retention (`None`: for ever).
async fn install_one(
    client: &Client,
    name: &str,
    mut template: serde_json::Value,
    retention: Option<&Retention>,
    plan: &mut Plan,
) -> Result<Option<String>, Error> {
    let installed = client.index_template(name).await?.map(|t| Installed::from(&t));
    let age: Option<String> = match retention {
        Some(Retention::Age(age)) => Some(age.clone()),
        Some(Retention::Forever) => None,
        None => installed.as_ref().and_then(|i| i.retention.clone()),
    };
    if plan.lifecycles {
        let mut lifecycle = serde_json::json!({"enabled": true});
        if let Some(age) = &age {
            lifecycle["data_retention"] = age.clone().into();
        }
        template["template"]["lifecycle"] = lifecycle.clone();
        plan.lifecycle_of.push((name.to_owned(), lifecycle));
    } else if plan.ism {
        // OpenSearch: the template remembers the retention (its ISM policy carries it out).
        if let Some(age) = &age {
            template["_meta"]["drainpipe_retention"] = age.clone().into();
        }
        plan.policies.push(ism::Policy::of(name, &template, age.clone()));
    }
    let what = format!("index template {name}");
    let hash = content_hash(&template);
    template["_meta"]["drainpipe_template_hash"] = serde_json::Value::String(hash.clone());
    let existing = installed.map(|i| i.hash);
    if existing.as_deref() == Some(hash.as_str()) {
        plan.changes.push(Change::Unchanged(what));
        return Ok(age);
    }
    if plan.write == Write::Yes {
        put_with_fallbacks(client, name, template, plan).await?;
    }
    plan.changes.push(if existing.is_some() { Change::Updated(what) } else { Change::Created(what) });
    Ok(age)
}

/// Field types some servers lack, and what stands in for them there.
const STAND_INS: [(&str, &str); 2] = [("constant_keyword", "keyword"), ("match_only_text", "text")];

/// PUTs the template; a server without data stream lifecycles gets it without `lifecycle`, one
/// without data streams without `data_stream` (plain indices of the same names), one without
/// a field type its stand-in ([`STAND_INS`]), saying so.
async fn put_with_fallbacks(
    client: &Client,
    name: &str,
    mut template: serde_json::Value,
    plan: &mut Plan,
) -> Result<(), Error> {
    match client.put_index_template(name, &template).await {
        Ok(()) => Ok(()),
        Err(Error::Status { status, body, .. })
            if status.as_u16() == 400 && time_series::is_time_series(&template) && missing_type(&body).is_none() =>
        {
            let next = time_series::after_refusal(name, template, &body, &mut plan.changes);
            Box::pin(put_with_fallbacks(client, name, next, plan)).await
        }
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && missing_type(&body).is_some() => {
            let (missing, stand_in) = missing_type(&body).unwrap_or_default();
            plan.changes.push(Change::Skipped(
                format!("{missing} fields in {name}"),
                format!("the server has no {missing}; mapped as {stand_in}"),
            ));
            replace_type(&mut template, missing, stand_in);
            Box::pin(put_with_fallbacks(client, name, template, plan)).await
        }
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("lifecycle") => {
            plan.changes.push(Change::Skipped(
                format!("rollover and retention on {name}"),
                "the server has no data stream lifecycle".into(),
            ));
            if let Some(t) = template.get_mut("template").and_then(|t| t.as_object_mut()) {
                t.remove("lifecycle");
            }
            plan.lifecycle_of.retain(|(t, _)| t != name);
            client.put_index_template(name, &template).await
        }
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("data_stream") => {
            tracing::warn!(template = name, reason = %body, "server lacks data streams; using plain indices with the same names");
            plan.changes.push(Change::Skipped(
                format!("data stream for {name}"),
                "the server has no data streams; plain indices of the same names".into(),
            ));
            if let Some(obj) = template.as_object_mut() {
                obj.remove("data_stream");
            }
            client.put_index_template(name, &template).await
        }
        Err(e) => Err(e),
    }
}

/// The field type a refusal says the server does not have, if it has a stand-in.
fn missing_type(body: &str) -> Option<(&'static str, &'static str)> {
    STAND_INS.into_iter().find(|(t, _)| {
        body.contains(&format!("No handler for type [{t}]")) || body.contains(&format!("mapper type [{t}]"))
    })
}

/// Every `flattened` field (`app`, `otel.resource`) as OpenSearch's `flat_object`, which takes
/// none of its parameters.
fn flattened_to_flat_object(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(obj) if obj.get("type").and_then(|t| t.as_str()) == Some("flattened") => {
            *v = serde_json::json!({"type": "flat_object"});
        }
        serde_json::Value::Object(obj) => obj.values_mut().for_each(flattened_to_flat_object),
        _ => {}
    }
}

/// Every `key` in the mappings removed.
fn remove_key(v: &mut serde_json::Value, key: &str) {
    match v {
        serde_json::Value::Object(obj) => {
            obj.remove(key);
            obj.values_mut().for_each(|child| remove_key(child, key));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| remove_key(i, key)),
        _ => {}
    }
}

/// Every `"type": from` in the mappings becomes `to`.
fn replace_type(v: &mut serde_json::Value, from: &str, to: &str) {
    match v {
        serde_json::Value::Object(obj) => {
            for (k, child) in obj.iter_mut() {
                if k == "type" && child == from {
                    *child = serde_json::Value::String(to.to_owned());
                } else {
                    replace_type(child, from, to);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| replace_type(i, from, to)),
        _ => {}
    }
}

/// A stable hash of the template as drainpipe would install it. Not the template's own
/// `version` field: Elasticsearch stores that integer for outside bookkeeping and never compares
/// it with the content, so a hand-edited template would still look current; the hash notices.
fn content_hash(template: &serde_json::Value) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(template.to_string().as_bytes()))
}

/// What an installed template holds that `install` compares or keeps.
struct Installed {
    /// The hash drainpipe stored in its `_meta` (empty if another tool wrote it).
    hash: String,
    /// Its lifecycle's `data_retention` (on OpenSearch, its ISM policy's, kept in `_meta`), if
    /// it has one.
    retention: Option<String>,
}

impl From<&serde_json::Value> for Installed {
    /// From an `index_template` as `GET _index_template` returns it.
    fn from(t: &serde_json::Value) -> Installed {
        Installed {
            hash: t["_meta"]["drainpipe_template_hash"].as_str().unwrap_or("").to_owned(),
            retention: (t["template"]["lifecycle"]["data_retention"].as_str())
                .or(t["_meta"]["drainpipe_retention"].as_str())
                .map(str::to_owned),
        }
    }
}

/// How to reach Kibana: its URL (a base path and a space, `/s/<space>`, kept; credentials in
/// it become basic auth), else Elasticsearch's API key (Kibana takes those), and the CA that
/// `--elasticsearch-ca` names, for a Kibana behind the same private CA.
#[derive(Debug)]
pub struct Kibana {
    base: reqwest::Url,
    basic: Option<(String, Option<String>)>,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl Kibana {
    pub fn new(kibana_url: &str, api_key: Option<&str>, ca_pem: Option<&[u8]>) -> anyhow::Result<Kibana> {
        let mut base = reqwest::Url::parse(kibana_url).context("invalid --kibana-url")?;
        let user = percent_encoding::percent_decode_str(base.username()).decode_utf8_lossy().into_owned();
        let pass = base.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).context("--elasticsearch-ca")? {
                client = client.add_root_certificate(cert);
            }
        }
        let basic = (!user.is_empty()).then_some((user, pass));
        let api_key = api_key.map(encoded_api_key);
        Ok(Kibana { base, basic, api_key, client: client.build()? })
    }

    /// `path` under the base path and space of the URL given.
    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        Ok(self.base.join(path)?)
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url).header("kbn-xsrf", "true");
        match (&self.basic, &self.api_key) {
            (Some((user, pass)), _) => request.basic_auth(user, pass.as_ref()),
            (None, Some(key)) => request.header("Authorization", format!("ApiKey {key}")),
            (None, None) => request,
        }
    }

    /// Imports the saved objects, unless Kibana already holds them exactly as shipped.
    pub async fn import(&self) -> anyhow::Result<Change> {
        let what = format!("Kibana saved objects at {}", self.base);
        let shipped = shipped_kibana_objects();
        let stored = self.stored_objects(&shipped).await?;
        let existed = stored.iter().flatten().count();
        if existed == shipped.len()
            && stored.iter().zip(&shipped).all(|(s, ours)| s.as_ref().is_some_and(|s| same_object(s, ours)))
        {
            return Ok(Change::Unchanged(what));
        }
        let url = self.url("api/saved_objects/_import?overwrite=true")?;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(KIBANA_OBJECTS.as_bytes())
                .file_name("drainpipe.ndjson")
                .mime_str("application/ndjson")?,
        );
        let answer = self.request(reqwest::Method::POST, url.clone()).multipart(form).send().await;
        let answer = answer.with_context(|| format!("cannot reach Kibana at {url}"))?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if !status.is_success() || !text.contains("\"success\":true") {
            anyhow::bail!("Kibana refused the saved objects ({status}): {text}");
        }
        Ok(if existed == 0 { Change::Created(what) } else { Change::Updated(what) })
    }

    /// What Kibana holds under each of `shipped`'s type and id (`None`: not there).
    async fn stored_objects(&self, shipped: &[serde_json::Value]) -> anyhow::Result<Vec<Option<serde_json::Value>>> {
        let wanted: Vec<_> = shipped.iter().map(|o| serde_json::json!({"type": o["type"], "id": o["id"]})).collect();
        let url = self.url("api/saved_objects/_bulk_get")?;
        let answer = self.request(reqwest::Method::POST, url.clone()).json(&wanted).send().await;
        let answer = answer.with_context(|| format!("cannot reach Kibana at {url}"))?;
        let status = answer.status();
        if !status.is_success() {
            let text = answer.text().await.unwrap_or_default();
            anyhow::bail!("Kibana answered {status} to {url}: {text}");
        }
        let body: serde_json::Value = answer.json().await.context("Kibana's _bulk_get answer")?;
        let objects = body["saved_objects"].as_array().cloned().unwrap_or_default();
        Ok(objects.into_iter().map(|o| o.get("error").is_none().then_some(o)).collect())
    }
}

/// An API key as Kibana's `Authorization: ApiKey` header wants it: `id:key` encoded, or the
/// `encoded` form as given.
fn encoded_api_key(key: &str) -> String {
    use base64::Engine as _;
    if key.contains(':') {
        base64::engine::general_purpose::STANDARD.encode(key)
    } else {
        key.to_owned()
    }
}

fn shipped_kibana_objects() -> Vec<serde_json::Value> {
    KIBANA_OBJECTS.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Whether Kibana's copy has our attributes and references (what it adds itself, such as
/// `updated_at` or newer migration versions, does not count).
fn same_object(stored: &serde_json::Value, ours: &serde_json::Value) -> bool {
    let sorted = |v: &serde_json::Value| {
        let mut refs = v["references"].as_array().cloned().unwrap_or_default();
        refs.sort_by_key(|r| (r["name"].to_string(), r["id"].to_string()));
        refs
    };
    stored["attributes"] == ours["attributes"] && sorted(stored) == sorted(ours)
}

/// The Kibana saved objects, shipped inside the binary.
pub const KIBANA_OBJECTS: &str = include_str!("../../../deploy/kibana/drainpipe.ndjson");

/// [`install`], retried with capped backoff while Elasticsearch cannot be reached. Documents
/// must not be written before the template exists (they would create an index with guessed
/// mappings), so the indexer starts only after this returns.
pub async fn install_until_done(client: &Client, retention: &[RetentionRule]) -> anyhow::Result<()> {
    let policy = RetryPolicy::SETUP;
    let mut backoff = policy.backoff();
    loop {
        match install(client, retention).await {
            Ok(changes) => {
                for c in changes {
                    tracing::info!(url = client.url(), "setup: {c}");
                }
                return Ok(());
            }
            Err(e) if policy.request(&e) == RequestDecision::Retry => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?wait, "cannot install the index template yet");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e).context("installing the index template failed"),
        }
    }
}

/// `drainpipe setup`: what Elasticsearch (and Kibana) need, installed idempotently; one line
/// per thing, saying whether it was created, updated, left unchanged or skipped.
pub async fn run(args: SetupArgs) -> anyhow::Result<()> {
    let client = args.elasticsearch.client()?;
    let retention = &args.elasticsearch.retention;
    let mut changes = install(&client, retention).await.with_context(|| format!("setup against {}", client.url()))?;
    if retention.is_empty() {
        changes.push(Change::Skipped(
            "retention".into(),
            "no --retention given; the installed retention (if any) is kept".into(),
        ));
    }
    match args.kibana_url {
        Some(url) => {
            let es = &args.elasticsearch;
            let key = es.elasticsearch_api_key.as_ref().map(|k| k.expose());
            let kibana = Kibana::new(&url, key, es.ca_pem()?.as_deref())?;
            changes.push(kibana.import().await?);
        }
        None => changes.push(Change::Skipped("Kibana objects".into(), "no --kibana-url given".into())),
    }
    #[allow(clippy::print_stdout)]
    for c in changes {
        println!("{c}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for Kibana (none can be obtained here): it records each request's method,
    /// path and `Authorization`, answers `_bulk_get` with the shipped objects when `holds`, or
    /// with not-found errors, and `_import` with success.
    async fn stand_in_kibana(holds: bool) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>) {
        use http_body_util::{BodyExt as _, Full};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Default::default();
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap_or("").to_owned());
                            let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                            log.lock().unwrap().push((
                                req.method().to_string(),
                                path.clone(),
                                auth.unwrap_or_default(),
                            ));
                            let _ = req.into_body().collect().await;
                            let body = if path.contains("_bulk_get") {
                                let objects: Vec<serde_json::Value> = shipped_kibana_objects()
                                    .into_iter()
                                    .map(|o| if holds { o } else { serde_json::json!({"id": o["id"], "type": o["type"], "error": {"statusCode": 404}}) })
                                    .collect();
                                serde_json::json!({ "saved_objects": objects }).to_string()
                            } else {
                                r#"{"success":true,"successCount":18}"#.to_owned()
                            };
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from(body))))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        (url, seen)
    }

    /// `--kibana-url` keeps a base path and a space, authenticates with the URL's credentials
    /// or else the API key, imports what is missing and says `unchanged` when Kibana holds the
    /// objects as shipped.
    #[tokio::test]
    async fn kibana_import_keeps_base_path_and_space_and_says_unchanged() {
        let (url, seen) = stand_in_kibana(false).await;
        let with_space = format!("{}/kibana/s/ops", url.replace("http://", "http://ops:p%40ss@"));
        let change = Kibana::new(&with_space, None, None).unwrap().import().await.unwrap();
        assert!(matches!(change, Change::Created(_)), "{change}");
        let requests = seen.lock().unwrap().clone();
        let paths: Vec<&str> = requests.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["/kibana/s/ops/api/saved_objects/_bulk_get", "/kibana/s/ops/api/saved_objects/_import?overwrite=true"]
        );
        assert!(requests.iter().all(|(_, _, a)| a == "Basic b3BzOnBAc3M="), "ops:p@ss, decoded: {requests:?}");

        let (url, seen) = stand_in_kibana(true).await;
        let change = Kibana::new(&url, Some("id:key"), None).unwrap().import().await.unwrap();
        assert!(matches!(change, Change::Unchanged(_)), "{change}");
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 1, "nothing imported: {requests:?}");
        assert_eq!(requests[0].2, "ApiKey aWQ6a2V5", "the API key, encoded");
    }

    #[test]
    fn a_stream_gets_a_lifecycle_when_it_has_none_or_its_retention_is_not_the_one_given() {
        use serde_json::json;
        let forever = json!({"enabled": true});
        let month = json!({"enabled": true, "data_retention": "30d"});
        // Without --retention: only a stream without a lifecycle, or with it disabled.
        assert!(needs_lifecycle(None, &forever, false));
        assert!(needs_lifecycle(Some(&json!({"enabled": false})), &forever, false));
        assert!(!needs_lifecycle(Some(&month), &forever, false), "a retention set before is kept");
        assert!(!needs_lifecycle(Some(&json!({"data_retention": "7d"})), &forever, false), "enabled by default");
        // With it: every stream whose retention differs, forever included.
        assert!(needs_lifecycle(Some(&month), &forever, true));
        assert!(needs_lifecycle(Some(&forever), &month, true));
        assert!(!needs_lifecycle(
            Some(&json!({"enabled": true, "data_retention": "30d", "effective_retention": "30d"})),
            &month,
            true
        ));
    }

    #[test]
    fn template_covers_the_data_stream_names() {
        let t = template();
        assert_eq!(t["index_patterns"], serde_json::json!([DataStreams::every_of("*")]));
        assert_eq!(dead_letter_template()["index_patterns"], serde_json::json!([DataStreams::EVERY_DEAD_LETTERS]));
        // Dead letters' stream matches both patterns: theirs must win.
        assert!(dead_letter_template()["priority"].as_u64() > t["priority"].as_u64());
        assert!(t["data_stream"].is_object());
        // Above Elasticsearch's built-in `logs-*-*` template (priority 100).
        assert!(t["priority"].as_u64().unwrap() > 100);
        assert_eq!(t["template"]["mappings"]["properties"]["@timestamp"]["type"], "date_nanos");
        let app = &t["template"]["mappings"]["properties"]["app"];
        assert_eq!(app["type"], "flattened");
        assert_eq!(app["depth_limit"], drainpipe_transform::APP_MAX_DEPTH as u64);
    }

    /// The mapping is `dynamic: false`, so a field it does not cover would be stored but never
    /// searchable. Every field of every expected document in the transform's test data must be
    /// mapped explicitly, or fall under a dynamic object or a flattened field.
    #[test]
    fn every_field_the_transform_writes_is_mapped() {
        let t = template();
        let mappings = &t["template"]["mappings"];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/transform/testdata");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".expected.jsonl") {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let doc: serde_json::Value = serde_json::from_str(line).unwrap();
                leaf_paths(&doc, String::new(), &mut seen);
            }
        }
        assert!(seen.len() > 60, "the test data covers the fields: {seen:?}");
        let unmapped: Vec<&String> = seen.iter().filter(|p| !is_mapped(mappings, p)).collect();
        assert!(unmapped.is_empty(), "fields without a mapping: {unmapped:?}");
    }

    /// Every field of a data point's and a span's document, of every metric type and with every
    /// optional part set, is mapped in its stream's template.
    #[test]
    fn every_field_of_otlp_metric_and_span_documents_is_mapped() {
        use drainpipe_otlp::proto::*;
        use prost::Message as _;
        let text = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::String(v.into())) }),
        };
        let resource = Some(Resource {
            attributes: ["heroku.app.name", "heroku.app.id", "heroku.dyno.name", "heroku.release.version", "cloud"]
                .iter()
                .map(|k| text(k, "web.1"))
                .collect(),
        });
        let scope = Some(InstrumentationScope { name: "s".into(), version: "1".into(), attributes: Vec::new() });
        let attributes = vec![text("http.route", "/"), text("http", "x")];
        let number = NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            value: Some(Number::AsDouble(f64::NAN)),
            flags: 0,
        };
        let histogram = HistogramDataPoint {
            attributes: attributes.clone(),
            time_unix_nano: 2,
            count: 2,
            sum: Some(3.0),
            bucket_counts: vec![1, 1],
            explicit_bounds: vec![1.0],
            min: Some(1.0),
            max: Some(2.0),
            ..HistogramDataPoint::default()
        };
        let summary = SummaryDataPoint {
            quantile_values: vec![ValueAtQuantile { quantile: 0.999, value: 1.0 }],
            ..SummaryDataPoint::default()
        };
        let data = [
            Data::Gauge(Gauge { data_points: vec![number.clone()] }),
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint { value: Some(Number::AsInt(3)), ..number }],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
            Data::Histogram(Histogram { data_points: vec![histogram], aggregation_temporality: 1 }),
            Data::Summary(Summary { data_points: vec![summary] }),
        ];
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            trace_state: "a=b".into(),
            name: "n".into(),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: attributes.clone(),
            dropped_attributes_count: 1,
            events: vec![SpanEvent {
                time_unix_nano: 1,
                name: "e".into(),
                attributes: attributes.clone(),
                ..SpanEvent::default()
            }],
            dropped_events_count: 1,
            links: vec![SpanLink {
                trace_id: vec![1; 16],
                span_id: vec![4; 8],
                trace_state: "c=d".into(),
                attributes,
                ..SpanLink::default()
            }],
            dropped_links_count: 1,
            status: Some(SpanStatus { message: "m".into(), code: 2 }),
            flags: 0,
        };
        let labels = [("env".to_owned(), "prod".to_owned())];
        let ctx = drainpipe_transform::Context {
            app: None,
            drain_token: None,
            frame_id: None,
            labels: &labels,
            received_at: drainpipe_transform::Timestamp::now(),
            structured_data: drainpipe_transform::StructuredData::Absent,
            app_for_token: None,
            namespace: "default",
        };
        let mut transformer = drainpipe_transform::Transformer::new();
        let (mut points, mut spans) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        for data in data {
            let metric = Metric { name: "m.x".into(), description: "d".into(), unit: "By".into(), data: Some(data) };
            let record =
                drainpipe_otlp::PointRecord { resource: resource.clone(), scope: scope.clone(), metric: Some(metric) };
            let mut out = Vec::new();
            transformer.transform_otlp_metric(&record.encode_to_vec(), &ctx, &mut out);
            leaf_paths(&serde_json::from_slice(&out).unwrap(), String::new(), &mut points);
        }
        let record = drainpipe_otlp::SpanRecord { resource, scope, span: Some(span) };
        let mut out = Vec::new();
        transformer.transform_otlp_span(&record.encode_to_vec(), &ctx, &mut out);
        leaf_paths(&serde_json::from_slice(&out).unwrap(), String::new(), &mut spans);
        for (name, seen) in [("metrics-heroku.otel", points), ("traces-heroku.otel", spans)] {
            let t = signal_templates().into_iter().find(|(n, _)| *n == name).unwrap().1;
            assert!(seen.len() > 20, "{name}: {seen:?}");
            let unmapped: Vec<&String> = seen.iter().filter(|p| !is_mapped(&t["template"]["mappings"], p)).collect();
            assert!(unmapped.is_empty(), "{name}: fields without a mapping: {unmapped:?}");
        }
    }

    /// The Kibana saved objects parse, and every field they name is mapped in the template of
    /// the data view they use.
    #[test]
    fn kibana_objects_reference_only_mapped_fields() {
        let (main, dead) = (template(), dead_letter_template());
        let signals = signal_templates();
        let signal = |name: &str| signals.iter().find(|(n, _)| *n == name).map(|(_, t)| t.clone()).unwrap();
        let (metrics, traces) = (signal("metrics-heroku.otel"), signal("traces-heroku.otel"));
        let mut checked = 0;
        for (n, line) in KIBANA_OBJECTS.lines().enumerate() {
            let obj: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
            let uses = |view: &str| {
                obj["references"].as_array().into_iter().flatten().any(|r| r["id"] == view) || obj["id"] == view
            };
            let template = if uses("drainpipe-logs-heroku-deadletter") {
                &dead
            } else if uses("drainpipe-metrics-heroku-otel") {
                &metrics
            } else if uses("drainpipe-traces-heroku-otel") {
                &traces
            } else {
                &main
            };
            let mappings = &template["template"]["mappings"];
            let mut fields = Vec::new();
            collect_fields(&obj, &mut fields);
            for field in fields {
                // Dashboards need real types: only metrics may rely on a dynamic template
                // (which maps them as doubles).
                let typed = explicitly_mapped(mappings, &field) || field.starts_with("heroku.metrics.");
                assert!(is_mapped(mappings, &field) && typed, "{} names unmapped field {field:?}", obj["id"]);
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} field references found");
        let types: Vec<&str> = KIBANA_OBJECTS
            .lines()
            .map(|l| if l.contains("\"type\":\"dashboard\"") { "dashboard" } else { "" })
            .collect();
        assert!(types.contains(&"dashboard"));
    }

    /// Every object carries the migration versions its shape already has, so that Kibana runs
    /// only the migrations after them: without them it runs every migration of the type, and
    /// Lens's 8.6 one replaces `formBased` layers with the old `indexpattern` key's (empty).
    /// The values are the oldest each shape satisfies (read from Kibana's source: core 8.8.0;
    /// index-pattern and search 8.0.0; lens and dashboard 8.9.0), so one file imports into every
    /// Kibana from 8.9 on; newer Kibanas migrate the objects forward themselves.
    #[test]
    fn kibana_objects_carry_their_migration_versions_and_lens_has_its_current_shape() {
        let mut lens = 0;
        for line in KIBANA_OBJECTS.lines() {
            let obj: serde_json::Value = serde_json::from_str(line).unwrap();
            let (kind, id) = (obj["type"].as_str().unwrap(), &obj["id"]);
            let expected = match kind {
                "index-pattern" | "search" => "8.0.0",
                "lens" | "dashboard" => "8.9.0",
                other => panic!("{id}: unexpected type {other}"),
            };
            assert_eq!(obj["coreMigrationVersion"], "8.8.0", "{id}");
            assert_eq!(obj["typeMigrationVersion"], expected, "{id}");
            if kind != "lens" {
                continue;
            }
            lens += 1;
            let attributes = &obj["attributes"];
            assert!(attributes["title"].as_str().is_some_and(|t| !t.is_empty()), "{id}: title");
            assert!(attributes["visualizationType"].as_str().is_some_and(|t| t.starts_with("lns")), "{id}");
            let state = &attributes["state"];
            for key in ["visualization", "query", "filters"] {
                assert!(!state[key].is_null(), "{id}: state.{key}");
            }
            assert!(state["datasourceStates"]["indexpattern"].is_null(), "{id}: the pre-8.6 key");
            let layers = state["datasourceStates"]["formBased"]["layers"].as_object().expect("formBased layers");
            assert!(!layers.is_empty(), "{id}");
            for (layer, spec) in layers {
                assert!(spec["columns"].is_object() && spec["columnOrder"].is_array(), "{id}: layer {layer}");
                let name = format!("indexpattern-datasource-layer-{layer}");
                let referenced = obj["references"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["name"] == name.as_str() && r["type"] == "index-pattern");
                assert!(referenced, "{id}: no index-pattern reference named {name}");
            }
        }
        assert_eq!(lens, 11);
    }

    /// Field names in `sourceField`, `columns`, `timeFieldName` and KQL queries.
    fn collect_fields(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(obj) => {
                for (k, child) in obj {
                    match (k.as_str(), child) {
                        ("sourceField" | "timeFieldName", serde_json::Value::String(f)) if f != "___records___" => {
                            out.push(f.clone())
                        }
                        ("columns", serde_json::Value::Array(cols)) => {
                            out.extend(cols.iter().filter_map(|c| c.as_str().map(str::to_owned)));
                            collect_fields(child, out);
                        }
                        ("query", serde_json::Value::String(q)) => out.extend(kql_fields(q)),
                        ("searchSourceJSON", serde_json::Value::String(s)) => {
                            collect_fields(&serde_json::from_str(s).unwrap_or_default(), out);
                        }
                        _ => collect_fields(child, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect_fields(i, out)),
            _ => {}
        }
    }

    /// The field names of a KQL query: words, outside quotes, followed by `:` or a comparison.
    fn kql_fields(q: &str) -> Vec<String> {
        let mut fields = Vec::new();
        let b = q.as_bytes();
        let (mut i, mut in_quotes) = (0, false);
        while i < b.len() {
            let c = b[i];
            if c == b'"' {
                in_quotes = !in_quotes;
                i += 1;
                continue;
            }
            if in_quotes || !(c.is_ascii_alphabetic() || c == b'_' || c == b'@') {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'@')) {
                i += 1;
            }
            let rest = q[i..].trim_start();
            if rest.starts_with(':') || rest.starts_with('>') || rest.starts_with('<') {
                fields.push(q[start..i].to_owned());
            }
        }
        fields
    }

    #[test]
    fn kql_field_names() {
        assert_eq!(kql_fields(r#"a.b : "x:y" and c >= 5 or not d<3 and e"#), ["a.b", "c", "d"]);
    }

    /// Every leaf's dotted path; an array of objects (a span's events) adds its objects' paths.
    fn leaf_paths(v: &serde_json::Value, prefix: String, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(obj) => {
                for (k, child) in obj {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaf_paths(child, path, out);
                }
            }
            serde_json::Value::Array(items) if items.iter().any(serde_json::Value::is_object) => {
                items.iter().for_each(|item| leaf_paths(item, prefix.clone(), out));
            }
            _ => {
                out.insert(prefix);
            }
        }
    }

    fn explicitly_mapped(mappings: &serde_json::Value, path: &str) -> bool {
        let mut node = mappings;
        for part in path.split('.') {
            match node["properties"].get(part) {
                Some(next) => node = next,
                None => return false,
            }
        }
        node.get("type").is_some()
    }
}
