//! Every option, defined once: a field of one of the option groups below. Its `#[arg]` gives
//! the flag, help and default; its type parses and validates the value and, when it is a
//! secret, redacts it when printed; everything else is derived from the flag's name:
//! the environment variable (`DRAINPIPE_` and the name upper-cased, `-` as `_`) and the TOML
//! key (the name itself). Adding an option is adding a field.
//!
//! Precedence: flags, then `DRAINPIPE_*` variables, then the platform's variables
//! ([`PLATFORM_VARIABLES`]), then the TOML file (`--config`), then the built-in defaults. clap
//! handles the first two and the last; [`parse`] turns the platform's variables and the file
//! into clap defaults, so one parse does it all and every value goes through the same parser.
//!
//! Groups are what commands share: `serve` and `check-config` take them all, `setup` the
//! general and Elasticsearch ones, `replay` those and the bulk ones.

mod values;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Command};
use drainpipe_bulk_indexer::{Client, ClientConfig, DeadLetterConfig, IndexerConfig};
use drainpipe_ingest::{BearerTokens, Credential, DrainTokens};
use drainpipe_spool::SpoolConfig;
use serde::Serialize;

pub use values::{
    ByteSize, Credentials, DrainToken, ElasticsearchUrl, FsyncPolicy, HumanDuration, ListenAddr, LogFormat, Namespace,
    OtlpToken, Retention, RetentionRule, Secret,
};

/// Variables other software sets, read for an option when neither its flag nor its
/// `DRAINPIPE_*` variable is given (the first one set wins): Heroku's `PORT`, the search
/// add-ons' URLs, and the drain-token variable's name before 0.2.
pub const PLATFORM_VARIABLES: &[(&str, &[&str])] = &[
    ("listen", &["PORT"]),
    ("elasticsearch-url", &["BONSAI_URL", "SEARCHBOX_URL", "ELASTICSEARCH_URL"]),
    ("drain-token", &["DRAINPIPE_DRAIN_TOKENS"]),
];

/// Options every command takes.
#[derive(Args, Serialize, Debug, Clone)]
#[serde(rename_all = "kebab-case")]
pub struct GeneralOptions {
    /// TOML file with any of the options, keyed by flag name (keys other commands take are
    /// ignored, unknown ones refused)
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Log lines as `text` (for people) or `json` (for log shippers)
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// Where documents go.
#[derive(Args, Serialize, Debug, Clone)]
#[command(next_help_heading = "Elasticsearch")]
#[serde(rename_all = "kebab-case")]
pub struct ElasticsearchOptions {
    /// Elasticsearch URL, credentials may be in it; repeat (or comma-separate) for several
    /// nodes. Unset: BONSAI_URL, SEARCHBOX_URL or ELASTICSEARCH_URL
    #[arg(long, value_name = "URL", value_delimiter = ',', default_value = "http://127.0.0.1:9200")]
    pub elasticsearch_url: Vec<ElasticsearchUrl>,

    /// Elasticsearch API key, `id:key` or the base64 `encoded` form
    #[arg(long, value_name = "KEY", hide_env_values = true)]
    pub elasticsearch_api_key: Option<Secret>,

    /// PEM file of CA certificates to trust for Elasticsearch, besides the built-in Mozilla roots
    #[arg(long, value_name = "FILE")]
    pub elasticsearch_ca: Option<PathBuf>,

    /// gzip bulk request bodies
    #[arg(long)]
    pub elasticsearch_gzip: bool,

    /// Data stream namespace: documents go to `logs-heroku.<dataset>-<NAMESPACE>`
    #[arg(long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: Namespace,

    /// Keep documents this long (`30d`, `12h`, or `forever`), and per dataset with
    /// `DATASET=AGE` (`router=7d`); repeatable, or comma-separated. Where the server has data
    /// stream lifecycles. Unset: whatever is installed is kept
    #[arg(long, value_name = "AGE", value_delimiter = ',')]
    pub retention: Vec<RetentionRule>,
}

/// How documents are batched into bulk requests.
#[derive(Args, Serialize, Debug, Clone)]
#[command(next_help_heading = "Bulk requests")]
#[serde(rename_all = "kebab-case")]
pub struct BulkOptions {
    /// Documents per bulk request at most
    #[arg(long, value_name = "N", default_value = "2000")]
    pub bulk_max_docs: NonZeroUsize,

