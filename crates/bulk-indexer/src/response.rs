//! Reading a `_bulk` answer item by item. A 200 answer can hold any mix of successes, 409s,
//! 429s and rejections; each item is classified on its own.

use serde::Deserialize;

/// Asks Elasticsearch to leave out everything but what classification needs.
pub(crate) const FILTER_PATH: &str = "errors,items.*.status,items.*.error.type,items.*.error.reason";

/// The error type of a refusal by a cluster or index block.
pub(crate) const BLOCK: &str = "cluster_block_exception";

/// Whether an error answer (or the part of it kept) is a cluster or index block's: the
/// cluster's state, not drainpipe's credentials or the documents.
pub(crate) fn is_block(answer: &[u8]) -> bool {
    answer.windows(BLOCK.len()).any(|w| w == BLOCK.as_bytes())
}

/// What happened to one item of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored now.
    Created,
    /// A document with this id already exists: stored earlier (a retried frame). Done.
    Duplicate,
    /// Elasticsearch could not take it now (429, 5xx): send it again later, alone.
    Retry { status: u16 },
    /// A cluster or index block refused it (`cluster_block_exception`: a write block,
    /// read-only-allow-delete at the disk's flood stage, a read-only cluster). The cluster's
    /// state, not the document: it is taken once the block is lifted.
    Blocked { status: u16, reason: String },
    /// Refused only for its `_id`: its index is a time series (TSDB) one, which makes each
    /// document's id from its dimensions and timestamp and takes no other. Sent again without
    /// `_id`, it is taken, and a retried copy is still found (409) by the id the index makes.
    IdRefused,
    /// Elasticsearch will never take it (mapping conflict, parse error): dead-letter it.
    Rejected { status: u16, kind: String, reason: String },
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<Item>,
}

/// Each item is `{"<action>": {...}}`; only `create` is sent, but any action reads the same.
#[derive(Deserialize)]
enum Item {
    #[serde(rename = "create")]
    Create(ItemResult),
    #[serde(rename = "index")]
    Index(ItemResult),
    #[serde(rename = "update")]
    Update(ItemResult),
    #[serde(rename = "delete")]
    Delete(ItemResult),
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

/// An answer read only as far as "did anything fail, and how many items": when nothing
/// failed (the usual case), the items are counted, not built.
#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: ItemCount,
}

#[derive(Default)]
struct ItemCount(usize);

impl<'de> Deserialize<'de> for ItemCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ItemCount, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = ItemCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ItemCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ItemCount(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

/// Classifies every item of a bulk answer body, in request order.
pub fn classify(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, crate::Error> {
    let summary: Summary = serde_json::from_slice(body)?;
    if summary.items.0 != sent {
        return Err(crate::Error::ItemCount { sent, got: summary.items.0 });
    }
    if !summary.errors {
        return Ok(vec![ItemOutcome::Created; sent]);
    }
    let response: BulkResponse = serde_json::from_slice(body)?;
    Ok(response.items.into_iter().map(outcome).collect())
}

fn outcome(item: Item) -> ItemOutcome {
    let (Item::Create(r) | Item::Index(r) | Item::Update(r) | Item::Delete(r)) = item;
    if let Some(e) = r.error.as_ref().filter(|e| e.kind == BLOCK) {
        return ItemOutcome::Blocked { status: r.status, reason: e.reason.clone().unwrap_or_default() };
    }
    match r.status {
        200..=299 => ItemOutcome::Created,
        409 => ItemOutcome::Duplicate,
        429 | 500..=599 => ItemOutcome::Retry { status: r.status },
        status => {
            let (kind, reason) = r.error.map(|e| (e.kind, e.reason.unwrap_or_default())).unwrap_or_default();
            if status == 400 && is_time_series_id_refusal(&reason) {
                return ItemOutcome::IdRefused;
            }
            ItemOutcome::Rejected { status, kind, reason }
        }
    }
}

/// Whether a refusal is a time series index's of a document's `_id`, as Elasticsearch 8 and 9
/// word it: `_id must be unset or set to [..] but was [..] because [<index>] is in time_series mode`.
fn is_time_series_id_refusal(reason: &str) -> bool {
    reason.contains("_id must be unset") && reason.ends_with("is in time_series mode")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_created() {
        let body = br#"{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        assert_eq!(classify(body, 2).unwrap(), vec![ItemOutcome::Created, ItemOutcome::Created]);
    }

    #[test]
    fn mixed_answer_inside_a_200() {
        // Shaped like a real Elasticsearch 9 answer, filtered by FILTER_PATH.
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[x]: version conflict, document already exists (current version [1])"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
            {"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"[1:20] failed to parse field [app.id] of type [long]"}}},
            {"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
        ]}"#;
        let got = classify(body, 5).unwrap();
        assert_eq!(got[0], ItemOutcome::Created);
        assert_eq!(got[1], ItemOutcome::Duplicate);
        assert_eq!(got[2], ItemOutcome::Retry { status: 429 });
        assert_eq!(
            got[3],
            ItemOutcome::Rejected {
                status: 400,
                kind: "document_parsing_exception".into(),
                reason: "[1:20] failed to parse field [app.id] of type [long]".into()
            }
        );
        assert_eq!(got[4], ItemOutcome::Retry { status: 503 });
    }

    #[test]
    fn a_block_is_the_clusters_state_not_the_documents_fault() {
        // As Elasticsearch 9 answers under `index.blocks.write` and at the disk's flood stage.
        let body = br#"{"errors":true,"items":[
            {"create":{"status":403,"error":{"type":"cluster_block_exception","reason":"index [.ds-logs-heroku.app-x-2025.03.14-000001] blocked by: [FORBIDDEN/8/index write (api)];"}}},
            {"create":{"status":429,"error":{"type":"cluster_block_exception","reason":"index [i] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}},
            {"create":{"status":403,"error":{"type":"security_exception","reason":"action [indices:data/write/bulk[s]] is unauthorized"}}}
        ]}"#;
        let got = classify(body, 3).unwrap();
        assert!(matches!(&got[0], ItemOutcome::Blocked { status: 403, reason } if reason.contains("index write")));
        assert!(matches!(&got[1], ItemOutcome::Blocked { status: 429, .. }));
        assert!(matches!(&got[2], ItemOutcome::Rejected { status: 403, .. }));
    }

    #[test]
    fn a_time_series_index_refusing_the_id_is_told_apart() {
        // As Elasticsearch 9.5 answers a `create` with an `_id` into a `time_series` data stream.
        let body = br#"{"errors":true,"items":[
            {"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"[1:102] failed to parse: _id must be unset or set to [KFB7TnB4NUZ6frF88RM4R0MLh4TAUBJVIb7Y7BL7BHDyLVuCALozR89nEXamXDa8ub6f7vo] but was [abc] because [.ds-metrics-tsdbtest-a-2026.12.06-000001] is in time_series mode"}}},
            {"create":{"status":400,"error":{"type":"illegal_argument_exception","reason":"Error extracting routing: source didn't contain any routing fields"}}}
        ]}"#;
        let got = classify(body, 2).unwrap();
        assert_eq!(got[0], ItemOutcome::IdRefused);
        assert!(matches!(&got[1], ItemOutcome::Rejected { status: 400, .. }));
    }

    #[test]
    fn item_count_must_match() {
        let body = br#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert!(matches!(classify(body, 2), Err(crate::Error::ItemCount { sent: 2, got: 1 })));
        assert!(matches!(classify(b"not json", 1), Err(crate::Error::Response(_))));
    }
}
