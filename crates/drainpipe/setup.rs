//! What Elasticsearch needs before the first document: the index template for
//! `logs-heroku-*`. Installing it is idempotent (`PUT` replaces it with the same content).

use std::time::Duration;

use anyhow::Context as _;
use backon::{BackoffBuilder, ExponentialBuilder};
use drainpipe_bulk_indexer::{Client, Error};

/// The index template, shipped inside the binary.
const TEMPLATE: &str = include_str!("templates/logs-heroku.json");
pub const TEMPLATE_NAME: &str = "logs-heroku";

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

/// Installs the index template, falling back to one without `data_stream` when the server
/// does not know data streams.
pub async fn install(client: &Client) -> Result<TargetKind, Error> {
    let mut template = template();
    match client.put_index_template(TEMPLATE_NAME, &template).await {
        Ok(()) => Ok(TargetKind::DataStream),
        Err(Error::Status { status, body, .. }) if status.as_u16() == 400 && body.contains("data_stream") => {
            tracing::warn!(reason = %body, "server lacks data streams; using plain indices with the same names");
            if let Some(obj) = template.as_object_mut() {
                obj.remove("data_stream");
            }
            client.put_index_template(TEMPLATE_NAME, &template).await?;
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
    }
}
