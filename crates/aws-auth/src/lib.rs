//! AWS Signature Version 4 for requests to Amazon OpenSearch Service (`es`) and OpenSearch
//! Serverless (`aoss`), as Logstash's, Vector's and Fluent Bit's outputs sign them.
//!
//! [`sign`] is the signing itself (the `aws-sigv4` crate, checked against AWS's published test
//! suite in `tests/aws4_testsuite.rs`); [`Signer`] adds the region, the service and
//! credentials from the standard places ([`credentials`]), refreshed before they expire.
//! The caller signs the bytes it sends: a gzipped body is signed gzipped.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod credentials;

use std::str::FromStr;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningParams, SigningSettings,
};
use aws_sigv4::sign::v4;

pub use credentials::{Credentials, CredentialsChain};

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot sign the request: {0}")]
    Signing(String),
    #[error("no AWS credentials: {0}")]
    Credentials(String),
}

/// The AWS service a cluster is: a managed domain, or a serverless collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Amazon OpenSearch Service domains (`es`).
    Es,
    /// Amazon OpenSearch Serverless collections (`aoss`), which also want the body's hash in
    /// `x-amz-content-sha256`.
    Aoss,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Es => "es",
            Service::Aoss => "aoss",
        }
    }
}

impl FromStr for Service {
    type Err = String;
    fn from_str(s: &str) -> Result<Service, String> {
        match s {
            "es" => Ok(Service::Es),
            "aoss" => Ok(Service::Aoss),
            other => Err(format!(
                "`{other}` is not an AWS service drainpipe signs for: `es` (a domain) or `aoss` (serverless)"
            )),
        }
    }
}

/// How the path is escaped in the canonical request. AWS services but S3 escape the path as
/// sent once more (`%2A` is signed as `%252A`), which is what the SDKs and botocore do;
/// AWS's test suite gives unescaped paths, which are escaped once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathEscaping {
    /// The URL as sent, escaped again: what every request drainpipe sends uses.
    Double,
    /// Escaped once.
    Single,
}

/// The headers that sign one request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` with temporary credentials, `x-amz-content-sha256` for `aoss`), to
/// add to it as they are. `url` is the URL as sent; `headers` the other headers to sign
/// (`host` comes from the URL when absent).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    escaping: PathEscaping,
) -> Result<Vec<(String, String)>, Error> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = match escaping {
        PathEscaping::Double => PercentEncodingMode::Double,
        PathEscaping::Single => PercentEncodingMode::Single,
    };
    if service == Service::Aoss.name() {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        credentials.expires,
        "drainpipe",
    )
    .into();
    let params: SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Error::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| Error::Signing(e.to_string()))?;
    let (instructions, _signature) =
        aws_sigv4::http_request::sign(request, &params).map_err(|e| Error::Signing(e.to_string()))?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// Signs drainpipe's requests for one region and service, with credentials from a
/// [`CredentialsChain`].
#[derive(Debug)]
pub struct Signer {
    pub region: String,
    pub service: Service,
    chain: CredentialsChain,
}

impl Signer {
    pub fn new(region: &str, service: Service, chain: CredentialsChain) -> Signer {
        Signer { region: region.to_owned(), service, chain }
    }

    /// The headers that sign this request, now.
    pub async fn headers(&self, method: &str, url: &str, body: &[u8]) -> Result<Vec<(String, String)>, Error> {
        let credentials = self.chain.get().await?;
        let service = self.service.name();
        sign(method, url, &[], body, &credentials, &self.region, service, SystemTime::now(), PathEscaping::Double)
    }

    /// What signs, for the start-up log: `AWS SigV4 (es, us-east-1), credentials from …`.
    pub fn describe(&self) -> String {
        format!("AWS SigV4 ({}, {}), credentials from {}", self.service.name(), self.region, self.chain.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires: None,
        }
    }

    fn header<'a>(signed: &'a [(String, String)], name: &str) -> Option<&'a str> {
        signed.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_path_as_sent_is_escaped_again_as_the_sdks_do() {
        // The same request whose path was escaped once for the wire, signed both ways: only the
        // double escaping agrees with signing the unescaped path escaped once.
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let sign_as = |url: &str, escaping| {
            let signed = sign("GET", url, &[], b"", &example(), "us-east-1", "es", time, escaping).unwrap();
            header(&signed, "authorization").unwrap().to_owned()
        };
        let sent = "https://example.amazonaws.com/logs-heroku.%2A/_search";
        assert_ne!(sign_as(sent, PathEscaping::Double), sign_as(sent, PathEscaping::Single));
        assert_eq!(
            sign_as(sent, PathEscaping::Double),
            sign_as("https://example.amazonaws.com/logs-heroku.%252A/_search", PathEscaping::Single)
        );
    }

    #[test]
    fn serverless_signs_the_body_hash_and_temporary_credentials_send_their_token() {
        let temporary = Credentials { session_token: Some("token".into()), ..example() };
        let signed = sign(
            "POST",
            "https://x.us-east-1.aoss.amazonaws.com/_bulk",
            &[],
            b"{}\n",
            &temporary,
            "us-east-1",
            "aoss",
            SystemTime::now(),
            PathEscaping::Double,
        )
        .unwrap();
        assert!(header(&signed, "x-amz-content-sha256").is_some(), "{signed:?}");
        assert_eq!(header(&signed, "x-amz-security-token"), Some("token"));
        let authorization = header(&signed, "authorization").unwrap();
        assert!(authorization.contains("/us-east-1/aoss/aws4_request"), "{authorization}");
        assert!(authorization.contains("x-amz-content-sha256"), "{authorization}");
    }

    #[test]
    fn services_are_es_or_aoss() {
        assert_eq!("es".parse::<Service>(), Ok(Service::Es));
        assert_eq!("aoss".parse::<Service>(), Ok(Service::Aoss));
        assert!("s3".parse::<Service>().unwrap_err().contains("`es`"));
    }
}
