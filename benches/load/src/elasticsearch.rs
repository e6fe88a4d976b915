//! The real Elasticsearch side: counting what is searchable, and the direct-bulk comparison
//! (the documents drainpipe wrote, loaded straight into Elasticsearch without it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;

/// Documents searchable now in every stream of `namespace`.
pub async fn count(client: &reqwest::Client, url: &str, namespace: &str) -> anyhow::Result<u64> {
    let answer = client.get(format!("{url}/logs-heroku.*-{namespace}/_count")).send().await?;
    let status = answer.status();
    let v: serde_json::Value = answer.json().await?;
    match v["count"].as_u64() {
        Some(n) => Ok(n),
        None => bail!("_count answered {status}: {v}"),
    }
}

pub async fn refresh(client: &reqwest::Client, url: &str, namespace: &str) -> anyhow::Result<()> {
    client.post(format!("{url}/logs-heroku.*-{namespace}/_refresh")).send().await?.error_for_status()?;
    Ok(())
}

/// Documents drainpipe's indexer has had acknowledged by Elasticsearch (stored, already
/// stored, or dead-lettered), from its `/metrics`.
pub async fn acknowledged(client: &reqwest::Client, drainpipe: &str) -> anyhow::Result<u64> {
    let text = client.get(format!("{drainpipe}/metrics")).send().await?.text().await?;
    Ok(crate::measure::sample_sum(&text, "drainpipe_bulk_documents_total") as u64)
}

/// Polls drainpipe's acknowledged count every `every` until it reaches `expected` (known once
/// sending is over) or nothing changed for `idle`; returns (time, count) at every poll.
pub async fn watch_acknowledged(
    client: &reqwest::Client,
    drainpipe: &str,
    expected: impl Fn() -> Option<u64>,
    every: Duration,
    idle: Duration,
) -> anyhow::Result<Vec<(Instant, u64)>> {
    let mut progress: Vec<(Instant, u64)> = Vec::new();
    let mut changed = Instant::now();
    loop {
        let n = acknowledged(client, drainpipe).await?;
        let now = Instant::now();
        if progress.last().is_none_or(|p| p.1 != n) {
            changed = now;
        }
        progress.push((now, n));
        if expected().is_some_and(|e| n >= e) || now - changed > idle {
            return Ok(progress);
        }
        tokio::time::sleep(every).await;
    }
}

/// Bulk items (action and source line pairs) from captured `_bulk` bodies, re-addressed from
/// namespace `from` to `to`, packed into bodies of at most `max_bytes`.
pub fn rebodies(captured: &[u8], from: &str, to: &str, max_bytes: usize) -> Vec<Bytes> {
    let (from_index, to_index) = (format!("-{from}\""), format!("-{to}\""));
    let (from_ns, to_ns) = (format!("\"namespace\":\"{from}\""), format!("\"namespace\":\"{to}\""));
    let mut bodies = Vec::new();
    let mut body = Vec::with_capacity(max_bytes);
    let mut lines = captured.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    while let (Some(action), Some(source)) = (lines.next(), lines.next()) {
        if body.len() + action.len() + source.len() + 2 > max_bytes && !body.is_empty() {
            bodies.push(Bytes::from(std::mem::replace(&mut body, Vec::with_capacity(max_bytes))));
        }
        body.extend_from_slice(&replace_once(action, from_index.as_bytes(), to_index.as_bytes()));
        body.push(b'\n');
        body.extend_from_slice(&replace_once(source, from_ns.as_bytes(), to_ns.as_bytes()));
        body.push(b'\n');
    }
    if !body.is_empty() {
        bodies.push(Bytes::from(body));
    }
    bodies
}

fn replace_once(line: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match crate::traffic::find(line, from) {
        Some(p) => [&line[..p], to, &line[p + from.len()..]].concat(),
        None => line.to_vec(),
    }
}

/// What the direct load took.
#[derive(Debug)]
pub struct Direct {
    pub documents: u64,
    pub elapsed: Duration,
    /// Items Elasticsearch did not answer 201.
    pub refused: u64,
}

/// Sends `bodies` to `_bulk`, `concurrency` at a time, then refreshes and counts: the time is
/// until everything is searchable.
pub async fn direct_bulk(
    client: &reqwest::Client,
    url: &str,
    namespace: &str,
    bodies: Vec<Bytes>,
    concurrency: usize,
) -> anyhow::Result<Direct> {
    let queue = Arc::new(Mutex::new(VecDeque::from(bodies)));
    let refused = Arc::new(Mutex::new(0u64));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, queue, refused, url) = (client.clone(), queue.clone(), refused.clone(), url.to_owned());
        tasks.spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else { return Ok(()) };
                let answer = client
                    .post(format!("{url}/_bulk?filter_path=errors,items.*.status"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await?
                    .error_for_status()?;
                let v: serde_json::Value = answer.json().await?;
                if v["errors"] == true {
                    let bad = v["items"].as_array().map_or(0, |items| {
                        items.iter().filter(|i| i["create"]["status"].as_u64() != Some(201)).count()
                    });
                    *refused.lock().unwrap_or_else(|e| e.into_inner()) += bad as u64;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        let sent: anyhow::Result<()> = done.context("bulk task")?;
        sent?;
    }
    refresh(client, url, namespace).await?;
    let elapsed = started.elapsed();
    let documents = count(client, url, namespace).await?;
    let refused = *refused.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Direct { documents, elapsed, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_items_move_to_another_namespace_in_bodies_of_bounded_size() {
        let item = "{\"create\":{\"_index\":\"logs-heroku.router-cap\",\"_id\":\"x\"}}\n\
                    {\"data_stream\":{\"namespace\":\"cap\"},\"message\":\"-cap\\\"\"}\n";
        let captured = item.repeat(10);
        let bodies = rebodies(captured.as_bytes(), "cap", "direct1", item.len() * 4 + 40);
        assert_eq!(bodies.iter().map(|b| b.split(|&c| c == b'\n').count() - 1).collect::<Vec<_>>(), [8, 8, 4]);
        let text = std::str::from_utf8(&bodies[0]).unwrap();
        assert!(
            text.starts_with(
                "{\"create\":{\"_index\":\"logs-heroku.router-direct1\",\"_id\":\"x\"}}\n\
             {\"data_stream\":{\"namespace\":\"direct1\"},\"message\":\"-cap\\\"\"}\n"
            ),
            "{text}"
        );
    }
}
