//! The option groups: each option is a field, its `#[arg]` the flag, help and default, its
//! type the parser (values.rs).

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use drainpipe_bulk_indexer::CloudId;
use serde::Serialize;

use super::values::{
    ByteSize, Credentials, DrainToken, ElasticsearchUrl, FsyncPolicy, HumanDuration, ListenAddr, LogFormat, Namespace,
    OtlpToken, Retention, RetentionRule, Secret,
};

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

    /// Elastic Cloud deployment's Cloud ID (`NAME:BASE64`, from the console), instead of
    /// --elasticsearch-url; log in with --elasticsearch-api-key
    #[arg(long, value_name = "ID", conflicts_with = "elasticsearch_url")]
    #[serde(serialize_with = "super::values::cloud_id", skip_serializing_if = "Option::is_none")]
    pub elasticsearch_cloud_id: Option<CloudId>,

    /// Elasticsearch API key, `id:key` or the base64 `encoded` form
    #[arg(long, value_name = "KEY", hide_env_values = true)]
    #[serde(serialize_with = "super::values::redacted_secret", skip_serializing_if = "Option::is_none")]
    pub elasticsearch_api_key: Option<Secret>,

    /// PEM file of CA certificates to trust for Elasticsearch, besides the built-in Mozilla roots
    #[arg(long, value_name = "FILE")]
    pub elasticsearch_ca: Option<PathBuf>,

    /// PEM client certificate (its chain) shown to Elasticsearch when it asks for one (mutual
    /// TLS), with --elasticsearch-client-key
    #[arg(long, value_name = "FILE")]
    pub elasticsearch_client_cert: Option<PathBuf>,

    /// PEM private key of --elasticsearch-client-cert
    #[arg(long, value_name = "FILE")]
    pub elasticsearch_client_key: Option<PathBuf>,

    /// gzip level of bulk request bodies: 1 (fastest) to 9 (smallest), 0 sends them
    /// uncompressed. Level 1 sends a ninth of the bytes for about half again the CPU per line
    /// (docs/performance.md)
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub elasticsearch_gzip_level: u32,

    /// The earlier way to turn gzip on, now the default: still taken, and changes nothing
    #[arg(long, hide = true)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub elasticsearch_gzip: bool,

    /// Sign every request with AWS SigV4 for this region (Amazon OpenSearch Service), with
    /// credentials from the environment, a web identity, the container endpoint or the
    /// instance role, as the AWS SDKs find them
    #[arg(long, value_name = "REGION")]
    pub aws_sigv4_region: Option<String>,

    /// The AWS service signed for: `es` (an OpenSearch Service domain) or `aoss` (OpenSearch
    /// Serverless)
    #[arg(long, value_name = "SERVICE", default_value = "es", value_parser = ["es", "aoss"])]
    pub aws_sigv4_service: String,

    /// Send credentials over plain http:// to another machine too (refused otherwise: anyone on
    /// the path could read them); for a network you trust
    #[arg(long)]
    pub allow_insecure_credentials: bool,

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
    #[serde(serialize_with = "super::values::redacted_credentials")]
    pub basic_auth: Vec<Credentials>,

    /// Map a Logplex drain token to an app name (repeatable, or comma-separated); the token's
    /// app wins over the drain URL's app=. When any is set, requests carrying another token get
    /// 403, and syslog lines whose HOSTNAME is not a listed token are dropped
    #[arg(long, value_name = "TOKEN=APP", value_delimiter = ',', hide_env_values = true)]
    pub drain_token: Vec<DrainToken>,

    /// Bearer token OTLP senders must present on /v1/logs, /v1/metrics, /v1/traces and over
    /// gRPC (`Authorization: Bearer TOKEN`, as `heroku telemetry:add --headers` sets it);
    /// `TOKEN=APP` binds the token to that app, whatever the resource names. Repeatable, or comma-separated. Basic auth is accepted there too;
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

    /// Also receive OTLP over gRPC on this address (usually :4317): logs, metrics and traces,
    /// with the same credentials, limits and TLS (--tls-cert) as the drain listener. Off unless given
    #[arg(long, value_name = "ADDR")]
    pub otlp_grpc_listen: Option<ListenAddr>,

    /// Serve /metrics on this address (plain HTTP) instead of the drain listener; /healthz and
    /// /readyz are answered on both
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

    /// Also keep every accepted line raw, as received, in hourly zstd files:
    /// DIR/<app>/<YYYY>/<MM>/<DD>/<HH>.log.zst (`_unknown` when the receiver did not know the
    /// app). Needs --spool-dir: a frame leaves the spool once Elasticsearch and the archive
    /// both have it
    #[arg(long, value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,

    /// How long the archive keeps finished hours (`90d`, `36h`), or `forever`
    #[arg(long, value_name = "AGE", default_value = "forever")]
    pub archive_retention: Retention,

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
