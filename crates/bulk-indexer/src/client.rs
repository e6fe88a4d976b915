//! The connection to Elasticsearch: one or more nodes used in turn (credentials in a URL's
//! user-info become basic auth, or an API key), and every request drainpipe makes.
//!
//! Failover: a node that refuses the connection (or cannot be connected to at all) is set aside
//! and the same request goes to the next node at once, so a node going down costs no retry
//! delay. A request that timed out is not sent elsewhere at once (the node may still be doing
//! the work, and an overloaded cluster must not get it twice as fast): the node is set aside
//! and the caller's retry, with backoff, goes to another. A node set aside is probed every
//! [`PROBE_EVERY`] while requests are made (any HTTP answer will do) and used again once it
//! answers. Nodes are the URLs given, not discovered (`_nodes/http` sniffing): behind a cloud
//! proxy or a load balancer the addresses nodes publish are not reachable (docs/scaling.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use elasticsearch::auth::{ClientCertificate, Credentials};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, StatusCode, Url};
use elasticsearch::Elasticsearch;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use prometheus::{IntCounter, IntGauge};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::response::{classify, is_block, ItemOutcome, FILTER_PATH};
use crate::Error;

/// A handle to an Elasticsearch (or OpenSearch) cluster. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    nodes: Arc<[Node]>,
    /// Where the next request starts looking for a node that is up (round robin).
    next: Arc<AtomicUsize>,
    /// The URLs without credentials, for logs.
    display_url: String,
    /// When Elasticsearch last answered anything (ms since the epoch; 0 = never).
    last_answer_ms: Arc<AtomicU64>,
    /// Since when `_bulk` has been refusing drainpipe's credentials, and with which status:
    /// set at the first 401/403, cleared by the next 200.
    refused: Arc<Mutex<Option<Refusal>>>,
    /// When the last refusal was logged (ms since the epoch), to log one a minute.
    refusal_logged_ms: Arc<AtomicU64>,
    /// When the last cluster or index block was logged, likewise.
    blocked_logged_ms: Arc<AtomicU64>,
    /// What `_bulk` writes to (`logs-*`), named when a 403 is logged: the caller knows.
    writes_to: Option<Arc<str>>,
    /// What is sent to log in, for the start-up log (never the secret).
    credentials: String,
    /// gzip `_bulk` bodies at this level.
    gzip_level: Option<u32>,
    /// Signs each request (SigV4), when set.
    aws_sigv4: Option<Arc<drainpipe_aws_auth::Signer>>,
    /// The client certificate and key shown to nodes (PEM), to ask a node why it refused them.
    client_identity_pem: Option<Arc<[u8]>>,
}

/// Elasticsearch refusing drainpipe's credentials (401) or their privileges (403).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    since_ms: u64,
}

impl Refusal {
    /// How long every `_bulk` request has been refused.
    pub fn for_how_long(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.since_ms))
    }
}

/// A refusal or a block is logged at most this often (each retry would be one more line).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Whether a message last logged at `last` (ms since the epoch) is due again; if so, it is
/// marked as logged now (by one caller only).
fn log_due(last: &AtomicU64) -> bool {
    let now = now_ms();
    let before = last.load(Ordering::Relaxed);
    now.saturating_sub(before) >= LOG_EVERY.as_millis() as u64
        && last.compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Bulk requests of a few MiB can take a while on a busy cluster; longer than this is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a node that could not be reached is asked whether it is back.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// A probe that takes longer than this counts as no answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One node (one URL given) and whether requests go to it.
#[derive(Debug)]
struct Node {
    es: Elasticsearch,
    /// The URL requests are made against (what SigV4 signs, joined with each path).
    base: Url,
    /// The URL without credentials: logs and the `node` label of its metrics.
    url: String,
    /// 0 while the node is used; else when it was last probed or failed (ms since the epoch).
    down_since_probe_ms: AtomicU64,
    /// A probe of this node is under way.
    probing: AtomicBool,
    /// `drainpipe_elasticsearch_node_up` and `_node_failovers_total` of this node.
    up_gauge: IntGauge,
    failovers: IntCounter,
}

impl Node {
    fn is_up(&self) -> bool {
        self.down_since_probe_ms.load(Ordering::Relaxed) == 0
    }

    /// Sets the node aside after `error` (again: the next probe is [`PROBE_EVERY`] from now).
    fn set_down(&self, error: &elasticsearch::Error) {
        let was_up = self.down_since_probe_ms.swap(now_ms().max(1), Ordering::Relaxed) == 0;
        // Set on every change, not only the first: a success racing with a failure leaves the
        // gauge right at the next one.
        self.up_gauge.set(0);
        if was_up {
            tracing::warn!(node = %self.url, %error, "Elasticsearch node set aside; sending to the other nodes until it answers");
        }
    }

    fn set_up(&self) {
        let was_down = self.down_since_probe_ms.swap(0, Ordering::Relaxed) != 0;
        self.up_gauge.set(1);
        if was_down {
            tracing::info!(node = %self.url, "Elasticsearch node answers again; sending to it");
        }
    }

    /// A transport to `url` with the configuration's TLS, compression and `credentials`.
    fn connect(url: Url, config: &ClientConfig, credentials: Option<&Credentials>) -> Result<Node, Error> {
        let first = config.urls.first().map_or("", String::as_str);
        let shown = url.to_string();
        let base = url.clone();
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(REQUEST_TIMEOUT)
            // `_bulk` bodies are gzipped here, at the configured level (`Client::bulk`): the
            // transport's own compression has a fixed level and takes every request.
            .request_body_compression(false);
        // The transport takes one `Credentials`: the client certificate goes in when it is
        // built (into its TLS settings), the login after (see below).
        if let Some(pem) = &config.client_identity_pem {
            reqwest::Identity::from_pem(pem).map_err(|e| bad_url(first, format!("client certificate and key: {e}")))?;
            builder = builder.auth(Credentials::Certificate(ClientCertificate::Pem(pem.clone())));
        } else if let Some(c) = credentials {
            builder = builder.auth(c.clone());
        }
        if let Some(pem) = &config.ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| bad_url(first, format!("CA certificate: {e}")))?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let mut transport = builder.build().map_err(|e| bad_url(first, e.to_string()))?;
        if config.client_identity_pem.is_some() {
            // The same TLS client, now sending the login on each request.
            transport = transport.clone_with_auth(credentials.cloned());
        }
        let up_gauge = crate::metrics::NODE_UP.with_label_values(&[&shown]);
        up_gauge.set(1);
        Ok(Node {
            es: Elasticsearch::new(transport),
            base,
            failovers: crate::metrics::NODE_FAILOVERS.with_label_values(&[&shown]),
            url: shown,
            down_since_probe_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            up_gauge,
        })
    }
}

