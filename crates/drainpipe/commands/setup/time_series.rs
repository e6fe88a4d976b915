//! Metrics as a time series data stream (TSDB, `index.mode: time_series`) where the server has
//! one: the shipped metrics template, turned into its time series form here, so that the plain
//! form (OpenSearch, older Elasticsearch, or a server that refuses this one) is the same file.
//!
//! A time series index knows a point by its dimensions and timestamp: it makes each document's
//! `_id` from them and takes no other (the bulk indexer learns that from its first refusal and
//! leaves drainpipe's id out). So the dimensions are everything that tells one series from
//! another: the metric's name and unit, every attribute and resource attribute, the scope, the
//! resource's `heroku.*` and `service.name`, labels, and `error.id` (which only a record drainpipe
//! could not read has, so that two such records are never taken for one point).

use serde_json::{json, Value};

/// Which fields route a point to a shard: fields every point has, or most do.
const ROUTING_PATH: [&str; 4] = ["event.dataset", "metric.name", "heroku.app", "heroku.dyno"];

/// Keyword fields of the plain template that are dimensions.
const DIMENSIONS: [&str; 12] = [
    "event.dataset",
    "service.name",
    "heroku.app",
    "heroku.app_id",
    "heroku.dyno",
    "heroku.process_type",
    "heroku.release.version",
    "scope.name",
    "scope.version",
    "unit",
    "metric.name",
    "error.id",
];

/// How far back a point's timestamp may be, on a server that bounds a time series data
/// stream's backing indices in time (Elasticsearch with its data-streams module: 2 hours by
/// default). A week, its maximum, so that points spooled through an outage are still taken.
/// Servers without the setting (the test distributions) take any timestamp; setup drops it there.
pub const LOOK_BACK: (&str, &str) = ("index.look_back_time", "7d");

/// The plain metrics `template` in its time series form.
pub fn of(plain: &Value) -> Value {
    let mut template = plain.clone();
    let settings = &mut template["template"]["settings"];
    settings["index.mode"] = "time_series".into();
    settings["index.routing_path"] = json!(ROUTING_PATH);
    // Not synthetic, a time series index's default: it would sort a histogram's bucket counts.
    settings["index.mapping.source.mode"] = "stored".into();
    settings[LOOK_BACK.0] = LOOK_BACK.1.into();
    let mappings = &mut template["template"]["mappings"];
    for path in DIMENSIONS {
        let mut at = &mut mappings["properties"];
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            at = if parts.peek().is_some() { &mut at[part]["properties"] } else { &mut at[part] };
        }
        at["time_series_dimension"] = true.into();
    }
    // Attributes as dimension objects of their own: each key one keyword field (a dotted key
    // stays one field, as passthrough has no subobjects), also found by its bare name.
    mappings["properties"]["attributes"] = passthrough(20);
    mappings["properties"]["resource"]["properties"]["attributes"] = passthrough(10);
    if let Some(dynamic) = mappings["dynamic_templates"].as_array_mut() {
        for path in ["attributes.*", "resource.attributes.*"] {
            let name = format!("{}_as_dimensions", path.trim_end_matches(".*").replace('.', "_"));
            dynamic.push(json!({name: {
                "path_match": path,
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": 1024, "time_series_dimension": true}
            }}));
        }
        for entry in dynamic.iter_mut() {
            if let Some(labels) = entry.get_mut("labels_as_keywords") {
                labels["mapping"]["time_series_dimension"] = true.into();
            }
        }
    }
    template
}

fn passthrough(priority: u32) -> Value {
    json!({"type": "passthrough", "dynamic": true, "priority": priority, "time_series_dimension": true})
}

/// Whether `template` is in its time series form.
pub fn is_time_series(template: &Value) -> bool {
    template["template"]["settings"]["index.mode"] == "time_series"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_series_form_marks_every_dimension_and_keeps_the_rest() {
        let plain = crate::commands::setup::signal_templates().remove(0).1;
        let tsdb = of(&plain);
        assert!(is_time_series(&tsdb) && !is_time_series(&plain));
        let properties = &tsdb["template"]["mappings"]["properties"];
        for path in DIMENSIONS {
            let field = path.split('.').enumerate().fold(properties.clone(), |at, (i, part)| {
                if i == 0 {
                    at[part].clone()
                } else {
                    at["properties"][part].clone()
                }
            });
            assert_eq!(field["type"], "keyword", "{path}");
            assert_eq!(field["time_series_dimension"], true, "{path}");
        }
        assert_eq!(properties["attributes"]["type"], "passthrough");
        assert_eq!(properties["resource"]["properties"]["attributes"]["type"], "passthrough");
        assert_eq!(
            properties["metric"]["properties"]["value"],
            plain["template"]["mappings"]["properties"]["metric"]["properties"]["value"]
        );
        // The plain form is what OpenSearch gets: no dimension anywhere.
        assert!(!plain.to_string().contains("time_series"));
    }
}
