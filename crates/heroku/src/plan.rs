//! The drains a file wants against the ones Heroku has: what to add, change and remove, per
//! app, as `terraform plan` shows it.
//!
//! A drain is drainpipe's when it points at the file's endpoint (a log drain's URL with the same
//! scheme, host, port and path as `url`; a telemetry drain's exporter at `otlp-url`). Only
//! those are ever changed or removed, unless removing the others is asked for; an add-on's
//! drain never is (its add-on owns it). A log drain cannot be changed, so one whose URL differs
//! (labels, credentials) is replaced: the new one is added before the old one is removed, so no
//! line is lost. A telemetry drain is changed in place.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::{ApiError, App, Exporter, LogDrain, PlatformApi, TelemetryDrain};
use crate::desired::{redacted, Desired, DesiredApp};

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddLogDrain {
        url: String,
    },
    RemoveLogDrain {
        id: String,
    },
    AddTelemetryDrain {
        app_id: String,
        signals: Vec<String>,
        exporter: Exporter,
    },
    UpdateTelemetryDrain {
        id: String,
        signals: Vec<String>,
        exporter: Exporter,
    },
    RemoveTelemetryDrain {
        id: String,
    },
    /// Nothing to do: as wanted, or not drainpipe's and kept.
    Keep,
}

/// One line of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub app: String,
    pub op: Op,
    /// `+`, `~`, `-`, `=` (unchanged) or `!` (not drainpipe's, kept).
    pub sign: char,
    /// The drain, secrets hidden, and why.
    pub what: String,
}

/// Everything the file asks of Heroku.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Apps that could not be planned (not found, or refused), each with why.
    pub problems: Vec<String>,
    /// The drain token of each app's drainpipe log drain, as Heroku reports it: serve's
    /// `--drain-token TOKEN=APP` map.
    pub drain_tokens: BTreeMap<String, String>,
}

impl Plan {
    pub fn count(&self, sign: char) -> usize {
        self.steps.iter().filter(|s| s.sign == sign).count()
    }

    /// Whether applying it would change anything.
    pub fn changes(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.sign, '+' | '~' | '-'))
    }

    /// `TOKEN=APP,TOKEN=APP`: what `--drain-token` and `DRAINPIPE_DRAIN_TOKEN` take.
    pub fn drain_token_map(&self) -> String {
        drain_token_map(&self.drain_tokens)
    }
}

/// Drain tokens and their apps as `TOKEN=APP,TOKEN=APP`, in token order.
pub fn drain_token_map(tokens: &BTreeMap<String, String>) -> String {
    tokens.iter().map(|(token, app)| format!("{token}={app}")).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut app = None;
        for step in &self.steps {
            if app != Some(&step.app) {
                writeln!(f, "{}", step.app)?;
                app = Some(&step.app);
            }
            writeln!(f, "  {} {}", step.sign, step.what)?;
        }
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        write!(
            f,
            "Plan: {} to add, {} to change, {} to remove; {} unchanged, {} not drainpipe's (kept).",
            self.count('+'),
            self.count('~'),
            self.count('-'),
            self.count('='),
            self.count('!'),
        )
    }
}

/// Plans every app of `desired` against what Heroku has; `remove_others` also removes drains
/// that are not drainpipe's (add-ons' excepted).
pub async fn plan(api: &PlatformApi, desired: &Desired, remove_others: bool) -> Plan {
    let mut plan = Plan::default();
    for want in &desired.apps {
        if let Err(e) = plan_app(api, desired, want, remove_others, &mut plan).await {
            if e.is_unauthorized() {
                // The same for every app: said once.
                plan.problems.push(format!("the API key was refused: {e}"));
                break;
            }
            let why = if e.is_not_found() {
                "no such app (or this API key may not see it)".to_owned()
            } else {
                e.to_string()
            };
            plan.problems.push(format!("{}: {why}", want.name));
        }
    }
    plan
}

async fn plan_app(
    api: &PlatformApi,
    desired: &Desired,
    want: &DesiredApp,
    remove_others: bool,
    plan: &mut Plan,
) -> Result<(), ApiError> {
    let app = api.app(&want.name).await?;
    if app.is_fir() {
        let have = api.telemetry_drains(&want.name).await?;
        plan.steps.extend(telemetry_steps(desired, want, &app, &have, remove_others));
    } else {
        let have = api.log_drains(&want.name).await?;
        let (steps, token) = log_drain_steps(desired, want, &have, remove_others);
        plan.steps.extend(steps);
        if let Some(token) = token {
            plan.drain_tokens.insert(token, want.name.clone());
        }
    }
    Ok(())
}

