//! `drainpipe deadletter list|replay` against the real Elasticsearch: a real mapping conflict
//! dead-letters documents (to the stream, or to the file when the stream refuses too), the
//! template is fixed, a replay stores them with their original ids, and a second does nothing.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// Runs `drainpipe deadletter …` against the test Elasticsearch and `namespace`.
fn deadletter(action: &str, namespace: &str, extra: &[&str]) -> Output {
    let es = elasticsearch_url();
    run_drainpipe(&[&["deadletter", action, "--elasticsearch-url", &es, "--namespace", namespace], extra].concat())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A template above drainpipe's for `stream` alone, mapping `message` as a number: the real
/// Elasticsearch refuses every document (a real mapping conflict).
async fn break_mapping(es: &str, stream: &str) -> String {
    let name = format!("conflict-{stream}");
    put_template(es, &name, stream, "long").await;
    name
}

/// The template of [`break_mapping`] corrected (OpenSearch will not delete a template a data
/// stream uses): `message` is text again.
async fn fix_mapping(es: &str, template: &str) {
    put_template(es, template, template.trim_start_matches("conflict-"), "text").await;
}

async fn put_template(es: &str, name: &str, stream: &str, message_type: &str) {
    let template = json!({
        "index_patterns": [stream],
        "data_stream": {},
        "priority": 500,
        "template": {"mappings": {"properties": {"@timestamp": {"type": "date_nanos"}, "message": {"type": message_type}}}}
    });
    let put = reqwest::Client::new().put(format!("{es}/_index_template/{name}")).json(&template).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
}

fn app_lines(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - {tag} {i}\n")).collect()
}

/// The stored documents' `_id` → message.
async fn stored(es: &str, index: &str, expected: usize) -> Vec<(String, String)> {
    let docs = wait_for_documents(es, index, expected).await;
    let mut found: Vec<(String, String)> = docs
        .iter()
        .map(|d| (d["_id"].as_str().unwrap().to_owned(), d["_source"]["message"].as_str().unwrap().to_owned()))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_fixed_mapping_and_a_replay_store_the_dead_letters_once() {
    let ns = unique_namespace("replaydl");
    let es = elasticsearch_url();
    let app_stream = format!("logs-heroku.app-{ns}");
    let dead_stream = format!("logs-heroku.deadletter-{ns}");
    let conflict = break_mapping(&es, &app_stream).await;
    let dp = Drainpipe::start(&ns);
    let lines = app_lines("refused", 3);
    let headers = LogplexHeaders { frame_id: Some("REPLAYDL1"), drain_token: Some("d.dl"), msg_count: 3 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    wait_for_documents(&es, &dead_stream, 3).await;
    // The dead-letter stream rolls over, and two more letters go to its new write index: list
    // and replay read both backing indices, and the replay removes letters from each.
    let client = reqwest::Client::new();
    assert!(client.post(format!("{es}/{dead_stream}/_rollover")).send().await.unwrap().status().is_success());
    let late = LogplexHeaders { frame_id: Some("REPLAYDL3"), drain_token: Some("d.dl"), msg_count: 2 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&app_lines("late", 2)), &late).await.status(), 200);
    let letters = wait_for_documents(&es, &dead_stream, 5).await;
    let backing: Value =
        client.get(format!("{es}/{dead_stream}/_settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(backing.as_object().map(serde_json::Map::len), Some(2), "two backing indices: {backing}");
    let mut meant: Vec<String> =
        letters.iter().map(|l| l["_source"]["deadletter"]["id"].as_str().unwrap().to_owned()).collect();
    meant.sort();

    let list = deadletter("list", &ns, &[]);
    assert!(list.status.success());
    let text = stdout(&list);
    assert!(text.contains(&format!("       5  stream  {app_stream}  ")), "one group of five:\n{text}");
    assert!(text.contains("failed to parse field [message] of type [long]"), "{text}");
    assert!(text.contains("5 dead letter(s) in 1 group(s)"), "{text}");
    assert!(stdout(&deadletter("list", &ns, &["--reason", "no such reason"])).starts_with("0 dead letter(s)"));
    assert!(stdout(&deadletter("list", &ns, &["--reason", "MESSAGE"])).contains("5 dead letter(s)"), "any case");
    assert!(stdout(&deadletter("list", &ns, &["--since", "2999-01-01T00:00:00Z"])).starts_with("0 dead letter(s)"));
    let json_list = stdout(&deadletter("list", &ns, &["--json", "--since", "1h"]));
    let group: Value = serde_json::from_str(json_list.trim()).unwrap();
    assert_eq!((group["count"].as_u64(), group["where"].as_str()), (Some(5), Some("stream")), "{group}");

    // Before the cause is fixed, a replay changes nothing and says so.
    let refused = deadletter("replay", &ns, &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(stdout(&refused).contains("0 stored, 0 already there, 5 refused again"), "{}", stdout(&refused));
    assert_eq!(wait_for_count(&es, &dead_stream, 5, Duration::from_secs(5)).await, 5, "the dead letters stay");

    // The mapping is fixed and the stream rolled over; Logplex then sends the frame's first
    // line again (same frame id, same position: same id), and it is stored.
    fix_mapping(&es, &conflict).await;
    assert!(client.post(format!("{es}/{app_stream}/_rollover")).send().await.unwrap().status().is_success());
    let retry = LogplexHeaders { msg_count: 1, ..headers };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines[..1]), &retry).await.status(), 200);
    assert_eq!(stored(&es, &app_stream, 1).await.len(), 1);
    // The replay's own rollover makes a new write index, where `create` alone would store that
    // line a second time: it must be found already there.
    let replayed = deadletter("replay", &ns, &["--rollover"]);
    assert!(replayed.status.success(), "{}{}", stdout(&replayed), String::from_utf8_lossy(&replayed.stderr));
    assert!(
        stdout(&replayed).contains("replayed 5 dead letter(s): 4 stored, 1 already there"),
        "{}",
        stdout(&replayed)
    );
    let found = stored(&es, &app_stream, 5).await;
    assert_eq!(found.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), meant, "their original ids");
    let mut messages: Vec<String> = found.into_iter().map(|(_, m)| m).collect();
    messages.sort();
    assert_eq!(messages, ["late 0", "late 1", "refused 0", "refused 1", "refused 2"]);
    assert_eq!(wait_for_count(&es, &dead_stream, 0, Duration::from_secs(5)).await, 0, "the stored ones are removed");

    // Nothing is left to do.
    let again = deadletter("replay", &ns, &["--rollover"]);
    assert!(again.status.success());
    assert!(stdout(&again).starts_with("replayed 0 dead letter(s)"), "{}", stdout(&again));
    assert_eq!(wait_for_count(&es, &dp.data_stream, 5, Duration::from_secs(5)).await, 5, "each line stored once");
}

