//! A [`Plan`] carried out, app by app, step by step in its order (so a replaced log drain's
//! successor is there before it goes). Removing needs to be asked for.

use crate::api::{ApiError, PlatformApi};
use crate::plan::{Op, Plan};

/// What applying did.
#[derive(Debug, Default)]
pub struct Applied {
    pub done: usize,
    /// Steps that failed, each with why; an app's later steps are skipped after one (a
    /// replaced drain is not removed when its successor could not be added).
    pub failed: Vec<String>,
    /// Tokens of the log drains added: with the plan's, serve's `--drain-token` map.
    pub new_tokens: Vec<(String, String)>,
}

/// Why nothing was applied.
#[derive(Debug, thiserror::Error)]
#[error("the plan removes {0} drain(s): nothing was changed; apply with --yes to remove them")]
pub struct RemovalsNotAllowed(pub usize);

/// Carries `plan` out. With removals in it and `allow_removals` false, nothing is done.
pub async fn apply(api: &PlatformApi, plan: &Plan, allow_removals: bool) -> Result<Applied, RemovalsNotAllowed> {
    let removals = plan.count('-');
    if removals > 0 && !allow_removals {
        return Err(RemovalsNotAllowed(removals));
    }
    let mut applied = Applied::default();
    let mut broken_app: Option<&str> = None;
    for step in &plan.steps {
        if step.op == Op::Keep || broken_app == Some(step.app.as_str()) {
            continue;
        }
        match run(api, &step.app, &step.op).await {
            Ok(token) => {
                tracing::info!(app = %step.app, "{} {}", step.sign, step.what);
                applied.done += 1;
                applied.new_tokens.extend(token.map(|t| (t, step.app.clone())));
            }
            Err(e) => {
                applied.failed.push(format!("{}: {} {}: {e}", step.app, step.sign, step.what));
                broken_app = Some(&step.app);
            }
        }
    }
    Ok(applied)
}

/// One step; a log drain added gives its token.
async fn run(api: &PlatformApi, app: &str, op: &Op) -> Result<Option<String>, ApiError> {
    match op {
        Op::AddLogDrain { url } => Ok(Some(api.add_log_drain(app, url).await?.token)),
        Op::RemoveLogDrain { id } => api.remove_log_drain(app, id).await.map(|()| None),
        Op::AddTelemetryDrain { app_id, signals, exporter } => {
            api.add_telemetry_drain(app_id, signals, exporter).await.map(|_| None)
        }
        Op::UpdateTelemetryDrain { id, signals, exporter } => {
            api.update_telemetry_drain(id, signals, exporter).await.map(|_| None)
        }
        Op::RemoveTelemetryDrain { id } => api.remove_telemetry_drain(id).await.map(|()| None),
        Op::Keep => Ok(None),
    }
}
