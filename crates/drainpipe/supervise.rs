//! Supervision of `serve`'s long-lived tasks: the receivers, the pipeline, the indexer, the
//! spool's and Elasticsearch's probes. Each runs inside [`Supervisor::watch`]; one that ends
//! while the process should run (it returned, failed or panicked) is a [`TaskEnded`]: from
//! then on `/healthz` and `/readyz` answer 503 naming it, and `serve` stops and exits non-zero
//! within [`EXIT_WITHIN`], so that systemd, Kubernetes or Heroku start it again. A drainpipe
//! that accepts frames it will never deliver, while every health signal stays green, is the
//! one failure this exists to rule out.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use drainpipe_delivery::panic_guard::LAST_PANIC;
use drainpipe_delivery::TaskEnd;

use crate::metrics;
use crate::serve::Phase;

/// From a task's end to the process's exit, at most (shutdown's own deadline is capped to it).
pub const EXIT_WITHIN: Duration = Duration::from_secs(4);

/// A long-lived task that ended while the process was running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnded {
    pub task: &'static str,
    pub error: String,
}

impl std::fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} task stopped: {}", self.task, self.error)
    }
}

/// Watches tasks; cloned into every place that starts one or reports health.
#[derive(Clone, Debug)]
pub struct Supervisor {
    ended: mpsc::Sender<TaskEnded>,
    /// The first task that ended while running: what the health endpoints report.
    failed: Arc<OnceLock<TaskEnded>>,
    phase: watch::Receiver<Phase>,
}

/// What a task's result says about how it ended.
pub trait Ending {
    fn describe(&self) -> String;
}

impl Ending for () {
    fn describe(&self) -> String {
        "it returned".to_owned()
    }
}

impl<T> Ending for anyhow::Result<T> {
    fn describe(&self) -> String {
        match self {
            Ok(_) => "it returned".to_owned(),
            Err(e) => format!("{e:#}"),
        }
    }
}

impl Supervisor {
    /// A supervisor and the receiver of the ends it sees.
    pub fn new(phase: watch::Receiver<Phase>) -> (Supervisor, mpsc::Receiver<TaskEnded>) {
        // One message per task at most: a handful of tasks.
        let (ended, rx) = mpsc::channel(64);
        (Supervisor { ended, failed: Arc::default(), phase }, rx)
    }

    /// `task` as a future that reports its own end, however it ends (a panic included: the
    /// report is made while unwinding).
    pub fn watch<F>(&self, task: &'static str, future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Ending + Send,
    {
        let guard = EndGuard { task, supervisor: self.clone(), error: None };
        async move {
            let mut guard = guard;
            let out = future.await;
            guard.returned(out.describe());
            out
        }
    }

    /// Reports the end of a task that was not started through [`Supervisor::watch`]
    /// (delivery's, which reports its own ends).
    pub fn report_end(&self, ended: TaskEnd) {
        self.report(TaskEnded { task: ended.task, error: ended.error });
    }

    /// Where shutdown is.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }

    /// The task that ended while drainpipe was running, if one did.
    pub fn failure(&self) -> Option<&TaskEnded> {
        self.failed.get()
    }

    fn report(&self, ended: TaskEnded) {
        // Ends during shutdown are the plan, not a failure.
        if *self.phase.borrow() != Phase::Running {
            return;
        }
        metrics::TASK_FAILURES.with_label_values(&[ended.task]).inc();
        tracing::error!(task = ended.task, error = %ended.error, "a task drainpipe needs stopped; /healthz now fails and drainpipe exits");
        let _ = self.failed.set(ended.clone());
        let _ = self.ended.try_send(ended);
    }
}

/// Reports its task's end when dropped: after it returned, when it panicked (dropped while
/// unwinding), and when it was aborted (only ever at shutdown, when nothing is reported).
struct EndGuard {
    task: &'static str,
    supervisor: Supervisor,
    /// How it ended, once it returned.
    error: Option<String>,
}

impl EndGuard {
    fn returned(&mut self, how: String) {
        self.error = Some(how);
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let error = match self.error.take() {
            Some(returned) => returned,
            None if std::thread::panicking() => {
                let message = LAST_PANIC.with(|p| p.borrow_mut().take());
                format!("it panicked: {}", message.as_deref().unwrap_or("(no message)"))
            }
            // Dropped without finishing or panicking: aborted, i.e. shut down.
            None => return,
        };
        self.supervisor.report(TaskEnded { task: self.task, error });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_returns_fails_or_panics_while_running_is_reported_once_named() {
        drainpipe_delivery::panic_guard::install_hook();
        let (phase_tx, phase) = watch::channel(Phase::Running);
        let (supervisor, mut ended) = Supervisor::new(phase);
        tokio::spawn(supervisor.watch("pipeline", async {})).await.unwrap();
        assert_eq!(ended.recv().await.unwrap(), TaskEnded { task: "pipeline", error: "it returned".into() });
        assert_eq!(supervisor.failure().map(|f| f.task), Some("pipeline"));

        let failing =
            supervisor.watch("indexer", async { anyhow::Result::<()>::Err(anyhow::anyhow!("templates refused")) });
        tokio::spawn(failing).await.unwrap().unwrap_err();
        assert_eq!(ended.recv().await.unwrap().error, "templates refused");

        let panicking = supervisor.watch("spool reader", async { panic!("boom at record 7") as () });
        assert!(tokio::spawn(panicking).await.unwrap_err().is_panic());
        let end = ended.recv().await.unwrap();
        assert_eq!(end.task, "spool reader");
        assert!(end.error.contains("boom at record 7"), "{end:?}");
        assert_eq!(supervisor.failure().map(|f| f.task), Some("pipeline"), "the first failure is the one reported");

        // Shutting down: tasks ending, or aborted, are not failures.
        phase_tx.send_replace(Phase::StopReceiving);
        tokio::spawn(supervisor.watch("http receiver", async {})).await.unwrap();
        let aborted = tokio::spawn(supervisor.watch("probe", std::future::pending::<()>()));
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        assert!(ended.try_recv().is_err());
    }
}
