//! Operators' rules (`[[rule]]` in the configuration file): read and checked for `serve` and
//! `check-config`, and `drainpipe rules test FILE < lines`, which shows what each line would
//! become through the same transform and rules `serve` applies.

use std::io::BufRead as _;
use std::path::Path;

use bytes::Bytes;
use drainpipe_delivery::{Chunker, DataStreams, Documents, LiveRules};
use drainpipe_ingest::{Frame, Protocol};
use drainpipe_rules::Rules;
use tokio::sync::mpsc;

use crate::commands::setup;
use crate::config::RulesTestArgs;

/// Whether a log document can have the field `path` (the logs template maps it).
pub fn known_field(path: &str) -> bool {
    setup::is_mapped(&setup::template()["template"]["mappings"], path)
}

/// What the configuration writes into a log document, not the line (docs/fields.md): the app's
/// name (from the drain URL or a drain token), the drain's token and frame id, labels.
const CONFIGURED: [&str; 4] = ["heroku.app", "service.name", "heroku.drain", "labels"];

/// The log fields whose string values are typed (dates, IP addresses), from the template.
fn typed_strings() -> Vec<String> {
    fn walk(node: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        let Some(properties) = node["properties"].as_object() else { return };
        for (key, field) in properties {
            let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if matches!(field["type"].as_str(), Some("ip" | "date" | "date_nanos")) {
                out.push(path.clone());
            }
            walk(field, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&setup::template()["template"]["mappings"], "", &mut out);
    out
}

/// The rules of the configuration file at `path` (none without one), or each problem as
/// `FILE:LINE: message`.
pub fn read(path: Option<&Path>) -> Result<Rules, Vec<String>> {
    let Some(path) = path else { return Ok(Rules::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let rules = Rules::parse(&text, &known_field).map_err(|errors| {
        errors.iter().map(|e| format!("{}:{}: {}", path.display(), e.line, e.message)).collect::<Vec<_>>()
    })?;
    Ok(rules.with_typed_strings(typed_strings()).with_configured_fields(CONFIGURED.map(String::from).to_vec()))
}

/// `drainpipe rules test FILE < lines`: each line of standard input (a syslog message, as
/// Logplex sends it) through the transform and the rules of FILE, as `serve` would; prints one
/// JSON line per input line: `{"stream": ..., "document": ...}`, or `{"dropped": true}` when a
/// rule dropped it or sampled it out.
pub async fn test(args: RulesTestArgs) -> anyhow::Result<()> {
    let rules = read(Some(&args.file)).map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))?;
    let streams = DataStreams::new(&args.namespace);
    let mut documents = Documents::new(streams, Default::default(), LiveRules::fixed(rules));
    let mut out = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let len = line.len();
        // One message: the whole line.
        #[allow(clippy::single_range_in_vec_init)]
        let mut frame = Frame::new(Protocol::Logplex, Bytes::from(line), vec![0..len]);
        frame.app.clone_from(&args.app);
        let (tx, mut rx) = mpsc::channel(4);
        let mut chunks = Chunker::new(tx, 1, 1 << 20);
        documents.transform_frame(&frame, &mut chunks, || {}).await.map_err(|_| anyhow::anyhow!("no chunk taken"))?;
        chunks.flush().await.map_err(|_| anyhow::anyhow!("no chunk taken"))?;
        drop(chunks);
        let mut printed = false;
        while let Some(chunk) = rx.recv().await {
            for i in 0..chunk.len() {
                let source = String::from_utf8_lossy(chunk.source(i));
                out.push_str(&format!("{{\"stream\":\"{}\",\"document\":{source}}}\n", chunk.index_of(i)));
                printed = true;
            }
        }
        if !printed {
            out.push_str("{\"dropped\":true}\n");
        }
    }
    crate::print_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/configuration.md's recipes and the load tool's typical rules are rules drainpipe takes.
    #[test]
    fn the_documented_recipes_and_the_benchmarks_rules_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let recipes = docs.split("Recipes:").nth(1).and_then(|r| r.split("```toml\n").nth(1)).unwrap();
        let recipes = recipes.split("```").next().unwrap();
        let rules = Rules::parse(recipes, &known_field).unwrap();
        assert_eq!(rules.rules().len(), 5);
        let typical = read(Some(&root.join("benches/load/rules-typical.toml"))).unwrap();
        assert_eq!(typical.rules().len(), 10);
        assert!(known_field("app.anything") && known_field("heroku.router.custom") && known_field("labels.team"));
        assert!(!known_field("url.pth") && !known_field("nonsense"));
        let mut typed = typed_strings();
        typed.sort();
        assert_eq!(typed, ["@timestamp", "event.ingested", "heroku.router.fwd", "source.ip"]);
    }
}