/// Whether two URLs are the same endpoint: scheme, host, port and path (not credentials or
/// query).
fn same_endpoint(a: &reqwest::Url, b: &str) -> bool {
    reqwest::Url::parse(b).is_ok_and(|b| {
        a.scheme() == b.scheme()
            && a.host_str() == b.host_str()
            && a.port_or_known_default() == b.port_or_known_default()
            && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
    })
}

fn shown(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| "(a URL that does not parse)".to_owned(), |u| redacted(&u))
}

/// A Cedar app's log drain steps, and the token of drainpipe's drain when it is there already.
fn log_drain_steps(
    desired: &Desired,
    want: &DesiredApp,
    have: &[LogDrain],
    remove_others: bool,
) -> (Vec<Step>, Option<String>) {
    let url = desired.drain_url(want);
    let step = |op: Op, sign: char, what: String| Step { app: want.name.clone(), op, sign, what };
    let ours: Vec<&LogDrain> =
        have.iter().filter(|d| d.addon.is_none() && same_endpoint(&desired.url, &d.url)).collect();
    let kept = ours.iter().find(|d| d.url == url);
    let mut steps = Vec::new();
    match kept {
        Some(d) => steps.push(step(Op::Keep, '=', format!("log drain {} ({})", shown(&d.url), d.token))),
        None => steps.push(step(Op::AddLogDrain { url: url.clone() }, '+', format!("log drain {}", shown(&url)))),
    }
    for d in ours.iter().filter(|d| d.url != url || kept.is_some_and(|k| k.id != d.id)) {
        let why = if d.url == url { "drainpipe's, a second copy" } else { "drainpipe's, replaced" };
        steps.push(step(
            Op::RemoveLogDrain { id: d.id.clone() },
            '-',
            format!("log drain {} ({}): {why}", shown(&d.url), d.token),
        ));
    }
    for d in have.iter().filter(|d| !ours.iter().any(|o| o.id == d.id)) {
        let what = format!("log drain {} ({})", shown(&d.url), d.token);
        steps.push(match (&d.addon, remove_others) {
            (Some(_), _) => step(Op::Keep, '!', format!("{what}: an add-on's, kept")),
            (None, true) => {
                step(Op::RemoveLogDrain { id: d.id.clone() }, '-', format!("{what}: not drainpipe's, removed as asked"))
            }
            (None, false) => step(Op::Keep, '!', format!("{what}: not drainpipe's, kept")),
        });
    }
    (steps, kept.map(|d| d.token.clone()))
}

/// The exporter a Fir app's telemetry drain should have.
fn wanted_exporter(desired: &Desired) -> Exporter {
    let mut headers = BTreeMap::new();
    if let Some(token) = &desired.otlp_token {
        headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
    }
    Exporter {
        kind: "otlphttp".to_owned(),
        endpoint: desired.otlp_url.as_str().trim_end_matches('/').to_owned(),
        headers,
    }
}

fn sorted(signals: &[String]) -> Vec<String> {
    let mut s = signals.to_vec();
    s.sort();
    s.dedup();
    s
}

