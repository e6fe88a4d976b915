//! Elastic Cloud's deployment id: `NAME:BASE64`, where BASE64 encodes
//! `HOST[:PORT]$ELASTICSEARCH_ID[$KIBANA_ID]`, and the Elasticsearch endpoint is
//! `https://ELASTICSEARCH_ID.HOST:PORT` (port 443 unless one is given). The same reading as
//! Elastic's own clients; an id that does not read names the part that is wrong.

use std::str::FromStr;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Standard base64, with or without its `=` padding (ids are copied by hand, and some tools
/// print them without).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded Cloud ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudId {
    /// The id as given.
    pub id: String,
    /// The deployment's name, the part before the `:`.
    pub name: String,
    /// `https://<id>.<host>:<port>`.
    pub elasticsearch_url: String,
}

/// Why a Cloud ID does not read, naming its part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Elastic Cloud ID: {0}")]
pub struct CloudIdError(String);

impl FromStr for CloudId {
    type Err = CloudIdError;

    fn from_str(id: &str) -> Result<CloudId, CloudIdError> {
        let bad = |why: String| Err(CloudIdError(why));
        let Some((name, encoded)) = id.trim().split_once(':') else {
            return bad(
                "no ':' after the deployment name (expected NAME:BASE64, as the Elastic Cloud console shows it)".into(),
            );
        };
        let bytes = match BASE64.decode(encoded) {
            Ok(bytes) => bytes,
            Err(e) => return bad(format!("the part after {name:?}: is not base64 ({e})")),
        };
        let Ok(decoded) = String::from_utf8(bytes) else {
            return bad("the decoded part is not text (UTF-8)".into());
        };
        let mut parts = decoded.split('$');
        let host = parts.next().unwrap_or_default();
        let Some(es_id) = parts.next() else {
            return bad(format!(
                "the decoded part {decoded:?} has no '$' (expected HOST$ELASTICSEARCH_ID[$KIBANA_ID])"
            ));
        };
        let (host, host_port) = split_port(host, "host", &decoded)?;
        let (es_id, es_port) = split_port(es_id, "Elasticsearch id", &decoded)?;
        if host.is_empty() {
            return bad(format!("the host, before the first '$' of {decoded:?}, is empty"));
        }
        if es_id.is_empty() {
            return bad(format!("the Elasticsearch id, after the first '$' of {decoded:?}, is empty"));
        }
        let port = es_port.or(host_port).unwrap_or(443);
        let elasticsearch_url = format!("https://{es_id}.{host}:{port}");
        Ok(CloudId { id: id.trim().to_owned(), name: name.to_owned(), elasticsearch_url })
    }
}

/// `name:port` into its name and port; `what` names the part in an error.
fn split_port<'a>(part: &'a str, what: &str, decoded: &str) -> Result<(&'a str, Option<u16>), CloudIdError> {
    match part.rsplit_once(':') {
        None => Ok((part, None)),
        Some((name, port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok((name, Some(port))),
            _ => Err(CloudIdError(format!("the port {port:?} of the {what} in {decoded:?} is not a port number"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, decoded: &str) -> String {
        format!("{name}:{}", base64::engine::general_purpose::STANDARD.encode(decoded))
    }

    fn error(id: &str) -> String {
        id.parse::<CloudId>().unwrap_err().to_string()
    }

    #[test]
    fn a_cloud_id_names_the_elasticsearch_endpoint() {
        let c: CloudId = id("my-deployment", "us-east-1.aws.found.io$abc123$def456").parse().unwrap();
        assert_eq!(c.name, "my-deployment");
        assert_eq!(c.elasticsearch_url, "https://abc123.us-east-1.aws.found.io:443");
        // Without a Kibana part, with the host's port, with the Elasticsearch id's own port
        // (which wins), and without the padding.
        let c: CloudId = id("d", "eu-west-1.aws.found.io:9243$abc").parse().unwrap();
        assert_eq!(c.elasticsearch_url, "https://abc.eu-west-1.aws.found.io:9243");
        let c: CloudId = id("d", "host.example:9243$abc:9200$kib:9300").parse().unwrap();
        assert_eq!(c.elasticsearch_url, "https://abc.host.example:9200");
        let unpadded = id("d", "h.io$ab").trim_end_matches('=').to_owned();
        assert!(id("d", "h.io$ab").ends_with('='), "the case needs padding to take away");
        assert_eq!(unpadded.parse::<CloudId>().unwrap().elasticsearch_url, "https://ab.h.io:443");
        // Elastic's documented example id.
        let c: CloudId = "staging:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRjZWM2ZjI2MWE3NGJmMjRjZTMzYmI4ODExYjg0Mjk0ZiRjNmMyY2E2ZDA0MjI0OWFmMGNjN2Q3YTllOTYyNTc0Mw=="
            .parse()
            .unwrap();
        assert_eq!(c.elasticsearch_url, "https://cec6f261a74bf24ce33bb8811b84294f.us-east-1.aws.found.io:443");
    }

    #[test]
    fn a_broken_cloud_id_names_the_part_that_is_wrong() {
        assert!(error("dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRhYmM=").contains("no ':' after the deployment name"));
        assert!(error("d:not*base64").contains("the part after \"d\": is not base64"));
        assert!(error(&format!("d:{}", BASE64.encode([0xff, 0xfe]))).contains("not text"));
        assert!(error(&id("d", "us-east-1.aws.found.io")).contains("has no '$'"));
        assert!(error(&id("d", "$abc")).contains("the host"));
        assert!(error(&id("d", "h.io$")).contains("the Elasticsearch id"));
        assert!(error(&id("d", "h.io:port$abc")).contains("the port \"port\" of the host"));
        assert!(error(&id("d", "h.io$abc:0")).contains("the port \"0\" of the Elasticsearch id"));
    }
}
