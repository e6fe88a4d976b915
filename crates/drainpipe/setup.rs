//! What Elasticsearch needs before the first document: the index template for
//! `logs-heroku-*`. Installing it is idempotent (`PUT` replaces it with the same content).

use std::time::Duration;

use anyhow::Context as _;
use backon::{BackoffBuilder, ExponentialBuilder};
use drainpipe_bulk_indexer::{Client, Error};

/// The index templates, shipped inside the binary: the documents, and their dead letters.
const TEMPLATE: &str = include_str!("templates/logs-heroku.json");
pub const TEMPLATE_NAME: &str = "logs-heroku";
const DEAD_LETTER_TEMPLATE: &str = include_str!("templates/logs-heroku-deadletter.json");
pub const DEAD_LETTER_TEMPLATE_NAME: &str = "logs-heroku-deadletter";

/// Where documents land: a data stream, or (on servers without data streams) a plain index
/// of the same name created from the same template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    DataStream,
    PlainIndex,
}

pub fn template() -> serde_json::Value {
    serde_json::from_str(TEMPLATE).expect("the shipped template is valid JSON")
}

pub fn dead_letter_template() -> serde_json::Value {
    serde_json::from_str(DEAD_LETTER_TEMPLATE).expect("the shipped template is valid JSON")
}

/// Installs both index templates, falling back to ones without `data_stream` when the server
/// does not know data streams.
pub async fn install(client: &Client) -> Result<TargetKind, Error> {
    let kind = install_one(client, TEMPLATE_NAME, template()).await?;
    install_one(client, DEAD_LETTER_TEMPLATE_NAME, dead_letter_template()).await?;
    Ok(kind)
}

async fn install_one(client: &Client, name: &str, mut template: serde_json::Value) -> Result<TargetKind, Error> {
    match client.put_index_template(name, &template).await {
        Ok(()) => Ok(TargetKind::DataStream),
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("data_stream") => {
            tracing::warn!(template = name, reason = %body, "server lacks data streams; using plain indices with the same names");
            if let Some(obj) = template.as_object_mut() {
                obj.remove("data_stream");
            }
            client.put_index_template(name, &template).await?;
            Ok(TargetKind::PlainIndex)
        }
        Err(e) => Err(e),
    }
}

/// [`install`], retried with capped backoff while Elasticsearch cannot be reached. Documents
/// must not be written before the template exists (they would create an index with guessed
/// mappings), so the indexer starts only after this returns.
pub async fn install_until_done(client: &Client) -> anyhow::Result<TargetKind> {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match install(client).await {
            Ok(kind) => {
                tracing::info!(template = TEMPLATE_NAME, ?kind, url = client.url(), "index template installed");
                return Ok(kind);
            }
            Err(e) if e.is_retryable() => {
                let wait = backoff.next().unwrap_or(Duration::from_secs(30));
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
        assert_eq!(t["index_patterns"], serde_json::json!(["logs-heroku-*"]));
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
