//! Tidy tests: the repository agrees with itself. Docs, the Heroku app files, the Dockerfile,
//! the alerts and the dashboard against the code; ARCHITECTURE.md's code map against the tree;
//! the house rule on function length. They read files and need no server (rust-analyzer keeps
//! its own such checks the same way, in one test file).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every file of the repository (as git sees it, else by walking the tree without target/
/// and dot-folders), relative to the root.
fn files() -> Vec<String> {
    let listed = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect::<Vec<_>>());
    let mut files = listed.unwrap_or_else(|| {
        let mut found = Vec::new();
        walk(&root(), &mut found);
        found
    });
    files.retain(|f| root().join(f).is_file());
    files.sort();
    files
}

fn walk(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            walk(&path, found);
        } else if let Ok(relative) = path.strip_prefix(root()) {
            found.push(relative.to_string_lossy().into_owned());
        }
    }
}

/// The Rust source files the code map must name: every `.rs` file but fuzz inputs.
fn source_files() -> Vec<String> {
    files().into_iter().filter(|f| f.ends_with(".rs") && !f.starts_with("fuzz/corpus/")).collect()
}

/// The paths ARCHITECTURE.md's code map names. The map is the first fenced block under
/// "## Code map"; an entry is the text before the description column (one or more names,
/// separated by ", " or a space); an entry at indent 0 is a path from the root, an indented one
/// is relative to the last entry at indent 0 that names a folder.
fn code_map_paths() -> Vec<String> {
    let text = read("ARCHITECTURE.md");
    let section = text.split("\n## Code map").nth(1).expect("a Code map section");
    let block = section.split("```").nth(1).expect("a fenced code map");
    let mut paths = Vec::new();
    let mut folder = String::new();
    for line in block.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        let names = line.trim_start().split("  ").next().unwrap_or_default().trim();
        // Description lines continue at the description column.
        if names.is_empty() || indent >= 20 {
            continue;
        }
        for name in names.split([',', ' ']).map(str::trim).filter(|n| !n.is_empty()) {
            let path = if indent == 0 { name.to_owned() } else { format!("{folder}{name}") };
            if indent == 0 && name.ends_with('/') {
                folder = name.to_owned();
            }
            paths.push(path);
        }
    }
    paths
}

/// A newcomer reads the code map to find things: each path it names is there, and every source
/// file is in it.
#[test]
fn the_code_map_names_every_source_file_and_only_paths_that_exist() {
    let named = code_map_paths();
    assert!(named.len() > 50, "{named:?}");
    let missing: Vec<_> = named.iter().filter(|p| !root().join(p.trim_end_matches('/')).exists()).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map names paths that do not exist: {missing:?}");
    let named: BTreeSet<&str> = named.iter().map(String::as_str).collect();
    let unnamed: Vec<_> = source_files().into_iter().filter(|f| !named.contains(f.as_str())).collect();
    assert!(unnamed.is_empty(), "source files ARCHITECTURE.md's code map does not name: {unnamed:?}");
}

/// Functions of more than this many lines, from `fn` to the closing brace, are split by
/// meaning (STYLE.md); `document::write`'s straight field list is the one exception.
const MAX_FUNCTION_LINES: usize = 60;
const LONG_ALLOWED: &[(&str, &str)] = &[("crates/transform/src/document.rs", "write")];

/// Every non-test function outside benches and tests, and its length in lines.
fn function_lengths(file: &str, text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    // Tests come last in a file, from `#[cfg(test)]` on.
    let end = lines.iter().position(|l| l.starts_with("#[cfg(test)]")).unwrap_or(lines.len());
    let mut found = Vec::new();
    let mut i = 0;
    while i < end {
        if let Some(name) = function_name(lines[i]) {
            if let Some(length) = body_length(&lines[i..end]) {
                found.push((format!("{file}: {name}"), length));
            }
        }
        i += 1;
    }
    found
}

fn function_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => return words.next().map(|n| n.split(['(', '<']).next().unwrap_or(n)),
            _ => return None,
        }
    }
    None
}

/// Lines from the first to the brace that closes the body; `None` for a declaration.
fn body_length(lines: &[&str]) -> Option<usize> {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in lines.iter().enumerate() {
        let code = strip_strings_and_comments(line);
        for c in code.chars() {
            match c {
                '{' => (depth, opened) = (depth + 1, true),
                '}' => depth -= 1,
                _ => {}
            }
        }
        if opened && depth <= 0 {
            return Some(n + 1);
        }
        if !opened && code.trim_end().ends_with(';') {
            return None;
        }
    }
    None
}