    /// Bytes per bulk request at most
    #[arg(long, value_name = "SIZE", default_value = "2MiB")]
    pub bulk_max_bytes: ByteSize,

    /// Longest wait before a partly filled bulk request is sent (50 ms while a sender is idle)
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub bulk_flush_interval: HumanDuration,

    /// Bulk requests in flight at once
    #[arg(long, value_name = "N", default_value = "2")]
    pub bulk_concurrency: NonZeroUsize,
}

/// How drains are received.
#[derive(Args, Serialize, Debug, Clone)]
#[command(next_help_heading = "Receiving")]
#[serde(rename_all = "kebab-case")]
pub struct ReceiveOptions {
    /// Address to receive drains on (`:8080` is every interface). Unset: 0.0.0.0:$PORT when
    /// PORT is set
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: ListenAddr,

    /// Accept drains only with these basic-auth credentials (repeatable, or comma-separated;
    /// a password may hold commas). None: the endpoint is open
    #[arg(long, value_name = "USER:PASS", hide_env_values = true)]
    #[serde(serialize_with = "values::redacted_credentials")]
    pub basic_auth: Vec<Credentials>,

    /// Map a Logplex drain token to an app name (repeatable, or comma-separated); the token's
    /// app wins over the drain URL's app=. When any is set, requests carrying another token get
    /// 403, and syslog lines whose HOSTNAME is not a listed token are dropped
    #[arg(long, value_name = "TOKEN=APP", value_delimiter = ',', hide_env_values = true)]
    pub drain_token: Vec<DrainToken>,

    /// Bearer token OTLP senders must present on /v1/logs (`Authorization: Bearer TOKEN`, as
    /// `heroku telemetry:add --headers` sets it); `TOKEN=APP` binds the token to that app, whatever
    /// the resource names. Repeatable, or comma-separated. Basic auth is accepted there too;
    /// with neither, the OTLP endpoints are open
    #[arg(long, value_name = "TOKEN[=APP]", value_delimiter = ',', hide_env_values = true)]
    pub otlp_token: Vec<OtlpToken>,

    /// With --drain-token, also take HTTPS requests that carry no drain token at all (Private
    /// Spaces drains send none); a token that is sent must still be listed. Basic auth is what
    /// keeps strangers out; the token list routes and tidies
    #[arg(long)]
    pub allow_tokenless: bool,

    /// With --drain-token, also take syslog lines whose HOSTNAME is no drain token at all
    /// (relays, RFC 3164 senders); a drain token that is sent must still be listed. Without
    /// --drain-token the syslog listeners take every line
    #[arg(long)]
    pub syslog_allow_tokenless: bool,

    /// PEM certificate chain: serve HTTPS (and syslog over TLS) with it
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Also receive syslog drains over plain TCP on this address
    #[arg(long, value_name = "ADDR")]
    pub syslog_listen: Option<ListenAddr>,

    /// Also receive syslog drains over TLS on this address (needs --tls-cert/--tls-key)
    #[arg(long, value_name = "ADDR")]
    pub syslog_tls_listen: Option<ListenAddr>,

    /// Serve /metrics (and /healthz, /readyz) on this address instead of the drain listener
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<ListenAddr>,

    /// Largest drain request body, before or after decompression
    #[arg(long, value_name = "SIZE", default_value = "8MiB")]
    pub max_body_size: ByteSize,

    /// Syslog messages longer than this are cut, tagged and indexed
    #[arg(long, value_name = "SIZE", default_value = "64KiB")]
    pub max_message_size: ByteSize,

    /// Connections served at once, per listener
    #[arg(long, value_name = "N", default_value = "1024")]
    pub max_connections: NonZeroUsize,

