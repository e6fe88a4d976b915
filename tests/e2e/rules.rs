//! Operators' rules from the configuration file, through a real drainpipe into the real
//! Elasticsearch: each action, the documents they leave, and the metric per rule.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "d.7d1c5a4e-3b2f-4c6d-8e9f-0a1b2c3d4e5f";

/// A router line (`status`, `path`) and an app line (`text`), as Logplex sends them.
fn router(path: &str, status: u16) -> String {
    format!(
        "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - at=info method=GET path=\"{path}\" host=shop.example.com fwd=\"198.51.100.23\" dyno=web.1 connect=1ms service=18ms status={status} bytes=975 protocol=https\n"
    )
}

fn app_line(text: &str) -> String {
    format!("<190>1 2025-03-14T09:26:54.000042+00:00 host app web.1 - {text}\n")
}

fn rules_file(dir: &std::path::Path, staging: &str) -> std::path::PathBuf {
    let path = dir.join("drainpipe.toml");
    let text = format!(
        r#"
[[rule]]
name = "health-checks"
dataset = "router"
field = "url.path"
equals = "/health"
action = "drop"

[[rule]]
name = "ok-sample"
dataset = "router"
status = "2xx"
action = "sample"
rate = 1000000

[[rule]]
name = "secrets"
action = "redact"
patterns = ["password-kv", "bearer-token", "credit-card", "email"]

[[rule]]
name = "staging"
app = "shop-staging"
action = "namespace"
namespace = "{staging}"

[[rule]]
name = "team"
dataset = "app"
action = "label"
labels = {{ team = "checkout" }}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn each_rule_action_shapes_what_is_stored_and_is_counted() {
    let ns = unique_namespace("rules");
    let staging = format!("{ns}_staging");
    let dir = std::env::temp_dir().join(format!("drainpipe-rules-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = rules_file(&dir, &staging);
    let dp = Drainpipe::start_with(&ns, &["--config", config.to_str().unwrap()]);
    let lines = [
        router("/health", 200),
        router("/cart", 200),
        router("/cart", 503),
        app_line("login user=ann@example.com password=hunter2 card=4111111111111111 ok"),
    ];
    let response = post_frame(
        &dp.url("/logs?app=shop"),
        logplex_body(&lines),
        &LogplexHeaders { frame_id: Some("0A1B2C3D4E5F60718293A4B5C6D7E8F9"), drain_token: Some(TOKEN), msg_count: 4 },
    )
    .await;
    assert_eq!(response.status(), 200);
    let staged = [app_line("deploying v42 to staging")];
    let response = post_frame(
        &dp.url("/logs?app=shop-staging&env=stage"),
        logplex_body(&staged),
        &LogplexHeaders { frame_id: Some("1A1B2C3D4E5F60718293A4B5C6D7E8F9"), drain_token: Some(TOKEN), msg_count: 1 },
    )
    .await;
    assert_eq!(response.status(), 200);

    // Of four lines: the health check dropped, the 200 sampled out (1 in a million), the 503
    // and the app line stored.
    let docs = wait_for_documents(&dp.es, &dp.data_stream, 2).await;
    let sources: Vec<&Value> = docs.iter().map(|d| &d["_source"]).collect();
    assert_eq!(sources.len(), 2, "{sources:#?}");
    let failed = sources.iter().find(|d| d["event"]["dataset"] == "heroku.router").expect("the 503");
    assert_eq!(failed["http"]["response"]["status_code"], 503);
    assert!(failed.get("drainpipe").is_none(), "no rule changed it: {failed}");
    let app = sources.iter().find(|d| d["event"]["dataset"] == "heroku.app").expect("the app line");
    assert_eq!(app["message"], "login user=[REDACTED] password=[REDACTED] card=[REDACTED] ok");
    assert_eq!(app["app"]["password"], "[REDACTED]");
    assert_eq!(app["labels"]["team"], "checkout");
    assert_eq!(app["drainpipe"]["rules"], json!(["secrets", "team"]));

    // The staging app's line went to its own namespace's stream, its document saying so.
    let elsewhere = wait_for_documents(&dp.es, &format!("logs-heroku.app-{staging}"), 1).await;
    let moved = &elsewhere[0]["_source"];
    assert_eq!(moved["data_stream"]["namespace"], staging.as_str());
    assert_eq!(moved["heroku"]["app"], "shop-staging");
    assert_eq!(moved["drainpipe"]["rules"], json!(["staging", "team"]));
    // The drain URL's label kept beside the rule's (both rewritten in place).
    assert_eq!(moved["labels"], json!({"env": "stage", "team": "checkout"}));

    let text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        r#"drainpipe_rule_documents_total{outcome="dropped",rule="health-checks"} 1"#,
        r#"drainpipe_rule_documents_total{outcome="sampled_out",rule="ok-sample"} 1"#,
        r#"drainpipe_rule_documents_total{outcome="changed",rule="secrets"} 1"#,
        r#"drainpipe_rule_documents_total{outcome="changed",rule="staging"} 1"#,
        r#"drainpipe_rule_documents_total{outcome="changed",rule="team"} 2"#,
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

#[test]
fn check_config_names_each_bad_rule_with_its_file_and_line() {
    let dir = std::env::temp_dir().join(format!("drainpipe-bad-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drainpipe.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = \"a\"\naction = \"drop\"\n\n[[rule]]\nname = \"b\"\ndataset = \"router\"\naction = \"drop\"\n\n[[rule]]\nname = \"c\"\nfield = \"url.pth\"\nregex = \"(\"\naction = \"drop\"\n",
    )
    .unwrap();
    let out = run_drainpipe(&["check-config", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    let file = path.display();
    for want in [
        format!("{file}:10: rule c: unknown field \"url.pth\""),
        format!("{file}:10: rule c: regex \"(\""),
        format!("{file}:5: rule b: unreachable, rule a (line 1) drops every line it matches"),
    ] {
        assert!(stderr.contains(&want), "{want} in:\n{stderr}");
    }
    // serve refuses to start on them, as on any option problem.
    let out = run_drainpipe(&["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The rules and drain tokens of version `n` of the configuration file.
fn version(n: u32, tokens: &str) -> String {
    format!(
        "drain-token = [{tokens}]\n\n[[rule]]\nname = \"v{n}\"\naction = \"label\"\nlabels = {{ version = \"{n}\" }}\n"
    )
}

/// Frame `seq` of a sender: 20 app lines, each saying which frame and line it is.
fn numbered_frame(seq: usize) -> Vec<String> {
    (0..20).map(|i| app_line(&format!("seq={seq} line={i}"))).collect()
}

async fn post_numbered(url: &str, seq: usize, token: &str) -> u16 {
    let frame_id = format!("{seq:032X}");
    let h = LogplexHeaders { frame_id: Some(&frame_id), drain_token: Some(token), msg_count: 20 };
    post_frame(url, logplex_body(&numbered_frame(seq)), &h).await.status().as_u16()
}

#[tokio::test]
async fn a_reload_under_load_stores_every_line_once_under_the_settings_in_force_and_a_bad_file_changes_nothing() {
    let ns = unique_namespace("reload");
    let dir = std::env::temp_dir().join(format!("drainpipe-reload-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("drainpipe.toml");
    std::fs::write(&file, version(1, "\"d.one=shop\"")).unwrap();
    let dp = Drainpipe::start_with(&ns, &["--config", file.to_str().unwrap()]);
    let url = dp.url("/logs");
    assert_eq!(post_numbered(&url, 100_000, "d.two").await, 403, "d.two is not listed yet");

    // One sender, frame after frame, while the file changes and SIGHUP comes twice.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(post_numbered(&url, seq, "d.one").await, 200, "frame {seq}");
                seq += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seq
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    std::fs::write(&file, version(2, "\"d.one=shop\", \"d.two=shop\"")).unwrap();
    dp.signal("-HUP");
    dp.wait_for_log("SIGHUP: configuration reloaded", Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&file, "drain-token = [\"d.three=shop\"]\n[[rule]]\naction = \"explode\"\n").unwrap();
    dp.signal("-HUP");
    let refused = dp.wait_for_log("configuration not reloaded", Duration::from_secs(10));
    assert!(refused.contains("explode"), "{refused}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let frames = sender.await.unwrap();
    assert_eq!(post_numbered(&url, 100_001, "d.two").await, 200, "d.two is listed now");
    assert_eq!(post_numbered(&url, 100_002, "d.three").await, 403, "the refused file's token is not");

    // Every line once: as many documents as lines sent (20 a frame, the d.two frame too).
    let expected = 20 * (frames + 1);
    let count = wait_for_count(&dp.es, &dp.data_stream, expected as u64, Duration::from_secs(60)).await;
    assert_eq!(count, expected as u64, "{frames} frames");
    // Each frame under one version, and versions in the order frames were sent: 1, then 2.
    let docs = search(&dp.es, &dp.data_stream, json!({"match_all": {}})).await;
    let mut by_frame: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for d in &docs {
        let s = &d["_source"];
        let seq: usize = s["app"]["seq"].as_str().and_then(|v| v.parse().ok()).expect("seq");
        let v = s["labels"]["version"].as_str().expect("a version label").to_owned();
        assert_eq!(s["drainpipe"]["rules"], json!([format!("v{v}")]));
        by_frame.entry(seq).or_default().push(v);
    }
    let versions: Vec<(usize, &String)> = by_frame
        .iter()
        .map(|(seq, vs)| {
            assert!(vs.iter().all(|v| *v == vs[0]), "frame {seq} under two versions: {vs:?}");
            (*seq, &vs[0])
        })
        .collect();
    let firsts: Vec<&String> = versions.iter().map(|(_, v)| *v).collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "versions out of order: {versions:?}");
    assert_eq!(firsts.first().map(|v| v.as_str()), Some("1"));
    assert_eq!(by_frame[&100_001], vec!["2".to_owned(); 20]);
    assert!(firsts.iter().filter(|v| v.as_str() == "2").count() > 1, "frames after the reload: {versions:?}");

    let text = reqwest::get(dp.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        r#"drainpipe_config_reloads_total{result="success"} 1"#,
        r#"drainpipe_config_reloads_total{result="failure"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(text.contains("drainpipe_config_last_reload_success_timestamp_seconds"));
}

#[test]
fn rules_test_shows_what_each_line_becomes() {
    use std::io::Write as _;
    let ns = unique_namespace("rulestest");
    let dir = std::env::temp_dir().join(format!("drainpipe-rules-test-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = rules_file(&dir, "staging");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(["rules", "test", config.to_str().unwrap(), "--app", "shop-staging"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = [router("/health", 200), app_line("token=abc123 done")].concat();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], json!({"dropped": true}));
    assert_eq!(lines[1]["stream"], "logs-heroku.app-staging");
    assert_eq!(lines[1]["document"]["message"], "token=[REDACTED] done");
    assert_eq!(lines[1]["document"]["drainpipe"]["rules"], json!(["secrets", "staging", "team"]));
}
