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

use super::{replace_type, signal_templates, Change, STAND_INS};

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

/// What to PUT after the server refused `template`, the time series form of `name`, with
/// `body`: the same without the look-back setting when that is all the server lacks (no
/// data-streams module, so no time window either), else the plain form; said in `changes`.
pub fn after_refusal(name: &str, mut template: Value, body: &str, changes: &mut Vec<Change>) -> Value {
    if body.contains(&format!("unknown setting [{}]", LOOK_BACK.0)) {
        changes.push(Change::Skipped(
            format!("{} of {name}", LOOK_BACK.0),
            "the server does not bound time series indices in time (no data-streams module): points of any time are taken"
                .into(),
        ));
        if let Some(settings) = template["template"]["settings"].as_object_mut() {
            settings.remove(LOOK_BACK.0);
        }
        return template;
    }
    changes.push(Change::Skipped(
        format!("time series (TSDB) for {name}"),
        format!("the server refused it ({}); a plain data stream", first_reason(body)),
    ));
    let mut plain = signal_templates().into_iter().find(|(n, _)| *n == name).map_or(Value::Null, |(_, t)| t);
    // What the refused form had learned the server lacks, the plain one gets too.
    for (missing, stand_in) in STAND_INS {
        if !template.to_string().contains(&format!("\"{missing}\"")) {
            replace_type(&mut plain, missing, stand_in);
        }
    }
    // Installed under the hash of the form wanted, with its lifecycle.
    plain["_meta"] = template["_meta"].take();
    if let Some(lifecycle) = template["template"].get_mut("lifecycle") {
        plain["template"]["lifecycle"] = lifecycle.take();
    }
    plain
}

/// The innermost reason of an Elasticsearch error answer, or the answer itself.
fn first_reason(body: &str) -> String {
    let Ok(mut error) = serde_json::from_str::<Value>(body).map(|v| v["error"].clone()) else {
        return body.to_owned();
    };
    while error["caused_by"].is_object() {
        error = error["caused_by"].clone();
    }
    error["reason"].as_str().map_or_else(|| body.to_owned(), str::to_owned)
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
        let plain = signal_templates().remove(0).1;
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

    #[test]
    fn a_refusal_drops_the_look_back_alone_where_that_is_all_or_else_the_time_series_form() {
        let plain = signal_templates().remove(0).1;
        let mut changes = Vec::new();
        // As the Elasticsearch 9.5 test distribution (no data-streams module) answers.
        let no_window = r#"{"error":{"type":"invalid_index_template_exception","reason":"index_template [metrics-heroku.otel] invalid, cause [Validation Failed: 1: unknown setting [index.look_back_time] please check that any required plugins are installed, or check the breaking changes documentation for removed settings;]"},"status":400}"#;
        let next = after_refusal("metrics-heroku.otel", of(&plain), no_window, &mut changes);
        assert!(is_time_series(&next));
        assert!(next["template"]["settings"].get(LOOK_BACK.0).is_none());
        let mut wanted = of(&plain);
        wanted["_meta"]["drainpipe_template_hash"] = "h".into();
        wanted["template"]["lifecycle"] = json!({"enabled": true});
        let other = r#"{"error":{"type":"illegal_argument_exception","reason":"composable template is invalid","caused_by":{"type":"mapper_parsing_exception","reason":"No handler for type [passthrough] declared on field [attributes]"}},"status":400}"#;
        let next = after_refusal("metrics-heroku.otel", wanted, other, &mut changes);
        assert!(!is_time_series(&next));
        assert_eq!(
            (&next["_meta"]["drainpipe_template_hash"], &next["template"]["lifecycle"]["enabled"]),
            (&json!("h"), &json!(true))
        );
        assert_eq!(next["template"]["mappings"]["properties"]["attributes"]["type"], "flattened");
        let said: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert!(said[1].contains("No handler for type [passthrough]"), "{said:?}");
    }
}