/// A line without its string and char literals and `//` comment, for counting braces.
fn strip_strings_and_comments(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => _ = chars.next(),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' if chars.clone().nth(1) == Some('\'') => _ = chars.nth(1),
            '\'' if chars.peek() == Some(&'\\') => {
                for s in chars.by_ref() {
                    if s == '\'' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            c => out.push(c),
        }
    }
    out
}

#[test]
fn no_function_outside_tests_and_benches_passes_sixty_lines() {
    let mut long = Vec::new();
    for file in source_files() {
        let test_or_bench = file.starts_with("benches/")
            || file.starts_with("tests/")
            || file.contains("/tests/")
            || file.contains("/benches/")
            || file.ends_with("/tests.rs");
        if test_or_bench || file.starts_with("fuzz/") {
            continue;
        }
        for (name, length) in function_lengths(&file, &read(&file)) {
            let allowed = LONG_ALLOWED.iter().any(|(f, n)| name == format!("{f}: {n}"));
            if length > MAX_FUNCTION_LINES && !allowed {
                long.push(format!("{name} ({length} lines)"));
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FUNCTION_LINES} lines: {long:#?}");
}

#[test]
fn the_function_length_check_counts_what_it_should() {
    let text = "fn a() {\n    let s = \"}\";\n    let c = '{';\n}\nfn b();\npub(crate) async fn c<T>(x: T)\nwhere T: Copy,\n{\n}\n#[cfg(test)]\nfn d() {}\n";
    assert_eq!(function_lengths("f.rs", text), [("f.rs: a".to_owned(), 4), ("f.rs: c".to_owned(), 4)]);
}

// ---- Docs and deploy files against the code ----

/// Every `drainpipe …` command line in a shell block of README.md and docs/, continuation
/// lines joined, comments and prompts dropped; inline spans too, but not usage synopses
/// (`[--opt]`, `a|b`) or output.
fn documented_command_lines() -> Vec<(&'static str, String)> {
    const DOCS: &[&str] = &[
        "README.md",
        "docs/operations.md",
        "docs/configuration.md",
        "docs/upgrading.md",
        "docs/metrics.md",
        "docs/fields.md",
        "docs/performance.md",
        "docs/scaling.md",
        "benches/README.md",
    ];
    let mut found = Vec::new();
    for file in DOCS {
        let text = read(file);
        let mut in_shell = false;
        let mut pending = String::new();
        for line in text.lines() {
            if let Some(fence) = line.trim_start().strip_prefix("```") {
                in_shell = !in_shell && matches!(fence, "sh" | "bash" | "console" | "shell");
                continue;
            }
            if !in_shell {
                for span in line.split('`').skip(1).step_by(2) {
                    let synopsis = span.contains(['[', '|']);
                    let output = span.split(' ').nth(1).is_some_and(|w| w.starts_with(|c: char| c.is_ascii_digit()));
                    if span.starts_with("drainpipe ") && !synopsis && !output {
                        found.push((*file, span.to_owned()));
                    }
                }
                continue;
            }
            let line = line.trim().trim_start_matches("$ ");
            match line.strip_suffix('\\') {
                Some(part) => pending.push_str(part),
                None => {
                    pending.push_str(line);
                    let whole = std::mem::take(&mut pending);
                    let command = whole.split(" #").next().unwrap_or_default().trim().to_owned();
                    let command = command.strip_prefix("sudo ").unwrap_or(&command).to_owned();
                    if command.starts_with("drainpipe ") {
                        found.push((*file, command));
                    }
                }
            }
        }
    }
    found
}

/// Splits like a shell for the quoting the docs use: single and double quotes, no expansion
/// (`$(…)` and `$VAR` stay as written).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (_, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// A command line the docs show, copied as written, is one drainpipe takes. Placeholders
/// (`…`, `<password>`) stand for the reader's values, and a `--config` file for the example
/// one.
#[test]
fn every_documented_command_line_parses() {
    let lines = documented_command_lines();
    assert!(lines.len() >= 10, "found only {lines:?}");
    let example = root().join("deploy/drainpipe.toml").to_string_lossy().into_owned();
    let mut refused = Vec::new();
    for (file, line) in &lines {
        let mut words = shell_words(line);
        for w in &mut words {
            if w == "…" {
                "x".clone_into(w);
            }
        }
        if let Some(i) = words.iter().position(|w| w == "--config") {
            if let Some(path) = words.get_mut(i + 1) {
                path.clone_from(&example);
            }
        }
        let args: Vec<std::ffi::OsString> = words.iter().map(std::ffi::OsString::from).collect();
        match drainpipe::config::parse::<drainpipe::cli::Cli>(&args, |_| None) {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            }
            Err(e) => refused.push(format!("{file}: {line}\n  {}", e.to_string().lines().next().unwrap_or_default())),
        }
    }
    assert!(refused.is_empty(), "documented command lines drainpipe refuses:\n{}", refused.join("\n"));
}

/// deploy/drainpipe.toml, each of its commented-out options, and docs/configuration.md's
/// example are files `serve` takes.
#[test]
fn the_shipped_example_files_are_valid() {
    let check = |file: &str, text: &str| {
        if let Err(e) = drainpipe::config::file_options(text) {
            panic!("{file}: {e:?}");
        }
    };
    let example = read("deploy/drainpipe.toml");
    check("deploy/drainpipe.toml", &example);
    let uncommented: String = example
        .lines()
        .map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")).unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    check("deploy/drainpipe.toml, uncommented", &uncommented);
    let docs = read("docs/configuration.md");
    check("docs/configuration.md", docs.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).unwrap());
}

/// app.json (the Heroku Deploy button) holds only fields of Heroku's app.json schema, and every
/// config var it offers is one drainpipe reads, with a default `serve` takes; the stage
/// heroku.yml builds exists and runs without a shell.
#[test]
fn the_heroku_app_json_uses_heroku_fields_and_our_variables() {
    const APP_FIELDS: &str = "name description keywords website repository logo success_url scripts env \
                              formation image addons buildpacks environments stack";
    const ENV_FIELDS: &[&str] = &["description", "value", "required", "generator"];
    let app: serde_json::Value = serde_json::from_str(&read("app.json")).unwrap();
    let app = app.as_object().unwrap();
    for key in app.keys() {
        assert!(APP_FIELDS.split_whitespace().any(|f| f == key), "app.json: {key} is not an app.json field");
    }
    assert_eq!(app["stack"], "container", "heroku.yml needs the container stack");
    let serve = drainpipe::config::serve_command();
    let env = app["env"].as_object().unwrap();
    assert!(env.contains_key("DRAINPIPE_BASIC_AUTH") && env.contains_key("ELASTICSEARCH_URL"));
    for (var, spec) in env {
        let spec = spec.as_object().unwrap();
        for key in spec.keys() {
            assert!(ENV_FIELDS.contains(&key.as_str()), "app.json: {var}.{key} is not an env field");
        }
        assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()), "{var} has no description");
        if let Some(generator) = spec.get("generator") {
            assert_eq!(generator, "secret", "{var}");
        }
        let platform = drainpipe::config::PLATFORM_VARIABLES.iter().find(|(_, vars)| vars.contains(&var.as_str()));
        let flag = serve
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == var.as_str()))
            .and_then(|a| a.get_long())
            .or_else(|| platform.map(|(f, _)| *f))
            .unwrap_or_else(|| panic!("app.json: drainpipe does not read {var}"));
        if let Some(value) = spec.get("value").and_then(|v| v.as_str()) {
            drainpipe::config::check_value(flag, &vec![value.to_owned()])
                .unwrap_or_else(|e| panic!("app.json: {var}={value}: {e}"));
        }
    }
    let (heroku_yml, dockerfile) = (read("heroku.yml"), read("Dockerfile"));
    assert!(heroku_yml.contains("target: heroku") && dockerfile.contains("FROM base AS heroku\nENTRYPOINT ["));
}

