//! The drainpipe under test: started as a child (pinned to its own CPU with `taskset`), waited
//! on until `/readyz` answers, measured from /proc, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

#[derive(Debug)]
pub struct Drainpipe {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub log: PathBuf,
}

/// How to start drainpipe.
#[derive(Clone, Debug)]
pub struct Launch {
    pub binary: PathBuf,
    /// Pin drainpipe to these CPUs (a `taskset` list); `None`: no pinning.
    pub cpus: Option<String>,
    /// A spool in this folder.
    pub spool: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

impl Drainpipe {
    /// A fresh drainpipe (an empty spool) on a free port, its log named after `namespace`.
    pub async fn start(
        launch: &Launch,
        elasticsearch: &str,
        namespace: &str,
        workdir: &Path,
    ) -> anyhow::Result<Drainpipe> {
        let log = workdir.join(format!("drainpipe-{namespace}.log"));
        Drainpipe::start_on(launch, elasticsearch, namespace, free_port()?, log, true).await
    }

    /// A drainpipe on `port`, logging to `log` (appended to); `fresh`: empty its spool first,
    /// else start on whatever the spool holds (a restart).
    pub async fn start_on(
        launch: &Launch,
        elasticsearch: &str,
        namespace: &str,
        port: u16,
        log: PathBuf,
        fresh: bool,
    ) -> anyhow::Result<Drainpipe> {
        let mut command = match &launch.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&launch.binary);
                c
            }
            None => Command::new(&launch.binary),
        };
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--elasticsearch-url", elasticsearch])
            .args(["--namespace", namespace])
            .env_remove("PORT")
            .env_remove("ELASTICSEARCH_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log)?);
        if let Some(spool) = &launch.spool {
            if fresh {
                let _ = std::fs::remove_dir_all(spool);
            }
            command.arg("--spool-dir").arg(spool);
        }
        command.args(&launch.extra_args);
        let child = command.spawn().with_context(|| format!("cannot start {}", launch.binary.display()))?;
        let mut drainpipe = Drainpipe { pid: child.id(), child, url: format!("http://127.0.0.1:{port}"), log };
        drainpipe.wait_ready().await?;
        Ok(drainpipe)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("drainpipe exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if let Ok(a) = client.get(format!("{}/readyz", self.url)).send().await {
                if a.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("drainpipe was not ready after 60 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then the exit (SIGKILL after 30 s).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("drainpipe did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// A run that fails part-way leaves no drainpipe behind.
impl Drop for Drainpipe {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Pins this process (every thread it will start) to the CPUs drainpipe does not get, when
/// there are any; returns drainpipe's CPU list.
pub fn split_cpus(drainpipe_cpu: &str) -> Option<String> {
    if drainpipe_cpu == "none" || Command::new("taskset").arg("-V").output().is_err() {
        return None;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let others: Vec<String> = (0..cpus).map(|c| c.to_string()).filter(|c| c != drainpipe_cpu).collect();
    if others.is_empty() || others.len() == cpus {
        return None;
    }
    let pinned = Command::new("taskset")
        .args(["-a", "-p", "-c", &others.join(","), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    pinned.is_ok_and(|s| s.success()).then(|| drainpipe_cpu.to_owned())
}