    /// Memory that received frames may hold at once: request bodies being read and inflated,
    /// and (without a spool) frames waiting for the transform. Past it, drains get 503 and
    /// syslog is not read
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub queue_max_bytes: ByteSize,

    /// Take the client address for the failed-login limiter from the last X-Forwarded-For
    /// entry (behind Heroku's router or a load balancer you run; never on a public port)
    #[arg(long)]
    pub trust_forwarded_for: bool,
}

/// Between receiving and indexing, and the way out.
#[derive(Args, Serialize, Debug, Clone)]
#[command(next_help_heading = "Delivery")]
#[serde(rename_all = "kebab-case")]
pub struct DeliveryOptions {
    /// Durable spool folder: frames are on disk before they are answered 2xx. Without it, a
    /// bounded in-memory queue (lost on a crash)
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Spool size limit; when full, drains get 503 and syslog is not read
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub spool_max_bytes: ByteSize,

    /// The spool's disk does not outlive the process (a Heroku dyno): on SIGTERM, send all it
    /// holds within --shutdown-timeout, not only what is in flight (the rest would be lost)
    #[arg(long)]
    pub spool_ephemeral: bool,

    /// `batch` (fsync before answering, shared by concurrent requests) or an interval such as
    /// `200ms`
    #[arg(long, value_name = "POLICY", default_value = "batch")]
    pub spool_fsync: FsyncPolicy,

    /// Install and update the index templates at start-up. `false` where drainpipe may only
    /// write documents and the templates are managed elsewhere (`drainpipe setup` run by
    /// someone who may, or your own tooling)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub manage_templates: bool,

