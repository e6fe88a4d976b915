//! Rollover and retention on OpenSearch, which has no data stream lifecycle: an Index State
//! Management policy per index template (one retention group each), named after it. The
//! policy's `ism_template` has the template's patterns and priority, so ISM attaches it to every
//! backing index made after it (ISM matches a backing index by its stream's name); setup gives
//! the existing streams' indices the policy itself, since ISM never attaches one retroactively.
//!
//! The policy rolls the write index over as Elastic's default lifecycle does (50 GB or 30 days)
//! and, with a retention, deletes a backing index that long after it was rolled over: the age of
//! its newest documents, not of its oldest.

use drainpipe_bulk_indexer::{Client, Error};
use drainpipe_delivery::DataStreams;
use serde_json::{json, Value};

use super::{content_hash, Change, Plan, Write};

/// Elastic's default rollover for data streams: a primary shard of 50 GB, or 30 days.
const ROLLOVER: (&str, &str) = ("50gb", "30d");

/// One template's policy: its id (the template's name) and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: String,
    pub body: Value,
}

impl Policy {
    /// The policy for `template` (named `name`), deleting backing indices `retention` (`30d`)
    /// after their rollover, or keeping them (`None`).
    pub fn of(name: &str, template: &Value, retention: Option<String>) -> Policy {
        let (size, age) = ROLLOVER;
        let mut hot = json!({
            "name": "hot",
            "actions": [{"rollover": {"min_size": size, "min_index_age": age}}],
            "transitions": [],
        });
        let mut states = vec![];
        let keeps = match &retention {
            Some(retention) => {
                hot["transitions"] = json!([{"state_name": "delete", "conditions": {"min_rollover_age": retention}}]);
                format!("deletes a backing index {retention} after its rollover")
            }
            None => "keeps every backing index".to_owned(),
        };
        states.push(hot);
        if retention.is_some() {
            states.push(json!({"name": "delete", "actions": [{"delete": {}}], "transitions": []}));
        }
        let mut body = json!({
            "default_state": "hot",
            "states": states,
            "ism_template": [{
                "index_patterns": template["index_patterns"].clone(),
                "priority": template["priority"].clone(),
            }],
        });
        // The description carries the content hash: it is how a later run tells the installed
        // policy is current (ISM adds fields of its own to what it returns).
        let hash = content_hash(&body);
        body["description"] =
            format!("drainpipe {hash}: rolls over at {size} or {age}; {keeps} (drainpipe setup keeps it current)")
                .into();
        Policy { id: name.to_owned(), body }
    }

    fn hash(&self) -> &str {
        hash_in(self.body["description"].as_str().unwrap_or(""))
    }
}

/// The `drainpipe <hash>` a policy's description starts with (see [`Policy::of`]).
fn hash_in(description: &str) -> &str {
    description.split(':').next().unwrap_or("")
}

/// Installs or updates each template's policy, then gives it to the indices of existing streams
/// made from that template. A server without the ISM plugin (the OpenSearch test distribution,
/// some hosted plans) is said once; a failure costs only its own step, as with lifecycles.
pub async fn install_policies(client: &Client, plan: &mut Plan) {
    let mut changed = Vec::new();
    for policy in std::mem::take(&mut plan.policies) {
        let what = format!("ISM policy {}", policy.id);
        let installed = match client.ism_policy(&policy.id).await {
            Ok(installed) => installed,
            Err(e) if no_ism(&e) => {
                plan.changes.push(Change::Skipped(
                    "rollover and retention".into(),
                    "the server has no Index State Management plugin (_plugins/_ism): streams roll over only by hand \
                     (POST <stream>/_rollover) and keep every document"
                        .into(),
                ));
                return;
            }
            Err(e) => {
                plan.changes.push(Change::Skipped(what, e.to_string()));
                continue;
            }
        };
        let current = installed.as_ref().map(|i| hash_in(i["policy"]["description"].as_str().unwrap_or("")));
        if current == Some(policy.hash()) {
            plan.changes.push(Change::Unchanged(what));
            continue;
        }
        let replacing = installed.as_ref().and_then(|i| Some((i["_seq_no"].as_u64()?, i["_primary_term"].as_u64()?)));
        if plan.write == Write::Yes {
            if let Err(e) = client.put_ism_policy(&policy.id, &policy.body, replacing).await {
                plan.changes.push(Change::Skipped(what, e.to_string()));
                continue;
            }
        }
        plan.changes.push(if installed.is_some() { Change::Updated(what) } else { Change::Created(what) });
        changed.push((policy.id, installed.is_some()));
    }
    if plan.write == Write::Yes && !changed.is_empty() {
        attach_to_existing(client, &changed, plan).await;
    }
}

