//! The typed documents of docs/fields.md in the real Elasticsearch: the sample drain traffic lands
//! whole, typed fields answer typed queries, and app keys of any type never cost a document.

use serde_json::json;

use crate::support::*;

const TOKEN: &str = "d.7d1e2f3a-4b5c-4d6e-8f9a-0b1c2d3e4f5a";

async fn send(dp: &Drainpipe, frame_id: &str, lines: &[String]) {
    let headers = LogplexHeaders { frame_id: Some(frame_id), drain_token: Some(TOKEN), msg_count: lines.len() };
    let answer = post_frame(&dp.url("/logs?app=shop"), logplex_body(lines), &headers).await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn sample_traffic_is_indexed_whole_and_typed() {
    let dp = Drainpipe::start(&unique_namespace("fields"));
    let mut lines = Vec::new();
    for file in ["router.log", "app.log", "platform.log", "metrics.log"] {
        lines.extend(sample_lines(file));
    }
    send(&dp, "A0000000000000000000000000000001", &lines).await;
    let docs = wait_for_documents(&dp.es, &dp.data_stream, lines.len()).await;
    assert_eq!(docs.len(), lines.len(), "every sample line is one document");
    let failed: Vec<_> = docs.iter().filter(|d| d["_source"].get("tags").is_some()).collect();
    assert!(failed.is_empty(), "no sample line is a parse failure: {failed:?}");

    let count = |q| {
        let (es, ds) = (dp.es.clone(), dp.data_stream.clone());
        async move { search(&es, &ds, q).await.len() }
    };
    // Router: numbers are numbers, addresses are addresses.
    assert_eq!(count(json!({"range": {"http.response.status_code": {"gte": 500}}})).await, 2, "H12 and H10");
    assert_eq!(count(json!({"range": {"http.response.status_code": {"gte": 200, "lt": 300}}})).await, 2);
    assert_eq!(count(json!({"term": {"source.ip": "198.51.100.23"}})).await, 2);
    assert_eq!(count(json!({"term": {"source.ip": "2001:db8::7"}})).await, 1, "IPv6 client");
    assert_eq!(count(json!({"term": {"heroku.router.fwd": "10.10.1.4"}})).await, 1, "every fwd address");
    assert_eq!(count(json!({"term": {"source.ip": "198.51.100.0/24"}})).await, 2, "CIDR on an ip field");
    assert_eq!(count(json!({"range": {"event.duration": {"gte": 1_000_000_000u64}}})).await, 1, "the 30 s timeout");
    assert_eq!(count(json!({"range": {"heroku.router.service_ms": {"gt": 100}}})).await, 2);
    assert_eq!(count(json!({"term": {"error.code": "H12"}})).await, 1);
    assert_eq!(count(json!({"term": {"heroku.router.tls_version": "TLSv1.3"}})).await, 1, "future router keys");
    assert_eq!(count(json!({"term": {"url.path": "/api/orders"}})).await, 1);
    // Platform and logplex.
    assert_eq!(count(json!({"term": {"error.code": "R14"}})).await, 1);
    assert_eq!(count(json!({"term": {"process.exit_code": 137}})).await, 1);
    assert_eq!(count(json!({"term": {"heroku.state.to": "up"}})).await, 1);
    assert_eq!(count(json!({"range": {"heroku.logplex.dropped": {"gte": 7}}})).await, 1);
    assert_eq!(count(json!({"term": {"user.email": "ops@example.com"}})).await, 2);
    // Metrics: one unit per field (bytes, milliseconds), queryable as numbers.
    let mib = 1_048_576u64;
    let memory = json!({"range": {"heroku.metrics.memory_total": {"gt": 200 * mib, "lt": 220 * mib}}});
    assert_eq!(count(memory).await, 1, "210.00MB in bytes");
    assert_eq!(count(json!({"range": {"heroku.metrics.active_connections": {"gte": 400}}})).await, 1, "Redis");
    assert_eq!(count(json!({"range": {"heroku.metrics.index_cache_hit_rate": {"lt": 0.95}}})).await, 1, "Postgres");
    assert_eq!(count(json!({"term": {"heroku.addon": "postgresql-curved-12345"}})).await, 1);
    // App output.
    assert_eq!(count(json!({"term": {"app.user.plan": "pro"}})).await, 1, "JSON under app.*");
    assert_eq!(count(json!({"term": {"app.job": "SendReceipt"}})).await, 1, "logfmt under app.*");
    // One level vocabulary; the app's own word kept beside it.
    assert_eq!(count(json!({"term": {"app.level": "warn"}})).await, 1);
    assert_eq!(count(json!({"term": {"log.level": "warn"}})).await, 0, "normalised to warning");
    let app_warning =
        json!({"bool": {"filter": [{"term": {"log.level": "warning"}}, {"term": {"app.level": "warn"}}]}});
    assert_eq!(count(app_warning).await, 1);
    assert_eq!(
        count(json!({"bool": {"filter": [{"term": {"error.code": "R14"}}, {"term": {"log.level": "warning"}}]}})).await,
        1
    );
    assert_eq!(
        count(json!({"bool": {"filter": [{"term": {"error.code": "H12"}}, {"term": {"log.level": "error"}}]}})).await,
        1
    );
    // Elastic's conventions: a stream per dataset, the service, the event's kind and outcome.
    assert_eq!(
        count(json!({"term": {"data_stream.dataset": "heroku.router"}})).await,
        count(json!({"term": {"event.dataset": "heroku.router"}})).await
    );
    assert_eq!(
        count(json!({"term": {"service.name": "shop"}})).await,
        count(json!({"term": {"heroku.app": "shop"}})).await
    );
    assert_eq!(
        count(json!({"term": {"event.outcome": "failure"}})).await,
        count(json!({"range": {"http.response.status_code": {"gte": 400}}})).await
    );
    assert_eq!(count(json!({"match": {"message": "bestätigt"}})).await, 1, "Unicode text");
    // Datasets.
    for (dataset, n) in [
        ("heroku.router", 5),
        ("heroku.app", 6),
        ("heroku.platform", 7),
        ("heroku.logplex", 1),
        ("heroku.runtime_metrics", 2),
        ("heroku.postgres", 1),
        ("heroku.redis", 1),
    ] {
        assert_eq!(count(json!({"term": {"event.dataset": dataset}})).await, n, "{dataset}");
    }
}

#[tokio::test]
async fn app_keys_of_any_type_never_cost_a_document() {
    let dp = Drainpipe::start(&unique_namespace("appkeys"));
    let deep = format!(
        "{}1{}",
        r#"{"d":"#.repeat(drainpipe_transform::APP_MAX_DEPTH),
        "}".repeat(drainpipe_transform::APP_MAX_DEPTH)
    );
    let messages = [
        r#"{"id":5,"created_at":"2025-03-14T09:26:53Z","n":"12"}"#.to_owned(),
        r#"{"id":{"nested":true},"created_at":"not a date","n":12.5}"#.to_owned(),
        r#"{"id":"five","created_at":1741944413,"n":{"x":[1,"y",null]}}"#.to_owned(),
        deep,
        format!(r#"{{"long":"{}"}}"#, "z".repeat(drainpipe_transform::APP_MAX_VALUE_BYTES)),
    ];
    // One frame each, so the first one's types would be the ones a dynamic mapping locked in.
    for (i, m) in messages.iter().enumerate() {
        let line = format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - {m}\n");
        send(&dp, &format!("B000000000000000000000000000000{i}"), &[line]).await;
    }
    // Past what one term holds, the message stays plain text (and is stored all the same).
    let too_long = format!(r#"{{"long":"{}"}}"#, "z".repeat(40_000));
    let line = format!("<190>1 2025-03-14T09:26:59.000000+00:00 host app web.1 - {too_long}\n");
    send(&dp, "B0000000000000000000000000000009", &[line]).await;
    let docs = wait_for_documents(&dp.es, &dp.data_stream, messages.len() + 1).await;
    assert_eq!(docs.len(), messages.len() + 1);
    let (plain, docs): (Vec<_>, Vec<_>) = docs.iter().partition(|d| d["_source"]["message"] == too_long.as_str());
    assert_eq!(plain.len(), 1);
    assert!(plain[0]["_source"].get("app").is_none());
    for d in &docs {
        assert!(d["_source"].get("app").is_some(), "parsed as JSON: {}", d["_source"]["message"]);
    }
    let number = search(&dp.es, &dp.data_stream, json!({"term": {"app.id": "5"}})).await;
    let string = search(&dp.es, &dp.data_stream, json!({"term": {"app.id": "five"}})).await;
    let object = search(&dp.es, &dp.data_stream, json!({"term": {"app.id.nested": "true"}})).await;
    assert_eq!((number.len(), string.len(), object.len()), (1, 1, 1), "app.id as a number, a string and an object");
}
