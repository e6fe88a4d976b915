//! The command line as operators meet it: where options come from, what a wrong one says, and
//! the exit codes (0 fine, 1 a failure at run time or problems check-config found, 2 options
//! that cannot be used). None of these needs Elasticsearch.

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
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("same address"), "{}", text(&out.stderr));

    let dir = std::env::temp_dir().join(format!("drainpipe-cli-{}", std::process::id()));
    let spool = dir.join("spool");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spool_arg = spool.to_str().unwrap();
    let out = run(&["check-config", "--spool-dir", spool_arg, "--spool-max-bytes", "10MiB"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("two segments"), "{}", text(&out.stderr));
    let out = run(&["check-config", "--spool-dir", spool_arg], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!spool.exists(), "check-config created the spool folder");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "check-config left something behind");
    std::fs::remove_dir_all(&dir).unwrap();
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
