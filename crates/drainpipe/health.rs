//! `/healthz`, `/readyz` and `/metrics`, and the probe that keeps readiness current.
//!
//! `/healthz` says the process runs, and fails (503, naming it) once a task it needs stopped. `/readyz` says drainpipe should get traffic: it is
//! accepting drains (not shutting down, and the spool or the memory queue has room). Whether
//! Elasticsearch answers is reported beside it (in the body, and as
//! `drainpipe_elasticsearch_reachable`) but does not decide it: during an outage the spool is
//! what should take the traffic, and a load balancer that drops every replica would lose it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drainpipe_bulk_indexer::Client;
use drainpipe_delivery::{Fill, FillGauge};
use drainpipe_ingest::{ExtraRoutes, MemoryBudget};
use http_body_util::Full;
use hyper::{header, Method, Response, StatusCode};
use tokio::sync::watch;

use crate::metrics;
use crate::serve::Phase;
use crate::supervise::Supervisor;

/// Elasticsearch counts as answering when it answered this recently.
pub const READY_WINDOW: Duration = Duration::from_secs(15);
/// The probe asks Elasticsearch this often (so an idle drainpipe still knows).
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// The spool, the memory queue and the receive budget count as full above this share.
const FULL_SHARE: f64 = 0.95;

/// What `/readyz` looks at.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub client: Client,
    /// How full the hand-off (spool or memory queue) is; it does not keep the queue open.
    pub handoff: Option<FillGauge>,
    /// `--spool-max-bytes`: the spool counts as full near it.
    pub spool_max_bytes: u64,
    pub budget: MemoryBudget,
    /// Past `Running`, a draining replica takes no new traffic.
    pub phase: watch::Receiver<Phase>,
    /// A task drainpipe needs that stopped fails `/healthz` and `/readyz`.
    pub supervisor: Supervisor,
}

impl Readiness {
    /// `Err` names why drainpipe does not accept drains now. `Ok` carries Elasticsearch's
    /// state, for the body.
    pub fn check(&self) -> Result<String, String> {
        if let Some(failed) = self.supervisor.failure() {
            return Err(failed.to_string());
        }
        if *self.phase.borrow() != Phase::Running {
            return Err("shutting down".to_owned());
        }
        match self.handoff.as_ref().and_then(FillGauge::now) {
            Some(Fill::Spool { used_bytes }) if used_bytes as f64 >= self.spool_max_bytes as f64 * FULL_SHARE => {
                return Err(format!("spool {used_bytes} of {} bytes full", self.spool_max_bytes));
            }
            Some(Fill::Memory { frames, max_frames }) if frames as f64 > max_frames as f64 * FULL_SHARE => {
                return Err(format!("memory queue full ({frames} frames)"));
            }
            _ => {}
        }
        let (used, max) = (self.budget.used_bytes(), self.budget.max_bytes());
        if used as f64 >= max as f64 * FULL_SHARE {
            return Err(format!("receive memory {used} of {max} bytes in use"));
        }
        Ok(self.elasticsearch())
    }

    /// One line on whether Elasticsearch answers.
    pub fn elasticsearch(&self) -> String {
        if let Some(r) = self.client.refusal() {
            let what = if r.status == 401 { "drainpipe's credentials" } else { "drainpipe's privileges" };
            let secs = r.for_how_long().as_secs();
            return format!("elasticsearch: refusing {what} ({}) for {secs}s (frames wait in the queue)", r.status);
        }
        match self.client.since_last_answer() {
            Some(d) if d <= READY_WINDOW => "elasticsearch: answering".to_owned(),
            Some(d) => format!("elasticsearch: not answering for {}s (frames wait in the queue)", d.as_secs()),
            None => "elasticsearch: not answered yet (frames wait in the queue)".to_owned(),
        }
    }
}

/// Asks Elasticsearch for its health every few seconds; each answer refreshes readiness.
pub async fn probe(client: Client) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = client.health().await {
            tracing::debug!(error = %e, "Elasticsearch health probe failed");
        }
    }
}

/// The routes served beside `POST /logs` (and alone on `--metrics-listen`). `metrics` says
/// whether `/metrics` is among them.
pub fn routes(readiness: Readiness, with_metrics: bool) -> ExtraRoutes {
    Arc::new(move |method: &Method, path: &str| {
        if method != Method::GET {
            return None;
        }
        let text = "text/plain; charset=utf-8";
        let (status, content_type, body) = match path {
            "/healthz" => match readiness.supervisor.failure() {
                None => (StatusCode::OK, text, Bytes::from_static(b"ok\n")),
                Some(failed) => (StatusCode::SERVICE_UNAVAILABLE, text, Bytes::from(format!("failing: {failed}\n"))),
            },
            "/readyz" => match readiness.check() {
                Ok(es) => (StatusCode::OK, text, Bytes::from(format!("ready\n{es}\n"))),
                Err(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    text,
                    Bytes::from(format!("not ready: {why}\n{}\n", readiness.elasticsearch())),
                ),
            },
            "/metrics" if with_metrics => {
                if let Some(handoff) = &readiness.handoff {
                    handoff.update_metrics();
                }
                readiness.budget.update_metrics();
                (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", Bytes::from(metrics::render()))
            }
            _ => return None,
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
        Some(r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_and_readyz_fail_naming_the_task_once_one_stopped() {
        let (_phase_tx, phase) = watch::channel(Phase::Running);
        let (supervisor, _ended) = Supervisor::new(phase.clone());
        let readiness = Readiness {
            client: Client::new("http://127.0.0.1:9").unwrap(),
            handoff: None,
            spool_max_bytes: 0,
            budget: MemoryBudget::new(1 << 20),
            phase,
            supervisor: supervisor.clone(),
        };
        let routes = routes(readiness, false);
        let get = |path: &str| routes(&Method::GET, path).unwrap();
        assert_eq!(get("/healthz").status(), StatusCode::OK);
        assert_eq!(get("/readyz").status(), StatusCode::OK);
        tokio::spawn(supervisor.watch("pipeline", async {})).await.unwrap();
        for path in ["/healthz", "/readyz"] {
            let answer = get(path);
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            let body = http_body_util::BodyExt::collect(answer.into_body()).await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("the pipeline task stopped: it returned"), "{path}: {body}");
        }
    }
}
