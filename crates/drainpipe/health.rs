//! `/healthz`, `/readyz` and `/metrics`, and the probe that keeps readiness current.
//!
//! `/healthz` says the process runs. `/readyz` says drainpipe should get traffic: Elasticsearch
//! answered within the last [`READY_WINDOW`], and the spool (if any) has room.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drainpipe_bulk_indexer::Client;
use drainpipe_ingest::ExtraRoutes;
use drainpipe_spool::Spool;
use http_body_util::Full;
use hyper::{header, Method, Response, StatusCode};

use crate::metrics;

/// Elasticsearch must have answered this recently for `/readyz` to say ready.
pub const READY_WINDOW: Duration = Duration::from_secs(15);
/// The probe asks Elasticsearch this often (so an idle drainpipe still knows).
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// The spool counts as full above this share of its limit.
const SPOOL_FULL_SHARE: f64 = 0.95;

/// What `/readyz` looks at.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub client: Client,
    pub spool: Option<(Spool, u64)>,
}

impl Readiness {
    /// `Err` names why drainpipe is not ready.
    pub fn check(&self) -> Result<(), String> {
        match self.client.since_last_answer() {
            Some(d) if d <= READY_WINDOW => {}
            Some(d) => return Err(format!("Elasticsearch has not answered for {}s", d.as_secs())),
            None => return Err("Elasticsearch has not answered yet".to_owned()),
        }
        if let Some((spool, max)) = &self.spool {
            if spool.used_bytes() as f64 >= *max as f64 * SPOOL_FULL_SHARE {
                return Err(format!("spool {} of {max} bytes full", spool.used_bytes()));
            }
        }
        Ok(())
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
            "/healthz" => (StatusCode::OK, text, Bytes::from_static(b"ok\n")),
            "/readyz" => match readiness.check() {
                Ok(()) => (StatusCode::OK, text, Bytes::from_static(b"ready\n")),
                Err(why) => (StatusCode::SERVICE_UNAVAILABLE, text, Bytes::from(format!("not ready: {why}\n"))),
            },
            "/metrics" if with_metrics => {
                if let Some((spool, _)) = &readiness.spool {
                    spool.update_metrics();
                }
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