/// A node's URL, without user-info, and the credentials it is sent.
type NodeLogin = (Url, Option<Credentials>);

/// The URLs given, checked and without their user-info, each with the credentials it is sent:
/// the API key; else its own user-info; else the first user-info given (one cluster, one
/// login). Credentials never go over plain `http://` to another machine unless
/// `allow_insecure_credentials` says so. Also says what is sent, for the start-up log.
fn urls_and_credentials(config: &ClientConfig) -> Result<(Vec<NodeLogin>, String), Error> {
    let mut nodes = Vec::new();
    for url in &config.urls {
        let mut parsed = Url::parse(url).map_err(|e| bad_url(url, e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_url(url, "scheme must be http or https".into()));
        }
        let mut own = None;
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or(""));
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            own = Some((user, pass));
        }
        nodes.push((parsed, own));
    }
    if nodes.is_empty() {
        return Err(bad_url(config.urls.first().map_or("", String::as_str), "no Elasticsearch URL".into()));
    }
    let first_login = nodes.iter().find_map(|(_, own)| own.clone());
    if let Some(signer) = &config.aws_sigv4 {
        return signed_nodes(config, signer, nodes, first_login.is_some());
    }
    let (api_key, shown) = match (&config.api_key, &first_login) {
        (Some(key), _) => (
            Some(match key.split_once(':') {
                Some((id, secret)) => Credentials::ApiKey(id.to_owned(), secret.to_owned()),
                None => Credentials::EncodedApiKey(key.clone()),
            }),
            "an API key".to_owned(),
        ),
        (None, Some((user, _))) => (None, format!("basic auth as {user:?}")),
        (None, None) => (None, "none".to_owned()),
    };
    let mut with_credentials = Vec::new();
    for (url, own) in nodes {
        let login = own.or_else(|| first_login.clone()).map(|(user, pass)| Credentials::Basic(user, pass));
        let credentials = api_key.clone().or(login);
        if credentials.is_some() {
            refuse_plain_http(config, &url, "credentials")?;
        }
        with_credentials.push((url, credentials));
    }
    Ok((with_credentials, shown))
}

/// The nodes of a cluster whose requests are signed with SigV4: no login beside it (both would
/// be `Authorization`), and not over plain `http://` to another machine (a session token would
/// cross it, and a signed request can be replayed for minutes).
fn signed_nodes(
    config: &ClientConfig,
    signer: &drainpipe_aws_auth::Signer,
    nodes: Vec<(Url, Option<(String, String)>)>,
    has_login: bool,
) -> Result<(Vec<NodeLogin>, String), Error> {
    let first = config.urls.first().map_or("", String::as_str);
    if has_login || config.api_key.is_some() {
        let reason = "AWS SigV4 signs every request itself: remove the user and password from the URL and the API key";
        return Err(bad_url(first, reason.into()));
    }
    for (url, _) in &nodes {
        refuse_plain_http(config, url, "signed requests")?;
    }
    Ok((nodes.into_iter().map(|(url, _)| (url, None)).collect(), signer.describe()))
}

/// The SigV4 headers of one request to `node`: signed over the URL as the transport builds it
/// (the node's URL joined with `path`) and the body as sent.
async fn sign(
    signer: &drainpipe_aws_auth::Signer,
    node: &Node,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let url = node.base.join(path.trim_start_matches('/')).map_err(|e| bad_url(&node.url, e.to_string()))?;
    let method = match method {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    };
    let headers = signer.headers(method, url.as_str(), body.unwrap_or_default()).await?;
    headers
        .into_iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| drainpipe_aws_auth::Error::Signing(e.to_string()))?;
            let value = HeaderValue::from_str(&value).map_err(|e| drainpipe_aws_auth::Error::Signing(e.to_string()))?;
            Ok((name, value))
        })
        .collect()
}

