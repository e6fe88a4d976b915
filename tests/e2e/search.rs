//! `drainpipe tail` and `drainpipe search` against the real Elasticsearch: the `heroku logs`
//! shape (a golden file for the shared samples), every filter, pagination past 10,000 matches,
//! and a follow that shows each line once, in order, with a burst of one timestamp and a line
//! indexed late.

use std::io::BufRead as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn run(args: &[&str], namespace: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(args)
        .args(["--elasticsearch-url", &elasticsearch_url(), "--namespace", namespace])
        .env("DRAINPIPE_LOG", "warn")
        .output()
        .expect("drainpipe runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The shared samples sent through a drain as app `shop`; waits until all are searchable.
async fn samples(ns: &str) -> (Drainpipe, usize) {
    let dp = Drainpipe::start(ns);
    let mut n = 0;
    for (i, file) in ["router.log", "app.log", "platform.log", "metrics.log"].into_iter().enumerate() {
        let lines = sample_lines(file);
        n += lines.len();
        let id = format!("SEARCH{i}");
        let headers = LogplexHeaders { frame_id: Some(&id), drain_token: Some("d.search"), msg_count: lines.len() };
        assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    }
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, n as u64, Duration::from_secs(30)).await, n as u64);
    (dp, n)
}

#[tokio::test]
async fn search_and_tail_print_the_samples_as_heroku_logs_does_and_every_filter_narrows() {
    let ns = unique_namespace("search");
    let (_dp, n) = samples(&ns).await;
    let golden_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/samples.heroku-logs.txt");
    // Always compared with the committed file. DRAINPIPE_BLESS=1 rewrites it when it differs and
    // fails all the same: review the diff, then run again without it.
    let searched = stdout(&run(&["search"], &ns));
    let golden = match std::fs::read_to_string(golden_path) {
        Ok(text) => text,
        Err(e) if std::env::var_os("DRAINPIPE_BLESS").is_some() => format!("({e})"),
        Err(e) => panic!("{golden_path}: {e}"),
    };
    if searched != golden && std::env::var_os("DRAINPIPE_BLESS").is_some() {
        std::fs::write(golden_path, &searched).unwrap();
        panic!("DRAINPIPE_BLESS rewrote {golden_path}: review the diff, then run again without DRAINPIPE_BLESS");
    }
    assert_eq!(searched, golden, "search");
    assert_eq!(golden.lines().count(), n);
    assert_eq!(stdout(&run(&["tail", "--no-follow"], &ns)), golden, "tail");
    let last_two: Vec<&str> = golden.lines().skip(n - 2).collect();
    assert_eq!(stdout(&run(&["tail", "--no-follow", "-n", "2"], &ns)).lines().collect::<Vec<_>>(), last_two);

    let count = |args: &[&str]| -> usize {
        let mut all = vec!["search", "--count"];
        all.extend_from_slice(args);
        stdout(&run(&all, &ns)).trim().parse().unwrap()
    };
    let lines = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        stdout(&run(&all, &ns)).lines().map(str::to_owned).collect()
    };
    assert_eq!(count(&[]), n);
    assert_eq!(count(&["--app", "shop"]), n);
    assert_eq!(count(&["--app", "blog"]), 0);
    for (args, must) in [
        (&["--dataset", "router"][..], "heroku[router]"),
        (&["--dyno", "web.1"][..], "[web.1]"),
        (&["--process-type", "worker"][..], "[worker."),
        (&["--status", "5xx"][..], "status=503"),
    ] {
        let found = lines(args);
        assert!(!found.is_empty() && found.len() < n, "{args:?} narrows: {found:?}");
        assert!(found.iter().all(|l| l.contains(must)), "{args:?}: {found:?}");
        let expected = golden.lines().filter(|l| l.contains(must)).count();
        assert_eq!(found.len(), expected, "{args:?} finds every line with {must:?}");
    }
    // At least warning: warnings and errors, not the info lines.
    let severe: Vec<Value> =
        lines(&["--level", "warning", "--json"]).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!severe.is_empty() && severe.len() < n);
    for doc in &severe {
        let level = doc["log"]["level"].as_str().unwrap();
        assert!(["warning", "error", "critical", "alert", "emergency"].contains(&level), "{level}");
    }
    assert_eq!(count(&["--level", "warning"]), severe.len());
    // QUERY: words in the message, or a named field.
    assert!(count(&["timeout"]) >= 1);
    assert_eq!(count(&["timeout", "--dataset", "app"]), 0, "filters and QUERY together");
    assert_eq!(count(&["app.user.plan:pro"]), 1);
    assert_eq!(count(&["--since", "2999-01-01T00:00:00Z"]), 0);
    assert_eq!(count(&["--since", "2025-03-14T00:00:00Z", "--until", "2025-03-15T00:00:00Z"]), n);

    // Errors a user understands.
    let unknown = run(&["search", "nosuchfield:x"], &ns);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown field `nosuchfield`"));
    let nothing = run(&["search"], "nosuchnamespace");
    assert_eq!(nothing.status.code(), Some(1));
    let said = String::from_utf8_lossy(&nothing.stderr);
    assert!(said.contains("no data stream matches logs-heroku.*-nosuchnamespace"), "{said}");
    let bad = run(&["search", "--level", "loud"], &ns);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown level"));
}

