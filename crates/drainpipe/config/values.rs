//! The types option values parse into. Each parses (`FromStr`, which clap and the TOML file
//! both go through), so a value that is accepted is valid, and each serialises back into what
//! `check-config` prints, with secrets redacted.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::Duration;

use drainpipe_ingest::{Credential, DrainTokens};
use serde::{Serialize, Serializer};

pub use drainpipe_ingest::{Secret, REDACTED};

/// An address to listen on: `0.0.0.0:8080`, `[::]:8080`, `localhost:8080`, or a port alone
/// (`:8080`, `8080`) for every interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        let s = s.trim();
        let port = s.strip_prefix(':').unwrap_or(s);
        if let Ok(port) = port.parse::<u16>() {
            return Ok(ListenAddr(SocketAddr::from(([0, 0, 0, 0], port))));
        }
        if let Ok(addr) = s.parse() {
            return Ok(ListenAddr(addr));
        }
        // A host name (`localhost:8080`): its first address.
        match s.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => Ok(ListenAddr(addr)),
            _ => Err(format!("{s:?} is not an address to listen on (e.g. 0.0.0.0:8080, localhost:8080, :8080)")),
        }
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// An `http://` or `https://` URL of an Elasticsearch node, credentials perhaps in it.
#[derive(Clone, PartialEq, Eq)]
pub struct ElasticsearchUrl(pub String);

impl std::str::FromStr for ElasticsearchUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<ElasticsearchUrl, String> {
        let s = s.trim();
        let shown = drainpipe_bulk_indexer::redact(s);
        match reqwest::Url::parse(s) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(ElasticsearchUrl(s.to_owned()))
            }
            Ok(_) | Err(_) if !s.contains("://") => {
                Err(format!("{shown:?} is not a URL; did you mean \"http://{shown}\"?"))
            }
            Ok(url) => Err(format!("{shown:?}: the scheme must be http or https, not {:?}", url.scheme())),
            Err(e) => Err(format!("{shown:?} is not a URL: {e}")),
        }
    }
}

impl std::fmt::Debug for ElasticsearchUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&drainpipe_bulk_indexer::redact(&self.0))
    }
}

impl Serialize for ElasticsearchUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&drainpipe_bulk_indexer::redact(&self.0))
    }
}

/// `--elasticsearch-cloud-id` prints as given (it names a deployment, and holds no secret).
pub fn cloud_id<S: Serializer>(id: &Option<drainpipe_bulk_indexer::CloudId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&id.id),
        None => s.serialize_none(),
    }
}

/// A secret option (`--elasticsearch-api-key`) prints as [`REDACTED`] in `check-config`.
pub fn redacted_secret<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

/// `basic-auth` entries print as `user:[REDACTED]`.
pub fn redacted_credentials<S: Serializer>(lists: &[Credentials], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(lists.iter().flat_map(|l| &l.0).map(redacted))
}

/// `user:[REDACTED]`.
fn redacted(c: &Credential) -> String {
    format!("{}:{REDACTED}", c.user)
}

/// One `--basic-auth` value: a `USER:PASS`, or several separated by commas. A comma starts a
/// new credential only where what follows it has a `:` of its own, so a password may hold
/// commas (`logplex:a,b` is one credential); `u:a,b:c` is two (give such a password alone in a
/// TOML array item, or repeat the flag).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(pub Vec<Credential>);

impl std::str::FromStr for Credentials {
    type Err = String;

    fn from_str(s: &str) -> Result<Credentials, String> {
        let mut pieces: Vec<String> = Vec::new();
        for piece in s.split(',') {
            match pieces.last_mut() {
                Some(last) if !piece.contains(':') => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => pieces.push(piece.to_owned()),
            }
        }
        pieces.iter().map(|p| p.parse::<Credential>()).collect::<Result<_, _>>().map(Credentials)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(redacted)).finish()
    }
}

/// One `TOKEN=APP` of the drain-token list; the token prints as `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct DrainToken {
    pub token: String,
    pub app: String,
}

impl std::str::FromStr for DrainToken {
    type Err = String;

