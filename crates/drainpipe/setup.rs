//! What Elasticsearch needs before the first document: the index template for
//! `logs-heroku.*-*` (one data stream per dataset) and the one for dead letters. Installing is
//! idempotent (a template already up to date is left alone).

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, Error, RequestDecision, RetryPolicy};

use crate::config::{Retention, RetentionRule};

/// The index templates, shipped inside the binary: the documents, and their dead letters.
const TEMPLATE: &str = include_str!("templates/logs-heroku.json");
/// Not `logs-heroku`, the name of the single-stream layout's template: Elasticsearch refuses to change
/// that one's pattern while streams it made still exist (docs/upgrading.md).
pub const TEMPLATE_NAME: &str = "logs-heroku-by-dataset";
const DEAD_LETTER_TEMPLATE: &str = include_str!("templates/logs-heroku-deadletter.json");
pub const DEAD_LETTER_TEMPLATE_NAME: &str = "logs-heroku-deadletter";

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
    let server = client.server().await?;
    let mut changes = Vec::new();
    let mut main = template();
    if server.opensearch {
        for_opensearch(&mut main, &mut changes);
    }
    // The last entry without a dataset; none keeps what is installed.
    let default = retention.iter().rev().find(|r| r.dataset.is_none()).map(|r| &r.retention);
    // Dead letters first: their template must outrank the main one, whose pattern covers
    // their stream's name too, before the main one is written.
    install_one(client, DEAD_LETTER_TEMPLATE_NAME, dead_letter_template(), default, &mut changes).await?;
    install_one(client, TEMPLATE_NAME, main.clone(), default, &mut changes).await?;
    install_dataset_overrides(client, &main, retention, &mut changes).await?;
    Ok(changes)
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
    retention: &[RetentionRule],
    changes: &mut Vec<Change>,
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
        let mut t = main.clone();
        t["index_patterns"] = serde_json::json!([format!("logs-heroku.{dataset}-*")]);
        t["priority"] = DATASET_PRIORITY.into();
        install_one(client, &format!("{prefix}{dataset}"), t, *age, changes).await?;
    }
    for name in installed.iter().filter(|n| !wanted.iter().any(|(d, _)| n[prefix.len()..] == **d)) {
        client.delete_index_template(name).await?;
        changes.push(Change::Deleted(format!("index template {name}")));
    }
    Ok(())
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
    mappings["properties"]["app"] = serde_json::json!({"type": "flat_object"});
    changes.push(Change::Skipped(
        "flattened app.*, constant_keyword data_stream.*".into(),
        format!(
            "OpenSearch has neither; mapped as flat_object and keyword; field limit {OPENSEARCH_FIELD_LIMIT} (labels past it are refused and dead-lettered)"
        ),
    ));
}

