//! AWS credentials from the standard places, in the AWS SDKs' order: the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), a web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: EKS service accounts), the container
//! endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `…_FULL_URI`: ECS, Fargate, EKS Pod
//! Identity), then the instance role (IMDSv2). The first one configured is used, as the SDKs
//! do; temporary credentials are fetched again five minutes before they expire.
//!
//! Endpoints can be pointed elsewhere with the SDKs' own variables (`AWS_ENDPOINT_URL_STS`,
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT`), which is also how the tests serve them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::Error;

/// Temporary credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
const CONTAINER_HOST: &str = "http://169.254.170.2";
const IMDS: &str = "http://169.254.169.254";

/// An access key, its secret, and for temporary credentials a session token and an expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expires", &self.expires)
            .finish()
    }
}

/// Where the credentials come from, chosen once from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Environment,
    WebIdentity { token_file: String, role_arn: String, session_name: String, endpoint: String },
    Container { url: String, authorization: Option<Authorization> },
    Instance { endpoint: String },
    None,
}

/// The container endpoint's authorization: a token, or a file holding it (read at each fetch,
/// since it is rotated).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Authorization {
    Token(String),
    File(String),
}

/// Credentials for signing, cached until shortly before they expire.
#[derive(Debug)]
pub struct CredentialsChain {
    source: Source,
    environment: HashMap<String, String>,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CredentialsChain {
    /// The chain this process's environment describes, for `region` (STS's endpoint).
    pub fn from_env(region: &str) -> CredentialsChain {
        CredentialsChain::with_env(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect(), region)
    }

    /// The chain `environment` (the `AWS_*` variables) describes.
    pub fn with_env(environment: HashMap<String, String>, region: &str) -> CredentialsChain {
        let var = |k: &str| environment.get(k).filter(|v| !v.is_empty()).cloned();
        let source = if var("AWS_ACCESS_KEY_ID").is_some() {
            Source::Environment
        } else if let (Some(token_file), Some(role_arn)) = (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN")) {
            let endpoint = var("AWS_ENDPOINT_URL_STS")
                .or_else(|| var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
            let session_name = var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "drainpipe".into());
            Source::WebIdentity { token_file, role_arn, session_name, endpoint }
        } else if let Some(url) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .or_else(|| var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|p| format!("{CONTAINER_HOST}{p}")))
        {
            let authorization = var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(Authorization::File)
                .or_else(|| var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Authorization::Token));
            Source::Container { url, authorization }
        } else if var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            Source::None
        } else {
            Source::Instance { endpoint: var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS.into()) }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        CredentialsChain { source, environment, http, cached: tokio::sync::Mutex::new(None) }
    }

    /// Where the credentials come from, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Environment => "the environment (AWS_ACCESS_KEY_ID)".into(),
            Source::WebIdentity { role_arn, .. } => format!("a web identity assuming {role_arn}"),
            Source::Container { url, .. } => format!("the container endpoint {url}"),
            Source::Instance { endpoint } => format!("the instance role ({endpoint}, IMDSv2)"),
            Source::None => "nowhere (AWS_EC2_METADATA_DISABLED and nothing else set)".into(),
        }
    }

    /// Credentials valid for at least a few more minutes.
    pub async fn get(&self) -> Result<Credentials, Error> {
        let mut cached = self.cached.lock().await;
        let fresh = |c: &Credentials| c.expires.is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE);
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let fetched =
            self.fetch().await.map_err(|why| Error::Credentials(format!("from {}: {why}", self.describe())))?;
        *cached = Some(fetched.clone());
        Ok(fetched)
    }

    async fn fetch(&self) -> Result<Credentials, String> {
        match &self.source {
            Source::Environment => {
                let var = |k: &str| self.environment.get(k).filter(|v| !v.is_empty()).cloned();
                Ok(Credentials {
                    access_key_id: var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                    secret_access_key: var("AWS_SECRET_ACCESS_KEY")
                        .ok_or("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")?,
                    session_token: var("AWS_SESSION_TOKEN"),
                    expires: None,
                })
            }
            Source::WebIdentity { token_file, role_arn, session_name, endpoint } => {
                self.web_identity(token_file, role_arn, session_name, endpoint).await
            }
            Source::Container { url, authorization } => self.container(url, authorization.as_ref()).await,
            Source::Instance { endpoint } => self.instance(endpoint.trim_end_matches('/')).await,
            Source::None => Err("no source is configured".into()),
        }
    }

    /// STS's `AssumeRoleWithWebIdentity` with the token in `token_file` (unsigned: the token is
    /// the proof).
    async fn web_identity(
        &self,
        token_file: &str,
        role_arn: &str,
        session_name: &str,
        endpoint: &str,
    ) -> Result<Credentials, String> {
        let token = std::fs::read_to_string(token_file).map_err(|e| format!("cannot read {token_file}: {e}"))?;
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token.trim()),
        ];
        let answer = self.http.post(endpoint).form(&form).send().await.map_err(|e| e.to_string())?;
        let status = answer.status();
        let xml = answer.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("STS answered {status}: {}", tag(&xml, "Message").unwrap_or(&xml)));
        }
        let field = |name: &str| tag(&xml, name).map(str::to_owned).ok_or(format!("STS's answer has no {name}"));
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expires: tag(&xml, "Expiration").and_then(parse_time),
        })
    }

    /// The container endpoint, with its authorization token if one is given.
    async fn container(&self, url: &str, authorization: Option<&Authorization>) -> Result<Credentials, String> {
        let mut request = self.http.get(url);
        match authorization {
            Some(Authorization::Token(token)) => request = request.header("authorization", token),
            Some(Authorization::File(path)) => {
                let token = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                request = request.header("authorization", token.trim());
            }
            None => {}
        }
        json_credentials(request.send().await.map_err(|e| e.to_string())?).await
    }

    /// The instance role through IMDSv2: a session token, the role's name, its credentials.
    async fn instance(&self, endpoint: &str) -> Result<Credentials, String> {
        let token = self
            .http
            .put(format!("{endpoint}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600");
        let token = text_of(token, "no IMDSv2 token").await?;
        let roles_url = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
        let get = |url: String| self.http.get(url).header("x-aws-ec2-metadata-token", token.as_str());
        let roles = text_of(get(roles_url.clone()), "no instance role").await?;
        let role = roles.lines().next().map(str::trim).filter(|r| !r.is_empty()).ok_or("no instance role")?;
        json_credentials(get(format!("{roles_url}{role}")).send().await.map_err(|e| e.to_string())?).await
    }
}

/// The text of a 2xx answer to `request`; otherwise why not, after `failing`.
async fn text_of(request: reqwest::RequestBuilder, failing: &str) -> Result<String, String> {
    let answer = request.send().await.and_then(reqwest::Response::error_for_status);
    answer.map_err(|e| format!("{failing}: {e}"))?.text().await.map_err(|e| e.to_string())
}

/// The JSON the container endpoint and IMDS answer.
async fn json_credentials(answer: reqwest::Response) -> Result<Credentials, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
        expiration: Option<String>,
    }
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let a: Answer = answer.json().await.map_err(|e| format!("unreadable answer: {e}"))?;
    Ok(Credentials {
        access_key_id: a.access_key_id,
        secret_access_key: a.secret_access_key,
        session_token: a.token,
        expires: a.expiration.as_deref().and_then(parse_time),
    })
}

/// The text of the first `<name>…</name>` in an XML answer (STS's few fields hold no markup).
fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{name}>"))?;
    xml.get(start..start + len).map(str::trim)
}

/// An RFC 3339 time in UTC (`2026-12-05T18:00:00Z`, fractions ignored), as AWS writes expiries.
fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let number = |range: std::ops::Range<usize>| s.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hh, mm, ss) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !s.ends_with('Z') && !s.ends_with("+00:00") {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_first_source_configured_is_the_one_used() {
        let chain = |pairs: &[(&str, &str)]| CredentialsChain::with_env(env(pairs), "eu-west-1").source;
        assert_eq!(chain(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_ROLE_ARN", "r")]), Source::Environment);
        let web = chain(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn:r")]);
        assert!(
            matches!(&web, Source::WebIdentity { endpoint, .. } if endpoint == "https://sts.eu-west-1.amazonaws.com")
        );
        let container = chain(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds")]);
        assert_eq!(container, Source::Container { url: "http://169.254.170.2/v2/creds".into(), authorization: None });
        assert_eq!(chain(&[]), Source::Instance { endpoint: IMDS.into() });
        assert_eq!(chain(&[("AWS_EC2_METADATA_DISABLED", "true")]), Source::None);
    }

    #[test]
    fn expiries_read_as_aws_writes_them() {
        let t = parse_time("2026-12-05T18:00:00Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_796_493_600);
        assert_eq!(parse_time("2026-12-05T18:00:00.123Z"), parse_time("2026-12-05T18:00:00Z"));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(parse_time("2026-13-05T18:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn sts_fields_are_read_from_its_xml() {
        let xml = "<AssumeRoleWithWebIdentityResponse><Credentials><AccessKeyId>AK</AccessKeyId>\
                   <SessionToken>tok</SessionToken></Credentials></AssumeRoleWithWebIdentityResponse>";
        assert_eq!(tag(xml, "AccessKeyId"), Some("AK"));
        assert_eq!(tag(xml, "SessionToken"), Some("tok"));
        assert_eq!(tag(xml, "Expiration"), None);
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let c = Credentials {
            access_key_id: "AK".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: Some("t0k3n".into()),
            expires: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("t0k3n"), "{shown}");
    }

    /// A stand-in for an AWS credentials endpoint (the container endpoint, IMDS, STS), which
    /// cannot be reached here: answers `(method, path)` from `routes` (404 otherwise), once per
    /// connection, and keeps each request's head and body.
    async fn stand_in(routes: Vec<(&'static str, &'static str, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as Content-Length says.
                loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length || n == 0 {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let mut first = text.split_whitespace();
                let (method, path) = (first.next().unwrap_or("").to_owned(), first.next().unwrap_or("").to_owned());
                log.lock().unwrap().push(text.clone());
                let body = routes.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, b)| b.clone());
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => ("404 Not Found", String::new()),
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, seen)
    }

    fn json_answer(expiration: &str) -> String {
        format!(r#"{{"AccessKeyId":"ASIA1","SecretAccessKey":"sk","Token":"tk","Expiration":"{expiration}"}}"#)
    }

    #[tokio::test]
    async fn the_container_endpoint_is_asked_with_its_token_and_asked_again_near_expiry() {
        let soon = "2000-01-01T00:00:00Z"; // already past: every get fetches again
        let (url, seen) = stand_in(vec![("GET", "/creds", json_answer(soon))]).await;
        let chain = CredentialsChain::with_env(
            env(&[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &format!("{url}/creds")),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer x"),
            ]),
            "us-east-1",
        );
        let c = chain.get().await.unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("ASIA1", Some("tk")));
        chain.get().await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "expired credentials are fetched again");
        assert!(seen[0].to_ascii_lowercase().contains("authorization: bearer x"), "{}", seen[0]);
    }

    #[tokio::test]
    async fn the_instance_role_is_read_through_imdsv2_and_cached_until_near_expiry() {
        let (url, seen) = stand_in(vec![
            ("PUT", "/latest/api/token", "imds-token".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/", "web-role\n".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/web-role", json_answer("2999-01-01T00:00:00Z")),
        ])
        .await;
        let chain = CredentialsChain::with_env(env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]), "us-east-1");
        assert!(chain.describe().contains("IMDSv2"), "{}", chain.describe());
        assert_eq!(chain.get().await.unwrap().secret_access_key, "sk");
        assert_eq!(chain.get().await.unwrap().secret_access_key, "sk");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "fetched once, then cached: {seen:?}");
        assert!(seen[0].to_ascii_lowercase().contains("x-aws-ec2-metadata-token-ttl-seconds: 21600"));
        assert!(seen[2].to_ascii_lowercase().contains("x-aws-ec2-metadata-token: imds-token"));
    }

    #[tokio::test]
    async fn a_web_identity_is_exchanged_at_sts_for_the_role() {
        let xml = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                   <AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>wsk</SecretAccessKey><SessionToken>wtk</SessionToken>\
                   <Expiration>2999-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>\
                   </AssumeRoleWithWebIdentityResponse>";
        let (url, seen) = stand_in(vec![("POST", "/", xml.into())]).await;
        let token_file = std::env::temp_dir().join(format!("drainpipe-web-identity-{}", std::process::id()));
        std::fs::write(&token_file, "eyJ.jwt\n").unwrap();
        let chain = CredentialsChain::with_env(
            env(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/drainpipe"),
                ("AWS_ENDPOINT_URL_STS", &url),
            ]),
            "us-east-1",
        );
        let c = chain.get().await.unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("ASIAWEB", Some("wtk")));
        let asked = seen.lock().unwrap()[0].clone();
        assert!(
            asked.contains("Action=AssumeRoleWithWebIdentity") && asked.contains("WebIdentityToken=eyJ.jwt"),
            "{asked}"
        );
        assert!(asked.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fdrainpipe"), "{asked}");
        let _ = std::fs::remove_file(token_file);
    }

    #[tokio::test]
    async fn a_source_that_fails_is_named() {
        let chain = CredentialsChain::with_env(
            env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")]),
            "us-east-1",
        );
        let e = chain.get().await.unwrap_err().to_string();
        assert!(e.contains("instance role") && e.contains("no IMDSv2 token"), "{e}");
    }
}
