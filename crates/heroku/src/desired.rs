//! `drains.toml`: the drains a team wants, per app, read into [`Desired`].
//!
//! ```toml
//! url = "https://logplex:${DRAIN_PASSWORD}@drainpipe.example.com/logs"  # Cedar log drains
//! otlp-url = "https://drainpipe.example.com"   # Fir telemetry drains (default: url's origin)
//! otlp-token = "${OTLP_TOKEN}"                 # their bearer token
//! labels = { env = "production" }              # every app's drain URL
//!
//! [[app]]
//! name = "shop"
//! labels = { team = "checkout" }               # added to (and over) the file's
//!
//! [[app]]
//! name = "shop-fir"
//! signals = ["logs", "traces"]                 # Fir apps only; default ["logs"]
//! ```
//!
//! `${NAME}` in a value is the environment variable `NAME` (unset is an error), so secrets
//! need not be in the file (a password in a URL is percent-encoded, as in any URL). Whether an app is Cedar or Fir is Heroku's to say.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The drains the file wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// drainpipe's drain endpoint, with its basic-auth pair: what Cedar log drains point at.
    pub url: reqwest::Url,
    /// drainpipe's OTLP endpoint (no path of `/v1/…`: the exporter adds it) and the bearer
    /// token Fir telemetry drains send.
    pub otlp_url: reqwest::Url,
    pub otlp_token: Option<String>,
    pub apps: Vec<DesiredApp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredApp {
    pub name: String,
    /// The file's labels with the app's over them, in key order.
    pub labels: BTreeMap<String, String>,
    pub signals: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    url: String,
    otlp_url: Option<String>,
    otlp_token: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    app: Vec<AppEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    signals: Option<Vec<String>>,
}

const SIGNALS: [&str; 3] = ["logs", "metrics", "traces"];

/// Why a drains file cannot be used: each problem on a line of its own.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct FileProblems(pub Vec<String>);

impl Desired {
    /// Reads a drains file's text; `env` gives `${NAME}`'s values.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Desired, FileProblems> {
        let file: File = toml::from_str(text).map_err(|e| FileProblems(vec![e.to_string().trim().to_owned()]))?;
        let mut problems = Vec::new();
        let mut expand = |what: &str, value: &str| match expand(value, &env) {
            Ok(v) => v,
            Err(name) => {
                problems.push(format!("{what}: ${{{name}}} is not set"));
                String::new()
            }
        };
        let url = expand("url", &file.url);
        let otlp_url = file.otlp_url.as_deref().map(|u| expand("otlp-url", u));
        let otlp_token = file.otlp_token.as_deref().map(|t| expand("otlp-token", t));
        let url = checked_url("url", &url, &mut problems);
        let otlp_url = match otlp_url {
            Some(u) => checked_url("otlp-url", &u, &mut problems),
            None => url.as_ref().map(origin),
        };
        let apps = apps(&file, &mut problems);
        match (url, otlp_url) {
            (Some(url), Some(otlp_url)) if problems.is_empty() => Ok(Desired { url, otlp_url, otlp_token, apps }),
            _ => Err(FileProblems(problems)),
        }
    }

    /// The URL a Cedar app's log drain points at: drainpipe's, with `app=` and the labels.
    pub fn drain_url(&self, app: &DesiredApp) -> String {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("app", &app.name);
            for (k, v) in &app.labels {
                query.append_pair(k, v);
            }
        }
        url.to_string()
    }
}

fn apps(file: &File, problems: &mut Vec<String>) -> Vec<DesiredApp> {
    let mut seen = std::collections::BTreeSet::new();
    let mut apps = Vec::new();
    for entry in &file.app {
        if !seen.insert(entry.name.as_str()) {
            problems.push(format!("app {:?} is listed twice", entry.name));
        }
        if !is_app_name(&entry.name) {
            problems.push(format!("app {:?}: not a Heroku app name (lowercase letters, digits, dashes)", entry.name));
        }
        let mut labels = file.labels.clone();
        labels.extend(entry.labels.clone());
        if labels.contains_key("app") {
            problems.push(format!("app {:?}: `app` cannot be a label (it is the app's name)", entry.name));
        }
        let signals = entry.signals.clone().unwrap_or_else(|| vec!["logs".to_owned()]);
        if signals.is_empty() || signals.iter().any(|s| !SIGNALS.contains(&s.as_str())) {
            problems.push(format!("app {:?}: signals are some of {SIGNALS:?}", entry.name));
        }
        apps.push(DesiredApp { name: entry.name.clone(), labels, signals });
    }
    apps
}