    /// How long SIGTERM waits for requests in flight before exiting
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub shutdown_timeout: HumanDuration,
}

/// Everything `serve` (and `check-config`) takes.
#[derive(Args, Serialize, Debug, Clone)]
pub struct ServeOptions {
    #[command(flatten)]
    #[serde(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub receive: ReceiveOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub delivery: DeliveryOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub bulk: BulkOptions,
}

/// The environment variable of a flag: `--spool-dir` is `DRAINPIPE_SPOOL_DIR`.
pub fn env_name(flag: &str) -> String {
    format!("DRAINPIPE_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// The command line of `C` as users meet it: every flag with its `DRAINPIPE_*` variable (for
/// the man page and shell completions too).
pub fn command<C: clap::CommandFactory>() -> Command {
    with_env_names(C::command())
}

/// Parses `args` into `C`, with every option layered as the module says. `env` reads the
/// platform's variables (the `DRAINPIPE_*` ones clap reads itself).
pub fn parse<C: clap::Parser>(args: &[OsString], env: impl Fn(&str) -> Option<String>) -> Result<C, clap::Error> {
    let command = command::<C>();
    let matches = command.clone().try_get_matches_from(args)?;
    // The command that takes the options: `serve`, or `list` in `deadletter list`.
    let mut path = Vec::new();
    let mut sub = &matches;
    while let Some((name, next)) = sub.subcommand() {
        path.push(name.to_owned());
        sub = next;
    }
    if path.is_empty() {
        return C::from_arg_matches(&matches);
    }
    // The commands an operator runs by hand on a machine that runs drainpipe read its
    // configuration file when none is named, so they need no flags there.
    let installed = Path::new(INSTALLED_CONFIG);
    let by_hand = OPERATOR_COMMANDS.contains(&path[0].as_str()) && installed.is_file();
    let file =
        sub.try_get_one::<PathBuf>("config").ok().flatten().map(PathBuf::as_path).or(by_hand.then_some(installed));
    let mut fallbacks = match file {
        Some(path) => read_file(path).map_err(|e| clap::Error::raw(clap::error::ErrorKind::Io, format!("{e:#}\n")))?,
        None => BTreeMap::new(),
    };
    for (flag, variables) in PLATFORM_VARIABLES {
        if let Some((var, value)) = variables.iter().find_map(|v| env(v).filter(|s| !s.is_empty()).map(|s| (v, s))) {
            let values = value.split(',').map(|v| v.trim().to_owned()).collect();
            check_value(flag, &values).map_err(|e| invalid(format!("{var}: {e}")))?;
            fallbacks.insert((*flag).to_owned(), values);
        }
    }
    let command = with_defaults(command, &path, &fallbacks);
    C::from_arg_matches(&command.try_get_matches_from(args)?)
}

/// `command` with the subcommand at `path` taking `fallbacks` as its defaults.
fn with_defaults(command: Command, path: &[String], fallbacks: &BTreeMap<String, Vec<String>>) -> Command {
    let Some((name, rest)) = path.split_first() else {
        return fallbacks.iter().fold(command, |sub, (flag, values)| {
            let id = sub.get_arguments().find(|a| a.get_long() == Some(flag.as_str())).map(|a| a.get_id().clone());
            match id {
                Some(id) => sub.mut_arg(id, |a| a.default_values(values.clone())),
                None => sub,
            }
        });
    };
    command.mut_subcommand(name, |sub| with_defaults(sub, rest, fallbacks))
}

/// Where the Debian package installs the configuration (`deploy/drainpipe.toml`).
const INSTALLED_CONFIG: &str = "/etc/drainpipe/drainpipe.toml";

/// Commands that read [`INSTALLED_CONFIG`] when no `--config` is given.
const OPERATOR_COMMANDS: [&str; 3] = ["tail", "search", "deadletter"];

/// Flags that choose what one run does, not how drainpipe is set up: no variable, so a
/// leftover one cannot silently narrow a `deadletter replay`, a `search` or a `tail`.
const NO_VARIABLE: [&str; 16] = [
    "since",
    "reason",
    "rollover",
    "json",
    "until",
    "count",
    "app",
    "dyno",
    "process-type",
    "dataset",
    "level",
    "status",
    "num",
    "no-follow",
    "late",
    "follow-page",
];

/// Every subcommand's flags (at any depth) read `DRAINPIPE_<FLAG>` too, but [`NO_VARIABLE`]'s.
fn with_env_names(command: Command) -> Command {
    command.mut_subcommands(|sub| {
        with_env_names(sub.mut_args(
            |arg| match arg.get_long().map(|flag| (NO_VARIABLE.contains(&flag), env_name(flag))) {
                Some((false, var)) if arg.get_env().is_none() => arg.env(var),
                _ => arg,
            },
        ))
    })
}

/// The file's options as the strings a flag would get; unknown keys and values the flag
/// would refuse are errors that name the file and the key.
fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    let mut options = BTreeMap::new();
    for (key, value) in table {
        let values = match value {
            toml::Value::Array(items) => items.into_iter().map(scalar).collect::<Option<Vec<_>>>(),
            other => scalar(other).map(|v| vec![v]),
        };
        let checked = values
            .ok_or_else(|| "expected a string, number, boolean or array of them".to_owned())
            .and_then(|values| check_value(&key, &values).map(|()| values));
        match checked {
            Ok(values) => options.insert(key, values),
            Err(e) => anyhow::bail!("config file {}: {key}: {e}", path.display()),
        };
    }
    Ok(options)
}

fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `serve`'s command line alone, with its variables.
fn serve_command() -> Command {
    let serve = with_env_names(Command::new("drainpipe").subcommand(ServeOptions::augment_args(Command::new("serve"))));
    serve.find_subcommand("serve").cloned().unwrap_or_default()
}

/// Whether `serve`'s `--<flag>` takes `values` (every option file key is one of serve's).
fn check_value(flag: &str, values: &Vec<String>) -> Result<(), String> {
    let serve = serve_command();
    let Some(arg) = serve.get_arguments().find(|a| a.get_long() == Some(flag)) else {
        return Err("unknown option".to_owned());
    };
    if !arg.get_action().takes_values() {
        return match values.as_slice() {
            [v] if v == "true" || v == "false" => Ok(()),
            _ => Err("expected true or false".to_owned()),
        };
    }
    // Exactly what the flag would do with it, without the environment.
    let serve = serve.mut_args(|a| a.env(None::<&str>));
    let args = std::iter::once("serve".to_owned()).chain(values.iter().map(|v| format!("--{flag}={v}")));
    match serve.try_get_matches_from(args) {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_owned())
        }
    }
}