    fn from_str(s: &str) -> Result<DrainToken, String> {
        let (token, app) = DrainTokens::parse_pair(s)?;
        Ok(DrainToken { token, app })
    }
}

impl std::fmt::Debug for DrainToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{REDACTED}={}", self.app)
    }
}

impl Serialize for DrainToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{REDACTED}={}", self.app))
    }
}

/// One `--otlp-token`: `TOKEN`, or `TOKEN=APP` for senders whose resource names no app (the app
/// follows the last `=`); the token prints as `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpToken {
    pub token: Secret,
    pub app: Option<String>,
}

impl std::str::FromStr for OtlpToken {
    type Err = String;

    fn from_str(s: &str) -> Result<OtlpToken, String> {
        // The app follows the last `=`: base64 tokens end in `=` padding (`abc==` is a token
        // alone, `abc===shop` that token for app shop).
        let (token, app) = match s.trim().rsplit_once('=') {
            Some((token, app)) if !app.trim().is_empty() => (token.trim(), Some(app.trim())),
            _ => (s.trim(), None),
        };
        if token.is_empty() {
            return Err("expected TOKEN or TOKEN=APP".to_owned());
        }
        Ok(OtlpToken { token: Secret::new(token), app: app.map(str::to_owned) })
    }
}

impl std::fmt::Debug for OtlpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.app {
            Some(app) => write!(f, "{REDACTED}={app}"),
            None => f.write_str(REDACTED),
        }
    }
}

impl Serialize for OtlpToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{self:?}"))
    }
}

/// A data stream namespace: data stream names are `type-dataset-namespace`, so it may not hold
/// `-`, and index names must be lowercase without `\ / * ? " < > | , # :` or spaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace(pub String);

impl std::str::FromStr for Namespace {
    type Err = String;

    fn from_str(ns: &str) -> Result<Namespace, String> {
        match drainpipe_transform::namespace_problem(ns) {
            Some(problem) => Err(problem),
            None => Ok(Namespace(ns.to_owned())),
        }
    }
}

/// `text` for people, `json` for log shippers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration written `500ms`, `30s`, `5m`, `1h30m` (humantime's syntax; a bare number is
/// seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<HumanDuration, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<u64>() {
            return Ok(HumanDuration(Duration::from_secs(secs)));
        }
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|e| format!("{s:?} is not a duration (e.g. 500ms, 30s, 5m, 1h30m): {e}"))
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.subsec_millis() {
            0 => write!(f, "{}s", self.0.as_secs()),
            _ => write!(f, "{}ms", self.0.as_millis()),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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
        match split_number(s) {
            (n, "d" | "h" | "m" | "s") if n.parse::<u64>().is_ok_and(|n| n > 0) => Ok(Retention::Age(s.to_owned())),
            _ => Err(format!("{s:?} is not a retention (e.g. 30d, 12h, or forever)")),
        }
    }
}

impl Retention {
    /// How long, as a duration; `None` for `forever`.
    pub fn duration(&self) -> Option<Duration> {
        let Retention::Age(age) = self else { return None };
        let (n, unit) = split_number(age);
        let unit = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            _ => 1,
        };
        Some(Duration::from_secs(n.parse::<u64>().unwrap_or(0).saturating_mul(unit)))
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Retention::Age(age) => s.serialize_str(age),
            Retention::Forever => s.serialize_str("forever"),
        }
    }
}

/// One `--retention` entry: `30d` for every dataset, or `router=7d` for one (`forever` for
/// no lifecycle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRule {
    /// The dataset's short name (`router`, `app`, …); `None` for every dataset.
    pub dataset: Option<String>,
    pub retention: Retention,
}

impl std::str::FromStr for RetentionRule {
    type Err = String;

