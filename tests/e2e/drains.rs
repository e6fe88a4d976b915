//! `drainpipe drains plan|apply` against a stand-in for Heroku's Platform API
//! (tests/heroku/platform-api-standin) that checks every request and answer against Heroku's
//! published schema, the version-3 Accept header, the key and the rate limit. Nothing here
//! reaches Heroku.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// The stand-in, with these apps and drains; killed when dropped.
struct Standin {
    child: Child,
    url: String,
}

impl Standin {
    fn start(dir: &Path, state: Value, extra: &[&str]) -> Standin {
        let state_file = dir.join("state.json");
        std::fs::write(&state_file, state.to_string()).unwrap();
        let mut args = vec!["--state", state_file.to_str().unwrap(), "--key", KEY];
        args.extend(extra);
        let (child, url) = start_port_printer("tests/heroku/platform-api-standin", &args);
        Standin { child, url }
    }

    /// What it saw: requests, violations, 429s, and its apps with their drains.
    async fn seen(&self) -> Value {
        reqwest::get(format!("{}/__standin", self.url)).await.unwrap().json().await.unwrap()
    }

    fn app<'a>(seen: &'a Value, name: &str) -> &'a Value {
        seen["apps"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drainpipe-{}", unique_namespace(name)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const FILE: &str = r#"
url = "https://logplex:${DRAIN_PASSWORD}@drainpipe.example.com/logs"
otlp-token = "otlp-secret"
labels = { env = "prod" }

[[app]]
name = "shop"
labels = { team = "checkout" }

[[app]]
name = "billing"

[[app]]
name = "shop-fir"
signals = ["logs", "traces"]
"#;

/// `drainpipe drains ARGS --file FILE --heroku-api-url URL`: (exit code, stdout, stderr).
fn drains(dir: &Path, standin: &Standin, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let file = dir.join("drains.toml");
    std::fs::write(&file, FILE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .arg("drains")
        .args(args)
        .args(["--file", file.to_str().unwrap(), "--heroku-api-url", &standin.url])
        .env("DRAIN_PASSWORD", "s3cret")
        .env("HOME", dir)
        .env_remove("HEROKU_API_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn state() -> Value {
    let addon = json!({"id": "11111111-2222-3333-4444-555555555555", "name": "papertrail-cubic-1234", "app": {"id": "11111111-2222-3333-4444-555555555556", "name": "shop"}});
    json!({"apps": [
        {"name": "shop", "generation": "cedar", "log_drains": [
            {"url": "https://logplex:old@drainpipe.example.com/logs?app=shop&env=staging"},
            {"url": "syslog+tls://logs.papertrailapp.com:12345"},
            {"url": "syslog+tls://logs5.papertrailapp.com:54321", "addon": addon},
        ]},
        {"name": "billing", "generation": "cedar", "log_drains": [
            {"url": "https://logplex:s3cret@drainpipe.example.com/logs?app=billing&env=prod"},
        ]},
        {"name": "shop-fir", "generation": "fir"},
    ]})
}

#[tokio::test]
async fn drains_are_planned_and_applied_as_the_file_says_checked_against_herokus_schema() {
    let dir = temp_dir("drains");
    let standin = Standin::start(&dir, state(), &[]);
    let key = [("HEROKU_API_KEY", KEY)];
    let (code, plan, err) = drains(&dir, &standin, &["plan"], &key);
    assert_eq!(code, 0, "{plan}{err}");
    for line in [
        "  + log drain https://logplex:***@drainpipe.example.com/logs?app=shop&env=prod&team=checkout",
        "  - log drain https://logplex:***@drainpipe.example.com/logs?app=shop&env=staging",
        "  ! log drain syslog+tls://logs.papertrailapp.com:12345",
        "an add-on's, kept",
        "  = log drain https://logplex:***@drainpipe.example.com/logs?app=billing&env=prod",
        "  + telemetry drain https://drainpipe.example.com [logs, traces]",
        "Plan: 2 to add, 0 to change, 1 to remove; 1 unchanged, 2 not drainpipe's (kept).",
    ] {
        assert!(plan.contains(line), "{line:?} not in:\n{plan}");
    }
    assert!(!plan.contains("s3cret") && !plan.contains("old@") && !plan.contains("otlp-secret"), "{plan}");
    assert_eq!(drains(&dir, &standin, &["plan", "--check"], &key).0, 1, "the drains differ from the file");

    // A plan that removes needs --yes: without it, nothing changes at all.
    let (code, _, err) = drains(&dir, &standin, &["apply"], &key);
    assert!(code == 1 && err.contains("nothing was changed; apply with --yes"), "{err}");
    let seen = standin.seen().await;
    assert!(seen["requests"].as_array().unwrap().iter().all(|r| r[0] == "GET"), "{}", seen["requests"]);

    let (code, out, err) = drains(&dir, &standin, &["apply", "--yes"], &key);
    assert_eq!(code, 0, "{out}{err}");
    let seen = standin.seen().await;
    assert_eq!(seen["violations"], json!([]), "every request and answer as Heroku's schema says");
    let shop: Vec<&str> = Standin::app(&seen, "shop")["log_drains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["url"].as_str().unwrap())
        .collect();
    assert_eq!(shop.len(), 3, "{shop:?}");
    assert!(shop.contains(&"https://logplex:s3cret@drainpipe.example.com/logs?app=shop&env=prod&team=checkout"));
    assert!(shop.iter().all(|u| !u.contains("staging")), "the replaced drain is gone");
    let fir = &Standin::app(&seen, "shop-fir")["telemetry_drains"][0];
    assert_eq!(fir["signals"], json!(["logs", "traces"]));
    assert_eq!(
        fir["exporter"],
        json!({"type": "otlphttp", "endpoint": "https://drainpipe.example.com", "headers": {"Authorization": "Bearer otlp-secret"}})
    );
    // The replaced drain's successor was added before it was removed.
    let changes: Vec<&Value> = seen["requests"].as_array().unwrap().iter().filter(|r| r[0] != "GET").collect();
    assert_eq!(changes.iter().map(|r| r[0].as_str().unwrap()).collect::<Vec<_>>(), ["POST", "DELETE", "POST"]);

    let (code, plan, _) = drains(&dir, &standin, &["plan", "--check"], &key);
    assert!(
        code == 0 && plan.contains("Plan: 0 to add, 0 to change, 0 to remove; 3 unchanged, 2 not drainpipe's"),
        "{plan}"
    );
    let (_, tokens, _) = drains(&dir, &standin, &["plan", "--drain-tokens"], &key);
    let ours = |app: &str| {
        let drains = Standin::app(&seen, app)["log_drains"].as_array().unwrap().clone();
        let d = drains.into_iter().find(|d| d["url"].as_str().unwrap().contains("drainpipe.example.com")).unwrap();
        format!("{}={app}", d["token"].as_str().unwrap())
    };
    let mut expected = [ours("shop"), ours("billing")];
    expected.sort();
    assert_eq!(tokens.trim(), expected.join(","), "serve's --drain-token map");

    // Asked to, drains that are not drainpipe's go too; an add-on's never.
    let (code, out, err) = drains(&dir, &standin, &["apply", "--yes", "--remove-others"], &key);
    assert_eq!(code, 0, "{out}{err}");
    let seen = standin.seen().await;
    let shop = Standin::app(&seen, "shop")["log_drains"].as_array().unwrap().clone();
    assert_eq!(shop.len(), 2, "{shop:?}");
    assert!(shop.iter().any(|d| !d["addon"].is_null()), "the add-on's drain stays");
    assert_eq!(seen["violations"], json!([]));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_rate_limit_is_waited_for_and_429_is_sent_again() {
    let dir = temp_dir("drains_rate");
    // Three requests' budget, refilled every 0.3 s; the first two changes answered 429 anyway;
    // lists a drain at a time (206 and Next-Range).
    let args = ["--budget", "3", "--refill", "0.3", "--storm", "2", "--page-size", "1"];
    let standin = Standin::start(&dir, state(), &args);
    let (code, out, err) = drains(&dir, &standin, &["apply", "--yes"], &[("HEROKU_API_KEY", KEY)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("rate limit is used up; waiting") && err.contains("answered 429"), "{err}");
    let seen = standin.seen().await;
    assert_eq!(seen["stormed"], 2, "both 429s were sent again");
    assert_eq!(seen["exhausted"], 0, "no request was sent with RateLimit-Remaining at 0");
    assert!(seen["pages"].as_u64().unwrap() >= 2, "shop's three drains came a page at a time");
    let shop = Standin::app(&seen, "shop")["log_drains"].as_array().unwrap().clone();
    assert!(
        shop.iter().all(|d| !d["url"].as_str().unwrap().contains("staging")),
        "the stale drain, on page one, was found"
    );
    assert_eq!(seen["violations"], json!([]));
    assert_eq!(Standin::app(&seen, "shop-fir")["telemetry_drains"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_key_comes_from_heroku_api_key_or_the_netrc_heroku_login_writes() {
    let dir = temp_dir("drains_key");
    let standin = Standin::start(&dir, state(), &[]);
    let (code, _, err) = drains(&dir, &standin, &["plan"], &[]);
    assert!(code == 1 && err.contains("no Heroku API key: set HEROKU_API_KEY"), "{err}");
    std::fs::write(dir.join(".netrc"), format!("machine 127.0.0.1\n  login me@example.com\n  password {KEY}\n"))
        .unwrap();
    let (code, plan, err) = drains(&dir, &standin, &["plan"], &[]);
    assert!(code == 0 && plan.contains("Plan: 2 to add"), "{plan}{err}");
    let (code, out, err) = drains(&dir, &standin, &["plan"], &[("HEROKU_API_KEY", "not-the-key")]);
    assert!(code == 1 && out.contains("problem: the API key was refused") && out.contains("401"), "{out}{err}");
    assert_eq!(out.matches("problem:").count(), 1, "said once, not per app: {out}");
    let _ = std::fs::remove_dir_all(dir);
}