#[tokio::test]
async fn search_reads_past_ten_thousand_matches_oldest_first() {
    let ns = unique_namespace("searchmany");
    let file = std::env::temp_dir().join(format!("{ns}.log"));
    let lines = 10_500;
    let text: String = (0..lines)
        .map(|i| {
            format!(
                "2025-03-14T09:{:02}:{:02}.{:06}+00:00 app[web.{}]: line {i}\n",
                i / 6000,
                (i / 100) % 60,
                i % 100,
                i % 3 + 1
            )
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let es = elasticsearch_url();
    let replayed = run(&["replay", "--app", "shop", file.to_str().unwrap()], &ns);
    assert!(stdout(&replayed).contains("10500 indexed"));
    assert_eq!(wait_for_count(&es, &streams_of(&ns), lines, Duration::from_secs(60)).await, lines);
    assert_eq!(stdout(&run(&["search", "--count"], &ns)).trim(), "10500");
    let all = stdout(&run(&["search"], &ns));
    let numbers: Vec<u64> = all.lines().map(|l| l.rsplit(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(numbers.len(), lines as usize, "every match, past 10,000");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // `drainpipe search | head -1`: the reader goes away long before 10,500 lines are written.
    let mut search = Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(["search", "--elasticsearch-url", &es, "--namespace", &ns])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(search.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.ends_with(": line 0\n"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = search.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "search went on writing to nobody");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut search.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success() && stderr.is_empty(), "{status:?} {stderr}");
    let _ = std::fs::remove_file(file);
}

/// A follower that a failed assertion does not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn tail_shows_each_new_line_once_in_order_with_a_burst_and_a_late_line() {
    let ns = unique_namespace("tail");
    let dp = Drainpipe::start(&ns);
    let send = |id: &'static str, lines: Vec<String>| {
        let url = dp.url("/logs?app=shop");
        async move {
            let headers = LogplexHeaders { frame_id: Some(id), drain_token: Some("d.tail"), msg_count: lines.len() };
            assert_eq!(post_frame(&url, logplex_body(&lines), &headers).await.status(), 200);
        }
    };
    let line = |ts: &str, text: String| format!("<190>1 {ts} host app web.1 - {text}\n");
    let before: Vec<String> =
        (0..3).map(|i| line(&format!("2026-11-24T09:59:5{i}.000000+00:00"), format!("before {i}"))).collect();
    send("TAIL0", before).await;
    assert_eq!(wait_for_count(&dp.es, &dp.data_stream, 3, Duration::from_secs(30)).await, 3);

    let mut tail = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_drainpipe"))
            // Pages of 20 while following: the burst of 50 crosses pages.
            .args(["tail", "--json", "-n", "1", "--late", "20s", "--follow-page", "20"])
            .args(["--elasticsearch-url", &elasticsearch_url(), "--namespace", &ns])
            .env("DRAINPIPE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = tail.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut seen = Vec::new();
    let wait_for = |n: usize, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.len() < n && Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                let doc: Value = serde_json::from_str(&l).unwrap();
                seen.push(doc["message"].as_str().unwrap().to_owned());
            }
        }
        // Anything printed twice would arrive within another poll or two.
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(2500)) {
            let doc: Value = serde_json::from_str(&l).unwrap();
            seen.push(doc["message"].as_str().unwrap().to_owned());
        }
    };
    wait_for(1, &mut seen);
    assert_eq!(seen, ["before 2"], "the last line (-n 1), and none older after it");

    // A burst of 50 lines with one timestamp, then two later lines, then one indexed late with
    // a timestamp before all of them.
    let burst: Vec<String> =
        (0..50).map(|i| line("2026-11-24T10:00:05.000000+00:00", format!("burst {i:02}"))).collect();
    send("TAIL1", burst).await;
    send(
        "TAIL2",
        vec![
            line("2026-11-24T10:00:06.000000+00:00", "after 1".into()),
            line("2026-11-24T10:00:07.000000+00:00", "after 2".into()),
        ],
    )
    .await;
    wait_for(53, &mut seen);
    send("TAIL3", vec![line("2026-11-24T10:00:04.000000+00:00", "late".into())]).await;
    wait_for(54, &mut seen);
    // A dyno whose clock runs ten minutes ahead moves nothing: the next line still shows.
    send("TAIL4", vec![line("2026-11-24T10:10:00.000000+00:00", "skewed".into())]).await;
    send("TAIL5", vec![line("2026-11-24T10:00:08.000000+00:00", "after skew".into())]).await;
    wait_for(56, &mut seen);

    let mut expected: Vec<String> = vec!["before 2".into()];
    expected.extend((0..50).map(|i| format!("burst {i:02}")));
    expected.extend(["after 1", "after 2", "late", "skewed", "after skew"].map(String::from));
    let mut sorted_seen = seen.clone();
    sorted_seen[1..51].sort();
    assert_eq!(sorted_seen, expected, "every line once; the late one when it arrives");
    assert_eq!(&seen[51..53], ["after 1", "after 2"], "in order");

    // Ctrl-C ends it cleanly.
    assert!(Command::new("kill").args(["-INT", &tail.0.id().to_string()]).status().unwrap().success());
    let status = tail.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