/// Refuses to send `what` (credentials, signed requests) to `url` over plain `http://` to
/// another machine, unless `--allow-insecure-credentials` allows it.
fn refuse_plain_http(config: &ClientConfig, url: &Url, what: &str) -> Result<(), Error> {
    if config.allow_insecure_credentials || is_private_transport(url) {
        return Ok(());
    }
    let reason = format!(
        "{what} would cross the network unencrypted (http:// to another machine); use https://, or allow it \
         explicitly (--allow-insecure-credentials) on a network you trust"
    );
    Err(bad_url(url.as_str(), reason))
}

/// `https://`, or `http://` to this machine (a loopback address or `localhost`): what only
/// this machine can read.
fn is_private_transport(url: &Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

fn bad_url(url: &str, reason: String) -> Error {
    Error::Url { url: redact(url), reason }
}

/// Whether `error` says the node could not be connected to at all (refused, unreachable, no
/// such host, a failed TLS handshake): nothing was sent, so another node can take the request
/// at once.
fn is_connect_error(error: &elasticsearch::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<reqwest::Error>() {
            return e.is_connect();
        }
        source = e.source();
    }
    false
}

/// Starts a probe of node `i` if it is set aside, its time has come and no probe is running.
fn probe_if_due(nodes: &Arc<[Node]>, i: usize) {
    let node = &nodes[i];
    let since = node.down_since_probe_ms.load(Ordering::Relaxed);
    if since == 0 || now_ms().saturating_sub(since) < PROBE_EVERY.as_millis() as u64 {
        return;
    }
    if node.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    let nodes = nodes.clone();
    tokio::spawn(async move {
        let node = &nodes[i];
        let answer =
            node.es.send::<Bytes, ()>(Method::Get, "/", HeaderMap::new(), None, None, Some(PROBE_TIMEOUT)).await;
        match answer {
            Ok(_) => node.set_up(),
            // Still down (unless a request found it up meanwhile): the next probe is
            // PROBE_EVERY from now.
            Err(_) => {
                let still_down = node
                    .down_since_probe_ms
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |since| (since != 0).then(|| now_ms().max(1)));
                if still_down.is_ok() {
                    node.up_gauge.set(0);
                }
            }
        }
        node.probing.store(false, Ordering::Release);
    });
}

/// A data stream as `GET _data_stream` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DataStream {
    pub name: String,
    /// The index template it was made from.
    #[serde(default)]
    pub template: String,
    /// Its lifecycle (`{"enabled": true, "data_retention": "30d"}`), if it has one.
    #[serde(default)]
    pub lifecycle: Option<Value>,
    /// Its backing indices, oldest first (the last is the write index).
    #[serde(default)]
    pub indices: Vec<BackingIndex>,
}

/// One backing index of a data stream.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct BackingIndex {
    pub index_name: String,
}

/// What answers at the other end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// OpenSearch rather than Elasticsearch.
    pub opensearch: bool,
    /// `9.5.4`, `2.19.6`, …
    pub version: String,
}

impl Server {
    /// The major version (0 when unknown).
    pub fn major(&self) -> u32 {
        self.version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.opensearch { "OpenSearch" } else { "Elasticsearch" };
        write!(f, "{name} {}", self.version)
    }
}

/// How to reach Elasticsearch.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// One or more nodes, used in turn; a node that cannot be reached is skipped until it
    /// answers again. Credentials in a URL's user-info become basic auth.
    pub urls: Vec<String>,
    /// An API key (`id:key`, or the base64 form Elasticsearch prints as `encoded`); wins over
    /// basic auth.
    pub api_key: Option<String>,
    /// PEM certificates (a private CA) trusted as well as the Mozilla roots built into the
    /// binary (webpki-roots); the operating system's certificate store is not read.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate (its chain, then its private key, PEM) shown to nodes that ask
    /// for one (mutual TLS); sent beside the login, if there is one.
    pub client_identity_pem: Option<Vec<u8>>,
    /// gzip `_bulk` bodies at this level (1 fastest … 9 smallest); `None` sends them as they
    /// are.
    pub gzip_level: Option<u32>,
    /// Send credentials over plain `http://` to another machine too (refused otherwise: anyone
    /// on the path could read them).
    pub allow_insecure_credentials: bool,
    /// Sign every request with AWS SigV4 (Amazon OpenSearch Service), instead of a login.
    pub aws_sigv4: Option<Arc<drainpipe_aws_auth::Signer>>,
}

impl Client {
    /// A client of one node, e.g. `http://127.0.0.1:9200` or `https://user:pass@host`.
    pub fn new(url: &str) -> Result<Client, Error> {
        Client::with_config(&ClientConfig { urls: vec![url.to_owned()], ..ClientConfig::default() })
    }