    fn from_str(s: &str) -> Result<RetentionRule, String> {
        let Some((dataset, age)) = s.split_once('=') else {
            return Ok(RetentionRule { dataset: None, retention: s.parse()? });
        };
        let dataset = dataset.trim();
        let short = dataset.strip_prefix("heroku.").unwrap_or(dataset);
        let known: Vec<&str> = drainpipe_transform::Dataset::ALL
            .iter()
            .map(|d| d.as_str().strip_prefix("heroku.").unwrap_or(d.as_str()))
            .collect();
        if !known.contains(&short) {
            return Err(format!("unknown dataset {dataset:?} (one of {})", known.join(", ")));
        }
        Ok(RetentionRule { dataset: Some(short.to_owned()), retention: age.parse()? })
    }
}

impl Serialize for RetentionRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let age = match &self.retention {
            Retention::Age(age) => age.as_str(),
            Retention::Forever => "forever",
        };
        match &self.dataset {
            Some(d) => s.collect_str(&format_args!("{d}={age}")),
            None => s.serialize_str(age),
        }
    }
}

/// When the spool syncs to disk: `batch`, or an interval.
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

impl Serialize for FsyncPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FsyncPolicy::Batch => s.serialize_str("batch"),
            FsyncPolicy::Interval(d) => HumanDuration(*d).serialize(s),
        }
    }
}

impl From<FsyncPolicy> for drainpipe_spool::Fsync {
    fn from(p: FsyncPolicy) -> drainpipe_spool::Fsync {
        match p {
            FsyncPolicy::Batch => drainpipe_spool::Fsync::EveryBatch,
            FsyncPolicy::Interval(d) => drainpipe_spool::Fsync::Interval(d),
        }
    }
}

/// A size in bytes, written `65536`, `64KiB`, `8MiB`, `1GiB` (also `KB`/`MB`/`GB` and
/// `k`/`M`/`G`, all powers of 1024); never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        // parse_size also takes exponents (`1e3MB`) and other forms nobody writes for a size:
        // the number is digits with at most one decimal point, then a unit of letters.
        let t = s.trim();
        let (number, unit) = t.split_at(t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len()));
        let plain = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        let number_ok = match number.split_once('.') {
            None => plain(number),
            Some((whole, fraction)) => plain(whole) && plain(fraction),
        };
        if !number_ok || !unit.trim_start().bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("{t:?} is not a size (e.g. 65536, 64KiB, 8MiB)"));
        }
        // Binary units whatever the spelling (`8MB` is 8 MiB, as people mean for buffers).
        let bytes = parse_size::Config::new()
            .with_binary()
            .parse_size(s.trim())
            .map_err(|e| format!("{:?} is not a size (e.g. 65536, 64KiB, 8MiB): {e}", s.trim()))?;
        usize::try_from(bytes)
            .ok()
            .filter(|&b| b > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("{:?} is out of range", s.trim()))
    }
}