fn invalid(message: String) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n"))
}

impl ElasticsearchOptions {
    /// The client these options describe.
    pub fn client(&self) -> anyhow::Result<Client> {
        let ca_pem = self.ca_pem()?;
        Ok(Client::with_config(&ClientConfig {
            urls: self.elasticsearch_url.iter().map(|u| u.0.clone()).collect(),
            api_key: self.elasticsearch_api_key.as_ref().map(|k| k.0.clone()),
            ca_pem,
            gzip: self.elasticsearch_gzip,
        })?)
    }

    /// The `--elasticsearch-ca` file's certificates (Kibana is trusted with them too).
    pub fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
        self.elasticsearch_ca.as_ref().map(read).transpose()
    }

    /// Where documents Elasticsearch will never take are kept.
    pub fn dead_letter_stream(&self) -> String {
        drainpipe_delivery::DataStreams::new(&self.namespace.0).dead_letters().to_owned()
    }
}

impl BulkOptions {
    /// Batching and concurrency; dead letters go to the dead-letter stream of `elasticsearch`,
    /// then to `dead_letter_file` when there is one.
    pub fn indexer_config(
        &self,
        elasticsearch: &ElasticsearchOptions,
        dead_letter_file: Option<PathBuf>,
    ) -> IndexerConfig {
        IndexerConfig {
            max_docs: self.bulk_max_docs.get(),
            max_bytes: self.bulk_max_bytes.0,
            flush_interval: self.bulk_flush_interval.0,
            concurrency: self.bulk_concurrency.get(),
            dead_letter: DeadLetterConfig { index: elasticsearch.dead_letter_stream(), file: dead_letter_file },
            ..IndexerConfig::default()
        }
    }
}

impl ReceiveOptions {
    /// The certificate and key files, when both are given.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    /// Every `--basic-auth` credential, however they were given.
    pub fn credentials(&self) -> Vec<Credential> {
        self.basic_auth.iter().flat_map(|l| l.0.iter().cloned()).collect()
    }

    /// The OTLP endpoints' bearer tokens.
    pub fn otlp_tokens(&self) -> BearerTokens {
        BearerTokens::new(
            self.otlp_token.iter().map(|t| (drainpipe_ingest::Secret::new(t.token.clone()), t.app.clone())),
        )
    }

    pub fn drain_tokens(&self) -> DrainTokens {
        DrainTokens::new(self.drain_token.iter().map(|t| (t.token.clone(), t.app.clone())))
    }

    /// The largest record a frame can make: a largest request, or a syslog read of messages.
    pub fn largest_frame(&self) -> usize {
        self.max_body_size.0.max(2 * self.max_message_size.0 + (64 << 10))
    }

    /// Every address listened on, with its flag.
    fn addresses(&self) -> Vec<(&'static str, ListenAddr)> {
        let optional = [
            ("metrics-listen", self.metrics_listen),
            ("syslog-listen", self.syslog_listen),
            ("syslog-tls-listen", self.syslog_tls_listen),
        ];
        std::iter::once(("listen", self.listen))
            .chain(optional.into_iter().filter_map(|(f, a)| Some((f, a?))))
            .collect()
    }
}