/// Gives the backing indices of existing streams their template's new or changed policy:
/// `add` where an index has none, `change_policy` where it has the policy's earlier version.
async fn attach_to_existing(client: &Client, changed: &[(String, bool)], plan: &mut Plan) {
    let streams = match client.data_streams(DataStreams::EVERY_SIGNAL_TARGET).await {
        Ok(streams) => streams,
        Err(e) => {
            plan.changes.push(Change::Skipped("ISM policies of existing data streams".into(), e.to_string()));
            return;
        }
    };
    for stream in streams {
        let Some((id, was_installed)) = changed.iter().find(|(id, _)| *id == stream.template) else { continue };
        let indices = stream.indices.iter().map(|i| i.index_name.as_str()).collect::<Vec<_>>().join(",");
        if indices.is_empty() {
            continue;
        }
        let what = format!("ISM policy of data stream {}", stream.name);
        let mut reached = client.apply_ism_policy(&indices, id, false).await;
        if *was_installed {
            // Indices that had the earlier version move to this one.
            reached = match (reached, client.apply_ism_policy(&indices, id, true).await) {
                (Ok(added), Ok(changed)) => Ok(added + changed),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        match reached {
            Ok(0) => {}
            Ok(_) => plan.changes.push(Change::Updated(what)),
            Err(e) => plan.changes.push(Change::Skipped(what, e.to_string())),
        }
    }
}

/// Whether `e` says the server has no ISM API at all (rather than refusing this request).
fn no_ism(e: &Error) -> bool {
    matches!(e, Error::Status { body, .. } if body.contains("no handler found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Value {
        json!({"index_patterns": ["logs-heroku.router-*"], "priority": 205})
    }

    #[test]
    fn a_policy_rolls_over_and_deletes_after_the_retention_counted_from_the_rollover() {
        let p = Policy::of("logs-heroku-by-dataset-router", &template(), Some("30d".into()));
        assert_eq!(p.id, "logs-heroku-by-dataset-router");
        let states = &p.body["states"];
        assert_eq!(states[0]["actions"][0]["rollover"], json!({"min_size": "50gb", "min_index_age": "30d"}));
        assert_eq!(
            states[0]["transitions"],
            json!([{"state_name": "delete", "conditions": {"min_rollover_age": "30d"}}])
        );
        assert_eq!(states[1]["actions"], json!([{"delete": {}}]));
        assert_eq!(p.body["ism_template"], json!([{"index_patterns": ["logs-heroku.router-*"], "priority": 205}]));
    }

    #[test]
    fn without_retention_a_policy_only_rolls_over() {
        let p = Policy::of("logs-heroku-by-dataset", &template(), None);
        assert_eq!(p.body["states"].as_array().map(Vec::len), Some(1));
        assert_eq!(p.body["states"][0]["transitions"], json!([]));
    }

    #[test]
    fn the_description_tells_a_current_policy_from_a_changed_one() {
        let a = Policy::of("t", &template(), None);
        assert_eq!(a.hash(), Policy::of("t", &template(), None).hash());
        assert_ne!(a.hash(), Policy::of("t", &template(), Some("7d".into())).hash());
        assert!(a.hash().starts_with("drainpipe "), "{}", a.hash());
    }
}
