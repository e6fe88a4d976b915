//! Configuration for `drainpipe serve`: flags, then `DRAINPIPE_*` environment variables, then
//! the platform's conventional variables (`PORT`, `ELASTICSEARCH_URL`), then the TOML file,
//! then defaults. The TOML keys are the flags' names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use drainpipe_ingest::{Credential, DrainTokens};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_ELASTICSEARCH_URL: &str = "http://127.0.0.1:9200";
pub const DEFAULT_NAMESPACE: &str = "default";

/// Flags of `drainpipe serve`. Each also reads `DRAINPIPE_<FLAG>` from the environment.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// Address to receive drains on [env: DRAINPIPE_LISTEN; with only PORT set: 0.0.0.0:$PORT]
    /// [default: 0.0.0.0:8080]
    #[arg(long, env = "DRAINPIPE_LISTEN", value_name = "ADDR", hide_env = true)]
    pub listen: Option<SocketAddr>,

    /// Elasticsearch URL, credentials may be in it; repeat (or comma-separate) for several nodes
    /// [env: DRAINPIPE_ELASTICSEARCH_URL, then BONSAI_URL, SEARCHBOX_URL, ELASTICSEARCH_URL]
    /// [default: http://127.0.0.1:9200]
    #[arg(long, env = "DRAINPIPE_ELASTICSEARCH_URL", value_name = "URL", value_delimiter = ',', hide_env = true)]
    pub elasticsearch_url: Vec<String>,

    /// Elasticsearch API key, `id:key` or the base64 `encoded` form
    #[arg(long, env = "DRAINPIPE_ELASTICSEARCH_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub elasticsearch_api_key: Option<String>,

    /// PEM file of CA certificates to trust for Elasticsearch (besides the system's)
    #[arg(long, env = "DRAINPIPE_ELASTICSEARCH_CA", value_name = "FILE")]
    pub elasticsearch_ca: Option<PathBuf>,

    /// gzip bulk request bodies
    #[arg(long, env = "DRAINPIPE_ELASTICSEARCH_GZIP")]
    pub elasticsearch_gzip: bool,

    /// Durable spool folder: frames are on disk before they are answered 2xx. Without it, a
    /// bounded in-memory queue (lost on a crash)
    #[arg(long, env = "DRAINPIPE_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Spool size limit; when full, drains get 503 and syslog is not read [default: 1GiB]
    #[arg(long, env = "DRAINPIPE_SPOOL_MAX_BYTES", value_name = "SIZE")]
    pub spool_max_bytes: Option<ByteSize>,

    /// `batch` (fsync before answering, shared by concurrent requests) or an interval such as
    /// `200ms` [default: batch]
    #[arg(long, env = "DRAINPIPE_SPOOL_FSYNC", value_name = "POLICY")]
    pub spool_fsync: Option<FsyncPolicy>,

    /// Documents per bulk request at most [default: 5000]
    #[arg(long, env = "DRAINPIPE_BULK_MAX_DOCS", value_name = "N")]
    pub bulk_max_docs: Option<usize>,

    /// Bytes per bulk request at most [default: 5MiB]
    #[arg(long, env = "DRAINPIPE_BULK_MAX_BYTES", value_name = "SIZE")]
    pub bulk_max_bytes: Option<ByteSize>,

    /// Longest wait before a partly filled bulk request is sent [default: 1s]
    #[arg(long, env = "DRAINPIPE_BULK_FLUSH_INTERVAL", value_name = "DURATION")]
    pub bulk_flush_interval: Option<HumanDuration>,

    /// Bulk requests in flight at once [default: 2]
    #[arg(long, env = "DRAINPIPE_BULK_CONCURRENCY", value_name = "N")]
    pub bulk_concurrency: Option<usize>,

    /// How long SIGTERM waits for requests in flight before exiting [default: 30s]
    #[arg(long, env = "DRAINPIPE_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<HumanDuration>,

    /// Data stream namespace: documents go to `logs-heroku-<NAMESPACE>` [default: default]
    #[arg(long, env = "DRAINPIPE_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Accept drains only with these basic-auth credentials (repeatable; env: comma-separated).
    /// None: the endpoint is open
    #[arg(
        long = "basic-auth",
        env = "DRAINPIPE_BASIC_AUTH",
        value_name = "USER:PASS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub basic_auth: Vec<Credential>,

    /// Map a Logplex drain token to an app name (repeatable; env: comma-separated). When any is
    /// set, requests carrying another token get 403
    #[arg(
        long = "drain-token",
        env = "DRAINPIPE_DRAIN_TOKENS",
        value_name = "TOKEN=APP",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub drain_token: Vec<String>,

    /// PEM certificate chain: serve HTTPS (and syslog over TLS) with it
    #[arg(long, env = "DRAINPIPE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert
    #[arg(long, env = "DRAINPIPE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Also receive syslog drains over plain TCP on this address
    #[arg(long, env = "DRAINPIPE_SYSLOG_LISTEN", value_name = "ADDR")]
    pub syslog_listen: Option<SocketAddr>,

    /// Also receive syslog drains over TLS on this address (needs --tls-cert/--tls-key)
    #[arg(long, env = "DRAINPIPE_SYSLOG_TLS_LISTEN", value_name = "ADDR")]
    pub syslog_tls_listen: Option<SocketAddr>,

    /// Largest drain request body, before or after decompression [default: 8MiB]
    #[arg(long, env = "DRAINPIPE_MAX_BODY_SIZE", value_name = "SIZE")]
    pub max_body_size: Option<ByteSize>,

    /// Syslog messages longer than this are cut, tagged and indexed [default: 64KiB]
    #[arg(long, env = "DRAINPIPE_MAX_MESSAGE_SIZE", value_name = "SIZE")]
    pub max_message_size: Option<ByteSize>,

    /// Connections served at once, per listener [default: 1024]
    #[arg(long, env = "DRAINPIPE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Memory that received frames may hold at once: request bodies being read and inflated,
    /// and (without a spool) frames waiting for the transform. Past it, drains get 503 and
    /// syslog is not read [default: 64MiB]
    #[arg(long, env = "DRAINPIPE_QUEUE_MAX_BYTES", value_name = "SIZE")]
    pub queue_max_bytes: Option<ByteSize>,

    /// Take the client address for the failed-login limiter from the last X-Forwarded-For
    /// entry (behind Heroku's router or a load balancer you run; never on a public port)
    #[arg(long, env = "DRAINPIPE_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Keep documents this long (`30d`, `12h`), or `forever`; applied by `serve` and `setup`
    /// where the server has data stream lifecycles. Unset: whatever is installed is kept
    #[arg(long, env = "DRAINPIPE_RETENTION", value_name = "AGE")]
    pub retention: Option<Retention>,

    /// Serve /metrics (and /healthz, /readyz) on this address instead of the drain listener
    #[arg(long, env = "DRAINPIPE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Log lines as `text` (for people) or `json` (for log shippers) [default: text]
    #[arg(long, env = "DRAINPIPE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// TOML file with any of the options above, keyed by flag name
    #[arg(long, env = "DRAINPIPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration written `500ms`, `30s`, `5m` or `1h` (a bare number is seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<HumanDuration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 30s, 5m)"))?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            other => return Err(format!("unknown duration unit {other:?} (use ms, s, m or h)")),
        };
        Ok(HumanDuration(d))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// How long Elasticsearch keeps documents (the data streams' lifecycle `data_retention`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep documents this long: a positive whole number and `d`, `h`, `m` or `s`.
    Age(String),
    /// No lifecycle: documents are kept until deleted by hand.
    Forever,
}