impl ServeOptions {
    /// What is wrong with these options together (each value alone was checked when parsed).
    pub fn problems(&self) -> Vec<String> {
        let r = &self.receive;
        let mut problems = Vec::new();
        if r.tls_cert.is_some() != r.tls_key.is_some() {
            problems.push("--tls-cert and --tls-key go together".to_owned());
        }
        if r.syslog_tls_listen.is_some() && r.tls_files().is_none() {
            problems.push("--syslog-tls-listen needs --tls-cert and --tls-key".to_owned());
        }
        // A largest gzip body needs its compressed bytes, its inflated bytes and its message
        // index at once; below that, such a request could never be taken.
        if r.queue_max_bytes.0 < 3 * r.max_body_size.0 {
            problems.push(format!(
                "--queue-max-bytes ({}) must be at least three times --max-body-size ({})",
                r.queue_max_bytes.0, r.max_body_size.0
            ));
        }
        let addresses = r.addresses();
        for (i, (flag, a)) in addresses.iter().enumerate() {
            for (other, b) in &addresses[i + 1..] {
                let overlap = a.0.ip() == b.0.ip() || a.0.ip().is_unspecified() || b.0.ip().is_unspecified();
                if a.0.port() == b.0.port() && a.0.port() != 0 && overlap {
                    problems.push(format!("--{flag} ({}) and --{other} ({}) are the same address", a.0, b.0));
                }
            }
        }
        if let Some(Err(e)) = self.spool_config() {
            problems.push(format!("--spool-max-bytes: {e}"));
        }
        problems
    }

    /// The spool these options ask for, with segments that hold the largest frame.
    pub fn spool_config(&self) -> Option<Result<SpoolConfig, drainpipe_spool::SpoolError>> {
        let d = &self.delivery;
        let dir = d.spool_dir.clone()?;
        let largest = drainpipe_delivery::record::max_record_len(self.receive.largest_frame()) as u64;
        Some(SpoolConfig::sized_for(dir, d.spool_max_bytes.0 as u64, largest, d.spool_fsync.into()))
    }

    /// Bulk requests, with dead letters in the spool folder when the stream refuses them.
    pub fn indexer_config(&self) -> IndexerConfig {
        let file = self.delivery.spool_dir.as_ref().map(|d| d.join("dead-letters.ndjson"));
        self.bulk.indexer_config(&self.elasticsearch, file)
    }

