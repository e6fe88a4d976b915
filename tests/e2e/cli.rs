//! The command line as operators meet it: where options come from, what a wrong one says, and
//! the exit codes (0 fine, 1 a failure at run time, 2 options that cannot be used, 78 problems
//! check-config found). None of these needs Elasticsearch but `check-config --online`'s.

use std::process::{Command, Output};

/// Runs the binary with `args` and extra environment variables.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drainpipe"));
    command.args(args).env("DRAINPIPE_LOG", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("drainpipe runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_drain_token_variable_is_the_flag_name_upper_cased_and_the_old_one_still_works() {
    for var in ["DRAINPIPE_DRAIN_TOKEN", "DRAINPIPE_DRAIN_TOKENS"] {
        let out = run(&["check-config"], &[(var, "d.1=shop,d.2=blog")]);
        let printed = text(&out.stdout);
        assert!(printed.contains("[REDACTED]=shop") && printed.contains("[REDACTED]=blog"), "{var}:\n{printed}");
        assert!(!printed.contains("d.1"), "{printed}");
    }
    let help = text(&run(&["serve", "--help"], &[]).stdout);
    assert!(help.contains("DRAINPIPE_DRAIN_TOKEN") && !help.contains("DRAINPIPE_DRAIN_TOKENS"), "{help}");
}

#[test]
fn check_config_finds_clashes_and_changes_nothing() {
    let out = run(&["check-config", "--listen", "127.0.0.1:18080", "--metrics-listen", ":18080"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("same address"), "{}", text(&out.stderr));

    let dir = std::env::temp_dir().join(format!("drainpipe-cli-{}", std::process::id()));
    let spool = dir.join("spool");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spool_arg = spool.to_str().unwrap();
    let out = run(&["check-config", "--spool-dir", spool_arg, "--spool-max-bytes", "10MiB"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("two segments"), "{}", text(&out.stderr));
    let out = run(&["check-config", "--spool-dir", spool_arg], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!spool.exists(), "check-config created the spool folder");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "check-config left something behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mistyped_flag_gets_a_suggestion() {
    let out = run(&["serve", "--spool-dri", "/tmp/x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a similar argument exists: '--spool-dir'"), "{}", text(&out.stderr));
}

#[test]
fn unusable_options_exit_2_with_what_was_typed() {
    for args in [
        &["serve", "--drain-token", "d.1"][..],
        &["serve", "--basic-auth", "no-password"],
        &["serve", "--listen", "nowhere"],
        &["serve", "--queue-max-bytes", "1MiB"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
    let out = run(&["serve", "--elasticsearch-url", "127.0.0.1:9200"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("\"127.0.0.1:9200\"") && said.contains("http://127.0.0.1:9200"), "{said}");
}

#[test]
fn fatal_errors_follow_the_log_format() {
    let out = run(&["serve", "--log-format", "json", "--queue-max-bytes", "1MiB"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let line = text(&out.stderr);
    let entry: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "ERROR", "{line}");
    assert!(entry.to_string().contains("queue-max-bytes"), "{line}");
}

#[test]
fn addresses_as_people_write_them() {
    let out = run(&["check-config", "--listen", ":0", "--syslog-listen", "localhost:0"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("listen = \"0.0.0.0:0\""), "{}", text(&out.stdout));
}

#[test]
fn each_command_offers_only_its_own_options() {
    let help = |command: &str| text(&run(&[command, "--help"], &[]).stdout);
    let (setup, replay, serve) = (help("setup"), help("replay"), help("serve"));
    for serve_only in ["--listen", "--spool-dir", "--basic-auth", "--max-body-size"] {
        assert!(serve.contains(serve_only), "serve lacks {serve_only}");
        assert!(!setup.contains(serve_only) && !replay.contains(serve_only), "{serve_only} offered outside serve");
    }
    assert!(setup.contains("--kibana-url") && setup.contains("--retention"), "{setup}");
    assert!(replay.contains("--bulk-max-docs") && !setup.contains("--bulk-max-docs"), "{replay}");
}

#[test]
fn version_names_the_git_revision_the_target_and_the_linkage() {
    let out = run(&["--version"], &[]);
    let version = text(&out.stdout);
    let rev = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok();
    let rev = rev.filter(|o| o.status.success()).map(|o| text(&o.stdout).trim().to_owned());
    let expected = format!("git {}", rev.as_deref().unwrap_or("unknown"));
    assert!(version.starts_with(&format!("drainpipe {} (", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.contains(&expected) && version.contains("linux"), "{version}");
    assert!(version.contains(", static)") || version.contains(", dynamic)"), "{version}");
}

/// The container health check: it finds the listener from the same options `serve` takes (here
/// `PORT`, as on Heroku; and HTTPS with a self-signed certificate), exits 0 while drainpipe
/// answers and 1 with a one-line reason once it does not.
#[test]
fn healthcheck_follows_the_serve_options_and_fails_when_nothing_answers() {
    let dir = std::env::temp_dir().join(format!("drainpipe-healthcheck-{}", std::process::id()));
    let (cert, key) = crate::support::self_signed_certificate(&dir);
    let namespace = crate::support::unique_namespace("healthcheck");
    for tls in [false, true] {
        let extra: Vec<&str> = if tls { vec!["--tls-cert", &cert, "--tls-key", &key] } else { vec![] };
        let dp = crate::support::Drainpipe::start_against("http://127.0.0.1:9", &namespace, &extra);
        let port = dp.addr.port().to_string();
        let out = run(&[&["healthcheck"][..], &extra].concat(), &[("PORT", &port)]);
        assert_eq!(out.status.code(), Some(0), "tls {tls}: {}", text(&out.stderr));
        drop(dp);
        let out = run(&[&["healthcheck"][..], &extra].concat(), &[("PORT", &port)]);
        assert_eq!(out.status.code(), Some(1));
        let said = text(&out.stderr);
        let scheme = if tls { "https" } else { "http" };
        assert!(said.contains(&format!("{scheme}://127.0.0.1:{port}/healthz")) && said.lines().count() == 1, "{said}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn completions_and_manual_pages_cover_every_command() {
    let bash = text(&run(&["completions", "bash"], &[]).stdout);
    for word in ["serve", "setup", "replay", "healthcheck", "--spool-dir", "--elasticsearch-url"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    // A reader that stops early (`| head`) is no error, and no panic.
    for args in [["completions", "bash"], ["man", "--"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drainpipe"))
            .args(args.iter().filter(|a| **a != "--"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
    }
    let dir = std::env::temp_dir().join(format!("drainpipe-man-{}", std::process::id()));
    let out = run(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let serve = std::fs::read_to_string(dir.join("drainpipe-serve.1")).unwrap();
    assert!(serve.contains("DRAINPIPE_SPOOL_DIR") && serve.contains("spool\\-dir"), "{serve}");
    for page in ["drainpipe.1", "drainpipe-setup.1", "drainpipe-healthcheck.1", "drainpipe-replay.1"] {
        assert!(dir.join(page).exists(), "{page}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `check-config --online` asks the cluster and changes nothing: against the test
/// Elasticsearch it answers and the templates' state is told; against nothing, exit 78.
#[test]
fn check_config_online_asks_the_cluster() {
    let es = crate::support::elasticsearch_url();
    let namespace = crate::support::unique_namespace("online");
    let out = run(&["check-config", "--online", "--elasticsearch-url", &es, "--namespace", &namespace], &[]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("answers") && said.contains("index template logs-heroku-by-dataset:"), "{said}");
    assert!(said.contains("privileges"), "{said}");
    let out = run(&["check-config", "--online", "--elasticsearch-url", "http://127.0.0.1:9"], &[]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach Elasticsearch"));
}