    pub fn with_config(config: &ClientConfig) -> Result<Client, Error> {
        let (urls, credentials) = urls_and_credentials(config)?;
        let display_url = urls.iter().map(|(url, _)| url.to_string()).collect::<Vec<_>>().join(",");
        let nodes = urls
            .into_iter()
            .map(|(url, credentials)| Node::connect(url, config, credentials.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Client {
            nodes: nodes.into(),
            next: Arc::default(),
            display_url,
            last_answer_ms: Arc::default(),
            refused: Arc::default(),
            refusal_logged_ms: Arc::default(),
            blocked_logged_ms: Arc::default(),
            writes_to: None,
            credentials,
            gzip_level: config.gzip_level,
            aws_sigv4: config.aws_sigv4.clone(),
            client_identity_pem: config.client_identity_pem.as_deref().map(Arc::from),
        })
    }

    /// The same client, naming `pattern` (what `_bulk` writes to) when it logs that the role
    /// lacks privileges.
    pub fn writing_to(mut self, pattern: &str) -> Client {
        self.writes_to = Some(pattern.into());
        self
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &str {
        &self.display_url
    }

    /// What is sent to the nodes to log in: `an API key`, `basic auth as "user"`, or `none`.
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    /// How long ago Elasticsearch last answered a request (any status); `None` if never.
    pub fn since_last_answer(&self) -> Option<Duration> {
        match self.last_answer_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(now_ms().saturating_sub(ms))),
        }
    }