impl std::str::FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Retention, String> {
        let s = s.trim();
        if s == "forever" {
            return Ok(Retention::Forever);
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        match (n.parse::<u64>(), unit) {
            (Ok(n), "d" | "h" | "m" | "s") if n > 0 => Ok(Retention::Age(s.to_owned())),
            _ => Err(format!("{s:?} is not a retention (e.g. 30d, 12h, or forever)")),
        }
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Retention, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// When the spool syncs to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    Batch,
    Interval(Duration),
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<FsyncPolicy, String> {
        match s.trim() {
            "batch" => Ok(FsyncPolicy::Batch),
            other => other
                .parse::<HumanDuration>()
                .map(|d| FsyncPolicy::Interval(d.0))
                .map_err(|e| format!("expected `batch` or an interval: {e}")),
        }
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FsyncPolicy, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A size in bytes, written `65536`, `64KiB`, `8MiB`, `1GiB` (also `KB`/`MB`/`GB` and `k`/`M`/`G`,
/// all powers of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: usize = n.parse().map_err(|_| format!("{s:?} is not a size (e.g. 65536, 64KiB, 8MiB)"))?;
        let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
        };
        n.checked_mul(mult).filter(|&b| b > 0).map(ByteSize).ok_or_else(|| format!("{s:?} is out of range"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n > 0 => Ok(ByteSize(n)),
            Raw::Number(_) => Err(serde::de::Error::custom("size must be positive")),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The TOML file: the same options, keyed by flag name. Unknown keys are errors.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "one_or_many")]
    elasticsearch_url: Vec<String>,
    elasticsearch_api_key: Option<String>,
    elasticsearch_ca: Option<PathBuf>,
    elasticsearch_gzip: Option<bool>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<ByteSize>,
    spool_fsync: Option<FsyncPolicy>,
    bulk_max_docs: Option<usize>,
    bulk_max_bytes: Option<ByteSize>,
    bulk_flush_interval: Option<HumanDuration>,
    bulk_concurrency: Option<usize>,
    shutdown_timeout: Option<HumanDuration>,
    metrics_listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    namespace: Option<String>,
    #[serde(default)]
    basic_auth: Vec<String>,
    #[serde(default)]
    drain_token: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    syslog_listen: Option<SocketAddr>,
    syslog_tls_listen: Option<SocketAddr>,
    max_body_size: Option<ByteSize>,
    max_message_size: Option<ByteSize>,
    max_connections: Option<usize>,
    queue_max_bytes: Option<ByteSize>,
    trust_forwarded_for: Option<bool>,
    retention: Option<Retention>,
}

/// A string or an array of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

/// The validated configuration `serve` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub elasticsearch_urls: Vec<String>,
    pub elasticsearch_api_key: Option<String>,
    pub elasticsearch_ca: Option<PathBuf>,
    pub elasticsearch_gzip: bool,
    pub spool: Option<SpoolSettings>,
    pub bulk_max_docs: usize,
    pub bulk_max_bytes: usize,
    pub bulk_flush_interval: Duration,
    pub bulk_concurrency: usize,
    pub shutdown_timeout: Duration,
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub namespace: String,
    pub credentials: Vec<Credential>,
    pub drain_tokens: DrainTokens,
    pub tls: Option<TlsFiles>,
    pub syslog_listen: Option<SocketAddr>,
    pub syslog_tls_listen: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub queue_max_bytes: usize,
    pub trust_forwarded_for: bool,
    /// `None`: keep whatever lifecycle the installed templates have.
    pub retention: Option<Retention>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub fsync: FsyncPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServeConfig {
    /// Merges flags/`DRAINPIPE_*` (already in `args`), conventional variables read through
    /// `env`, and the config file.
    pub fn resolve(args: ServeArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let port_listen = match env("PORT").filter(|p| !p.is_empty()) {
            Some(p) => {
                let port: u16 = p.trim().parse().with_context(|| format!("PORT={p:?} is not a port number"))?;
                Some(SocketAddr::from(([0, 0, 0, 0], port)))
            }
            None => None,
        };
        let listen = args
            .listen
            .or(port_listen)
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        // Heroku's search add-ons set these; the first one present wins.
        let platform_url = ["BONSAI_URL", "SEARCHBOX_URL", "ELASTICSEARCH_URL"]
            .iter()
            .find_map(|k| env(k).filter(|u| !u.is_empty()))
            .map(|u| u.split(',').map(str::trim).map(str::to_owned).collect::<Vec<_>>());
        let elasticsearch_urls = Some(args.elasticsearch_url)
            .filter(|v| !v.is_empty())
            .or(platform_url)
            .or(Some(file.elasticsearch_url).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| vec![DEFAULT_ELASTICSEARCH_URL.to_owned()]);
        let namespace = args.namespace.or(file.namespace).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        validate_namespace(&namespace)?;

        let credentials = if args.basic_auth.is_empty() {
            let parsed: Result<Vec<Credential>, String> = file.basic_auth.iter().map(|c| c.parse()).collect();
            parsed.map_err(|e| anyhow::anyhow!("basic-auth in the config file: {e}"))?
        } else {
            args.basic_auth
        };
        let token_pairs = if args.drain_token.is_empty() { file.drain_token } else { args.drain_token };
        let drain_tokens = DrainTokens::new(
            token_pairs
                .iter()
                .map(|p| DrainTokens::parse_pair(p).map_err(|e| anyhow::anyhow!("drain-token {p:?}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("tls-cert and tls-key go together"),
        };
        let syslog_tls_listen = args.syslog_tls_listen.or(file.syslog_tls_listen);
        if syslog_tls_listen.is_some() && tls.is_none() {
            bail!("syslog-tls-listen needs tls-cert and tls-key");
        }
        let size = |a: Option<ByteSize>, f: Option<ByteSize>, default: usize| a.or(f).map_or(default, |b| b.0);
        let spool = args.spool_dir.or(file.spool_dir).map(|dir| SpoolSettings {
            dir,
            max_bytes: size(args.spool_max_bytes, file.spool_max_bytes, 1 << 30) as u64,
            fsync: args.spool_fsync.or(file.spool_fsync).unwrap_or(FsyncPolicy::Batch),
        });
        let duration =
            |a: Option<HumanDuration>, f: Option<HumanDuration>, default: Duration| a.or(f).map_or(default, |d| d.0);
        let max_body_bytes = size(args.max_body_size, file.max_body_size, 8 << 20);
        let queue_max_bytes = size(args.queue_max_bytes, file.queue_max_bytes, 64 << 20);
        // A largest gzip body needs its compressed bytes, its inflated bytes and its message
        // index at once; below that, such a request could never be taken.
        if queue_max_bytes < 3 * max_body_bytes {
            bail!("queue-max-bytes ({queue_max_bytes}) must be at least three times max-body-size ({max_body_bytes})");
        }
        Ok(ServeConfig {
            listen,
            elasticsearch_urls,
            elasticsearch_api_key: args.elasticsearch_api_key.or(file.elasticsearch_api_key),
            elasticsearch_ca: args.elasticsearch_ca.or(file.elasticsearch_ca),
            elasticsearch_gzip: args.elasticsearch_gzip || file.elasticsearch_gzip.unwrap_or(false),
            spool,
            bulk_max_docs: args.bulk_max_docs.or(file.bulk_max_docs).unwrap_or(5_000).max(1),
            bulk_max_bytes: size(args.bulk_max_bytes, file.bulk_max_bytes, 5 << 20),
            bulk_flush_interval: duration(args.bulk_flush_interval, file.bulk_flush_interval, Duration::from_secs(1)),
            bulk_concurrency: args.bulk_concurrency.or(file.bulk_concurrency).unwrap_or(2).max(1),
            shutdown_timeout: duration(args.shutdown_timeout, file.shutdown_timeout, Duration::from_secs(30)),
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            namespace,
            credentials,
            drain_tokens,
            tls,
            syslog_listen: args.syslog_listen.or(file.syslog_listen),
            syslog_tls_listen,
            max_body_bytes,
            max_message_bytes: size(args.max_message_size, file.max_message_size, 64 << 10),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(1024).max(1),
            queue_max_bytes,
            trust_forwarded_for: args.trust_forwarded_for || file.trust_forwarded_for.unwrap_or(false),
            retention: args.retention.or(file.retention),
        })
    }

    /// The data stream documents are written to.
    pub fn data_stream(&self) -> String {
        format!("logs-heroku-{}", self.namespace)
    }

    /// The Elasticsearch client these options describe.
    pub fn elasticsearch(&self) -> anyhow::Result<drainpipe_bulk_indexer::Client> {
        let ca_pem = match &self.elasticsearch_ca {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
            None => None,
        };
        Ok(drainpipe_bulk_indexer::Client::with_config(&drainpipe_bulk_indexer::ClientConfig {
            urls: self.elasticsearch_urls.clone(),
            api_key: self.elasticsearch_api_key.clone(),
            ca_pem,
            gzip: self.elasticsearch_gzip,
        })?)
    }

    /// The effective configuration as TOML, keyed like the file, with every secret replaced.
    pub fn to_redacted_toml(&self) -> String {
        use toml::Value as V;
        let mut t = toml::Table::new();
        let s = |v: &str| V::String(v.to_owned());
        let n = |v: u64| V::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let d = |v: Duration| s(&format!("{}ms", v.as_millis()));
        t.insert("listen".into(), s(&self.listen.to_string()));
        t.insert(
            "elasticsearch-url".into(),
            V::Array(self.elasticsearch_urls.iter().map(|u| s(&drainpipe_bulk_indexer::redact(u))).collect()),
        );
        if self.elasticsearch_api_key.is_some() {
            t.insert("elasticsearch-api-key".into(), s("[REDACTED]"));
        }
        if let Some(ca) = &self.elasticsearch_ca {
            t.insert("elasticsearch-ca".into(), s(&ca.display().to_string()));
        }
        t.insert("elasticsearch-gzip".into(), V::Boolean(self.elasticsearch_gzip));
        t.insert("namespace".into(), s(&self.namespace));
        t.insert(
            "basic-auth".into(),
            V::Array(self.credentials.iter().map(|c| s(&format!("{}:[REDACTED]", c.user))).collect()),
        );
        let mut tokens: Vec<V> =
            self.drain_tokens.as_map().values().map(|app| s(&format!("[REDACTED]={app}"))).collect();
        tokens.sort_by_key(|v| v.to_string());
        t.insert("drain-token".into(), V::Array(tokens));
        if let Some(tls) = &self.tls {
            t.insert("tls-cert".into(), s(&tls.cert.display().to_string()));
            t.insert("tls-key".into(), s(&tls.key.display().to_string()));
        }
        if let Some(a) = self.syslog_listen {
            t.insert("syslog-listen".into(), s(&a.to_string()));
        }
        if let Some(a) = self.syslog_tls_listen {
            t.insert("syslog-tls-listen".into(), s(&a.to_string()));
        }
        t.insert("max-body-size".into(), n(self.max_body_bytes as u64));
        t.insert("max-message-size".into(), n(self.max_message_bytes as u64));
        t.insert("max-connections".into(), n(self.max_connections as u64));
        t.insert("queue-max-bytes".into(), n(self.queue_max_bytes as u64));
        t.insert("trust-forwarded-for".into(), V::Boolean(self.trust_forwarded_for));
        match &self.retention {
            Some(Retention::Age(age)) => t.insert("retention".into(), s(age)),
            Some(Retention::Forever) => t.insert("retention".into(), s("forever")),
            None => None,
        };
        if let Some(sp) = &self.spool {
            t.insert("spool-dir".into(), s(&sp.dir.display().to_string()));
            t.insert("spool-max-bytes".into(), n(sp.max_bytes));
            t.insert(
                "spool-fsync".into(),
                match sp.fsync {
                    FsyncPolicy::Batch => s("batch"),
                    FsyncPolicy::Interval(i) => d(i),
                },
            );
        }
        t.insert("bulk-max-docs".into(), n(self.bulk_max_docs as u64));
        t.insert("bulk-max-bytes".into(), n(self.bulk_max_bytes as u64));
        t.insert("bulk-flush-interval".into(), d(self.bulk_flush_interval));
        t.insert("bulk-concurrency".into(), n(self.bulk_concurrency as u64));
        t.insert("shutdown-timeout".into(), d(self.shutdown_timeout));
        if let Some(a) = self.metrics_listen {
            t.insert("metrics-listen".into(), s(&a.to_string()));
        }
        t.insert(
            "log-format".into(),
            s(match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
        );
        toml::to_string(&t).unwrap_or_default()
    }

    /// Batching, concurrency and dead letters (to the dead-letter stream, then a file in the
    /// spool folder if there is one).
    pub fn indexer_config(&self) -> drainpipe_bulk_indexer::IndexerConfig {
        drainpipe_bulk_indexer::IndexerConfig {
            max_docs: self.bulk_max_docs,
            max_bytes: self.bulk_max_bytes,
            flush_interval: self.bulk_flush_interval,
            concurrency: self.bulk_concurrency,
            dead_letter: drainpipe_bulk_indexer::DeadLetterConfig {
                index: self.dead_letter_stream(),
                file: self.spool.as_ref().map(|s| s.dir.join("dead-letters.ndjson")),
            },
            ..drainpipe_bulk_indexer::IndexerConfig::default()
        }
    }

    /// Where documents Elasticsearch will never take are kept.
    pub fn dead_letter_stream(&self) -> String {
        format!("logs-heroku.deadletter-{}", self.namespace)
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Data stream names are `type-dataset-namespace`: the namespace may not hold `-`, and index
/// names must be lowercase without `\ / * ? " < > | , # :` or spaces.
fn validate_namespace(ns: &str) -> anyhow::Result<()> {
    if ns.is_empty() || ns.len() > 100 {
        bail!("namespace must be 1 to 100 characters, got {ns:?}");
    }
    if !ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.') {
        bail!("namespace {ns:?} may only hold lowercase letters, digits, '_' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let c = ServeConfig::resolve(ServeArgs::default(), no_env).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.elasticsearch_urls, ["http://127.0.0.1:9200"]);
        assert_eq!(c.data_stream(), "logs-heroku-default");
        assert_eq!(c.dead_letter_stream(), "logs-heroku.deadletter-default");
        assert_eq!(c.spool, None);
        assert_eq!((c.bulk_max_docs, c.bulk_concurrency, c.shutdown_timeout), (5000, 2, Duration::from_secs(30)));
    }

    #[test]
    fn retention_is_validated_and_read_from_the_file() {
        assert_eq!("30d".parse::<Retention>(), Ok(Retention::Age("30d".into())));
        assert_eq!("forever".parse::<Retention>(), Ok(Retention::Forever));
        for bad in ["30x", "0d", "d", "", "30", "-1d", "1.5d"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?} accepted");
        }
        let file: FileConfig = toml::from_str("retention = \"7d\"").unwrap();
        assert_eq!(file.retention, Some(Retention::Age("7d".into())));
        assert!(toml::from_str::<FileConfig>("retention = \"30x\"").is_err());
        let c = ServeConfig::resolve(ServeArgs::default(), no_env).unwrap();
        assert_eq!(c.retention, None, "unset keeps what is installed");
    }

    #[test]
    fn the_memory_queue_must_hold_a_largest_request() {
        let args = ServeArgs { queue_max_bytes: Some(ByteSize(16 << 20)), ..ServeArgs::default() };
        let err = format!("{:#}", ServeConfig::resolve(args, no_env).unwrap_err());
        assert!(err.contains("queue-max-bytes"), "{err}");
        assert_eq!(ServeConfig::resolve(ServeArgs::default(), no_env).unwrap().queue_max_bytes, 64 << 20);
    }

    #[test]
    fn port_and_elasticsearch_url_are_honoured() {
        let env = |k: &str| match k {
            "PORT" => Some("5000".to_owned()),
            "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
            _ => None,
        };
        let c = ServeConfig::resolve(ServeArgs::default(), env).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(c.elasticsearch_urls, ["http://es:9200"]);
        // Bonsai, then SearchBox, then ELASTICSEARCH_URL.
        let addons = |k: &str| match k {
            "SEARCHBOX_URL" => Some("https://searchbox".to_owned()),
            "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
            _ => None,
        };
        assert_eq!(
            ServeConfig::resolve(ServeArgs::default(), addons).unwrap().elasticsearch_urls,
            ["https://searchbox"]
        );
        let bonsai = |k: &str| (k == "BONSAI_URL").then(|| "https://bonsai".to_owned()).or_else(|| addons(k));
        assert_eq!(ServeConfig::resolve(ServeArgs::default(), bonsai).unwrap().elasticsearch_urls, ["https://bonsai"]);
        // A flag (or DRAINPIPE_*) wins over them.
        let args = ServeArgs { listen: Some("127.0.0.1:9".parse().unwrap()), ..ServeArgs::default() };
        assert_eq!(ServeConfig::resolve(args, env).unwrap().listen.to_string(), "127.0.0.1:9");
        assert!(ServeConfig::resolve(ServeArgs::default(), |_| Some("http".to_owned())).is_err());
    }

    #[test]
    fn file_fills_what_flags_and_env_leave_open() {
        let dir = std::env::temp_dir().join(format!("drainpipe-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drainpipe.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\nelasticsearch-url = \"http://file:9200\"\nnamespace = \"prod\"\n",
        )
        .unwrap();
        let args = ServeArgs { namespace: Some("flag".into()), config: Some(path.clone()), ..ServeArgs::default() };
        let c = ServeConfig::resolve(args, no_env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.elasticsearch_urls, ["http://file:9200"]);
        assert_eq!(c.namespace, "flag");

        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nlisten-address = \"x\"\n").unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let err = format!("{:#}", ServeConfig::resolve(args, no_env).unwrap_err());
        assert!(err.contains("listen-address"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_shipped_example_files_are_valid() {
        let example = include_str!("../../deploy/drainpipe.toml");
        let file: FileConfig = toml::from_str(example).unwrap();
        assert_eq!(file.namespace.as_deref(), Some(DEFAULT_NAMESPACE));
        // Every commented-out option is a real key too.
        let uncommented: String = example
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        toml::from_str::<FileConfig>(&uncommented).unwrap();
        // And so is the example in docs/configuration.md.
        let docs = include_str!("../../docs/configuration.md");
        let block = docs.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
        let file: FileConfig = toml::from_str(block).unwrap();
        assert_eq!(file.basic_auth.len(), 1);
    }

    #[test]
    fn sizes_credentials_and_tokens() {
        assert_eq!("64KiB".parse::<ByteSize>(), Ok(ByteSize(65_536)));
        assert_eq!("8MiB".parse::<ByteSize>(), Ok(ByteSize(8 << 20)));
        assert_eq!("1000".parse::<ByteSize>(), Ok(ByteSize(1000)));
        assert!("0".parse::<ByteSize>().is_err());
        assert!("5 parsecs".parse::<ByteSize>().is_err());
        let args = ServeArgs {
            basic_auth: vec!["u:p".parse().unwrap()],
            drain_token: vec!["d.1=shop".into()],
            max_message_size: Some(ByteSize(100)),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args, no_env).unwrap();
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(c.drain_tokens.app("d.1"), Some("shop"));
        assert_eq!((c.max_body_bytes, c.max_message_bytes, c.max_connections), (8 << 20, 100, 1024));
        assert!(!format!("{c:?}").contains("u:p") && !format!("{c:?}").contains("\"p\""));
        let bad = ServeArgs { drain_token: vec!["d.1".into()], ..ServeArgs::default() };
        assert!(ServeConfig::resolve(bad, no_env).is_err());
        let bad = ServeArgs { syslog_tls_listen: Some("127.0.0.1:6514".parse().unwrap()), ..ServeArgs::default() };
        assert!(ServeConfig::resolve(bad, no_env).is_err());
    }

    #[test]
    fn durations_and_spool_settings() {
        assert_eq!("500ms".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_millis(500))));
        assert_eq!("2m".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_secs(120))));
        assert!("soon".parse::<HumanDuration>().is_err());
        assert_eq!("batch".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Batch));
        assert_eq!("200ms".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Interval(Duration::from_millis(200))));
        let args = ServeArgs {
            spool_dir: Some("/var/lib/drainpipe".into()),
            spool_max_bytes: Some(ByteSize(1 << 20)),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args, no_env).unwrap();
        assert_eq!(
            c.spool,
            Some(SpoolSettings { dir: "/var/lib/drainpipe".into(), max_bytes: 1 << 20, fsync: FsyncPolicy::Batch })
        );
    }

    #[test]
    fn the_printed_configuration_hides_secrets_and_reads_back() {
        let args = ServeArgs {
            elasticsearch_url: vec!["https://elastic:hunter2@es.example.com".into()],
            elasticsearch_api_key: Some("id:topsecret".into()),
            basic_auth: vec!["logplex:s3cret".parse().unwrap()],
            drain_token: vec!["d.0b7a=shop".into()],
            spool_dir: Some("/var/lib/drainpipe".into()),
            spool_fsync: Some(FsyncPolicy::Interval(Duration::from_millis(200))),
            ..ServeArgs::default()
        };
        let printed = ServeConfig::resolve(args, no_env).unwrap().to_redacted_toml();
        for secret in ["hunter2", "topsecret", "s3cret", "d.0b7a"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(printed.contains("logplex:[REDACTED]") && printed.contains("[REDACTED]=shop"), "{printed}");
        // Every key it prints is a key the file accepts.
        let back: Result<FileConfig, _> = toml::from_str(&printed);
        assert!(back.is_ok(), "{back:?}\n{printed}");
    }

    #[test]
    fn namespace_must_fit_a_data_stream_name() {
        for bad in ["", "Prod", "a-b", "a b", "a*"] {
            let args = ServeArgs { namespace: Some(bad.into()), ..ServeArgs::default() };
            assert!(ServeConfig::resolve(args, no_env).is_err(), "{bad}");
        }
    }
}