/// A Fir app's telemetry drain steps.
fn telemetry_steps(
    desired: &Desired,
    want: &DesiredApp,
    app: &App,
    have: &[TelemetryDrain],
    remove_others: bool,
) -> Vec<Step> {
    let exporter = wanted_exporter(desired);
    let signals = sorted(&want.signals);
    let step = |op: Op, sign: char, what: String| Step { app: want.name.clone(), op, sign, what };
    let describe = |signals: &[String], endpoint: &str| format!("telemetry drain {endpoint} [{}]", signals.join(", "));
    let is_ours = |d: &TelemetryDrain| same_endpoint(&desired.otlp_url, &d.exporter.endpoint);
    let mut ours = have.iter().filter(|d| is_ours(d));
    let mut steps = Vec::new();
    match ours.next() {
        Some(d) if sorted(&d.signals) == signals && d.exporter == exporter => {
            steps.push(step(Op::Keep, '=', format!("{} ({})", describe(&signals, &exporter.endpoint), d.id)));
        }
        Some(d) => {
            let op =
                Op::UpdateTelemetryDrain { id: d.id.clone(), signals: signals.clone(), exporter: exporter.clone() };
            let was = describe(&sorted(&d.signals), &d.exporter.endpoint);
            steps.push(step(op, '~', format!("{} ({}), was {was}", describe(&signals, &exporter.endpoint), d.id)));
        }
        None => {
            let op =
                Op::AddTelemetryDrain { app_id: app.id.clone(), signals: signals.clone(), exporter: exporter.clone() };
            steps.push(step(op, '+', describe(&signals, &exporter.endpoint)));
        }
    }
    for d in ours {
        let what = format!("{} ({}): drainpipe's, a second copy", describe(&d.signals, &d.exporter.endpoint), d.id);
        steps.push(step(Op::RemoveTelemetryDrain { id: d.id.clone() }, '-', what));
    }
    for d in have.iter().filter(|d| !is_ours(d)) {
        let what = format!("{} ({})", describe(&d.signals, &d.exporter.endpoint), d.id);
        steps.push(match remove_others {
            true => step(
                Op::RemoveTelemetryDrain { id: d.id.clone() },
                '-',
                format!("{what}: not drainpipe's, removed as asked"),
            ),
            false => step(Op::Keep, '!', format!("{what}: not drainpipe's, kept")),
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        let file = "url = \"https://logplex:pw@dp.example.com/logs\"\notlp-token = \"t\"\n[[app]]\nname = \"shop\"\nlabels = { env = \"prod\" }\n";
        Desired::parse(file, |_| None).unwrap()
    }

    fn drain(id: &str, url: &str) -> LogDrain {
        LogDrain { id: id.into(), url: url.into(), token: format!("d.{id}"), addon: None }
    }

    #[test]
    fn a_log_drain_is_added_kept_or_replaced_and_others_are_left_alone() {
        let d = desired();
        let want = &d.apps[0];
        let wanted = "https://logplex:pw@dp.example.com/logs?app=shop&env=prod";
        let (steps, token) = log_drain_steps(&d, want, &[], false);
        assert_eq!((steps.len(), &steps[0].op, token), (1, &Op::AddLogDrain { url: wanted.into() }, None));
        let have = [
            drain("1", wanted),
            drain("2", "https://logplex:old@dp.example.com/logs/?app=shop"),
            drain("3", "syslog+tls://logs.papertrailapp.com:1234"),
            LogDrain {
                addon: Some(serde_json::json!({"name": "papertrail-x"})),
                ..drain("4", "https://dp.example.com/logs")
            },
        ];
        let (steps, token) = log_drain_steps(&d, want, &have, false);
        let signs: String = steps.iter().map(|s| s.sign).collect();
        assert_eq!(signs, "=-!!");
        assert_eq!(token.as_deref(), Some("d.1"));
        assert!(steps.iter().all(|s| !s.what.contains("pw@") && !s.what.contains("old@")), "{steps:?}");
        let (steps, _) = log_drain_steps(&d, want, &have, true);
        let removed: Vec<&Op> = steps.iter().filter(|s| s.sign == '-').map(|s| &s.op).collect();
        assert_eq!(
            removed,
            [&Op::RemoveLogDrain { id: "2".into() }, &Op::RemoveLogDrain { id: "3".into() }],
            "never an add-on's"
        );
        let (steps, _) = log_drain_steps(&d, want, &[drain("2", "https://x:y@dp.example.com/logs?app=shop")], false);
        assert_eq!(steps.iter().map(|s| s.sign).collect::<String>(), "+-", "replaced: the new one first");
    }

    #[test]
    fn a_telemetry_drain_is_changed_in_place() {
        let d = desired();
        let app = App { id: "01234567-89ab-cdef-0123-456789abcdef".into(), name: "shop".into(), generation: None };
        let exporter = wanted_exporter(&d);
        assert_eq!(exporter.endpoint, "https://dp.example.com");
        assert_eq!(exporter.headers["Authorization"], "Bearer t");
        let current = TelemetryDrain { id: "t1".into(), signals: vec!["logs".into()], exporter: exporter.clone() };
        let steps = telemetry_steps(&d, &d.apps[0], &app, std::slice::from_ref(&current), false);
        assert_eq!(steps[0].sign, '=');
        let stale = TelemetryDrain { exporter: Exporter { headers: BTreeMap::new(), ..exporter }, ..current };
        let steps = telemetry_steps(&d, &d.apps[0], &app, &[stale], false);
        assert!(matches!(&steps[0].op, Op::UpdateTelemetryDrain { id, .. } if id == "t1"), "{steps:?}");
        assert!(!steps[0].what.contains("Bearer"));
    }
}