    /// The effective options as TOML, keyed like the file, with every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Serve(ServeOptions),
    }

    /// `serve`'s options from `args` and the platform variables `env` gives (other modules'
    /// tests use it too).
    pub(crate) fn serve_with(args: &[&str], env: impl Fn(&str) -> Option<String>) -> Result<ServeOptions, clap::Error> {
        let args: Vec<OsString> = ["drainpipe", "serve"].iter().chain(args).map(OsString::from).collect();
        parse::<Cli>(&args, env).map(|c| {
            let Sub::Serve(o) = c.command;
            o
        })
    }

    fn serve(args: &[&str]) -> ServeOptions {
        serve_with(args, |_| None).unwrap()
    }

    #[test]
    fn defaults() {
        let c = serve(&[]);
        assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:8080");
        assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://127.0.0.1:9200/]");
        assert_eq!(c.elasticsearch.dead_letter_stream(), "logs-heroku.deadletter-default");
        assert!(c.spool_config().is_none());
        assert_eq!((c.bulk.bulk_max_docs.get(), c.bulk.bulk_concurrency.get()), (2000, 2));
        assert_eq!(c.delivery.shutdown_timeout.0, std::time::Duration::from_secs(30));
        assert_eq!(c.receive.queue_max_bytes.0, 64 << 20);
        assert!(c.elasticsearch.retention.is_empty(), "unset keeps what is installed");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn every_flag_reads_its_environment_variable() {
        let cli = with_env_names(<Cli as clap::CommandFactory>::command());
        let serve = cli.find_subcommand("serve").unwrap();
        let mut n = 0;
        for arg in serve.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap();
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env_name(long).as_str()), "--{long}");
            n += 1;
        }
        assert!(n > 25, "{n} flags");
        assert_eq!(env_name("drain-token"), "DRAINPIPE_DRAIN_TOKEN");
    }

    #[test]
    fn port_elasticsearch_url_and_the_old_drain_token_variable_are_honoured() {
        let env = |k: &str| match k {
            "PORT" => Some("5000".to_owned()),
            "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
            "DRAINPIPE_DRAIN_TOKENS" => Some("d.1=shop,d.2=blog".to_owned()),
            _ => None,
        };
        let c = serve_with(&[], env).unwrap();
        assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:5000");
        assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://es:9200/]");
        assert_eq!(c.receive.drain_tokens().app("d.2"), Some("blog"));
        // Bonsai, then SearchBox, then ELASTICSEARCH_URL.
        let addons = |k: &str| match k {
            "SEARCHBOX_URL" => Some("https://searchbox".to_owned()),
            "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
            _ => None,
        };
        let c = serve_with(&[], addons).unwrap();
        assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[https://searchbox/]");
        // A flag wins over them.
        let c = serve_with(&["--listen", "127.0.0.1:9"], env).unwrap();
        assert_eq!(c.receive.listen.0.to_string(), "127.0.0.1:9");
        let err = serve_with(&[], |k| (k == "PORT").then(|| "http".to_owned())).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
    }

    #[test]
    fn file_fills_what_flags_and_env_leave_open() {
        let dir = std::env::temp_dir().join(format!("drainpipe-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drainpipe.toml");
        let file = "listen = \"127.0.0.1:7000\"\nelasticsearch-url = \"http://file:9200\"\nnamespace = \"prod\"\n\
                    elasticsearch-gzip = true\nbulk-max-docs = 10\nbasic-auth = [\"a:b\", \"c:d\"]\n";
        std::fs::write(&path, file).unwrap();
        let p = path.to_str().unwrap();
        let c = serve(&["--config", p, "--namespace", "flag"]);
        assert_eq!(c.receive.listen.0.to_string(), "127.0.0.1:7000");
        assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://file:9200/]");
        assert_eq!(c.elasticsearch.namespace.0, "flag");
        assert!(c.elasticsearch.elasticsearch_gzip);
        assert_eq!((c.bulk.bulk_max_docs.get(), c.receive.credentials().len()), (10, 2));
        // PORT is above the file.
        let c = serve_with(&["--config", p], |k| (k == "PORT").then(|| "5000".to_owned())).unwrap();
        assert_eq!(c.receive.listen.0.port(), 5000);

        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nlisten-address = \"x\"\n").unwrap();
        let err = serve_with(&["--config", p], |_| None).unwrap_err().to_string();
        assert!(err.contains("listen-address") && err.contains("unknown"), "{err}");
        std::fs::write(&path, "max-body-size = \"8 parsecs\"\n").unwrap();
        let err = serve_with(&["--config", p], |_| None).unwrap_err().to_string();
        assert!(err.contains("max-body-size") && err.contains("drainpipe.toml"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_shipped_example_files_are_valid() {
        let check = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap();
            for (key, value) in table {
                let values = match value {
                    toml::Value::Array(items) => items.into_iter().map(|v| scalar(v).unwrap()).collect(),
                    other => vec![scalar(other).unwrap()],
                };
                check_value(&key, &values).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
        };
        let example = include_str!("../../../deploy/drainpipe.toml");
        check(example);
        // Every commented-out option is a real key too.
        let uncommented: String = example
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        check(&uncommented);
        // And so is the example in docs/configuration.md.
        let docs = include_str!("../../../docs/configuration.md");
        check(docs.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).unwrap());
    }

    /// app.json (the Heroku Deploy button) holds only fields of Heroku's app.json schema, and
    /// every config var it offers is one drainpipe reads, with a default `serve` takes.
    #[test]
    fn the_heroku_app_json_uses_heroku_fields_and_our_variables() {
        const APP_FIELDS: &str = "name description keywords website repository logo success_url scripts env \
                                  formation image addons buildpacks environments stack";
        const ENV_FIELDS: &[&str] = &["description", "value", "required", "generator"];
        let app: serde_json::Value = serde_json::from_str(include_str!("../../../app.json")).unwrap();
        let app = app.as_object().unwrap();
        for key in app.keys() {
            assert!(APP_FIELDS.split_whitespace().any(|f| f == key), "app.json: {key} is not an app.json field");
        }
        assert_eq!(app["stack"], "container", "heroku.yml needs the container stack");
        let serve = serve_command();
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
            let flag = serve
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == var.as_str()))
                .and_then(|a| a.get_long())
                .or_else(|| PLATFORM_VARIABLES.iter().find(|(_, vars)| vars.contains(&var.as_str())).map(|(f, _)| *f))
                .unwrap_or_else(|| panic!("app.json: drainpipe does not read {var}"));
            if let Some(value) = spec.get("value").and_then(|v| v.as_str()) {
                check_value(flag, &vec![value.to_owned()]).unwrap_or_else(|e| panic!("app.json: {var}={value}: {e}"));
            }
        }
        // The stage heroku.yml builds exists, and runs without a shell.
        let heroku_yml = include_str!("../../../heroku.yml");
        let dockerfile = include_str!("../../../Dockerfile");
        assert!(heroku_yml.contains("target: heroku") && dockerfile.contains("FROM base AS heroku\nENTRYPOINT ["));
    }

    #[test]
    fn values_people_write_are_taken_or_explained() {
        let c = serve(&["--listen", ":9000", "--metrics-listen", "localhost:9464", "--drain-token", "d.1=shop"]);
        assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:9000");
        assert_eq!(c.receive.metrics_listen.unwrap().0.port(), 9464);
        assert_eq!(c.receive.drain_tokens().app("d.1"), Some("shop"));
        let err = serve_with(&["--elasticsearch-url", "127.0.0.1:9200"], |_| None).unwrap_err();
        assert!(err.to_string().contains("http://127.0.0.1:9200"), "{err}");
        // A bad drain token and a bad credential are the same kind of error (exit code 2).
        let token = serve_with(&["--drain-token", "d.1"], |_| None).unwrap_err();
        let auth = serve_with(&["--basic-auth", "nopassword"], |_| None).unwrap_err();
        assert_eq!((token.exit_code(), auth.exit_code()), (2, 2));
    }

    #[test]
    fn options_that_clash_are_problems() {
        let problems = |args: &[&str]| serve(args).problems().join("\n");
        assert!(problems(&["--queue-max-bytes", "16MiB"]).contains("queue-max-bytes"));
        assert!(problems(&["--syslog-tls-listen", "127.0.0.1:6514"]).contains("syslog-tls-listen"));
        assert!(problems(&["--tls-cert", "c.pem"]).contains("go together"));
        assert!(problems(&["--metrics-listen", "127.0.0.1:8080"]).contains("same address"));
        assert!(problems(&["--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.2:8080"]).is_empty());
        let small = problems(&["--spool-dir", "/nonexistent/spool", "--spool-max-bytes", "10MiB"]);
        assert!(small.contains("spool-max-bytes") && small.contains("two segments"), "{small}");
        assert!(problems(&["--spool-dir", "/nonexistent/spool"]).is_empty());
    }

    #[test]
    fn the_printed_configuration_hides_secrets_and_reads_back() {
        let c = serve(&[
            "--elasticsearch-url",
            "https://elastic:hunter2@es.example.com",
            "--elasticsearch-api-key",
            "id:topsecret",
            "--basic-auth",
            "logplex:s3cret",
            "--drain-token",
            "d.0b7a=shop",
            "--spool-dir",
            "/var/lib/drainpipe",
            "--spool-fsync",
            "200ms",
        ]);
        let printed = c.to_redacted_toml();
        for secret in ["hunter2", "topsecret", "s3cret", "d.0b7a"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
            assert!(!format!("{c:?}").contains(secret), "{secret} in Debug");
        }
        assert!(printed.contains("logplex:[REDACTED]") && printed.contains("[REDACTED]=shop"), "{printed}");
        assert!(printed.contains("spool-fsync = \"200ms\""), "{printed}");
        // Every key it prints is a key the file accepts, with a value it takes.
        let table: toml::Table = toml::from_str(&printed).unwrap();
        assert!(table.len() > 20, "{printed}");
        for key in table.keys() {
            assert!(check_value(key, &vec!["x".into()]) != Err("unknown option".to_owned()), "{key}");
        }
    }
}