#[tokio::test]
async fn dead_letters_in_the_file_are_replayed_and_leave_the_file() {
    let ns = unique_namespace("replayfile");
    let es = elasticsearch_url();
    let app_stream = format!("logs-heroku.app-{ns}");
    // The dead-letter stream refuses too, so the letters go to the spool folder's file.
    let conflicts =
        [break_mapping(&es, &app_stream).await, break_mapping(&es, &format!("logs-heroku.deadletter-{ns}")).await];
    let spool = std::env::temp_dir().join(format!("drainpipe-spool-{ns}"));
    let spool_arg = spool.to_str().unwrap().to_owned();
    let dp = Drainpipe::start_with(&ns, &["--spool-dir", &spool_arg]);
    let lines = app_lines("filed", 2);
    let headers = LogplexHeaders { frame_id: Some("REPLAYDL2"), drain_token: Some("d.dl"), msg_count: 2 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    let file = spool.join("dead-letters.ndjson");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&file).map_or(0, |t| t.lines().count()) < 2 {
        assert!(std::time::Instant::now() < deadline, "no dead letters in {}", file.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = deadletter("list", &ns, &["--spool-dir", &spool_arg]);
    let list = stdout(&listed);
    assert!(
        list.contains(&format!("       2  file    {app_stream}  ")),
        "{list}{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // What a replay does not take is put back.
    let none = deadletter("replay", &ns, &["--spool-dir", &spool_arg, "--reason", "no such reason"]);
    assert!(stdout(&none).starts_with("replayed 0 dead letter(s)"), "{}", stdout(&none));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2, "both letters are back in the file");
    for leftover in ["dead-letters.ndjson.replaying", "dead-letters.ndjson.staying"] {
        assert!(!spool.join(leftover).exists(), "{leftover}");
    }

    for c in &conflicts {
        fix_mapping(&es, c).await;
    }
    let replayed = deadletter("replay", &ns, &["--rollover", "--spool-dir", &spool_arg]);
    assert!(replayed.status.success(), "{}{}", stdout(&replayed), String::from_utf8_lossy(&replayed.stderr));
    assert!(stdout(&replayed).contains("replayed 2 dead letter(s): 2 stored"), "{}", stdout(&replayed));
    assert_eq!(stored(&es, &app_stream, 2).await.len(), 2);
    let left = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(left.is_empty(), "the file keeps nothing stored: {left}");
    assert!(!spool.join("dead-letters.ndjson.replaying").exists());
    let again = stdout(&deadletter("replay", &ns, &["--spool-dir", &spool_arg]));
    assert!(again.starts_with("replayed 0 dead letter(s)"), "{again}");
    drop(dp);
    let _ = std::fs::remove_dir_all(spool);
}