/// `"30s"` → `("30", "s")`.
fn split_number(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_token_keeps_its_base64_padding() {
        let t: OtlpToken = "abc==".parse().unwrap();
        assert_eq!((t.token.expose(), t.app), ("abc==", None));
        let t: OtlpToken = "abc===shop".parse().unwrap();
        assert_eq!((t.token.expose(), t.app.as_deref()), ("abc==", Some("shop")));
        let t: OtlpToken = "tok=shop".parse().unwrap();
        assert_eq!((t.token.expose(), t.app.as_deref()), ("tok", Some("shop")));
        assert!("=shop".parse::<OtlpToken>().is_err() && "".parse::<OtlpToken>().is_err());
        assert_eq!(format!("{t:?}"), "[REDACTED]=shop");
    }

    #[test]
    fn listen_addresses_as_people_write_them() {
        let parse = |s: &str| s.parse::<ListenAddr>().map(|a| a.0.to_string());
        assert_eq!(parse(":8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(parse("8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(parse("127.0.0.1:9").unwrap(), "127.0.0.1:9");
        assert_eq!(parse("[::1]:9").unwrap(), "[::1]:9");
        assert!(parse("localhost:8080").unwrap().ends_with(":8080"));
        assert!(parse("nowhere").is_err() && parse("1.2.3.4:99999").is_err());
    }

    #[test]
    fn elasticsearch_urls_say_what_is_wrong() {
        assert!("https://u:p@es.example.com:9243".parse::<ElasticsearchUrl>().is_ok());
        let err = "127.0.0.1:9200".parse::<ElasticsearchUrl>().unwrap_err();
        assert!(err.contains("\"127.0.0.1:9200\"") && err.contains("http://127.0.0.1:9200"), "{err}");
        let err = "localhost:9200".parse::<ElasticsearchUrl>().unwrap_err();
        assert!(err.contains("http://localhost:9200"), "{err}");
        let err = "ftp://h".parse::<ElasticsearchUrl>().unwrap_err();
        assert!(err.contains("http or https"), "{err}");
        let err = "elastic:hunter2@es:9200".parse::<ElasticsearchUrl>().unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn sizes_durations_retention_fsync() {
        assert_eq!("64KiB".parse::<ByteSize>(), Ok(ByteSize(65_536)));
        assert_eq!("8MiB".parse::<ByteSize>(), Ok(ByteSize(8 << 20)));
        assert_eq!("1000".parse::<ByteSize>(), Ok(ByteSize(1000)));
        assert!("0".parse::<ByteSize>().is_err() && "5 parsecs".parse::<ByteSize>().is_err());
        assert_eq!("1.5 KiB".parse::<ByteSize>(), Ok(ByteSize(1536)));
        for odd in ["1e3MB", "1E3", "0x10", "-1", "+5MB", ".5MB", "5.MB", "1.2.3MB", "5MB5", "5 M B", "1_000"] {
            assert!(odd.parse::<ByteSize>().is_err(), "{odd}");
        }
        assert_eq!("500ms".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_millis(500))));
        assert_eq!("2m".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_secs(120))));
        assert!("soon".parse::<HumanDuration>().is_err());
        // A comma starts a credential only where a `user:` follows it.
        let users = |s: &str| {
            let list = s.parse::<Credentials>().unwrap();
            list.0.iter().map(|c| format!("{}={}", c.user, c.password.expose())).collect::<Vec<_>>()
        };
        assert_eq!(users("logplex:a,b"), ["logplex=a,b"], "a comma inside a password");
        assert_eq!(users("old:x,new:y"), ["old=x", "new=y"], "rotation");
        assert_eq!(users("old:x,y,new:z"), ["old=x,y", "new=z"]);
        assert!("nopassword".parse::<Credentials>().is_err());
        // humantime's and parse-size's syntax, as people write them.
        assert_eq!("1h30m".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_secs(5400))));
        assert_eq!("45".parse::<HumanDuration>(), Ok(HumanDuration(Duration::from_secs(45))));
        assert_eq!("1.5GiB".parse::<ByteSize>(), Ok(ByteSize(3 << 29)));
        assert_eq!("64KB".parse::<ByteSize>(), Ok(ByteSize(65_536)), "binary units whatever the spelling");
        assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(HumanDuration(Duration::from_secs(30)).to_string(), "30s");
        assert_eq!("batch".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Batch));
        assert_eq!("200ms".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Interval(Duration::from_millis(200))));
        assert_eq!("30d".parse::<Retention>(), Ok(Retention::Age("30d".into())));
        assert_eq!("forever".parse::<Retention>(), Ok(Retention::Forever));
        for bad in ["30x", "0d", "d", "", "30", "-1d", "1.5d"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?} accepted");
        }
        let rule = |s: &str| s.parse::<RetentionRule>();
        assert_eq!(rule("30d"), Ok(RetentionRule { dataset: None, retention: Retention::Age("30d".into()) }));
        let router = RetentionRule { dataset: Some("router".into()), retention: Retention::Age("7d".into()) };
        assert_eq!((rule("router=7d"), rule("heroku.router=7d")), (Ok(router.clone()), Ok(router)));
        assert!(rule("routers=7d").unwrap_err().contains("runtime_metrics"));
        assert!(rule("router=7x").is_err());
        for bad in ["", "Prod", "a-b", "a b", "a*"] {
            assert!(bad.parse::<Namespace>().is_err(), "{bad}");
        }
    }
}
