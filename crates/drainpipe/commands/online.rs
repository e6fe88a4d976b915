//! `check-config --online`: asks each Elasticsearch node what `serve` would meet there (it
//! answers, takes the credentials, grants the privileges drainpipe needs, and whether the
//! index templates are installed and current), changing nothing.

use drainpipe_bulk_indexer::{Client, Error};
use drainpipe_delivery::DataStreams;

use crate::commands::setup::{self, Change};
use crate::config::ServeOptions;

/// What drainpipe needs: index templates (unless they are managed elsewhere), the cluster's
/// health for readiness, and to create documents in its data streams (`auto_configure` lets a
/// first document create its stream from the template).
const CLUSTER_PRIVILEGES: [&str; 2] = ["monitor", "manage_index_templates"];
const INDEX_PRIVILEGES: [&str; 2] = ["create_doc", "auto_configure"];

/// Problems found (each makes check-config fail), and notes on what was found.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub async fn check(options: &ServeOptions) -> Findings {
    let mut found = Findings::default();
    for client in options.elasticsearch.node_clients() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                found.problems.push(format!("{e:#}"));
                continue;
            }
        };
        let shown = client.url().to_owned();
        match client.server().await {
            Ok(server) => {
                let kind = if server.opensearch { "OpenSearch" } else { "Elasticsearch" };
                found.notes.push(format!("{shown}: {kind} answers"));
            }
            Err(e) => {
                found.problems.push(format!("{shown}: {e}"));
                continue;
            }
        }
        privileges(&client, &shown, &mut found).await;
    }
    if found.problems.is_empty() {
        if let Ok(client) = options.elasticsearch.client() {
            templates(&client, options, &mut found).await;
        }
    }
    found
}

/// The user's privileges, where the server has a security API that is on.
async fn privileges(client: &Client, shown: &str, found: &mut Findings) {
    let streams = DataStreams::EVERY_SIGNAL;
    let answer = match client.has_privileges(&CLUSTER_PRIVILEGES, &streams, &INDEX_PRIVILEGES).await {
        Ok(answer) => answer,
        Err(Error::Status { status, .. }) if status.as_u16() == 401 => {
            return found.problems.push(format!("{shown}: the credentials are refused (401)"))
        }
        Err(Error::Status { status, .. }) => {
            return found.notes.push(format!(
                "{shown}: no security API answered ({status}): privileges not checked (security off, or OpenSearch)"
            ))
        }
        Err(e) => return found.problems.push(format!("{shown}: {e}")),
    };
    if answer.has_all_requested {
        return found.notes.push(format!("{shown}: the user has every privilege drainpipe needs"));
    }
    let mut missing: Vec<String> =
        CLUSTER_PRIVILEGES.iter().filter(|p| !answer.holds_cluster(p)).map(|p| format!("cluster {p}")).collect();
    for pattern in streams {
        let lacking = INDEX_PRIVILEGES.iter().filter(|p| !answer.holds_index(pattern, p));
        missing.extend(lacking.map(|p| format!("{p} on {pattern}")));
    }
    found
        .problems
        .push(format!("{shown}: the user lacks {} (docs/operations.md#the-elasticsearch-role)", missing.join(", ")));
}

/// Whether the index templates are there and current, as `setup` would find them.
async fn templates(client: &Client, options: &ServeOptions, found: &mut Findings) {
    match setup::plan(client, &options.elasticsearch.retention).await {
        Ok(changes) => {
            for change in changes {
                found.notes.push(match change {
                    Change::Unchanged(what) => format!("{what}: installed and current"),
                    // Nobody else will install it: documents would land in streams with
                    // guessed mappings.
                    Change::Created(what) if !options.delivery.manage_templates => {
                        found.problems.push(format!(
                            "{what}: missing; with --manage-templates false, run drainpipe setup where it may"
                        ));
                        continue;
                    }
                    Change::Created(what) => format!("{what}: missing; serve or setup installs it"),
                    Change::Updated(what) => format!("{what}: out of date; serve or setup updates it"),
                    Change::Deleted(what) => format!("{what}: no longer wanted; setup removes it"),
                    Change::Skipped(what, why) => format!("{what}: {why}"),
                });
            }
        }
        Err(e) => found.problems.push(format!("index templates: {e}")),
    }
}
