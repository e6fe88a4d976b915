//! SIGHUP (what `systemctl reload` sends): the configuration read again, as at start (flags,
//! variables, the file), and what can change without a restart swapped in, all or nothing:
//! who may send (basic-auth pairs, drain tokens and their apps, OTLP tokens), the rules, and the
//! TLS certificate (its files read again). A configuration that does not validate changes
//! nothing: the running one stays, the log says why, and the failure is counted. Options that
//! need a restart (listeners, the spool, Elasticsearch, …) are named in the log when they differ
//! from those the process started with.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use drainpipe_ingest::{Access, LiveAccess, ReloadableCert};
use drainpipe_rules::Rules;
use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::commands::rules;
use crate::config::ServeOptions;
use crate::metrics::{CONFIG_LAST_RELOAD_SUCCESS, CONFIG_RELOADS};

/// Options a reload applies; every other option needs a restart. The certificate's files are
/// read again on reload, but a certificate at another path needs a restart.
const RELOADED: [&str; 3] = ["basic-auth", "drain-token", "otlp-token"];

/// What a reload swaps, and what it compares against.
#[derive(Debug)]
pub struct Reloadable {
    pub access: LiveAccess,
    pub rules: watch::Sender<Arc<Rules>>,
    pub cert: Option<Arc<ReloadableCert>>,
    /// The options the process started with (redacted), for what needs a restart.
    started: toml::Table,
}

/// Who may send under `options`.
pub fn access_of(options: &ServeOptions) -> Access {
    let r = &options.receive;
    Access::new(&r.credentials(), r.drain_tokens(), r.otlp_tokens())
}

impl Reloadable {
    pub fn new(
        options: &ServeOptions,
        access: LiveAccess,
        rules: watch::Sender<Arc<Rules>>,
        cert: Option<Arc<ReloadableCert>>,
    ) -> Reloadable {
        loaded();
        Reloadable { access, rules, cert, started: redacted(options) }
    }

    /// Reads the configuration again from the process's own command line and environment, and
    /// applies it, or keeps the running one; says which in the log.
    pub fn reload(&self) {
        let args: Vec<OsString> = std::env::args_os().collect();
        match self.apply(&args, |name| std::env::var(name).ok()) {
            Ok(restart) => {
                CONFIG_RELOADS.with_label_values(&["success"]).inc();
                loaded();
                if !restart.is_empty() {
                    tracing::warn!(
                        options = %restart.join(", "),
                        "SIGHUP: these options changed and take effect only after a restart"
                    );
                }
            }
            Err(why) => {
                CONFIG_RELOADS.with_label_values(&["failure"]).inc();
                tracing::error!(error = %why, "SIGHUP: configuration not reloaded; the running one is kept");
            }
        }
    }

    /// Parses `args` with the variables `env` gives, checks it all, then swaps what reloads;
    /// returns the options that differ from the start's and need a restart.
    fn apply(&self, args: &[OsString], env: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
        let cli = crate::config::parse::<Cli>(args, env).map_err(|e| e.to_string().trim().to_owned())?;
        let Command::Serve(options) = cli.command else {
            return Err("the command line is not serve's".to_owned());
        };
        let problems = options.problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let rules = rules::read(options.general.config.as_deref()).map_err(|p| p.join("; "))?;
        if let (Some(cert), Some((cert_file, key_file))) = (&self.cert, options.receive.tls_files()) {
            // Checked before anything is swapped; then read again in place.
            ReloadableCert::load(cert_file, key_file).map_err(|e| e.to_string())?;
            cert.reload().map_err(|e| e.to_string())?;
        }
        let access = access_of(&options);
        let (credentials, tokens, otlp) =
            (access.credential_count(), access.drain_tokens.len(), access.otlp_tokens.len());
        let names: Vec<String> = rules.rules().iter().map(|r| r.name.clone()).collect();
        self.access.replace(access);
        self.rules.send_replace(Arc::new(rules));
        tracing::info!(
            basic_auth = credentials,
            drain_tokens = tokens,
            otlp_tokens = otlp,
            rules = %names.join(", "),
            certificate = self.cert.is_some(),
            "SIGHUP: configuration reloaded"
        );
        Ok(needing_restart(&self.started, &redacted(&options)))
    }
}

fn loaded() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    CONFIG_LAST_RELOAD_SUCCESS.set(now);
}

fn redacted(options: &ServeOptions) -> toml::Table {
    toml::from_str(&options.to_redacted_toml()).unwrap_or_default()
}

/// The options, other than [`RELOADED`], whose values differ between `started` and `now`.
fn needing_restart(started: &toml::Table, now: &toml::Table) -> Vec<String> {
    let mut keys: Vec<&String> = started.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| !RELOADED.contains(&k.as_str()) && started.get(*k) != now.get(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Vec<OsString> {
        ["drainpipe", "serve"].iter().chain(extra).map(OsString::from).collect()
    }

    fn options(extra: &[&str]) -> ServeOptions {
        match crate::config::parse::<Cli>(&args(extra), |_| None).unwrap().command {
            Command::Serve(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_reload_swaps_access_and_rules_whole_or_keeps_them_and_names_what_needs_a_restart() {
        let dir = std::env::temp_dir().join(format!("drainpipe-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("drainpipe.toml");
        std::fs::write(&file, "drain-token = [\"d.one=shop\"]\n").unwrap();
        let path = file.to_str().unwrap();
        let first = options(&["--config", path]);
        let access = LiveAccess::new(access_of(&first));
        let (rules_tx, _rules) = watch::channel(Arc::new(Rules::default()));
        let reloadable = Reloadable::new(&first, access.clone(), rules_tx.clone(), None);
        assert_eq!(access.current().drain_tokens.app("d.one"), Some("shop"));

        let text = "drain-token = [\"d.two=cart\"]\nbasic-auth = [\"u:p\"]\nmax-connections = 7\n\n[[rule]]\nname = \"quiet\"\ndataset = \"router\"\naction = \"drop\"\n";
        std::fs::write(&file, text).unwrap();
        let restart = reloadable.apply(&args(&["--config", path]), |_| None).unwrap();
        assert_eq!(restart, ["max-connections"]);
        let now = access.current();
        assert_eq!((now.drain_tokens.app("d.one"), now.drain_tokens.app("d.two")), (None, Some("cart")));
        assert_eq!(now.credential_count(), 1);
        assert_eq!(rules_tx.borrow().rules()[0].name, "quiet");

        // A file that does not validate changes nothing.
        std::fs::write(&file, "drain-token = [\"d.three=x\"]\n[[rule]]\naction = \"explode\"\n").unwrap();
        let why = reloadable.apply(&args(&["--config", path]), |_| None).unwrap_err();
        assert!(why.contains("drainpipe.toml:2: ") && why.contains("explode"), "{why}");
        assert_eq!(access.current().drain_tokens.app("d.two"), Some("cart"));
        assert_eq!(access.current().drain_tokens.app("d.three"), None);
        assert_eq!(rules_tx.borrow().rules().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