/// Names `drainpipe_…` used in a text (PromQL in alerts and dashboards), without the
/// `_bucket`/`_sum`/`_count` of histograms.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("drainpipe_") {
        // `_drainpipe_parse_failure` is a tag, not a metric.
        if text[..i].ends_with(|c: char| c == '_' || c.is_ascii_alphanumeric()) {
            continue;
        }
        let name: String =
            text[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

/// An alert or a panel on a metric drainpipe does not export never fires and never draws: every
/// name the shipped alerts and dashboard use is one `/metrics` serves.
#[test]
fn the_alerts_and_the_dashboard_use_only_metrics_drainpipe_exports() {
    drainpipe::metrics::register_all().expect("every metric registers once, none twice");
    // Per-node metrics get their series when a client names its nodes, as `serve` does before
    // anything is scraped.
    let _client = drainpipe_bulk_indexer::Client::new("http://127.0.0.1:9200").expect("a valid URL");
    let exported: BTreeSet<String> = prometheus::gather().iter().map(|f| f.name().to_owned()).collect();
    for process in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
        assert!(exported.contains(process), "{process} is not exported");
    }
    for file in ["deploy/prometheus/alerts.yaml", "deploy/grafana/drainpipe.json"] {
        let used = metric_names(&read(file));
        assert!(used.len() > 5, "{file}: {used:?}");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(unknown.is_empty(), "{file} uses metrics drainpipe does not export: {unknown:?}");
    }
}