async fn install_one(
    client: &Client,
    name: &str,
    mut template: serde_json::Value,
    retention: Option<&Retention>,
    changes: &mut Vec<Change>,
) -> Result<(), Error> {
    let installed = client.index_template(name).await?.map(|t| Installed::from(&t));
    let age = match retention {
        Some(Retention::Age(age)) => Some(age.clone()),
        Some(Retention::Forever) => None,
        None => installed.as_ref().and_then(|i| i.retention.clone()),
    };
    if let Some(age) = age {
        template["template"]["lifecycle"] = serde_json::json!({"data_retention": age});
    }
    let what = format!("index template {name}");
    let hash = content_hash(&template);
    template["_meta"]["drainpipe_template_hash"] = serde_json::Value::String(hash.clone());
    let existing = installed.map(|i| i.hash);
    if existing.as_deref() == Some(hash.as_str()) {
        changes.push(Change::Unchanged(what));
        return Ok(());
    }
    put_with_fallbacks(client, name, template, changes).await?;
    changes.push(if existing.is_some() { Change::Updated(what) } else { Change::Created(what) });
    Ok(())
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
    changes: &mut Vec<Change>,
) -> Result<(), Error> {
    match client.put_index_template(name, &template).await {
        Ok(()) => Ok(()),
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && missing_type(&body).is_some() => {
            let (missing, stand_in) = missing_type(&body).unwrap_or_default();
            changes.push(Change::Skipped(
                format!("{missing} fields in {name}"),
                format!("the server has no {missing}; mapped as {stand_in}"),
            ));
            replace_type(&mut template, missing, stand_in);
            Box::pin(put_with_fallbacks(client, name, template, changes)).await
        }
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("lifecycle") => {
            changes.push(Change::Skipped(
                format!("retention on {name}"),
                "the server has no data stream lifecycle".into(),
            ));
            if let Some(t) = template.get_mut("template").and_then(|t| t.as_object_mut()) {
                t.remove("lifecycle");
            }
            client.put_index_template(name, &template).await
        }
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("data_stream") => {
            tracing::warn!(template = name, reason = %body, "server lacks data streams; using plain indices with the same names");
            changes.push(Change::Skipped(
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

/// A stable hash of the template as drainpipe would install it.
fn content_hash(template: &serde_json::Value) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(template.to_string().as_bytes()))
}

/// What an installed template holds that `install` compares or keeps.
struct Installed {
    /// The hash drainpipe stored in its `_meta` (empty if another tool wrote it).
    hash: String,
    /// Its lifecycle's `data_retention`, if it has one.
    retention: Option<String>,
}

impl From<&serde_json::Value> for Installed {
    /// From an `index_template` as `GET _index_template` returns it.
    fn from(t: &serde_json::Value) -> Installed {
        Installed {
            hash: t["_meta"]["drainpipe_template_hash"].as_str().unwrap_or("").to_owned(),
            retention: t["template"]["lifecycle"]["data_retention"].as_str().map(str::to_owned),
        }
    }
}

/// Imports the Kibana saved objects (data view, searches, dashboard), replacing older copies.
pub async fn import_kibana(kibana_url: &str) -> anyhow::Result<Change> {
    let mut url = reqwest::Url::parse(kibana_url).context("invalid --kibana-url")?;
    let (user, pass) = (url.username().to_owned(), url.password().map(str::to_owned));
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_path("/api/saved_objects/_import");
    url.set_query(Some("overwrite=true"));
    let boundary = "drainpipe-saved-objects-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"drainpipe.ndjson\"\r\nContent-Type: application/ndjson\r\n\r\n").as_bytes());
    body.extend_from_slice(KIBANA_OBJECTS.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = reqwest::Client::new()
        .post(url.clone())
        .header("kbn-xsrf", "true")
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    if !user.is_empty() {
        request = request.basic_auth(user, pass);
    }
    let answer = request.send().await.with_context(|| format!("cannot reach Kibana at {url}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    if !status.is_success() || !text.contains("\"success\":true") {
        anyhow::bail!("Kibana refused the saved objects ({status}): {text}");
    }
    Ok(Change::Updated(format!("Kibana saved objects at {url}")))
}

/// The Kibana saved objects, shipped inside the binary.
pub const KIBANA_OBJECTS: &str = include_str!("../../deploy/kibana/drainpipe.ndjson");

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_covers_the_data_stream_names() {
        let t = template();
        assert_eq!(t["index_patterns"], serde_json::json!(["logs-heroku.*-*"]));
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

    /// The Kibana saved objects parse, and every field they name is mapped in the template of
    /// the data view they use.
    #[test]
    fn kibana_objects_reference_only_mapped_fields() {
        let (main, dead) = (template(), dead_letter_template());
        let mut checked = 0;
        for (n, line) in KIBANA_OBJECTS.lines().enumerate() {
            let obj: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
            let uses_dead_letters = obj["references"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["id"] == "drainpipe-logs-heroku-deadletter")
                || obj["id"] == "drainpipe-logs-heroku-deadletter";
            let mappings =
                if uses_dead_letters { &dead["template"]["mappings"] } else { &main["template"]["mappings"] };
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

    fn leaf_paths(v: &serde_json::Value, prefix: String, out: &mut std::collections::BTreeSet<String>) {
        match v.as_object() {
            Some(obj) => {
                for (k, child) in obj {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaf_paths(child, path, out);
                }
            }
            None => {
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

    fn is_mapped(mappings: &serde_json::Value, path: &str) -> bool {
        let mut node = mappings;
        for part in path.split('.') {
            let Some(next) = node["properties"].get(part) else {
                // Not explicit: covered when this object maps new keys dynamically (its dynamic
                // templates then type them).
                return node["dynamic"] == true;
            };
            if next["type"] == "flattened" {
                return true;
            }
            node = next;
        }
        node.get("type").is_some()
    }
}