/// Heroku's app names: a lowercase letter, then lowercase letters, digits and dashes (30 at
/// most; older apps may be longer, so any length is taken).
fn is_app_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn checked_url(what: &str, value: &str, problems: &mut Vec<String>) -> Option<reqwest::Url> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => Some(u),
        Ok(u) => {
            problems.push(format!("{what}: {} is not an http(s) URL", redacted(&u)));
            None
        }
        Err(e) => {
            problems.push(format!("{what}: not a URL ({e})"));
            None
        }
    }
}

/// The scheme, host and port of `url`, without credentials or path.
fn origin(url: &reqwest::Url) -> reqwest::Url {
    let mut o = url.clone();
    let _ = o.set_username("");
    let _ = o.set_password(None);
    o.set_path("");
    o.set_query(None);
    o
}

/// `${NAME}` replaced by the variable's value; `Err(NAME)` for one that is not set.
fn expand(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some((before, after)) = rest.split_once("${") {
        out.push_str(before);
        let Some((name, tail)) = after.split_once('}') else {
            out.push_str("${");
            out.push_str(after);
            return Ok(out);
        };
        out.push_str(&env(name).ok_or_else(|| name.to_owned())?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// `url` with its password shown as `***`: what output and errors print.
pub fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
url = "https://logplex:${PASS}@drainpipe.example.com/logs"
otlp-token = "t0k"
labels = { env = "production", team = "ops" }

[[app]]
name = "shop"
labels = { team = "checkout" }

[[app]]
name = "shop-fir"
signals = ["logs", "traces"]
"#;

    fn env(name: &str) -> Option<String> {
        (name == "PASS").then(|| "s3cret+".to_owned())
    }

    #[test]
    fn a_file_becomes_each_apps_drain() {
        let d = Desired::parse(FILE, env).unwrap();
        assert_eq!(d.otlp_url.as_str(), "https://drainpipe.example.com/");
        assert_eq!(
            d.drain_url(&d.apps[0]),
            "https://logplex:s3cret+@drainpipe.example.com/logs?app=shop&env=production&team=checkout"
        );
        assert_eq!(d.apps[1].signals, ["logs", "traces"]);
        assert_eq!(d.apps[0].signals, ["logs"]);
        assert_eq!(redacted(&d.url), "https://logplex:***@drainpipe.example.com/logs");
    }

    #[test]
    fn the_shipped_example_reads() {
        let example = include_str!("../../../deploy/drains.toml");
        let d = Desired::parse(example, |name| Some(format!("<{name}>"))).unwrap();
        assert_eq!(d.apps.len(), 3);
        assert_eq!(d.otlp_token.as_deref(), Some("<DRAINPIPE_OTLP_TOKEN>"));
    }

    #[test]
    fn every_problem_is_named() {
        let bad = r#"
url = "ftp://x/"
otlp-token = "${NOPE}"
[[app]]
name = "Shop"
signals = ["profiles"]
[[app]]
name = "Shop"
labels = { app = "x" }
"#;
        let problems = Desired::parse(bad, env).unwrap_err().0.join("\n");
        for expected in [
            "${NOPE} is not set",
            "not an http(s) URL",
            "not a Heroku app name",
            "listed twice",
            "signals are",
            "`app` cannot be a label",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
        assert!(Desired::parse("url = 1", env).is_err());
        assert!(Desired::parse("url = \"https://x\"\nunknown = 1", env).unwrap_err().0[0].contains("unknown"));
    }
}