    /// Sends one request and returns status and body, whatever the status. It goes to the
    /// next node in use (round robin among them). A node that cannot be connected to is set
    /// aside and the request goes to the next at once, then to the nodes set aside, so no
    /// request fails while a node can take it. A timeout or a broken answer sets the node
    /// aside too but is returned: the caller retries with backoff.
    async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), Error> {
        self.request_encoded(method, path, content_type, None, body).await
    }

    /// [`Client::request`] with a body in `encoding` (`Content-Encoding`).
    async fn request_encoded(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        encoding: Option<&'static str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.nodes.len() {
            probe_if_due(&self.nodes, i);
        }
        let (mut order, aside): (Vec<usize>, Vec<usize>) = (0..self.nodes.len()).partition(|&i| self.nodes[i].is_up());
        if !order.is_empty() {
            let start = turn % order.len();
            order.rotate_left(start);
        }
        order.extend(aside);
        let mut tried = order.iter().peekable();
        while let Some(&i) = tried.next() {
            let node = &self.nodes[i];
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(encoding) = encoding {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            if let Some(signer) = &self.aws_sigv4 {
                headers.extend(sign(signer, node, method, path, body.as_deref()).await?);
            }
            match self.send_to(node, method, path, headers, body.clone()).await {
                Ok(answer) => {
                    crate::metrics::REACHABLE.set(1);
                    self.last_answer_ms.store(now_ms(), Ordering::Relaxed);
                    node.set_up();
                    return Ok(answer);
                }
                Err(e) => {
                    let connect = is_connect_error(&e);
                    if connect || e.is_timeout() {
                        node.set_down(&e);
                    }
                    if connect && tried.peek().is_some() {
                        node.failovers.inc();
                        continue;
                    }
                    crate::metrics::REACHABLE.set(0);
                    return Err(e.into());
                }
            }
        }
        Err(Error::Url { url: self.display_url.clone(), reason: "no Elasticsearch URL".into() })
    }

    /// One request to one node: the answer, or why there was none (no connection, a timeout,
    /// a body cut short).
    async fn send_to(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), elasticsearch::Error> {
        let response = node.es.send::<Bytes, ()>(method, path, headers, None, body, None).await?;
        let status = response.status_code();
        Ok((status, response.bytes().await?))
    }

    /// Sends NDJSON to `_bulk`; an answer other than 200 is an error.
    pub async fn bulk(&self, ndjson: Bytes) -> Result<Bytes, Error> {
        let path = format!("/_bulk?filter_path={FILTER_PATH}");
        let (body, encoding) = match self.gzip_level.and_then(|level| gzip(&ndjson, level)) {
            Some(compressed) => (compressed, Some("gzip")),
            None => (ndjson, None),
        };
        crate::metrics::BULK_BODY_BYTES.inc_by(body.len() as u64);
        let (status, body) =
            self.request_encoded(Method::Post, &path, "application/x-ndjson", encoding, Some(body)).await?;
        self.note_refusal(status, &body);
        if status != StatusCode::OK {
            return Err(Error::Status { request: "_bulk", status, body: snippet(&body) });
        }
        Ok(body)
    }

    /// `Some` while `_bulk` refuses drainpipe's credentials or their privileges (the spool
    /// fills meanwhile; the requests are retried).
    pub fn refusal(&self) -> Option<Refusal> {
        *self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps [`Client::refusal`] current after a `_bulk` answer, counts refusals, and says so
    /// loudly: once a minute, as an error, while it lasts. A block's 403 is no refusal.
    fn note_refusal(&self, status: StatusCode, body: &[u8]) {
        let code = status.as_u16();
        let mut refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !crate::error::is_refusal_status(status) {
            if status == StatusCode::OK {
                *refused = None;
            }
            return;
        }
        if is_block(body) {
            drop(refused);
            self.note_block(&snippet(body));
            return;
        }
        crate::metrics::CREDENTIALS_REFUSED.with_label_values(&[if code == 401 { "401" } else { "403" }]).inc();
        let since_ms = refused.filter(|r| r.status == code).map_or_else(now_ms, |r| r.since_ms);
        *refused = Some(Refusal { status: code, since_ms });
        drop(refused);
        if log_due(&self.refusal_logged_ms) {
            let what = if code == 401 {
                "refuses drainpipe's credentials (401): check the user and password in the URL, or the API key"
                    .to_owned()
            } else {
                let on = self.writes_to.as_deref().unwrap_or("the indices written to");
                format!("refuses to let drainpipe write (403): the role lacks privileges on {on} (docs/operations.md)")
            };
            tracing::error!(
                url = %self.display_url,
                answer = %snippet(body),
                "Elasticsearch {what}; retrying, and accepted lines wait in the spool or queue meanwhile"
            );
        }
    }

    /// Says, once a minute while it lasts, that a cluster or index block keeps documents out.
    pub(crate) fn note_block(&self, reason: &str) {
        if log_due(&self.blocked_logged_ms) {
            tracing::warn!(
                url = %self.display_url,
                reason,
                "Elasticsearch blocks writes (a write block, read-only at the disk's flood stage, a read-only cluster); \
                 holding the documents and retrying until the block is lifted, none is dead-lettered for it"
            );
        }
    }

    /// Installs or replaces a composable index template.
    pub async fn put_index_template(&self, name: &str, template: &Value) -> Result<(), Error> {
        let body = Bytes::from(serde_json::to_vec(template)?);
        let path = format!("/_index_template/{}", encoded(name));
        let (status, body) = self.request(Method::Put, &path, "application/json", Some(body)).await?;
        if !status.is_success() {
            return Err(Error::Status { request: "PUT _index_template", status, body: reasons(&body) });
        }
        Ok(())
    }

    /// The composable index template of that name (its `index_template` object), if there is one.
    pub async fn index_template(&self, name: &str) -> Result<Option<Value>, Error> {
        let path = format!("/_index_template/{}", encoded(name));
        let (status, body) = self.request(Method::Get, &path, "application/json", None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::Status { request: "GET _index_template", status, body: snippet(&body) });
        }
        let mut v: Value = serde_json::from_slice(&body)?;
        Ok(Some(v["index_templates"][0]["index_template"].take()))
    }

    /// Every composable index template whose name matches `pattern` (`name-*`), by name.
    pub async fn index_templates(&self, pattern: &str) -> Result<Vec<(String, Value)>, Error> {
        let path = format!("/_index_template/{}", encoded(pattern));
        let (status, body) = self.request(Method::Get, &path, "application/json", None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(Error::Status { request: "GET _index_template", status, body: snippet(&body) });
        }
        let mut v: Value = serde_json::from_slice(&body)?;
        let templates = v["index_templates"].as_array_mut().map(std::mem::take).unwrap_or_default();
        Ok(templates
            .into_iter()
            .filter_map(|mut t| Some((t["name"].as_str()?.to_owned(), t["index_template"].take())))
            .collect())
    }

    /// Deletes a composable index template (gone already is fine).
    pub async fn delete_index_template(&self, name: &str) -> Result<(), Error> {
        let path = format!("/_index_template/{}", encoded(name));
        let (status, body) = self.request(Method::Delete, &path, "application/json", None).await?;
        if !status.is_success() && status != StatusCode::NOT_FOUND {
            return Err(Error::Status { request: "DELETE _index_template", status, body: snippet(&body) });
        }
        Ok(())
    }

    /// Which server this is: `GET /` names OpenSearch; Elasticsearch's test distribution
    /// refuses `GET /`, so its version comes from the local node.
    pub async fn server(&self) -> Result<Server, Error> {
        let (status, body) = match self.request(Method::Get, "/", "application/json", None).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.with_tls_answer(e).await),
        };
        if status.is_success() {
            let v: Value = serde_json::from_slice(&body)?;
            let number = v["version"]["number"].as_str().unwrap_or_default().to_owned();
            let opensearch = v["version"]["distribution"] == "opensearch";
            return Ok(Server { opensearch, version: number });
        }
        let path = "/_nodes/_local?filter_path=nodes.*.version";
        let (status, body) = self.request(Method::Get, path, "application/json", None).await?;
        if !status.is_success() {
            return Err(Error::Status { request: "GET _nodes/_local", status, body: snippet(&body) });
        }
        let v: Value = serde_json::from_slice(&body)?;
        let version = v["nodes"].as_object().and_then(|n| n.values().next()).and_then(|n| n["version"].as_str());
        Ok(Server { opensearch: false, version: version.unwrap_or_default().to_owned() })
    }

    /// `error`, with the node's TLS answer when the request to this one-node `https` client
    /// failed after connecting and without a reason ([`crate::tls_answer`]).
    async fn with_tls_answer(&self, error: Error) -> Error {
        let Error::Transport(inner) = error else { return error };
        let [node] = &self.nodes[..] else { return Error::Transport(inner) };
        if node.base.scheme() != "https"
            || is_connect_error(&inner)
            || crate::error::with_causes(&inner).contains("alert")
        {
            return Error::Transport(inner);
        }
        match crate::tls_answer::tls_answer(&node.base, self.client_identity_pem.as_deref()).await {
            Some(answer) => Error::TlsRefused { error: inner, answer },
            None => Error::Transport(inner),
        }
    }

    /// Succeeds when the cluster answers its health endpoint (any colour).
    pub async fn health(&self) -> Result<(), Error> {
        let (status, body) = self.request(Method::Get, "/_cluster/health", "application/json", None).await?;
        if !status.is_success() {
            return Err(Error::Status { request: "_cluster/health", status, body: snippet(&body) });
        }
        Ok(())
    }

    /// A JSON request and its JSON answer; any status but 2xx is an [`Error::Status`] with the
    /// answer's root cause.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        request: &'static str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let body = body.map(serde_json::to_vec).transpose()?.map(Bytes::from);
        let (status, answer) = self.request(method, path, "application/json", body).await?;
        if !status.is_success() {
            return Err(Error::Status { request, status, body: root_reason(&answer) });
        }
        Ok(serde_json::from_slice(&answer)?)
    }

    /// Searches `target` (a name, a pattern, or a list of them, `-` excluding) with `body`.
    pub async fn search(&self, target: &str, body: &Value) -> Result<Value, Error> {
        self.json(Method::Post, &format!("/{}/_search", encoded(target)), "_search", Some(body)).await
    }

    /// A search whose later pages [`Client::scroll`] reads, the scroll kept `keep_alive`
    /// (`5m`) between pages; its first page, with `_scroll_id`.
    pub async fn search_with_scroll(&self, target: &str, body: &Value, keep_alive: &str) -> Result<Value, Error> {
        let path = format!("/{}/_search?scroll={}", encoded(target), encoded(keep_alive));
        self.json(Method::Post, &path, "_search", Some(body)).await
    }

    /// The next page of a scroll.
    pub async fn scroll(&self, scroll_id: &str, keep_alive: &str) -> Result<Value, Error> {
        let body = json!({"scroll": keep_alive, "scroll_id": scroll_id});
        self.json(Method::Post, "/_search/scroll", "_search/scroll", Some(&body)).await
    }

    /// Frees a scroll's resources before its keep-alive ends.
    pub async fn clear_scroll(&self, scroll_id: &str) -> Result<(), Error> {
        let body = json!({"scroll_id": scroll_id});
        self.json::<IgnoredAny>(Method::Delete, "/_search/scroll", "DELETE _search/scroll", Some(&body)).await?;
        Ok(())
    }

    /// How many documents of `target` match `query` (every document without one).
    pub async fn count(&self, target: &str, query: Option<&Value>) -> Result<Count, Error> {
        let path = format!("/{}/_count", encoded(target));
        match query {
            Some(query) => self.json(Method::Post, &path, "_count", Some(&json!({"query": query}))).await,
            None => self.json(Method::Get, &path, "_count", None).await,
        }
    }

    /// Which of `fields` some index of `target` has.
    pub async fn field_caps(&self, target: &str, fields: &[String]) -> Result<BTreeSet<String>, Error> {
        #[derive(Deserialize)]
        struct Caps {
            #[serde(default)]
            fields: BTreeMap<String, IgnoredAny>,
        }
        let fields: Vec<String> = fields.iter().map(|f| encoded(f).to_string()).collect();
        let path = format!("/{}/_field_caps?fields={}", encoded(target), fields.join(","));
        let caps: Caps = self.json(Method::Get, &path, "_field_caps", None).await?;
        Ok(caps.fields.into_keys().collect())
    }

    /// Which of these privileges the user has: `cluster` ones, and `index` ones on `pattern`.
    pub async fn has_privileges(
        &self,
        cluster: &[&str],
        patterns: &[&str],
        index: &[&str],
    ) -> Result<Privileges, Error> {
        let body = json!({"cluster": cluster, "index": [{"names": patterns, "privileges": index}]});
        self.json(Method::Post, "/_security/user/_has_privileges", "_has_privileges", Some(&body)).await
    }

    /// The data streams `pattern` names: each one's name, the template it was made from, and
    /// its lifecycle (`None`: it has none). None at all when nothing matches.
    pub async fn data_streams(&self, pattern: &str) -> Result<Vec<DataStream>, Error> {
        #[derive(Deserialize)]
        struct Answer {
            data_streams: Vec<DataStream>,
        }
        let path = format!("/_data_stream/{}", encoded(pattern));
        match self.json::<Answer>(Method::Get, &path, "GET _data_stream", None).await {
            Ok(answer) => Ok(answer.data_streams),
            Err(Error::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Sets the data stream lifecycle of `stream` (what a template's `lifecycle` gives a new
    /// stream; an existing one keeps its own until told).
    pub async fn put_data_stream_lifecycle(&self, stream: &str, lifecycle: &Value) -> Result<(), Error> {
        let path = format!("/_data_stream/{}/_lifecycle", encoded(stream));
        self.json::<IgnoredAny>(Method::Put, &path, "PUT _data_stream/_lifecycle", Some(lifecycle)).await.map(|_| ())
    }

    /// OpenSearch's Index State Management policy `id` as `GET _plugins/_ism/policies/ID`
    /// answers it (`_seq_no`, `_primary_term`, `policy`), if there is one.
    pub async fn ism_policy(&self, id: &str) -> Result<Option<Value>, Error> {
        let path = format!("/_plugins/_ism/policies/{}", encoded(id));
        match self.json::<Value>(Method::Get, &path, "GET _plugins/_ism/policies", None).await {
            Ok(policy) => Ok(Some(policy)),
            Err(Error::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates policy `id`, or replaces the installed one (`replacing` its `_seq_no` and
    /// `_primary_term`, as ISM asks).
    pub async fn put_ism_policy(&self, id: &str, policy: &Value, replacing: Option<(u64, u64)>) -> Result<(), Error> {
        let mut path = format!("/_plugins/_ism/policies/{}", encoded(id));
        if let Some((seq_no, primary_term)) = replacing {
            path.push_str(&format!("?if_seq_no={seq_no}&if_primary_term={primary_term}"));
        }
        self.json::<IgnoredAny>(Method::Put, &path, "PUT _plugins/_ism/policies", Some(&json!({"policy": policy})))
            .await
            .map(|_| ())
    }

    /// Gives `indices` (comma-separated names) policy `id`: `add` reaches those without a
    /// policy, `change` (`change_policy`) those managed by an earlier version or another one.
    /// How many it reached.
    pub async fn apply_ism_policy(&self, indices: &str, id: &str, change: bool) -> Result<u64, Error> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            updated_indices: u64,
        }
        let verb = if change { "change_policy" } else { "add" };
        let path = format!("/_plugins/_ism/{verb}/{}", encoded(indices));
        let answer: Answer = self.json(Method::Post, &path, "_plugins/_ism", Some(&json!({"policy_id": id}))).await?;
        Ok(answer.updated_indices)
    }

    /// Rolls `stream` over to a new backing index; `false` when there is no such stream.
    pub async fn rollover(&self, stream: &str) -> Result<bool, Error> {
        let path = format!("/{}/_rollover", encoded(stream));
        match self.json::<IgnoredAny>(Method::Post, &path, "_rollover", None).await {
            Ok(_) => Ok(true),
            Err(Error::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Which of `ids` are stored in `target` (in any of its indices); none when there is no
    /// such target.
    pub async fn existing_ids(&self, target: &str, ids: &[&str]) -> Result<BTreeSet<String>, Error> {
        let query = json!({"size": ids.len(), "_source": false, "query": {"ids": {"values": ids}}});
        let answer = match self.search(target, &query).await {
            Err(Error::Status { status: StatusCode::NOT_FOUND, .. }) => return Ok(BTreeSet::new()),
            answer => answer?,
        };
        let hits = answer["hits"]["hits"].as_array().into_iter().flatten();
        Ok(hits.filter_map(|h| h["_id"].as_str().map(str::to_owned)).collect())
    }

    /// Deletes documents by `(index, _id)`, searches seeing it once this returns; what became
    /// of each (a 404 item was gone already).
    pub async fn delete_documents(&self, documents: &[(&str, &str)]) -> Result<Vec<ItemOutcome>, Error> {
        let mut body = Vec::new();
        for (index, id) in documents {
            body.extend_from_slice(json!({"delete": {"_index": index, "_id": id}}).to_string().as_bytes());
            body.push(b'\n');
        }
        let path = format!("/_bulk?refresh=wait_for&filter_path={FILTER_PATH}");
        let (status, answer) =
            self.request(Method::Post, &path, "application/x-ndjson", Some(Bytes::from(body))).await?;
        if status != StatusCode::OK {
            return Err(Error::Status { request: "_bulk", status, body: snippet(&answer) });
        }
        classify(&answer, documents.len())
    }
}

/// What a `_count` answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Count {
    #[serde(default)]
    pub count: u64,
    /// Shards counted over: none when a pattern matched no index.
    #[serde(rename = "_shards", default)]
    pub shards: Shards,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Shards {
    #[serde(default)]
    pub total: u64,
}

/// What `_has_privileges` answered: each privilege asked for, held or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Privileges {
    #[serde(default)]
    pub has_all_requested: bool,
    #[serde(default)]
    pub cluster: BTreeMap<String, bool>,
    /// By index pattern, then privilege.
    #[serde(default)]
    pub index: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Privileges {
    /// Whether the user holds cluster privilege `name`.
    pub fn holds_cluster(&self, name: &str) -> bool {
        self.cluster.get(name) == Some(&true)
    }

    /// Whether the user holds index privilege `name` on `pattern`.
    pub fn holds_index(&self, pattern: &str, name: &str) -> bool {
        self.index.get(pattern).and_then(|held| held.get(name)) == Some(&true)
    }
}

/// What a target (`name`, `pattern-*`, `a,-b`) keeps as it is in a path; anything else is
/// escaped, so a name read from a file cannot reach another endpoint.
const TARGET: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'*').remove(b',').remove(b':');

fn encoded(target: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(target, TARGET)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The first line of an error body, short enough for a log line.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// An error answer's `reason`s, outermost first, down its `caused_by` chain (where the
/// useful one is: "the mapper type [x] … does not exist"); else its first line.
fn reasons(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return snippet(body) };
    let mut out = Vec::new();
    let mut error = &v["error"];
    while let Some(reason) = error["reason"].as_str() {
        out.push(reason.to_owned());
        error = &error["caused_by"];
    }
    if out.is_empty() {
        return snippet(body);
    }
    out.join(": ")
}

/// An error answer's root cause (what a failed search says went wrong in its shards), else
/// its `reason`, else its first line.
fn root_reason(body: &[u8]) -> String {
    let v = serde_json::from_slice::<Value>(body).unwrap_or_default();
    let error = &v["error"];
    match error["root_cause"][0]["reason"].as_str().or(error["reason"].as_str()) {
        Some(reason) => reason.to_owned(),
        None => snippet(body),
    }
}

/// `url` with any password replaced, for error messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.has_host() && u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(u) if u.has_host() => u.to_string(),
        // Not a URL (`user:pass@host:9200` reads as scheme `user`): what was typed, less
        // anything that may be credentials.
        _ => match url.rsplit_once('@') {
            Some((_, host)) => format!("[REDACTED]@{host}"),
            None => url.to_owned(),
        },
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `body` gzipped at `level` (0–9). Into a `Vec` it cannot fail; were flate2 ever to, the body
/// goes as it is (`None`), uncompressed and still correct.
fn gzip(body: &[u8], level: u32) -> Option<Bytes> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::new(level));
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_credentials_out_of_the_url() {
        let c = Client::new("https://user:p%40ss@search.example.com:443/").unwrap();
        assert_eq!(c.url(), "https://search.example.com/");
        let config = ClientConfig {
            urls: vec!["http://a:9200".into(), "http://u:p@b:9200".into()],
            api_key: Some("id:secret".into()),
            gzip_level: Some(1),
            allow_insecure_credentials: true,
            ..ClientConfig::default()
        };
        let client = Client::with_config(&config).unwrap();
        assert_eq!(client.url(), "http://a:9200/,http://b:9200/");
        assert_eq!(client.credentials(), "an API key");
        let bad_ca =
            ClientConfig { urls: vec!["https://a".into()], ca_pem: Some(b"nope".to_vec()), ..ClientConfig::default() };
        assert!(Client::with_config(&bad_ca).is_err());
        assert_eq!(redact("https://user:secret@h/"), "https://user:REDACTED@h/");
        assert_eq!(redact("user:secret@h:9200"), "[REDACTED]@h:9200");
        assert_eq!(redact("h:9200"), "h:9200");
        assert!(Client::new("ftp://h").is_err());
        assert!(Client::new("not a url").is_err());
    }

    fn config(urls: &[&str]) -> ClientConfig {
        ClientConfig { urls: urls.iter().map(|u| (*u).to_owned()).collect(), ..ClientConfig::default() }
    }

    /// Each node's credentials, as `Debug` prints them.
    fn sent(config: &ClientConfig) -> Vec<String> {
        let (nodes, _) = urls_and_credentials(config).unwrap();
        nodes.iter().map(|(_, c)| format!("{c:?}")).collect()
    }

    #[test]
    fn each_node_gets_its_own_login_else_the_first_one_given() {
        let c = config(&["https://a:1@x", "https://y", "https://b:2@z"]);
        assert_eq!(sent(&c), [r#"Some(Basic("a", "1"))"#, r#"Some(Basic("a", "1"))"#, r#"Some(Basic("b", "2"))"#]);
        assert_eq!(Client::with_config(&c).unwrap().credentials(), r#"basic auth as "a""#);
        // An API key wins everywhere; nothing given sends nothing.
        let key = ClientConfig { api_key: Some("id:k".into()), ..config(&["https://a:1@x", "https://y"]) };
        assert_eq!(sent(&key), [r#"Some(ApiKey("id", "k"))"#; 2]);
        assert_eq!(sent(&config(&["http://10.0.0.5:9200"])), ["None"]);
        assert_eq!(Client::with_config(&config(&["http://10.0.0.5:9200"])).unwrap().credentials(), "none");
    }

    #[test]
    fn credentials_never_cross_the_network_over_plain_http_unless_allowed() {
        for url in ["http://u:p@10.0.0.5:9200", "http://u:p@search.example.com", "http://u:p@[fd00::1]:9200"] {
            let err = Client::with_config(&config(&[url])).unwrap_err().to_string();
            assert!(err.contains("--allow-insecure-credentials") && !err.contains(":p@"), "{err}");
        }
        // Borrowed credentials count: the second node would get the first one's login.
        assert!(Client::with_config(&config(&["https://u:p@a", "http://b:9200"])).is_err());
        let key = ClientConfig { api_key: Some("id:k".into()), ..config(&["http://b:9200"]) };
        assert!(Client::with_config(&key).is_err());
        for url in ["http://u:p@127.0.0.1:9200", "http://u:p@localhost:9200", "http://u:p@[::1]:9200", "https://u:p@b"]
        {
            assert!(Client::with_config(&config(&[url])).is_ok(), "{url}");
        }
        let allowed = ClientConfig { allow_insecure_credentials: true, ..config(&["http://u:p@10.0.0.5:9200"]) };
        assert!(Client::with_config(&allowed).is_ok());
    }
}
